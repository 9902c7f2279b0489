// One input → one validated catalog entry:
//   ingest (unpack if packaged) → identify (banner, build-id, arch) → skip if already catalogued
//   → pahole [→ llvm-objcopy → strip] → validate with libbpf (parses, sane, has task_struct;
//   matches the image's native .BTF when it has one) → insert atomically into the catalog.
import Catalog
import ELF
import FoundationEssentials
import Ingest
import Kernel
import Loader
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
    /// `catalog import TREE` where TREE is missing, a file or unreadable.
    case importTree(path: String, problem: String)
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
        case .importTree(let path, let problem):
            return
                "import tree \(path): \(problem); give the root directory of a BTFHub-style archive (<distro>/<version>/<arch>/<release>.btf.tar.xz)"
        }
    }
}

/// Choices for one build.
public struct BuildOptions: Sendable {
    public var method: BuildMethod?
    /// Use pahole's parallel encoder (`-j`): faster, but pahole 1.24's type order and deduplicated
    /// type count vary between runs (95,042 vs 95,052 types seen for one Debian 6.1 image), so the
    /// default is the single-threaded, reproducible encoding.
    public var parallel: Bool = false
    public var force: Bool = false
    public var distro: String?
    public var distroVersion: String?
    /// Recorded in each entry's build record.
    public var btfgenVersion: String = "unknown"
    /// The repository package the input came from (`btfgen sync`), recorded in the entry.
    public var sourcePackage: SourcePackage?
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
    public enum Outcome: String, Sendable { case added, replaced, unchanged }
    public let input: String
    public let outcome: Outcome
    public let entry: CatalogEntry
    public let native: NativeComparison?
    public let seconds: Double
}

/// Pipeline stages, reported as they start.
public enum BuildStage: String, Sendable {
    case unpacking, identifying, encoding, validating, storing
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
        var scratchFiles: [String] = []
        defer { for f in scratchFiles { unlink(f) } }

        progress(.unpacking)
        // The input is looked at before the catalog is touched: a bad one leaves no trace, not
        // even a new catalog directory, and a vmlinux already catalogued needs no write access.
        let opened: OpenedInput
        do { opened = try Ingest.open(path: input) } catch { throw .ingest(error) }
        var catalogReady = false
        func prepareCatalog() throws(BuildError) {
            guard !catalogReady else { return }
            do { try catalog.prepare() } catch let e as CatalogError { throw .catalog(e) } catch {
                throw .catalog(.ioFailure(path: catalog.root.path, operation: "preparing", errno: EIO))
            }
            catalogReady = true
        }
        if opened.needsScratch { try prepareCatalog() }
        let prepared: PreparedInput
        do { prepared = try Ingest.prepare(opened, scratchDirectory: catalog.scratchURL) } catch {
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

        progress(.encoding)
        // pahole writes into scratch: a catalog it cannot write is reported here, not as pahole's failure.
        try prepareCatalog()
        let flags = tools.paholeFlags(parallel: options.parallel)
        let encoded = catalog.scratchFile("encoded").path
        let rawBTF = catalog.scratchFile("raw.btf").path
        scratchFiles += [encoded, rawBTF]
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

        progress(.validating)
        let generated = try validate(rawBTF, input: input)
        var native: NativeComparison? = nil
        if info.nativeBTFBytes != nil {
            native = try compareWithNative(
                vmlinux: prepared.vmlinux, generated: generated, input: input,
                scratch: &scratchFiles)
        }

        progress(.storing)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: rawBTF)) } catch {
            throw .invalidBTF(input: input, reason: "cannot read back \(rawBTF): \(describe(error))")
        }
        let digest = data.withUnsafeBytes { SHA256.hex($0) }
        chmod(rawBTF, 0o644)
        let record = BuildRecord(
            method: method.rawValue, pahole: tools.pahole.version.description,
            llvmObjcopy: method == .objcopy ? tools.llvmObjcopy?.version.description : nil,
            strip: method == .objcopy ? tools.strip?.version.description : nil,
            paholeFlags: flags, btfgen: options.btfgenVersion)
        var entry = CatalogEntry(
            identity: identity, path: "", sha256: digest, size: data.count,
            typeCount: generated.typeCount, build: record,
            source: URL(fileURLWithPath: input).lastPathComponent,
            builtAt: utcTimestamp(started))
        entry.package = options.sourcePackage
        let outcome: Catalog.InsertOutcome
        do {
            outcome = try catalog.insert(btfFile: URL(fileURLWithPath: rawBTF), entry: entry, force: options.force)
        } catch let e as CatalogError {
            if case .noSpace = e { throw .noSpace(path: catalog.root.path) }
            throw .catalog(e)
        } catch { throw .catalog(.ioFailure(path: catalog.root.path, operation: "storing into", errno: EIO)) }
        let seconds = Date().timeIntervalSince(started)
        switch outcome {
        case .added(let e):
            return BuildResult(input: input, outcome: .added, entry: e, native: native, seconds: seconds)
        case .replaced(let e):
            return BuildResult(input: input, outcome: .replaced, entry: e, native: native, seconds: seconds)
        case .unchanged(let e):
            return BuildResult(input: input, outcome: .unchanged, entry: e, native: native, seconds: seconds)
        }
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
