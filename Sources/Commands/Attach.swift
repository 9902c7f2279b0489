import ArgumentParser
import Deploy
import FoundationEssentials
import Kernel
import LibBPF
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

extension BTFGen {
    /// `btfgen attach`: load raw tracepoint programs with the BTF that matches this kernel and print their events.
    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attach",
            abstract:
                "Attach raw tracepoint programs with the BTF that matches the running kernel and print their events.",
            discussion: """
                The BTF is chosen as `btfgen resolve` explains. Without --object, the programs that \
                ship with btfgen for this machine's architecture are used: every *.bpf.o in \
                $BTFGEN_BPF_DIR, else <bindir>/../share/btfgen/bpf, else ./bpf, each directory's \
                <arch>/ subdirectory (x86_64, arm64) first. A BTF, bundle or object (FILE@ARCH \
                overrides what its registers say) of another architecture is refused. Stops on Ctrl-C / SIGTERM, after --count \
                events or after --duration. --count 0 exits as soon as everything is attached.

                Events (--json: one object per line): kind (rename, unlinkat, exec), pid and tid \
                read from task_struct through CO-RE, helper_pid/helper_tid from \
                bpf_get_current_pid_tgid(), comm, new_comm and oom_score_adj (rename), syscall and \
                path (unlinkat), path (exec: the file executed). When the CO-RE pid of an event \
                about the current task contradicts the helper's, the BTF does not describe this \
                kernel: attach says so at once, prints no further event and exits with status 3.
                """)

        @OptionGroup var selection: BTFSelectionOptions

        @Option(
            name: .customLong("object"),
            help: ArgumentHelp("BPF object to load, optionally @ARCH (repeatable).", valueName: "file[@arch]"))
        var objects: [String] = []

        @Option(
            name: .customLong("program"),
            help: ArgumentHelp(
                "Attach only this program (C name, tracepoint or section; repeatable).", valueName: "name"))
        var programs: [String] = []

        // `.unconditional`: `--count -1` is a wrong value to reject in validate(), not a flag.
        @Option(parsing: .unconditional, help: "Stop after this many events (0: right after attaching).")
        var count: Int?

        @Option(
            parsing: .unconditional,
            help: ArgumentHelp("Stop after this long: 30, 30s, 500ms, 2m.", valueName: "duration"))
        var duration: String?

        @Flag(help: "Print one JSON object per event (JSON Lines).")
        var json = false

        @Flag(name: .customLong("dry-run"), help: "Show the BTF and programs that would be used; load nothing.")
        var dryRun = false

        @Flag(name: .shortAndLong, help: "Echo libbpf's own messages to stderr.")
        var verbose = false

        func validate() throws {
            if let count, count < 0 { throw ValidationError("--count must be 0 or more events, got \(count)") }
            if let duration, duration.hasPrefix("-") {
                throw ValidationError("--duration must be 0 or more, got \(duration); use e.g. 30, 30s, 500ms or 2m")
            }
            if let duration, Attach.seconds(duration) == nil {
                throw ValidationError("--duration \(duration) is not a duration; use e.g. 30, 30s, 500ms or 2m")
            }
        }

        /// `30`, `30s`, `500ms`, `2m` → seconds.
        static func seconds(_ text: String) -> Double? {
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
            for (suffix, scale) in units where text.hasSuffix(suffix) {
                guard let value = Double(text.dropLast(suffix.count)), value >= 0 else { return nil }
                return value * scale
            }
            guard let value = Double(text), value >= 0 else { return nil }
            return value
        }

        func run() async throws {
            let running = try selection.hostOptions.runningKernel()
            if let arch = selection.hostOptions.arch.flatMap(KernelArch.canonical), arch != running.arch {
                warn(
                    "attach loads programs on this machine, which is \(running.arch); --arch \(arch) is for `btfgen resolve` and `btfgen install`"
                )
                throw ExitCode.failure
            }
            // Nothing can help a kernel without raw tracepoints or a process without privileges: say so first.
            if !dryRun { try reporting { try Preflight.check(running) } }
            let choice = try selection.choose(for: running)
            let targets = try reporting {
                objects.isEmpty
                    ? try DefaultObjects.find(arch: running.arch).map { TargetObject(path: $0) }
                    : objects.map(TargetObject.init(argument:))
            }
            let objectPaths = targets.map(\.path)
            // The dry run checks exactly what the real run checks before loading: the BTF's bytes
            // against their recorded digest, its and the objects' architecture, and that it answers
            // every CO-RE relocation truthfully.
            let verified = try reporting { () throws(DeployError) -> VerifiedBTF in
                let verified = try choice.btf.verified()
                try verified.checkArchitecture(for: choice.target)
                for o in targets { try o.checkArchitecture(for: choice.target) }
                try verified.checkCoverage(of: objectPaths)
                return verified
            }
            if dryRun {
                let programs = try reporting { () throws(LoadError) in
                    let all = try objectPaths.map { path throws(LoadError) in
                        (path: path, programs: try TraceSession.rawTracepoints(in: path))
                    }
                    return try RawTracepointProgram.pick(self.programs, from: all)
                }
                let resolution = Resolution(running: running, btf: choice, programs: programs)
                if json { try printJSON(resolution) } else { resolution.printText() }
                return
            }
            for w in choice.warnings { warn("warning: \(w)") }
            let session = try reporting {
                try TraceSession(
                    LoadRequest(
                        objects: objectPaths, programs: programs,
                        btfCustomPath: try verified.libbpfPath(), verbose: verbose))
            }
            let names = session.attached.map(\.tracepoint).joined(separator: ", ")
            warn(
                "attached \(session.attached.count) program\(session.attached.count == 1 ? "" : "s") (\(names)) using BTF \(choice.path) [\(choice.source.rawValue)]"
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let stop = StopCondition(count: count, duration: duration.flatMap(Attach.seconds))
            let reason: StopReason
            do {
                reason = try session.run(until: stop) { (event) throws(LoadError) in
                    // An event whose CO-RE pid contradicts the kernel's proves the BTF wrong: it and
                    // everything after it would be garbage, so nothing more is printed.
                    if event.coreReadsDisagree {
                        throw .contradiction(
                            btf: choice.path,
                            detail:
                                "a CO-RE read gave pid \(event.pid)/tid \(event.tid) where the kernel says \(event.helperPID)/\(event.helperTID)"
                        )
                    }
                    if json, let data = try? encoder.encode(event) {
                        print(String(decoding: data, as: UTF8.self))
                    } else {
                        print(event.line)
                    }
                    fflush(nil)
                }
            } catch .contradiction(let btf, let detail) {
                warn("error: \(LoadError.contradiction(btf: btf, detail: detail))")
                throw ExitCode(3)
            } catch {
                warn(describe(error))
                throw ExitCode.failure
            }
            let lost = session.lostEvents
            let malformed = session.malformedSamples
            warn(
                "stopped (\(reason.rawValue))\(lost > 0 ? "; \(lost) events lost to full perf buffers" : "")\(malformed > 0 ? "; \(malformed) malformed sample\(malformed == 1 ? "" : "s") dropped (not btfgen events)" : "")"
            )
        }
    }
}
