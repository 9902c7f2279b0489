import ArgumentParser
import Bundle
import Catalog
import Deploy
import FoundationEssentials
import Kernel
import LibBPF
import SystemSupport

/// How the BTF for loading is chosen; shared by `attach` and `resolve`.
struct BTFSelectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Whose BTF: auto (the running kernel, by build-id), or a catalog or bundle entry's release or build-id; for resolve and install, an entry of another architecture names another machine's kernel.",
            valueName: "auto|release|build-id"))
    var kernel: String = BTFRequest.auto

    @Option(help: ArgumentHelp("Use this BTF file (raw BTF or ELF with .BTF) as given.", valueName: "file"))
    var btf: String?

    @Flag(
        name: .customLong("force-catalog"),
        help: "Use the catalog even when the kernel exposes /sys/kernel/btf/vmlinux.")
    var forceCatalog = false

    @Flag(help: "Accept a catalog entry whose build-id (or release) differs from the running kernel's.")
    var force = false

    @Option(
        help: ArgumentHelp(
            "A bundle (`btfgen bundle`) to search after the catalog (default: $BTFGEN_BUNDLE, /usr/share/btfgen/bundle.tar.xz, <bindir>/../share/btfgen/bundle.tar.xz, if present).",
            valueName: "file"))
    var bundle: String?

    @OptionGroup var catalogOptions: CatalogOptions

    @OptionGroup var hostOptions: HostOptions

    func validate() throws {
        if kernel.isEmpty { throw ValidationError("--kernel needs auto, a release or a build-id") }
        if btf != nil && kernel != BTFRequest.auto {
            throw ValidationError("--btf and --kernel both name the BTF; give one of them")
        }
    }

    /// The request; `arch` is a declared target architecture, `otherMachineAllowed` whether a
    /// --kernel entry of another architecture names another machine (resolve, install) or is refused (attach).
    func request(arch: String? = nil, otherMachineAllowed: Bool = false) -> BTFRequest {
        BTFRequest(
            kernel: kernel, btfFile: btf, forceCatalog: forceCatalog, force: force, arch: arch,
            otherMachineAllowed: otherMachineAllowed)
    }

    /// The choice for the running kernel (or the declared target), or one line on stderr and exit status 1.
    func choose(for running: RunningKernel, arch: String? = nil, otherMachineAllowed: Bool = false) throws
        -> BTFChoice
    {
        let request = request(arch: arch, otherMachineAllowed: otherMachineAllowed)
        return try reporting {
            var reader: BundleReader? = nil
            if let path = bundle ?? DefaultBundle.find() {
                do { reader = try BundleReader(path: path) } catch {
                    // An explicit --bundle must work; a default one that does not is only mentioned.
                    if bundle != nil { throw error }
                    warn("warning: ignoring \(path): \(error)")
                }
            }
            return try BTFSelector(running: running, catalog: catalogOptions.resolved, bundle: reader).choose(request)
        }
    }
}

/// `btfgen resolve` and `attach --dry-run` print this.
struct Resolution: Encodable {
    var running: RunningKernel
    var btf: BTFChoice
    var programs: [RawTracepointProgram]?
    /// Where `--extract` wrote the BTF.
    var extracted: String? = nil

    func printText() {
        let r = running
        print("running kernel: \(r.release) \(r.arch) \(r.distro) \(r.distroVersion)")
        print("build-id:       \(r.buildID?.hex ?? "unreadable (\(r.buildIDProblem ?? "?"))")")
        print("native BTF:     \(r.nativeBTF ?? "none")")
        print("host identity:  \(r.hostIdentitySummary)")
        if !btf.target.isThisMachine {
            print("target:         another machine: \(btf.target.arch) \(btf.release ?? "")")
        }
        print("BTF:            \(btf.path)")
        if let blob = btf.btf.blob { print("bundle:         \(blob.bundle) blob sha256:\(blob.digest)") }
        print("source:         \(btf.source.rawValue)")
        print("reason:         \(btf.reason)")
        for w in btf.warnings { print("warning:        \(w)") }
        for p in programs ?? [] { print("program:        \(p.section) (\(p.name) in \(p.object))") }
        if let extracted { print("extracted:      \(extracted)") }
    }
}

extension BTFGen {
    /// `btfgen resolve`: which BTF `attach` would use for this kernel, and why.
    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resolve",
            abstract: "Show which BTF `attach` would use for the running kernel, and why, without loading.",
            discussion: """
                Order: --btf FILE; /sys/kernel/btf/vmlinux unless --force-catalog; the catalog entry \
                with the running kernel's build-id (from /sys/kernel/notes); an entry with the same \
                release and distro only when that build-id cannot be read (with a warning). Anything \
                else is refused, and an entry whose build-id differs is refused unless --force.

                For another machine: --kernel naming an entry of another architecture (an arm64 \
                guest's build-id on an x86_64 host), or --arch ARCH with --kernel, chooses that \
                kernel's BTF for its architecture without comparing it with the running kernel; \
                --extract then writes an ELF for that architecture. BTF or objects (--object, \
                FILE@ARCH) of another architecture than the target's are refused.
                """)

        @OptionGroup var selection: BTFSelectionOptions

        @Flag(help: "Print the result as JSON.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "Also write the chosen BTF, verified, to this file for your own loader (libbpf btf_custom_path, cilium/ebpf, Aya).",
                valueName: "file"))
        var extract: String?

        @Option(help: "With --extract: raw BTF, or an ELF holding only .BTF (what every libbpf and cilium/ebpf read).")
        var format: ExtractFormat = .elf

        @Option(
            name: .customLong("object"),
            help: ArgumentHelp(
                "Check that the BTF answers this BPF object's CO-RE relocations, as attach does (repeatable).",
                valueName: "file"))
        var objects: [String] = []

        enum ExtractFormat: String, ExpressibleByArgument, CaseIterable {
            case raw, elf
        }

        func run() async throws {
            let host = try selection.hostOptions.resolved()
            let running = RunningKernel.read(KernelProbe(hostRoot: host))
            let choice = try selection.choose(
                for: running, arch: selection.hostOptions.targetArch(host), otherMachineAllowed: true)
            let targets = objects.map(TargetObject.init(argument:))
            // The same checks attach makes before loading: nothing resolve reports is unusable.
            let verified = try reporting { () throws(DeployError) -> VerifiedBTF in
                let verified = try choice.btf.verified()
                try verified.checkArchitecture(for: choice.target)
                for o in targets { try o.checkArchitecture(for: choice.target) }
                try verified.checkCoverage(of: targets.map(\.path))
                return verified
            }
            if let extract {
                let bytes = verified.fileBytes(
                    elf: format == .elf, machine: KernelArch.elfMachine(of: choice.target.arch))
                try reporting {
                    do { try replaceFile(at: URL(fileURLWithPath: extract), with: Data(bytes)) } catch {
                        throw InputFailure("cannot write \(extract): \(describe(error))")
                    }
                }
            }
            let resolution = Resolution(running: running, btf: choice, programs: nil, extracted: extract)
            if json {
                try printJSON(resolution)
            } else {
                resolution.printText()
            }
        }
    }
}
