// One input → one validated catalog entry:
//   ingest (unpack if packaged) → identify (banner, build-id, arch) → skip if already catalogued
//   → pahole -j [→ llvm-objcopy → strip] → keep each function's first definition, rewrite in
//   canonical order (so the bytes depend only on the kernel) → validate with libbpf (parses, sane,
//   has task_struct; matches the image's native .BTF when it has one) → insert atomically into
//   the catalog (a forced rebuild with the same sha256 changes nothing).
import BTF
import Catalog
import Dispatch
import ELF
import FoundationEssentials
import Ingest
import Kernel
import Loader
import Synchronization
import SystemSupport
import Toolchain

#if canImport(Glibc)
    import Glibc
#endif

/// Why a build did not produce an entry.
public enum BuildError: Error, Equatable {
    case ingest(IngestError)
    case image(KernelImageError)
    case tool(ToolError)
    case catalog(CatalogError)
    case invalidBTF(input: String, reason: String)
    case nativeMismatch(input: String, detail: String)
    case noSpace(path: String)
}

extension BuildError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .ingest(let e): return e.description
        case .image(let e): return e.description
        case .tool(let e): return e.description
        case .catalog(let e): return e.description
        case .invalidBTF(let input, let reason):
            return
                "BTF generated from \(input) is unusable: \(reason); nothing was stored (check that the input is the kernel's debuginfo vmlinux and that pahole supports its DWARF version)"
        case .nativeMismatch(let input, let detail):
            return
                "BTF generated from \(input) disagrees with the image's own .BTF: \(detail); nothing was stored (try a newer pahole)"
        case .noSpace(let path):
            return
                "no space left on the device holding \(path); free some space and run the command again (nothing was stored)"
        }
    }
}

/// Choices for one build.
public struct BuildOptions: Sendable {
    public var method: BuildMethod?
    /// Use pahole's parallel encoder (`-j`, one thread per core). Its output varies from run to
    /// run in two ways, both undone before anything is stored: the type order (canonical order
    /// removes it) and, in pahole 1.24, extra copies of functions defined in several compilation
    /// units (95,016 to 95,079 types over three runs of one Debian 6.1 image, against 94,762
    /// single-threaded; the copy from the first unit is kept, as the single-threaded encoder
    /// does). The result is byte-identical to the single-threaded build's.
    public var parallel: Bool = true
    public var force: Bool = false
    public var distro: String?
    public var distroVersion: String?
    /// Recorded in each entry's build record.
    public var btfgenVersion: String = "unknown"
    public init() {}
}

/// How the generated BTF compares with the image's own .BTF section.
public struct NativeComparison: Sendable, Equatable {
    public let nativeTypes: Int
    public let generatedTypes: Int
    public let taskStructSize: UInt32
    public let taskStructMembers: Int
}

/// What a build did.
public struct BuildResult: Sendable {
    /// `identical`: a forced rebuild produced the catalogued bytes again; nothing was rewritten.
    public enum Outcome: String, Sendable { case added, replaced, unchanged, identical }
    public let input: String
    public let outcome: Outcome
    public let entry: CatalogEntry
    public let native: NativeComparison?
    public let seconds: Double
    /// Where the time went (all zero when the build-id was already catalogued).
    public var timings = BuildTimings()
}

/// Seconds spent in each part of a build: what the external tools cost against btfgen's own work.
public struct BuildTimings: Sendable, Equatable, Codable {
    /// Unpacking and identifying the input (reading the vmlinux).
    public var ingest = 0.0
    /// pahole (and, for the objcopy method, llvm-objcopy and strip).
    public var encode = 0.0
    /// Decoding pahole's BTF, rewriting it in canonical order, writing it out (includes `functions`).
    public var canonicalize = 0.0
    /// Of that, reading the DWARF for the first definition of functions pahole -j wrote twice.
    public var functions = 0.0
    /// libbpf's parse and the sanity checks.
    public var validate = 0.0
    /// Comparing with the image's own .BTF.
    public var native = 0.0
    /// sha256 and the catalog insert.
    public var store = 0.0

    public init() {}

    /// Everything but the external tools.
    public var own: Double { ingest + canonicalize + validate + native + store }
}

/// Pipeline stages, reported as they start.
public enum BuildStage: String, Sendable {
    case unpacking, identifying, encoding, canonicalizing, validating, storing
}

/// Builds catalog entries from debuginfo kernels.
public struct KernelBTFBuilder: Sendable {
    public let catalog: Catalog
    public let tools: Toolchain
    public let options: BuildOptions

    /// Fewest types a kernel BTF can have and still hold task_struct and what it points to.
    public static let minimumTypes = 8
    /// More types than any kernel has produced: a sign of a runaway or corrupt encoding.
    public static let maximumTypes = 2_000_000

    public init(catalog: Catalog, tools: Toolchain, options: BuildOptions) {
        self.catalog = catalog
        self.tools = tools
        self.options = options
    }

    public var method: BuildMethod { options.method ?? tools.defaultMethod }

    /// Build one input. `progress` is called as each stage starts.
    public func build(_ input: String, progress: (BuildStage) -> Void = { _ in }) throws(BuildError) -> BuildResult {
        let started = Date()
        var timings = BuildTimings()
        var lapStart = started
        func lap() -> Double {
            let now = Date()
            defer { lapStart = now }
            return now.timeIntervalSince(lapStart)
        }
        do { try catalog.prepare() } catch let e as CatalogError { throw .catalog(e) } catch {
            throw .catalog(.ioFailure(path: catalog.root.path, operation: "preparing", errno: EIO))
        }
        var scratchFiles: [String] = []
        defer { for f in scratchFiles { unlink(f) } }

        progress(.unpacking)
        let prepared: PreparedInput
        do { prepared = try Ingest.prepare(path: input, scratchDirectory: catalog.scratchURL) } catch {
            if case .noSpace = error { throw .noSpace(path: catalog.root.path) }
            throw .ingest(error)
        }
        if prepared.isPrivate { scratchFiles.append(prepared.vmlinux) }

        progress(.identifying)
        let info: KernelImageInfo
        do {
            let mapped = try MappedFile(path: prepared.vmlinux)
            info = try KernelImageInfo.read(mapped)
        } catch let e as KernelImageError {
            throw .image(
                Self.renamed(
                    e, to: prepared.isPrivate ? "\(input) (\(prepared.package?.member ?? "unpacked vmlinux"))" : input))
        } catch let e as FileAccessError {
            throw .ingest(.file(e))
        } catch {
            throw .invalidBTF(input: input, reason: "\(error)")
        }
        let release = info.release!
        let banner = info.banner.map(Banner.init)
        let inferred = DistroInference.infer(
            release: release, utsVersion: banner?.utsVersion,
            packageMaintainer: prepared.package?.maintainer,
            packageVersion: prepared.package?.version,
            container: prepared.container)
        let identity = KernelIdentity(
            release: release, arch: info.arch, buildID: info.buildID,
            distro: options.distro ?? inferred.0,
            distroVersion: options.distroVersion ?? inferred.1,
            compiler: info.compiler, banner: info.banner)
        if !options.force, let id = info.buildID {
            let existing: CatalogEntry?
            do { existing = try catalog.entry(buildID: id) } catch let e as CatalogError { throw .catalog(e) } catch {
                throw .catalog(.unreadableIndex(path: catalog.indexURL.path, reason: "\(error)"))
            }
            if let existing {
                return BuildResult(
                    input: input, outcome: .unchanged, entry: existing, native: nil,
                    seconds: Date().timeIntervalSince(started))
            }
        }

        timings.ingest = lap()
        var flags = tools.paholeFlags(parallel: options.parallel)
        let encoded = catalog.scratchFile("encoded").path
        let rawBTF = catalog.scratchFile("raw.btf").path
        let canonicalBTF = catalog.scratchFile("canonical.btf").path
        scratchFiles += [encoded, rawBTF, canonicalBTF]
        var bytes: [UInt8]
        while true {
            progress(.encoding)
            do {
                try BTFPipeline(tools: tools).encode(
                    vmlinux: prepared.vmlinux, method: method, flags: flags,
                    output: encoded, scratch: catalog.scratchFile("vmlinux-copy").path,
                    vmlinuxIsPrivate: prepared.isPrivate)
            } catch let e as ToolError {
                if Self.diskFull(at: catalog.scratchURL.path) { throw .noSpace(path: catalog.root.path) }
                throw .tool(e)
            } catch {
                if Self.diskFull(at: catalog.scratchURL.path) { throw .noSpace(path: catalog.root.path) }
                throw .tool(.launchFailed(tool: "pipeline", reason: describe(error)))
            }
            try extractRawBTF(from: encoded, to: rawBTF, input: input)
            timings.encode += lap()

            progress(.canonicalizing)
            let parallel = flags.contains("-j")
            let result = try canonicalize(
                rawBTF, vmlinux: prepared.vmlinux, to: canonicalBTF, input: input, mayGiveUp: parallel,
                timings: &timings)
            timings.canonicalize += lap()
            if let result {
                bytes = result
                break
            }
            // pahole -j wrote copies of a function that the DWARF does not tell apart: the
            // single-threaded encoder decides which copy it keeps, so let it run instead.
            flags = tools.paholeFlags(parallel: false)
        }

        progress(.validating)
        let generated = try validate(canonicalBTF, input: input)
        timings.validate = lap()
        var native: NativeComparison? = nil
        if info.nativeBTFBytes != nil {
            native = try compareWithNative(
                vmlinux: prepared.vmlinux, generated: generated, input: input,
                scratch: &scratchFiles)
        }
        timings.native = lap()

        progress(.storing)
        let digest = bytes.withUnsafeBytes { SHA256.hex($0) }
        chmod(canonicalBTF, 0o644)
        let record = BuildRecord(
            method: method.rawValue, pahole: tools.pahole.version.description,
            llvmObjcopy: method == .objcopy ? tools.llvmObjcopy?.version.description : nil,
            strip: method == .objcopy ? tools.strip?.version.description : nil,
            paholeFlags: flags, btfgen: options.btfgenVersion)
        let entry = CatalogEntry(
            identity: identity, path: "", sha256: digest, size: bytes.count,
            typeCount: generated.typeCount, build: record,
            source: URL(fileURLWithPath: input).lastPathComponent,
            builtAt: utcTimestamp(started), canonical: true)
        let outcome: Catalog.InsertOutcome
        do {
            outcome = try catalog.insert(btfFile: URL(fileURLWithPath: canonicalBTF), entry: entry, force: options.force)
        } catch let e as CatalogError {
            if case .noSpace = e { throw .noSpace(path: catalog.root.path) }
            throw .catalog(e)
        } catch { throw .catalog(.ioFailure(path: catalog.root.path, operation: "storing into", errno: EIO)) }
        timings.store = lap()
        let seconds = Date().timeIntervalSince(started)
        switch outcome {
        case .added(let e):
            return BuildResult(
                input: input, outcome: .added, entry: e, native: native, seconds: seconds, timings: timings)
        case .replaced(let e):
            return BuildResult(
                input: input, outcome: .replaced, entry: e, native: native, seconds: seconds, timings: timings)
        case .unchanged(let e):
            // Forced: the catalog kept its entry because the bytes matched. Not forced: another
            // build of the same build-id got there first.
            return BuildResult(
                input: input, outcome: options.force ? .identical : .unchanged, entry: e, native: native,
                seconds: seconds, timings: timings)
        }
    }

    /// Rewrite pahole's BTF at `path` in canonical order (types sorted by structure, exact
    /// duplicates merged, a fresh string table) into `output`, so that the bytes depend only on
    /// the kernel's types and never on the order pahole happened to emit them in. Functions pahole
    /// -j wrote more than once keep only the copy from their first compilation unit, as the
    /// single-threaded encoder does; when the DWARF cannot tell which copy that is, returns nil if
    /// `mayGiveUp` (the caller then encodes single-threaded) and keeps every copy otherwise.
    func canonicalize(
        _ path: String, vmlinux: String, to output: String, input: String, mayGiveUp: Bool,
        timings: inout BuildTimings
    ) throws(BuildError) -> [UInt8]? {
        let bytes: [UInt8]
        do {
            var btf = try MappedFile(path: path).withBytes { (raw) throws in try BTF(decoding: raw) }
            let duplicated = btf.duplicatedFunctionNames
            if !duplicated.isEmpty {
                let scan = Date()
                let definitions = try Self.firstDefinitions(of: duplicated, in: vmlinux)
                let kept = btf.keepingFirstDefinitions(definitions)
                timings.functions = Date().timeIntervalSince(scan)
                if !kept.unresolved.isEmpty && mayGiveUp { return nil }
                btf = kept.btf
            }
            bytes = try btf.canonicalized().btf.encoded()
        } catch {
            throw .invalidBTF(input: input, reason: "\(error)")
        }
        do { try writeFileDurably(Data(bytes), to: URL(fileURLWithPath: output)) } catch let e as CatalogError {
            if case .noSpace = e { throw .noSpace(path: catalog.root.path) }
            throw .catalog(e)
        } catch { throw .catalog(.ioFailure(path: output, operation: "writing", errno: EIO)) }
        return bytes
    }

    /// The catalog stores raw BTF; the objcopy method yields an ELF holding a .BTF section.
    func extractRawBTF(from encoded: String, to raw: String, input: String) throws(BuildError) {
        let mapped: MappedFile
        do { mapped = try MappedFile(path: encoded) } catch {
            throw .invalidBTF(input: input, reason: "pahole wrote no output (\(error))")
        }
        defer { withExtendedLifetime(mapped) {} }  // `bytes` points into the mapping
        let bytes = mapped.bytes
        if ELFFile.hasMagic(bytes) {
            do {
                guard let btf = try ELFFile(bytes: bytes).btfData, !btf.isEmpty else {
                    throw BuildError.invalidBTF(input: input, reason: "the encoded ELF has no .BTF section")
                }
                try writeBytes(btf, to: raw)
            } catch let e as BuildError { throw e } catch {
                throw .invalidBTF(input: input, reason: "\(error)")
            }
        } else {
            guard rename(encoded, raw) == 0 else {
                throw .invalidBTF(input: input, reason: "cannot move \(encoded): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Each name's definitions in compilation-unit order, read on every core (pahole is done by
    /// now): one run of units per thread, concatenated in unit order.
    static func firstDefinitions(of names: Set<String>, in vmlinux: String) throws -> [String: [String]] {
        let mapped = try MappedFile(path: vmlinux)
        let shards = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        let parts = Mutex([Result<[String: [String]], any Error>?](repeating: nil, count: shards))
        DispatchQueue.concurrentPerform(iterations: shards) { shard in
            let part = Result {
                try mapped.withBytes { (raw) throws in
                    try DWARFFunctions.definitions(in: ELFFile(bytes: raw), named: names, shard: shard, of: shards)
                }
            }
            parts.withLock { $0[shard] = part }
        }
        var merged: [String: [String]] = [:]
        for part in parts.withLock({ $0 }) {
            for (name, signatures) in try part!.get() { merged[name, default: []] += signatures }
        }
        return merged
    }

    func writeBytes(_ bytes: UnsafeRawBufferPointer, to path: String) throws(BuildError) {
        do { try writeFileDurably(Data(bytes), to: URL(fileURLWithPath: path)) } catch let e as CatalogError {
            if case .noSpace = e { throw .noSpace(path: catalog.root.path) }
            throw .catalog(e)
        } catch { throw .catalog(.ioFailure(path: path, operation: "writing", errno: EIO)) }
    }

    /// libbpf must parse it; the type count must be sane; task_struct must be there with pid and comm.
    func validate(_ path: String, input: String) throws(BuildError) -> (typeCount: Int, taskStruct: LibBPFStruct) {
        let btf: LibBPFBTF
        do { btf = try LibBPFBTF(path: path) } catch { throw .invalidBTF(input: input, reason: "\(error)") }
        let count = btf.typeCount
        guard count >= Self.minimumTypes, count <= Self.maximumTypes else {
            throw .invalidBTF(
                input: input, reason: "\(count) types, outside the sane range \(Self.minimumTypes)…\(Self.maximumTypes)"
            )
        }
        guard let task = btf.structNamed("task_struct") else {
            throw .invalidBTF(input: input, reason: "no struct task_struct among its \(count) types")
        }
        let names = Set(task.members.map(\.name))
        guard task.size > 0, names.contains("pid"), names.contains("comm") else {
            throw .invalidBTF(input: input, reason: "struct task_struct (\(task.size) bytes) lacks pid or comm")
        }
        return (count, task)
    }

    /// The image's own .BTF (written by the kernel build) is ground truth for layout.
    func compareWithNative(
        vmlinux: String, generated: (typeCount: Int, taskStruct: LibBPFStruct), input: String,
        scratch: inout [String]
    ) throws(BuildError) -> NativeComparison {
        let nativePath = catalog.scratchFile("native.btf").path
        scratch.append(nativePath)
        do {
            let mapped = try MappedFile(path: vmlinux)
            try mapped.withBytes { (bytes) throws in
                guard let btf = try ELFFile(bytes: bytes).btfData else {
                    throw BuildError.nativeMismatch(input: input, detail: "the .BTF section vanished")
                }
                try writeBytes(btf, to: nativePath)
            }
        } catch let e as BuildError { throw e } catch {
            throw .nativeMismatch(input: input, detail: "cannot read the image's .BTF: \(error)")
        }
        let native: LibBPFBTF
        do { native = try LibBPFBTF(path: nativePath) } catch {
            throw .nativeMismatch(input: input, detail: "libbpf cannot parse the image's own .BTF (\(error))")
        }
        guard let nativeTask = native.structNamed("task_struct") else {
            throw .nativeMismatch(input: input, detail: "the image's own .BTF has no task_struct")
        }
        let ours = generated.taskStruct
        if nativeTask.size != ours.size {
            throw .nativeMismatch(
                input: input, detail: "task_struct is \(ours.size) bytes, native says \(nativeTask.size)")
        }
        if nativeTask.members != ours.members {
            let diff = zip(nativeTask.members, ours.members).first { $0 != $1 }
            let detail =
                diff.map { "member \($0.0.name)@\($0.0.bitOffset) vs \($0.1.name)@\($0.1.bitOffset)" }
                ?? "\(nativeTask.members.count) vs \(ours.members.count) members"
            throw .nativeMismatch(input: input, detail: "task_struct members differ: \(detail)")
        }
        return NativeComparison(
            nativeTypes: native.typeCount, generatedTypes: generated.typeCount,
            taskStructSize: ours.size, taskStructMembers: ours.members.count)
    }

    static func renamed(_ e: KernelImageError, to name: String) -> KernelImageError {
        switch e {
        case .empty: return .empty(path: name)
        case .compressedBootImage: return .compressedBootImage(path: name)
        case .notELF: return .notELF(path: name)
        case .badELF(_, let r): return .badELF(path: name, reason: r)
        case .noDWARF: return .noDWARF(path: name)
        case .noBanner: return .noBanner(path: name)
        }
    }

    /// Less than 1 MiB free where the scratch files live: a failed tool most likely ran out of space.
    static func diskFull(at path: String) -> Bool {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return false }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize) < 1 << 20
    }
}
