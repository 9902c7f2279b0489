import ArgumentParser
import BTF
import Catalog
import FoundationEssentials
import Kernel
import Minimize
import SystemSupport

extension CompatLevel: ExpressibleByArgument {}

extension BTFGen {
    /// `btfgen minimize`: per kernel, the minimal BTF for a set of BPF objects.
    struct Minimize: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "minimize",
            abstract: "Cut kernel BTF down to what a set of BPF objects needs for CO-RE.",
            discussion: """
                For every kernel (each catalog entry, or each --btf file), keep only the types and \
                members the objects' CO-RE relocations touch, like `bpftool gen min_core_btf`, in \
                one run. Catalog output mirrors the catalog: <out>/<distro>/<version>/<arch>/<release>.btf; \
                --btf output is <out>/<file name without .btf>.btf. Pass the result to libbpf as \
                btf_custom_path.

                An object applies only to kernels of its architecture: the one whose registers its \
                CO-RE relocations read (pt_regs.si is x86_64's, pt_regs.orig_x0 and user_pt_regs.regs \
                arm64's); one that reads none applies to every kernel. FILE@ARCH (e.g. \
                unlinkat.bpf.o@arm64, or @any) says it instead. Each kernel is minimized for the \
                objects of its architecture; a kernel none applies to is skipped with a notice.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Option(
            name: .customLong("object"),
            help: ArgumentHelp(
                "A BPF object (clang -target bpf -g), optionally @ARCH (x86_64, arm64, any). Repeat for several.",
                valueName: "file[@arch]"))
        var objects: [String] = []

        @Option(
            name: .customLong("btf"),
            help: ArgumentHelp(
                "Minimize this kernel BTF (raw or ELF with .BTF) instead of the catalog. Repeatable.", valueName: "file"
            ))
        var btfFiles: [String] = []

        @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Output directory.", valueName: "dir"))
        var output: String

        @Option(
            help:
                "Oldest libbpf that must parse the output: libbpf-1.x (default) or libbpf-0.x (rewrites FLOAT, DECL_TAG, TYPE_TAG, ENUM64)."
        )
        var compat: CompatLevel = .current

        @Flag(help: "Print one JSON object per kernel instead of text.")
        var json = false

        func validate() throws {
            if objects.isEmpty { throw ValidationError("give at least one --object FILE.bpf.o") }
            if !btfFiles.isEmpty && catalogOptions.catalog != nil {
                throw ValidationError("give either --catalog or --btf, not both")
            }
        }

        func run() throws {
            let parsed = try reporting { try objects.map { try BPFObjectFile(argument: $0) } }
            for o in parsed where o.object.coreRelocations.isEmpty {
                warn("\(o.path) has no CO-RE relocations; it adds nothing to the output")
            }
            var jobs: [MinimizeJob]
            if btfFiles.isEmpty {
                let catalog = catalogOptions.resolved
                let entries = try reporting { try catalog.entries() }
                if entries.isEmpty {
                    warn(
                        "catalog \(catalog.root.path) has no kernels; add some with `btfgen build`, or pass --btf FILE")
                    throw ExitCode.failure
                }
                jobs = MinimizeJob.forCatalog(catalog, entries: entries, outputRoot: output)
            } else {
                jobs = try reporting { try MinimizeJob.forFiles(btfFiles, outputRoot: output) }
            }
            // A catalog file changed since btfgen wrote it is refused before anything is written.
            try reporting { try KernelMinimizer.verify(jobs) }
            // A --btf file's architecture is what its registers say; it matters only when an object's does.
            if parsed.contains(where: { $0.arch != nil }) {
                jobs = try reporting { try KernelMinimizer.identifyArchitectures(jobs) }
            }
            let plan = try reporting { try MinimizePlan(jobs: jobs, objects: parsed) }
            for s in plan.skipped { warn("skipping \(s.job.label) (\(s.job.arch ?? "?")): \(s.reason)") }
            // Before any work: a file, a read-only or a foreign directory is named as such.
            try reporting { try prepareOutput(self.output, option: "-o") }
            let compat = self.compat
            let results = try reporting {
                do { return try KernelMinimizer.run(plan, compat: compat) } catch {
                    throw outputFailure(error, path: self.output, option: "-o") ?? error
                }
            }
            for r in results {
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(r), as: UTF8.self))
                } else {
                    print(
                        "\(r.output): \(r.types) types, \(r.outputBytes) B (from \(formatBytes(r.inputBytes)))"
                            + (r.unresolved > 0
                                ? ", \(r.unresolved) of \(r.relocations) relocations match nothing" : ""))
                }
            }
        }
    }
}

/// A command failure with its context already in the text.
struct InputFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
