import ArgumentParser
import BTF
import Bundle
import Catalog
import FoundationEssentials
import Kernel
import Minimize

#if canImport(Glibc)
    import Glibc
#endif

extension BTFGen {
    /// `btfgen bundle`: one file covering every catalog kernel for a set of BPF objects.
    struct BundleCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bundle",
            abstract: "Package minimized BTF for every catalog kernel into one verifiable file.",
            discussion: """
                Each selected kernel's BTF is minimized for the objects (as `btfgen minimize` does) \
                and stored once however many kernels share it. The manifest maps each kernel \
                (release, distro, version, arch, full build-id) to its blob and records the blobs' \
                sha256 and its own, checked before anything is used. The same catalog and objects \
                always give a byte-identical bundle. \
                `btfgen attach --bundle FILE` reads it directly; --format oci writes an OCI image \
                layout holding it at /\(Bundle.imagePath).

                One bundle can hold kernels of several architectures: an object applies only to \
                kernels of its architecture (see `btfgen minimize --help`; FILE@ARCH overrides), and \
                the manifest records each object's architecture, `any` for neutral ones. \
                Each kernel's blob is minimized for the objects of its architecture; a kernel none \
                applies to is left out with a notice.
                """)

        enum Format: String, ExpressibleByArgument { case tar, oci }

        @OptionGroup var catalogOptions: CatalogOptions

        @Option(
            name: .customLong("object"),
            help: ArgumentHelp(
                "A BPF object to minimize for, optionally @ARCH (x86_64, arm64, any). Repeatable.",
                valueName: "file[@arch]"))
        var objects: [String] = []

        @Option(
            name: .customLong("select"),
            help: ArgumentHelp(
                "Only kernels whose <distro>/<version>/<arch>/<release> matches this shell pattern, e.g. 'rhel/8/*' or '*/*/x86_64/4.18*'. Repeatable.",
                valueName: "pattern"))
        var selections: [String] = []

        @Option(help: "Oldest libbpf that must parse the blobs: libbpf-1.x (default) or libbpf-0.x.")
        var compat: CompatLevel = .current

        @Option(help: "tar (a .tar.xz file, default) or oci (an OCI image layout directory).")
        var format: Format = .tar

        @Option(
            name: [.short, .customLong("output")],
            help: ArgumentHelp("The bundle file (or OCI layout directory).", valueName: "path"))
        var output: String

        @Flag(help: "Replace an existing output.")
        var force = false

        func validate() throws {
            if objects.isEmpty { throw ValidationError("give at least one --object FILE.bpf.o") }
        }

        func run() throws {
            let catalog = catalogOptions.resolved
            let entries = try reporting { try catalog.entries() }.filter(selected).sorted { $0.path < $1.path }
            if entries.isEmpty {
                warn(
                    selections.isEmpty
                        ? "catalog \(catalog.root.path) has no kernels; add some with `btfgen build` or `btfgen catalog import`"
                        : "no catalog kernel matches \(selections.joined(separator: " or ")); see `btfgen list`")
                throw ExitCode.failure
            }
            if FileManager.default.fileExists(atPath: output) {
                guard force else {
                    warn("\(output) already exists; remove it or pass --force")
                    throw ExitCode.failure
                }
            }
            let loaded = try reporting { try objects.map(BPFObjectFile.init(argument:)) }
            for o in loaded where o.object.coreRelocations.isEmpty {
                warn("\(o.path) has no CO-RE relocations; it adds nothing to the bundle")
            }
            let plan = try reporting {
                try MinimizePlan(
                    jobs: entries.map { MinimizeJob(label: $0.path, input: "", output: "", entry: ($0, catalog)) },
                    objects: loaded)
            }
            for s in plan.skipped { warn("leaving out \(s.job.label): \(s.reason)") }
            if plan.work.isEmpty {
                warn("no selected kernel has an object of its architecture; nothing to bundle")
                throw ExitCode.failure
            }
            let kept = plan.work.map { $0.job.entry!.0 }
            // In name order, a fleet's blobs line up for xz (NameOrder.swift); the types, and so every
            // relocation, are the ones `btfgen minimize` and bpftool give.
            let minimized = try reporting {
                try KernelMinimizer.minimize(
                    plan.work.map { ($0.job.entry!.0, $0.objects.map(\.object)) }, in: catalog, compat: compat
                ).map { try BTF(decoding: $0).inNameOrder().encoded() }
            }
            // Identical objects given twice (the same neutral program built per architecture) are one record.
            let records = Array(
                Set(
                    loaded.map {
                        BundleObject(
                            name: URL(fileURLWithPath: $0.path).lastPathComponent, sha256: $0.sha256,
                            arch: $0.arch ?? BundleObject.anyArch)
                    }))
            // For OCI the bundle is an intermediate file; its name must differ from the layout's temporary directory.
            let bundlePath = format == .tar ? output : temporarySibling(of: output + ".bundle.tar.xz")
            defer { if format == .oci { unlink(bundlePath) } }
            let manifest = try reporting {
                if format == .tar && force { try? FileManager.default.removeItem(atPath: output) }
                return try Bundle.write(
                    to: bundlePath, kernels: Array(zip(kept, minimized)), objects: records,
                    compat: compat.rawValue, btfgenVersion: BTFGenVersion.string)
            }
            if format == .oci {
                try reporting {
                    if force { try? FileManager.default.removeItem(atPath: output) }
                    try OCILayout.write(bundle: bundlePath, manifest: manifest, to: output)
                }
            }
            var st = stat()
            let size = lstat(bundlePath, &st) == 0 ? Int(st.st_size) : 0
            let blobBytes = manifest.blobs.values.reduce(0, +)
            print(
                "\(output): \(manifest.kernels.count) kernel\(manifest.kernels.count == 1 ? "" : "s"), "
                    + "\(manifest.blobs.count) distinct BTF blob\(manifest.blobs.count == 1 ? "" : "s") (\(formatBytes(blobBytes)) uncompressed), "
                    + "bundle \(formatBytes(size)), compat \(compat.rawValue)")
        }

        func selected(_ entry: CatalogEntry) -> Bool {
            if selections.isEmpty { return true }
            let id = entry.identity
            let key = "\(id.distro)/\(id.distroVersion)/\(id.arch)/\(id.release)"
            return selections.contains { fnmatch($0, key, 0) == 0 }
        }
    }
}
