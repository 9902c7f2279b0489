// Per kernel, the BTF a set of BPF objects needs for CO-RE: `btfgen minimize` writes one file per
// kernel, `btfgen bundle` keeps the bytes in memory. Each kernel is independent work, done on all
// cores; a catalog entry is used only while its file still has the sha256 its index records.
//
// An object applies only to kernels of its architecture (BTF's `Architectures`: what its CO-RE
// relocations read, or FILE@ARCH), a neutral one to all: each kernel is minimized for the objects
// that apply to it, a kernel none applies to is skipped (and said so), and an object that applies
// to none of the kernels is refused before any work.
import BTF
import Catalog
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Why a kernel could not be minimized, with the file that was wrong in the text.
public enum MinimizeError: Error, Equatable, CustomStringConvertible {
    /// A BPF object that does not parse.
    case object(path: String, reason: String)
    /// A kernel input that cannot be opened or is not BTF.
    case input(path: String, reason: String)
    /// A kernel input that cannot be read at all (missing, a directory, no permission).
    case inputAccess(FileAccessError)
    /// The objects' relocations cannot be resolved against this kernel.
    case resolution(input: String, reason: String)
    /// A type record of the kernel's BTF, located but first decoded during the work, is corrupt.
    case corruptRecord(input: String, BTFError)
    /// Two inputs would be written to the same output file.
    case outputCollision(name: String)
    /// An architecture-specific object, and not one kernel of its architecture among the inputs.
    case noKernelOfArch(object: String, arch: String, reason: String, kernelArches: [String])
    /// A --btf input whose architecture its BTF does not show, with architecture-specific objects.
    case unknownKernelArch(input: String)

    public var description: String {
        switch self {
        case .object(let path, let reason), .input(let path, let reason): return "\(path): \(reason)"
        case .inputAccess(let e): return e.description
        case .resolution(let input, let reason): return "against \(input): \(reason)"
        case .corruptRecord(let input, let e):
            return "\(input): \(e); its BTF is damaged: rebuild or re-fetch it"
        case .outputCollision(let name):
            return "two --btf inputs are both named \(name); rename one so their outputs do not collide"
        case .noKernelOfArch(let object, let arch, let reason, let kernelArches):
            return
                "\(object) is for \(arch) kernels (\(reason)) but the kernels are \(kernelArches.isEmpty ? "none" : kernelArches.joined(separator: ", ")); add \(arch) kernels, drop it, or name its architecture with \(object)@ARCH"
        case .unknownKernelArch(let input):
            return
                "\(input) defines no struct pt_regs, so its architecture is unknown and the architecture-specific objects cannot be matched to it; pass a full kernel BTF"
        }
    }
}

/// A BPF object read from disk, with its digest (bundle manifests record it) and the
/// architecture of the kernels it applies to.
public struct BPFObjectFile: Sendable {
    public let path: String
    public let object: BPFObject
    public let sha256: String
    /// BTFHub's name of the kernels' architecture it applies to; nil: every kernel.
    public let arch: String?
    /// Why `arch`, for messages (`reads pt_regs.orig_x0`, `given as FILE@arm64`).
    public let archReason: String

    /// Read and parse the object at `path`; an unreadable file is a `FileAccessError`, one that
    /// does not parse (or speaks for two architectures) a `MinimizeError.object`. `declaredArch`
    /// (FILE@ARCH: a BTFHub name, or nil for every kernel) replaces what its BTF shows.
    public init(path: String, declaredArch: String?? = nil) throws {
        let file = try MappedFile(path: path)
        self.path = path
        do {
            (object, sha256) = try file.withBytes { bytes in (try BPFObject(bytes: bytes), SHA256.hex(bytes)) }
        } catch { throw MinimizeError.object(path: path, reason: "\(error)") }
        if let declared = declaredArch {
            arch = declared
            archReason = "given as \(path)@\(declared ?? "any")"
        } else {
            do throws(ArchitectureConflict) {
                let evidence = try Architectures.of(object)
                arch = evidence?.arch
                archReason = evidence?.reason ?? "reads nothing architecture-specific"
            } catch { throw MinimizeError.object(path: path, reason: error.description) }
        }
    }

    /// Whether a kernel of `kernelArch` uses this object.
    public func applies(to kernelArch: String) -> Bool { arch == nil || arch == kernelArch }
}

/// One kernel's minimized BTF, in memory.
public struct MinimizedBTF: Sendable {
    public let bytes: [UInt8]
    /// Size of the kernel input it came from.
    public let inputBytes: Int
    public let types: Int
    public let relocations: Int
    /// Relocations that match nothing in this kernel (a local type id never does, and is not counted).
    public let unresolved: Int
}

/// One kernel to minimize into one output file.
public struct MinimizeJob: Sendable {
    /// How results name the kernel: its release, or the input path.
    public let label: String
    public let input: String
    public let output: String
    /// A catalog input, whose file must still have the sha256 its index records.
    public var entry: (CatalogEntry, Catalog)? = nil
    /// The kernel's architecture: the catalog entry's; for a BTF file what its BTF shows
    /// (`KernelMinimizer.identifyArchitectures`), nil until then or when it shows none.
    public var arch: String?

    public init(
        label: String, input: String, output: String, entry: (CatalogEntry, Catalog)? = nil, arch: String? = nil
    ) {
        self.label = label
        self.input = input
        self.output = output
        self.entry = entry
        self.arch = arch ?? entry?.0.identity.arch
    }

    /// Every catalog entry, written to `<outputRoot>/<the entry's catalog path>`.
    public static func forCatalog(_ catalog: Catalog, entries: [CatalogEntry], outputRoot: String) -> [MinimizeJob] {
        let root = URL(fileURLWithPath: outputRoot)
        return entries.map {
            MinimizeJob(
                label: $0.identity.release, input: catalog.url(of: $0).path,
                output: root.appendingPathComponent($0.path).path, entry: ($0, catalog))
        }
    }

    /// BTF files, each written to `<outputRoot>/<its name without .btf>.btf`; two inputs with the
    /// same name are refused before any work.
    public static func forFiles(_ files: [String], outputRoot: String) throws(MinimizeError) -> [MinimizeJob] {
        let root = URL(fileURLWithPath: outputRoot)
        var seen = Set<String>()
        var jobs: [MinimizeJob] = []
        for f in files {
            var name = URL(fileURLWithPath: f).lastPathComponent
            if name.hasSuffix(".btf") { name.removeLast(4) }
            if name.isEmpty || name == "." { name = "btf" }
            guard seen.insert(name).inserted else { throw .outputCollision(name: name) }
            jobs.append(MinimizeJob(label: f, input: f, output: root.appendingPathComponent(name + ".btf").path))
        }
        return jobs
    }
}

/// Which objects each kernel is minimized for.
public struct MinimizePlan: Sendable {
    /// Each kernel with the objects that apply to it (at least one).
    public var work: [(job: MinimizeJob, objects: [BPFObjectFile])]
    /// Kernels no object applies to, with why.
    public var skipped: [(job: MinimizeJob, reason: String)]

    /// Match objects to kernels by architecture. Refuses an architecture-specific object that
    /// applies to no kernel, and a kernel of unknown architecture when any object is specific.
    public init(jobs: [MinimizeJob], objects: [BPFObjectFile]) throws(MinimizeError) {
        let specific = objects.filter { $0.arch != nil }
        if !specific.isEmpty, let unknown = jobs.first(where: { $0.arch == nil }) {
            throw .unknownKernelArch(input: unknown.input)
        }
        let arches = Set(jobs.compactMap(\.arch))
        for o in specific where !arches.contains(o.arch!) {
            throw .noKernelOfArch(object: o.path, arch: o.arch!, reason: o.archReason, kernelArches: arches.sorted())
        }
        work = []
        skipped = []
        for job in jobs {
            let applicable = job.arch.map { a in objects.filter { $0.applies(to: a) } } ?? objects
            if applicable.isEmpty {
                skipped.append((job, "no object applies to \(job.arch ?? "its") kernels"))
            } else {
                work.append((job, applicable))
            }
        }
    }
}

/// What one job wrote (`btfgen minimize --json` prints it as is).
public struct MinimizeOutcome: Encodable, Sendable {
    public let kernel: String
    public let input: String
    public let output: String
    public let inputBytes: Int
    public let outputBytes: Int
    public let types: Int
    public let relocations: Int
    public let unresolved: Int
    /// The kernel's architecture, when known.
    public let arch: String?
    /// The objects it was minimized for (their paths).
    public let objects: [String]
}

/// Minimizes kernels' BTF for a set of objects.
public enum KernelMinimizer {
    /// Every job, on all cores, each written to its output; results in job order.
    public static func run(_ jobs: [MinimizeJob], objects: [BPFObject], compat: CompatLevel) throws
        -> [MinimizeOutcome]
    {
        try jobs.concurrentMap { try run($0, objects: objects, paths: [], compat: compat) }
    }

    /// Every kernel of a plan, on all cores, each minimized for its own objects; results in plan order.
    public static func run(_ plan: MinimizePlan, compat: CompatLevel) throws -> [MinimizeOutcome] {
        try plan.work.concurrentMap {
            try run($0.job, objects: $0.objects.map(\.object), paths: $0.objects.map(\.path), compat: compat)
        }
    }

    /// Fill in the architecture of the jobs that lack one (BTF files) from their BTF's register
    /// structures, on all cores.
    public static func identifyArchitectures(_ jobs: [MinimizeJob]) throws -> [MinimizeJob] {
        let registers = NamePrefilter(
            kinds: 1 << UInt32(KindCode.structure.rawValue),
            firstBytes: Set(Architectures.registerMembers.flatMap { $0.structures.keys }.compactMap(\.utf8.first)))
        return try jobs.concurrentMap { job in
            guard job.arch == nil else { return job }
            var known = job
            known.arch = Architectures.ofKernel(try index(job.input, prefilter: registers).0)?.arch
            return known
        }
    }

    /// Check every catalog input against its index digest, on all cores (each file is hashed
    /// once per process, so `run` does not hash it again).
    public static func verify(_ jobs: [MinimizeJob]) throws {
        _ = try jobs.concurrentMap { job in
            if let (entry, catalog) = job.entry { try catalog.verify(entry) }
        }
    }

    /// Catalog entries, on all cores, in memory. Each entry's file is checked against its index
    /// digest first: a changed file is refused.
    public static func minimize(
        _ entries: [CatalogEntry], in catalog: Catalog, objects: [BPFObject], compat: CompatLevel
    ) throws -> [[UInt8]] {
        try minimize(entries.map { ($0, objects) }, in: catalog, compat: compat)
    }

    /// Catalog entries, each with its own objects, on all cores, in memory; verified like `minimize`.
    public static func minimize(
        _ work: [(entry: CatalogEntry, objects: [BPFObject])], in catalog: Catalog, compat: CompatLevel
    ) throws -> [[UInt8]] {
        try work.concurrentMap { item in
            try catalog.verify(item.entry)
            return try minimize(
                catalog.url(of: item.entry).path, objects: item.objects, compat: compat, entry: (item.entry, catalog)
            ).bytes
        }
    }

    /// One job: verified (catalog inputs), minimized, written.
    static func run(_ job: MinimizeJob, objects: [BPFObject], paths: [String], compat: CompatLevel) throws
        -> MinimizeOutcome
    {
        if let (entry, catalog) = job.entry { try catalog.verify(entry) }
        let m = try minimize(job.input, objects: objects, compat: compat, entry: job.entry)
        let url = URL(fileURLWithPath: job.output)
        if !holds(job.output, m.bytes) {
            try makeDirectories(url.deletingLastPathComponent().path)
            // No fsync: these outputs are derived and cheap to regenerate.
            try replaceFile(at: url, with: Data(m.bytes), sync: false)
        }
        return MinimizeOutcome(
            kernel: job.label, input: job.input, output: job.output, inputBytes: m.inputBytes,
            outputBytes: m.bytes.count, types: m.types, relocations: m.relocations, unresolved: m.unresolved,
            arch: job.arch, objects: paths)
    }

    /// Whether `path` is a regular file holding exactly `bytes`. Such an output is left as it is:
    /// a re-run that changes nothing rewrites nothing, so its time stays what it was (a make-style
    /// pipeline sees no change) and a fleet's unchanged kernels cost no writes.
    static func holds(_ path: String, _ bytes: [UInt8]) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int(st.st_size) == bytes.count,
            let existing = try? readWholeFile(path)
        else { return false }
        return existing == bytes
    }

    /// The kernel BTF at `input` (raw BTF, or an ELF with .BTF such as a vmlinux) cut down to
    /// what `objects` need.
    /// A catalog input (`entry`, already verified) is read through its type index file, which is
    /// written on first use when the catalog can be written.
    public static func minimize(
        _ input: String, objects: [BPFObject], compat: CompatLevel, entry: (CatalogEntry, Catalog)? = nil
    ) throws -> MinimizedBTF {
        _ = mallocTuned
        var prefilter = NamePrefilter(coreCandidatesOf: objects)
        var located: TypeIndexFile? = nil
        if let (e, catalog) = entry, TypeIndexFile.fullPrefilter.covers(prefilter) {
            located = catalog.typeIndex(of: e).flatMap { $0.covers(prefilter) ? $0 : nil }
            // Without one, collect what the file lists on the way, to write it after.
            if located == nil { prefilter = TypeIndexFile.fullPrefilter }
        }
        let (full, inputBytes) = try index(input, prefilter: prefilter, located: located)
        // Scanned (no file, or one that did not fit): the catalog gets the file now.
        if let (e, catalog) = entry, !full.locatedByFile { catalog.storeTypeIndex(of: e, from: full) }
        var minimizer = Minimizer(target: full)
        minimizer.prepareCandidates(for: objects)  // one pass over the kernel's names for all objects
        var relocations = 0, unresolved = 0
        do {
            for o in objects {
                let results = try minimizer.record(o)
                relocations += results.count
                unresolved += results.filter { $0.targetSpec == nil && $0.kind != .typeIDLocal }.count
            }
        } catch {
            // A record that failed to decode is the cause of whatever the resolver made of it.
            if let damage = full.decodingFailure { throw MinimizeError.corruptRecord(input: input, damage) }
            throw MinimizeError.resolution(input: input, reason: "\(error)")
        }
        // The index checks a record only when it is decoded: a damaged candidate looks like no
        // match at all, and the output would silently lack it.
        if let damage = full.decodingFailure { throw MinimizeError.corruptRecord(input: input, damage) }
        let small = minimizer.minimized().compatible(with: compat)
        return MinimizedBTF(
            bytes: small.encoded(), inputBytes: inputBytes, types: small.types.count,
            relocations: relocations, unresolved: unresolved)
    }

    /// The input's records located, not validated: a full validation of all ~100k types would
    /// cost more than the rest of the work for this kernel, so records are checked as CO-RE
    /// decodes them. The index collects the types that can be CO-RE candidates on the way. The
    /// file is mapped and read in place; sysfs files refuse mmap: then it is raw BTF, read whole.
    static func index(_ input: String, prefilter: NamePrefilter, located: TypeIndexFile? = nil) throws(MinimizeError)
        -> (BTFIndex, Int)
    {
        do {
            if let mapped = try BTFIndex.mapping(input, validate: false, prefilter: prefilter, located: located) {
                return (mapped.index, mapped.fileSize)
            }
            let bytes = try readWholeFile(input)
            return (try BTFIndex(bytes, validate: false, prefilter: prefilter), bytes.count)
        } catch let e as FileAccessError {
            throw .inputAccess(e)
        } catch {
            throw .input(path: input, reason: "\(error)")
        }
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
}
