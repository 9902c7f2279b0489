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
            commandName: "install",
            abstract: "Install the running kernel's BTF where libbpf looks, for unmodified libbpf tools.",
            discussion: """
                Chooses the BTF as `btfgen attach` does (by build-id; see `btfgen resolve`) and writes \
                it, as an ELF holding only .BTF, to the first free place libbpf searches \
                (/boot/vmlinux-$(uname -r), then /lib/modules/…). Never overwrites a file btfgen did \
                not create; refuses when another file libbpf reads first already holds BTF. \
                With a host root (--host-root, $BTFGEN_HOST_ROOT or /proc/1/root) the file is \
                written below it, where the host's libbpf tools look. Undo with `btfgen uninstall`.

                For another machine's image tree (an arm64 guest's root built on an x86_64 host): \
                --host-root TREE --kernel BUILD-ID installs that kernel's BTF under its release, as \
                an ELF for its architecture (the tree's, from its /bin/sh, or --arch).
                """)

        @OptionGroup var selection: BTFSelectionOptions

        func run() throws {
            let host = try selection.hostOptions.resolved()
            let running = RunningKernel.read(KernelProbe(hostRoot: host))
            let arch = selection.hostOptions.targetArch(host)
            let nothingToDo = running.nativeBTF.map {
                "the running kernel exposes its own BTF at \($0); libbpf uses it, nothing to install"
            }
            let declaredOther = arch != nil && arch != running.arch
            if let nothingToDo, !declaredOther, selection.kernel == BTFRequest.auto, !selection.forceCatalog,
                selection.btf == nil
            {
                print(nothingToDo)
                return
            }
            var options = selection
            options.forceCatalog = true  // installing the native BTF would be pointless
            let choice = try options.choose(for: running, arch: arch, otherMachineAllowed: true)
            if choice.target.isThisMachine, let nothingToDo, !selection.forceCatalog, selection.btf == nil {
                print(nothingToDo)
                return
            }
            // BTF for another machine goes into that machine's root, under its kernel's release.
            let release = try reporting { () throws -> String in
                if !choice.target.isThisMachine && host.source == .own {
                    throw InputFailure(
                        "\(choice.path) is for a \(choice.target.arch) machine, not this \(running.arch) one; install it into that machine's root with --host-root DIR"
                    )
                }
                // libbpf looks under uname -r, whatever entry was chosen (--force may pick another release).
                if choice.target.isThisMachine { return running.release }
                guard let release = choice.release else {
                    throw InputFailure(
                        "--btf \(choice.path) does not say which kernel release of the \(choice.target.arch) machine it is for; name the kernel with --kernel BUILD-ID instead"
                    )
                }
                return release
            }
            // Checked before anything is written: a --btf file must parse as BTF, a catalog file
            // must have its recorded sha256, a bundle blob its manifest digest, and all of them
            // describe a kernel of the target's architecture.
            let verified = try reporting { () throws(DeployError) -> VerifiedBTF in
                let verified = try choice.btf.verified()
                try verified.checkArchitecture(for: choice.target)
                return verified
            }
            for w in choice.warnings { warn("warning: \(w)") }
            let outcome = try reporting {
                try BTFInstaller(root: host.path).install(
                    btf: verified.rawBTF, release: release, buildID: choice.btf.buildID?.hex,
                    source: choice.path, arch: choice.target.arch)
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
            commandName: "uninstall",
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
