import ArgumentParser
import BTF
import Catalog
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

extension CompatLevel: ExpressibleByArgument {}

extension BTFGen {
    /// `btfgen minimize`: per kernel, the minimal BTF for a set of BPF objects.
    struct Minimize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut kernel BTF down to what a set of BPF objects needs for CO-RE.",
            discussion: """
                For every kernel (each catalog entry, or each --btf file), keep only the types and \
                members the objects' CO-RE relocations touch, like `bpftool gen min_core_btf`, in \
                one run. Catalog output mirrors the catalog: <out>/<distro>/<version>/<arch>/<release>.btf; \
                --btf output is <out>/<file name without .btf>.btf. Pass the result to libbpf as \
                btf_custom_path.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Option(
            name: .customLong("object"),
            help: ArgumentHelp("A BPF object (clang -target bpf -g). Repeat for several.", valueName: "file"))
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

        struct Job {
            let label: String
            let input: String
            let output: String
            /// A catalog input, whose file must still have the sha256 its index records.
            var entry: (CatalogEntry, Catalog)? = nil
        }

        struct Outcome: Encodable {
            let kernel: String
            let input: String
            let output: String
            let inputBytes: Int
            let outputBytes: Int
            let types: Int
            let relocations: Int
            let unresolved: Int
        }

        func run() throws {
            let objectFiles = try reporting { try objects.map { try MappedFile(path: $0) } }
            let parsed = try reporting {
                try objectFiles.map { f -> BPFObject in
                    do { return try BPFObject(bytes: f.bytes) } catch { throw InputFailure("\(f.path): \(error)") }
                }
            }
            for (o, file) in zip(parsed, objectFiles) where o.coreRelocations.isEmpty {
                warn("\(file.path) has no CO-RE relocations; it adds nothing to the output")
            }
            let outRoot = URL(fileURLWithPath: output)
            var jobs: [Job] = []
            if btfFiles.isEmpty {
                let catalog = catalogOptions.resolved
                let entries = try reporting { try catalog.entries() }
                if entries.isEmpty {
                    warn(
                        "catalog \(catalog.root.path) has no kernels; add some with `btfgen build`, or pass --btf FILE")
                    throw ExitCode.failure
                }
                // Every file against its index digest first (on all cores): a changed one is refused
                // before anything is written.
                _ = try reporting { try entries.concurrentMap { try catalog.verify($0) } }
                jobs = entries.map {
                    Job(
                        label: $0.identity.release, input: catalog.url(of: $0).path,
                        output: outRoot.appendingPathComponent($0.path).path, entry: ($0, catalog))
                }
            } else {
                var seen = Set<String>()
                for f in btfFiles {
                    var name = URL(fileURLWithPath: f).lastPathComponent
                    if name.hasSuffix(".btf") { name.removeLast(4) }
                    if name.isEmpty || name == "." { name = "btf" }
                    guard seen.insert(name).inserted else {
                        warn("two --btf inputs are both named \(name); rename one so their outputs do not collide")
                        throw ExitCode.failure
                    }
                    jobs.append(Job(label: f, input: f, output: outRoot.appendingPathComponent(name + ".btf").path))
                }
            }
            // Before any work: a file, a read-only or a foreign directory is named as such.
            try reporting { try prepareOutput(self.output, option: "-o") }
            let compat = self.compat
            let results = try reporting {
                do { return try MinimizeRun.run(jobs, objects: parsed, compat: compat) } catch {
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

/// A minimize failure with its context already in the text.
struct InputFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs the per-kernel work on all cores; each kernel is independent.
enum MinimizeRun {
    static func run(_ jobs: [BTFGen.Minimize.Job], objects: [BPFObject], compat: CompatLevel) throws
        -> [BTFGen.Minimize.Outcome]
    {
        try jobs.concurrentMap { try one($0, objects: objects, compat: compat) }
    }

    /// One kernel's minimized BTF, in memory (`btfgen bundle` uses this directly).
    struct Minimized {
        let bytes: [UInt8]
        let inputBytes: Int
        let types: Int
        let relocations: Int
        let unresolved: Int
    }

    /// Keep freed memory for the next kernel instead of returning it to the system: each kernel
    /// allocates a few MB of indexes, and fresh pages (faulted in and zeroed by the kernel) cost
    /// more than the work done in them.
    private static let mallocTuned: Void = {
        #if canImport(Glibc)
            // glibc's mallopt (not exported by the Glibc module); M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3.
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "mallopt") else { return }
            let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
            _ = mallopt(-3, 32 << 20)
            _ = mallopt(-1, 1 << 30)
        #endif
    }()

    static func minimize(_ input: String, objects: [BPFObject], compat: CompatLevel) throws -> Minimized {
        _ = mallocTuned
        let full: BTFIndex
        let inputBytes: Int
        // The index collects the types that can be CO-RE candidates while it locates records.
        let prefilter = NamePrefilter(coreCandidatesOf: objects)
        do {
            // Records are located here and checked as CO-RE decodes them; a full validation of
            // all ~100k types would cost more than the rest of the work for this kernel.
            // The file is mapped and read in place; sysfs files refuse mmap: then it is raw
            // BTF, read whole.
            if let mapped = try BTFIndex.mapping(input, validate: false, prefilter: prefilter) {
                inputBytes = mapped.fileSize
                full = mapped.index
            } else {
                let bytes = try readWholeFile(input)
                inputBytes = bytes.count
                full = try BTFIndex(bytes, validate: false, prefilter: prefilter)
            }
        } catch let e as FileAccessError { throw InputFailure(e.description) } catch {
            throw InputFailure("\(input): \(error)")
        }
        var minimizer = Minimizer(target: full)
        minimizer.prepareCandidates(for: objects)  // one pass over the kernel's names for all objects
        var relocations = 0, unresolved = 0
        for o in objects {
            let results: [CoreRelocationResult]
            do { results = try minimizer.record(o) } catch { throw InputFailure("against \(input): \(error)") }
            relocations += results.count
            unresolved += results.filter { $0.targetSpec == nil && $0.kind != .typeIDLocal }.count
        }
        let small = minimizer.minimized().compatible(with: compat)
        return Minimized(bytes: small.encoded(), inputBytes: inputBytes, types: small.types.count,
                         relocations: relocations, unresolved: unresolved)
    }

    static func one(_ job: BTFGen.Minimize.Job, objects: [BPFObject], compat: CompatLevel) throws
        -> BTFGen.Minimize.Outcome
    {
        if let (entry, catalog) = job.entry { try catalog.verify(entry) }
        let m = try minimize(job.input, objects: objects, compat: compat)
        let out = m.bytes
        let url = URL(fileURLWithPath: job.output)
        try makeDirectories(url.deletingLastPathComponent().path)
        // No fsync: these outputs are derived and cheap to regenerate.
        try replaceFile(at: url, with: Data(out), sync: false)
        return .init(
            kernel: job.label, input: job.input, output: job.output, inputBytes: m.inputBytes,
            outputBytes: out.count, types: m.types, relocations: m.relocations,
            unresolved: m.unresolved)
    }
}
