import ArgumentParser
import Builder
import Catalog
import Dispatch
import FoundationEssentials
import Kernel
import Synchronization
import SystemSupport
import Toolchain

#if canImport(Glibc)
    import Glibc
#endif

extension BTFGen {
    /// `btfgen build INPUT...`: debuginfo kernels → BTF in the catalog.
    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Turn debuginfo kernels (DWARF) into BTF catalog entries.",
            discussion: """
                INPUT is a vmlinux with DWARF, the same compressed (.xz, .gz, .zst), a Debian/Ubuntu \
                debuginfo package (.deb/.ddeb with usr/lib/debug/boot/vmlinux-*), or an RPM \
                kernel-debuginfo package. The input is only read. Entries land in \
                <catalog>/<distro>/<version>/<arch>/<release>.btf and index.json.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Argument(help: ArgumentHelp("Debuginfo vmlinux files or packages.", valueName: "input"))
        var inputs: [String]

        @Option(
            help:
                "How to encode: detached (pahole --btf_encode_detached) or objcopy (pahole -J, llvm-objcopy, strip -x). Default: detached when pahole ≥ 1.20."
        )
        var method: BuildMethod?

        @Option(
            name: .shortAndLong,
            help: "Builds to run at once (default: fitted to cores and memory; pahole needs ~1 GB for a 6.1 kernel).")
        var jobs: Int?

        @Flag(
            inversion: .prefixedNo,
            help:
                "Let pahole encode on every core (-j; the default). The BTF stored is byte-identical either way: btfgen rewrites it in canonical order and keeps each function's first definition, as single-threaded pahole does."
        )
        var parallel = true

        @Flag(help: "Rebuild even when an entry with the same build-id exists.")
        var force = false

        @Option(help: "Distribution ID to file the entry under (e.g. debian, ubuntu, rhel).")
        var distro: String?

        @Option(name: .customLong("distro-version"), help: "Distribution VERSION_ID (e.g. 12, 20.04, 8).")
        var distroVersion: String?

        @Flag(help: "Print results as JSON.")
        var json = false

        @Flag(
            help:
                "After each build, print where its time went: each step's seconds and share of the build, btfgen's own share, and CPU seconds of btfgen against pahole."
        )
        var timings = false

        @Flag(
            name: .shortAndLong,
            help: "Print each pipeline stage as it starts (a terminal shows a live display anyway).")
        var verbose = false

        func validate() throws {
            if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if inputs.isEmpty { throw ValidationError("give at least one debuginfo vmlinux or package") }
            if distroVersion != nil && distro == nil {
                throw ValidationError("--distro-version needs --distro")
            }
        }

        func run() throws {
            let tools = try reporting { try Toolchain.probe() }
            var options = BuildOptions()
            options.method = method
            options.parallel = parallel
            options.force = force
            options.distro = distro
            options.distroVersion = distroVersion
            options.btfgenVersion = BTFGenVersion.string
            try reporting { try tools.require(method ?? tools.defaultMethod) }
            let builder = KernelBTFBuilder(catalog: catalogOptions.resolved, tools: tools, options: options)
            let workers = min(inputs.count, jobs ?? BuildConcurrency.defaultJobs())
            let display = ProgressDisplay(
                inputs: inputs, interactive: !json && isatty(STDERR_FILENO) == 1,
                verbose: verbose)
            let results = BuildJobs.run(inputs, workers: workers) { index, input in
                Result { () throws(BuildError) -> BuildResult in
                    try builder.build(input) { stage in display.update(index, stage.rawValue) }
                }
            }
            display.finish()
            var failed = false
            var summaries: [BuildSummary] = []
            for (input, result) in zip(inputs, results) {
                switch result {
                case .success(let r):
                    summaries.append(BuildSummary(r, catalog: builder.catalog))
                    if !json { print(describe(r, catalog: builder.catalog)) }
                    if !json && timings && r.outcome != .unchanged {
                        print(r.timings.report.map { "  " + $0 }.joined(separator: "\n"))
                    }
                case .failure(let e):
                    failed = true
                    warn(inputs.count > 1 ? "\(input): \(e)" : "\(e)")
                }
            }
            if json { try printJSON(summaries) }
            if failed { throw ExitCode.failure }
        }

        func describe(_ r: BuildResult, catalog: Catalog) -> String {
            let e = r.entry
            let id = e.identity
            var lines: [String] = []
            switch r.outcome {
            case .added, .replaced:
                lines.append("\(r.outcome == .added ? "stored" : "replaced") \(catalog.url(of: e).path)")
            case .unchanged:
                lines.append("already in the catalog (same build-id; --force rebuilds): \(catalog.url(of: e).path)")
            case .identical:
                lines.append(
                    "unchanged: the rebuilt BTF is byte-identical to \(catalog.url(of: e).path) (same sha256), left as is"
                )
            }
            lines.append("  release   \(id.release)  arch \(id.arch)  distro \(id.distro) \(id.distroVersion)")
            lines.append("  build-id  \(id.buildID?.hex ?? "none")")
            if let c = id.compiler { lines.append("  compiler  \(c)") }
            lines.append("  btf       \(e.typeCount) types, \(formatBytes(e.size)), sha256 \(e.sha256.prefix(16))…")
            if let n = r.native {
                lines.append(
                    "  native    image's own .BTF: \(n.nativeTypes) types vs \(n.generatedTypes) generated; task_struct \(n.taskStructSize) bytes, \(n.taskStructMembers) members identical"
                )
            }
            if r.outcome != .unchanged {
                let t = r.timings
                lines.append(
                    "  took      \(fixed(r.seconds, digits: 1)) s (\(e.build?.method ?? "?")): pahole \(fixed(t.encode, digits: 2)) s, btfgen \(fixed(t.own, digits: 2)) s (read \(fixed(t.ingest, digits: 2)), canonical order \(fixed(t.canonicalize, digits: 2)) incl. first definitions \(fixed(t.functions, digits: 2)), libbpf check \(fixed(t.validate, digits: 2)), native \(fixed(t.native, digits: 2)), sha256+store \(fixed(t.store, digits: 2)))"
                )
            }
            return lines.joined(separator: "\n")
        }
    }
}

extension BuildMethod: ExpressibleByArgument {}

/// The JSON form of a build result.
struct BuildSummary: Encodable {
    let input: String
    let outcome: String
    let path: String
    let entry: CatalogEntry
    let nativeTypes: Int?
    let seconds: Double
    /// Seconds per part of the build (pahole against btfgen's own work).
    let timings: BuildTimings

    init(_ r: BuildResult, catalog: Catalog) {
        input = r.input
        outcome = r.outcome.rawValue
        path = catalog.url(of: r.entry).path
        entry = r.entry
        nativeTypes = r.native?.nativeTypes
        seconds = (r.seconds * 100).rounded() / 100
        timings = r.timings
    }
}

/// Runs builds on a bounded number of threads (each build mostly waits for pahole).
enum BuildJobs {
    static func run<T: Sendable>(
        _ inputs: [String], workers: Int,
        _ work: @escaping @Sendable (Int, String) -> T
    ) -> [T] {
        let results = Mutex([T?](repeating: nil, count: inputs.count))
        let slots = DispatchSemaphore(value: max(1, workers))
        let group = DispatchGroup()
        for (i, input) in inputs.enumerated() {
            slots.wait()
            group.enter()
            detachThread {
                let r = work(i, input)
                results.withLock { $0[i] = r }
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return results.withLock { $0.map { $0! } }
    }
}

/// Per-input progress: redrawn status lines on a terminal, plain lines otherwise.
final class ProgressDisplay: @unchecked Sendable {
    private let names: [String]
    private var states: [String]
    private let interactive: Bool
    private let verbose: Bool
    private let lock = Mutex(())
    private var drawn = false

    init(inputs: [String], interactive: Bool, verbose: Bool) {
        names = inputs.map { URL(fileURLWithPath: $0).lastPathComponent }
        states = Array(repeating: "waiting", count: inputs.count)
        self.interactive = interactive
        self.verbose = verbose
    }

    func update(_ index: Int, _ state: String) {
        lock.withLock { _ in
            states[index] = state
            if interactive {
                var out = drawn ? "\u{1b}[\(names.count)A" : ""
                for (n, s) in zip(names, states) {
                    out += "\u{1b}[2K  \(s.padded(toLength: 12)) \(n)\n"
                }
                drawn = true
                writeStandardError(out)
            } else if verbose {
                writeStandardError("btfgen: \(names[index]): \(state)\n")
            }
        }
    }

    func finish() {
        lock.withLock { _ in
            if interactive && drawn {
                writeStandardError("\u{1b}[\(names.count)A\u{1b}[J")
            }
        }
    }
}
