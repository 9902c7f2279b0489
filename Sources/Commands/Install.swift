import ArgumentParser
import Catalog
import ELF
import FoundationEssentials
import Kernel
import Loader

extension BTFGen {
    /// `btfgen install`: the running kernel's BTF where libbpf itself looks.
    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install the running kernel's BTF where libbpf looks, for unmodified libbpf tools.",
            discussion: """
                Chooses the BTF as `btfgen attach` does (by build-id; see `btfgen resolve`) and writes \
                it, as an ELF holding only .BTF, to the first free place libbpf searches \
                (/boot/vmlinux-$(uname -r), then /lib/modules/…). Never overwrites a file btfgen did \
                not create; refuses when another file libbpf reads first already holds BTF. \
                With a host root (--host-root, $BTFGEN_HOST_ROOT or /proc/1/root) the file is \
                written below it, where the host's libbpf tools look. Undo with `btfgen uninstall`.
                """)

        @OptionGroup var selection: BTFSelectionOptions

        func run() throws {
            let host = try selection.hostOptions.resolved()
            let running = RunningKernel.read(KernelProbe(hostRoot: host))
            if let native = running.nativeBTF, !selection.forceCatalog {
                print("the running kernel exposes its own BTF at \(native); libbpf uses it, nothing to install")
                return
            }
            var options = selection
            options.forceCatalog = true  // the native BTF was ruled out above
            let choice = try options.choose(for: running)
            for w in choice.warnings { warn("warning: \(w)") }
            let data = try reporting { () throws -> Data in
                guard let d = FileManager.default.contents(atPath: choice.path) else {
                    throw InstallError.io(path: choice.path, reason: "cannot read the chosen BTF")
                }
                return d
            }
            let bytes = try reporting { try rawBTF([UInt8](data), from: choice.path) }
            let outcome = try reporting {
                try BTFInstaller(root: host.path).install(
                    btf: bytes, release: running.release, buildID: choice.entry?.identity.buildID?.hex,
                    source: choice.path)
            }
            switch outcome {
            case .installed(let f): print("installed \(host.onDisk(f.path)) (\(choice.reason))")
            case .updated(let f): print("updated \(host.onDisk(f.path)) (\(choice.reason))")
            case .unchanged(let f): print("already installed: \(host.onDisk(f.path))")
            }
        }
    }

    /// `btfgen uninstall`: remove only what `install` wrote.
    struct Uninstall: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the BTF files `btfgen install` wrote (never anything else).")

        @Option(help: "Only for this kernel release (default: every file btfgen installed).")
        var release: String?

        @OptionGroup var hostOptions: HostOptions

        func run() throws {
            let host = try hostOptions.resolved()
            let (removed, kept) = try reporting { try BTFInstaller(root: host.path).uninstall(release: release) }
            for f in removed { print("removed \(host.onDisk(f.path))") }
            for f in kept { warn("left \(host.onDisk(f.path)) alone: it changed since btfgen installed it") }
            if removed.isEmpty && kept.isEmpty {
                print("nothing btfgen installed\(release.map { " for \($0)" } ?? "")")
            }
        }
    }
}

/// The catalog stores raw BTF; a `--btf` file may be an ELF holding .BTF. Install wants raw.
func rawBTF(_ bytes: [UInt8], from path: String) throws -> [UInt8] {
    try bytes.withUnsafeBytes { raw in
        guard let btf = try btfPayload(of: raw), !btf.isEmpty else {
            throw InstallError.io(path: path, reason: "an ELF without a .BTF section")
        }
        return [UInt8](btf)
    }
}
