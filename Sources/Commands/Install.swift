import ArgumentParser
import Catalog
import Deploy
import ELF
import FoundationEssentials
import Kernel

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
            let nothingToDo = running.nativeBTF.map {
                "the running kernel exposes its own BTF at \($0); libbpf uses it, nothing to install"
            }
            if let nothingToDo, !selection.forceCatalog, selection.btf == nil {
                print(nothingToDo)
                return
            }
            var options = selection
            options.forceCatalog = true  // installing the native BTF would be pointless
            let choice = try options.choose(for: running)
            // Checked before anything is written: a --btf file must parse as BTF, a catalog file
            // must have its recorded sha256, a bundle blob its manifest digest.
            let verified = try reporting { try choice.btf.verified() }
            if let nothingToDo, !selection.forceCatalog {
                print(nothingToDo)
                return
            }
            for w in choice.warnings { warn("warning: \(w)") }
            let outcome = try reporting {
                try BTFInstaller(root: host.path).install(
                    btf: verified.rawBTF, release: running.release, buildID: choice.btf.buildID?.hex,
                    source: choice.path, machine: KernelArch.elfMachine(of: running.arch))
            }
            if let blob = choice.btf.blob {
                warn(
                    "note: this BTF comes from bundle \(blob.bundle), minimized for its \(blob.objects.count) BPF object\(blob.objects.count == 1 ? "" : "s"); other libbpf tools on this machine will find only the types those objects use"
                )
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
