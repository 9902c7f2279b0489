// One input → one validated catalog entry:
//   ingest (unpack if packaged) → identify (banner, build-id, arch) → skip if already catalogued
//   → pahole -j [→ llvm-objcopy → strip], reading the DWARF's function definitions and the image's
//   own .BTF alongside (AlongsidePahole) → keep each function's first definition, rewrite in
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
import LibBPF
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
    /// Of that, waiting for the DWARF index read alongside pahole and looking the functions pahole
    /// -j wrote twice up in it.
    public var functions = 0.0
    /// libbpf's parse and the sanity checks.
    public var validate = 0.0
    /// Comparing with the image's own .BTF (read alongside pahole; this is the wait and the comparison).
    public var native = 0.0
    /// sha256 and the catalog insert.
    public var store = 0.0
    /// Wall seconds of the reading done alongside pahole (DWARF function index, the image's own
    /// .BTF): hidden behind `encode`, except for what `functions` and `native` waited.
    public var alongside = 0.0
    /// CPU seconds (user + system) of btfgen's own threads for this build, the reading alongside
    /// pahole included.
    public var ownCPU = 0.0
    /// Of that, the reading alongside pahole.
    public var alongsideCPU = 0.0
    /// CPU seconds of the tools (pahole …): this process's waited-for children over the build, so
    /// builds running at once in one process share one figure.
    public var toolsCPU = 0.0

    public init() {}

    /// Everything but the external tools.
    public var own: Double { ingest + canonicalize + validate + native + store }
    /// Wall seconds of the build's steps, tools included.
    public var total: Double { own + encode }

    /// One line per step with its wall seconds and share of the build, btfgen's own share in
    /// total, and the CPU view (own threads against the tools), which a loaded machine distorts less.
    public var report: [String] {
        let total = max(self.total, 1e-9)
        func row(_ name: String, _ seconds: Double, _ note: String = "") -> String {
            name.padded(toLength: 34) + fixed(seconds, digits: 3).leftPadded(toLength: 8) + " s"
                + (fixed(100 * seconds / total, digits: 1) + "%").leftPadded(toLength: 8) + note
        }
        var lines = [
            row("read and identify the input", ingest),
            row("pahole (external)", encode),
            row("canonical order", canonicalize - functions),
            row("first definitions (DWARF)", functions, "  (read alongside pahole: \(fixed(alongside, digits: 3)) s)"),
            row("libbpf check", validate),
            row("native .BTF comparison", native),
            row("sha256 and catalog insert", store),
            row("btfgen's own work", own),
        ]
        let cpu = ownCPU + toolsCPU
        lines.append(
            "CPU: btfgen \(fixed(ownCPU, digits: 3)) s (\(fixed(alongsideCPU, digits: 3)) s of it alongside pahole), tools \(fixed(toolsCPU, digits: 3)) s: btfgen's share "
                + fixed(cpu > 0 ? 100 * ownCPU / cpu : 0, digits: 1) + "%")
        return lines
    }
}

extension String {
    fileprivate func leftPadded(toLength n: Int) -> String {
        count >= n ? self : String(repeating: " ", count: n - count) + self
    }
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
        let startedCPU = threadCPUSeconds(), childrenCPU = childrenCPUSeconds()
        var timings = BuildTimings()
        var lapStart = started
        func lap() -> Double {
            let now = Date()
            defer { lapStart = now }
            return now.timeIntervalSince(lapStart)
        }
        var work = Work(input: input)
        defer { for f in work.scratchFiles { unlink(f) } }

        progress(.unpacking)
        let prepared = try unpack(&work)
        progress(.identifying)
        let (info, identity) = try identify(prepared, &work)
        if !options.force, let existing = try catalogued(info.buildID, &work) {
            return BuildResult(
                input: input, outcome: .unchanged, entry: existing, native: nil,
                seconds: Date().timeIntervalSince(started))
        }
        timings.ingest = lap()
        var flags = tools.paholeFlags(parallel: options.parallel)
        let canonicalBTF = catalog.scratchFile("canonical.btf").path
        work.scratchFiles.append(canonicalBTF)
        try prepareCatalog(&work)
        var readNative: (@Sendable () throws(BuildError) -> NativeBTF)? = nil
        if info.nativeBTFBytes != nil {
            let nativePath = catalog.scratchFile("native.btf").path
            work.scratchFiles.append(nativePath)
            let vmlinux = prepared.vmlinux
            readNative = { [self] () throws(BuildError) in
                try readNativeBTF(vmlinux: vmlinux, to: nativePath, input: input)
            }
        }
        let alongside = AlongsidePahole(
            vmlinux: prepared.vmlinux, functions: flags.contains("-j"), readNative: readNative)
        defer { alongside.cancel() }
        var bytes: [UInt8]
        while true {
            progress(.encoding)
            let rawBTF: String
            do { rawBTF = try encode(prepared, flags: flags, &work) } catch {
                alongside.paholeFinished()
                throw error
            }
            alongside.paholeFinished()
            timings.encode += lap()
            progress(.canonicalizing)
            let result = try canonicalize(
                rawBTF, alongside: alongside, to: canonicalBTF, input: input, mayGiveUp: flags.contains("-j"),
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
        // sha256 on another core while libbpf checks the file (pahole is done, that core is idle).
        let digest = Mutex<String?>(nil), digestCPU = Mutex(0.0)
        let digesting = DispatchGroup()
        DispatchQueue.global().async(group: digesting) { [bytes] in
            keepProcessNice()
            let cpu = threadCPUSeconds()
            let hex = bytes.withUnsafeBytes { SHA256.hex($0) }
            digest.withLock { $0 = hex }
            digestCPU.withLock { $0 = threadCPUSeconds() - cpu }
        }
        defer { digesting.wait() }
        progress(.validating)
        let generated = try validate(canonicalBTF, input: input)
        timings.validate = lap()
        var native: NativeComparison? = nil
        if let nativeBTF = try alongside.nativeBTF() {
            native = try compare(generated, with: nativeBTF, input: input)
        }
        timings.native = lap()
        progress(.storing)
        digesting.wait()
        let outcome = try store(
            canonicalBTF, digest: digest.withLock { $0! }, size: bytes.count, identity: identity,
            typeCount: generated.typeCount, flags: flags, started,
            &work)
        timings.store = lap()
        alongside.wait()
        timings.alongside = alongside.wallSeconds
        timings.alongsideCPU = alongside.cpuSeconds
        timings.ownCPU = threadCPUSeconds() - startedCPU + alongside.cpuSeconds + digestCPU.withLock { $0 }
        timings.toolsCPU = childrenCPUSeconds() - childrenCPU
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

    /// One build in progress: its input, the scratch files to drop at the end, and whether the
    /// catalog's scratch space has been prepared yet.
    struct Work {
        let input: String
        var scratchFiles: [String] = []
        var catalogReady = false
    }

    /// The steps of `build`, each with what its failure means to the user (`failure(_:during:)`).
    enum Step {
        case opening, preparingCatalog, unpacking
        /// Reading the kernel image; `name` is how the user knows it (the package member, if unpacked).
        case identifying(name: String)
        case checkingCatalog, encoding, storing
    }

    /// Every failure of a step as the build error the user reads: the input's own problems
    /// (ingest, image), the tools', and the catalog's with the errno that really failed.
    func failure(_ error: any Error, during step: Step, input: String) -> BuildError {
        if let e = error as? BuildError { return e }
        let root = catalog.root.path
        switch step {
        case .opening, .unpacking:
            if let e = error as? IngestError {
                if case .unpacking = step, case .noSpace = e { return .noSpace(path: root) }
                return .ingest(e)
            }
        case .identifying(let name):
            if let e = error as? KernelImageError { return .image(Self.renamed(e, to: name)) }
            if let e = error as? FileAccessError { return .ingest(.file(e)) }
            return .invalidBTF(input: input, reason: "\(error)")
        case .preparingCatalog:
            return Self.catalogFailure(error, path: root, operation: "preparing")
        case .checkingCatalog:
            if let e = error as? CatalogError { return .catalog(e) }
            return .catalog(.unreadableIndex(path: catalog.indexURL.path, reason: "\(error)"))
        case .encoding:
            if Self.diskFull(at: catalog.scratchURL.path) { return .noSpace(path: root) }
            if let e = error as? ToolError { return .tool(e) }
            return .tool(.launchFailed(tool: "pipeline", reason: describe(error)))
        case .storing:
            return Self.catalogFailure(error, path: root, operation: "storing into", root: root)
        }
        return .invalidBTF(input: input, reason: "\(error)")
    }

    /// Run one step, its failure mapped by `failure(_:during:)`.
    func step<T>(_ step: Step, _ work: Work, _ body: () throws -> T) throws(BuildError) -> T {
        do { return try body() } catch { throw failure(error, during: step, input: work.input) }
    }

    /// The catalog's scratch space, created once per build.
    func prepareCatalog(_ work: inout Work) throws(BuildError) {
        guard !work.catalogReady else { return }
        try step(.preparingCatalog, work) { try catalog.prepare() }
        work.catalogReady = true
    }

    /// The input opened, and unpacked into scratch when it is packaged or compressed. The input
    /// is looked at before the catalog is touched: a bad one leaves no trace, not even a new
    /// catalog directory, and a vmlinux already catalogued needs no write access.
    func unpack(_ work: inout Work) throws(BuildError) -> PreparedInput {
        let input = work.input
        let opened = try step(.opening, work) { try Ingest.open(path: input) }
        if opened.needsScratch { try prepareCatalog(&work) }
        let prepared = try step(.unpacking, work) { try Ingest.prepare(opened, scratchDirectory: catalog.scratchURL) }
        if prepared.isPrivate { work.scratchFiles.append(prepared.vmlinux) }
        return prepared
    }

    /// What the image says about itself (banner, build-id, arch), and the identity it is filed under.
    func identify(_ prepared: PreparedInput, _ work: inout Work) throws(BuildError) -> (
        KernelImageInfo, KernelIdentity
    ) {
        let name =
            prepared.isPrivate ? "\(work.input) (\(prepared.package?.member ?? "unpacked vmlinux"))" : work.input
        let info = try step(.identifying(name: name), work) {
            try KernelImageInfo.read(try MappedFile(path: prepared.vmlinux))
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
        return (info, identity)
    }

    /// The catalog's entry with this build-id, if there is one.
    func catalogued(_ buildID: BuildID?, _ work: inout Work) throws(BuildError) -> CatalogEntry? {
        guard let buildID else { return nil }
        return try step(.checkingCatalog, work) { try catalog.entry(buildID: buildID) }
    }

    /// pahole (and for the objcopy method llvm-objcopy and strip) run into scratch; returns the
    /// raw BTF's scratch path. A catalog pahole cannot write into is reported first, not as
    /// pahole's failure.
    func encode(_ prepared: PreparedInput, flags: [String], _ work: inout Work) throws(BuildError) -> String {
        try prepareCatalog(&work)
        let encoded = catalog.scratchFile("encoded").path
        let rawBTF = catalog.scratchFile("raw.btf").path
        work.scratchFiles += [encoded, rawBTF]
        try step(.encoding, work) {
            try BTFPipeline(tools: tools).encode(
                vmlinux: prepared.vmlinux, method: method, flags: flags,
                output: encoded, scratch: catalog.scratchFile("vmlinux-copy").path,
                vmlinuxIsPrivate: prepared.isPrivate)
        }
        try extractRawBTF(from: encoded, to: rawBTF, input: work.input)
        return rawBTF
    }

    /// The validated canonical BTF inserted into the catalog with its build record.
    func store(
        _ path: String, digest: String, size: Int, identity: KernelIdentity, typeCount: Int, flags: [String],
        _ started: Date, _ work: inout Work
    ) throws(BuildError) -> Catalog.InsertOutcome {
        chmod(path, 0o644)
        let record = BuildRecord(
            method: method.rawValue, pahole: tools.pahole.version.description,
            llvmObjcopy: method == .objcopy ? tools.llvmObjcopy?.version.description : nil,
            strip: method == .objcopy ? tools.strip?.version.description : nil,
            paholeFlags: flags, btfgen: options.btfgenVersion)
        var entry = CatalogEntry(
            identity: identity, path: "", sha256: digest, size: size,
            typeCount: typeCount, build: record,
            source: URL(fileURLWithPath: work.input).lastPathComponent,
            builtAt: utcTimestamp(started), canonical: true)
        entry.package = options.sourcePackage
        return try step(.storing, work) {
            try catalog.insert(btfFile: URL(fileURLWithPath: path), entry: entry, force: options.force)
        }
    }

    /// Rewrite pahole's BTF at `path` in canonical order (types sorted by structure, exact
    /// duplicates merged, a fresh string table) into `output`, so that the bytes depend only on
    /// the kernel's types and never on the order pahole happened to emit them in. Functions pahole
    /// -j wrote more than once keep only the copy from their first compilation unit, as the
    /// single-threaded encoder does; when the DWARF cannot tell which copy that is, returns nil if
    /// `mayGiveUp` (the caller then encodes single-threaded) and keeps every copy otherwise.
    func canonicalize(
        _ path: String, alongside: AlongsidePahole, to output: String, input: String, mayGiveUp: Bool,
        timings: inout BuildTimings
    ) throws(BuildError) -> [UInt8]? {
        let bytes: [UInt8]
        do {
            var btf = try MappedFile(path: path).withBytes { (raw) throws in try BTF(decoding: raw) }
            let copies = btf.functionCopies
            if !copies.isEmpty {
                let scan = Date()
                let definitions = try alongside.definitions(of: Set(copies.keys))
                let kept = btf.keepingFirstDefinitions(definitions, copies: copies)
                timings.functions += Date().timeIntervalSince(scan)
                if !kept.unresolved.isEmpty && mayGiveUp { return nil }
                btf = kept.btf
            }
            // pahole is done: the rounds of canonical order may use every core.
            let cores = min(max(1, ProcessInfo.processInfo.activeProcessorCount), 4)
            bytes = try btf.canonicalized(slices: cores) { k, body in
                DispatchQueue.concurrentPerform(iterations: k) { i in
                    keepProcessNice()
                    body(i)
                }
            }.btf.encoded()
        } catch {
            throw .invalidBTF(input: input, reason: "\(error)")
        }
        do { try writeFileDurably(Data(bytes), to: URL(fileURLWithPath: output)) } catch {
            if case .noSpace? = error as? CatalogError { throw .noSpace(path: catalog.root.path) }
            throw Self.catalogFailure(error, path: output, operation: "writing", root: catalog.root.path)
        }
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

    func writeBytes(_ bytes: UnsafeRawBufferPointer, to path: String) throws(BuildError) {
        do { try writeFileDurably(Data(bytes), to: URL(fileURLWithPath: path)) } catch {
            throw Self.catalogFailure(error, path: path, operation: "writing", root: catalog.root.path)
        }
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

    /// The image's own .BTF (written by the kernel build), ground truth for layout, as libbpf reads it.
    func readNativeBTF(vmlinux: String, to nativePath: String, input: String) throws(BuildError) -> NativeBTF {
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
        return NativeBTF(typeCount: native.typeCount, taskStruct: native.structNamed("task_struct"))
    }

    /// The generated BTF's task_struct must be the image's own, member for member.
    func compare(
        _ generated: (typeCount: Int, taskStruct: LibBPFStruct), with native: NativeBTF, input: String
    ) throws(BuildError) -> NativeComparison {
        guard let nativeTask = native.taskStruct else {
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

    /// A catalog operation's failure as a build error, with the errno that really failed: a
    /// permission problem is named as one, never as an I/O error. `root`, when given, makes a
    /// full disk the build's `noSpace` for the catalog.
    static func catalogFailure(_ error: any Error, path: String, operation: String, root: String? = nil) -> BuildError {
        var failure: CatalogError
        switch error {
        case let e as CatalogError: failure = e
        case let e as FileSystemError: failure = .unwritable(root: root ?? path, e)
        default:
            if let code = posixCode(of: error) {
                let e = FileSystemError(errno: code, path: path, operation: operation)
                switch e {
                case .failed: failure = .ioFailure(path: path, operation: operation, errno: code)
                default: failure = .unwritable(root: root ?? path, e)
                }
            } else {
                failure = .failed(path: path, operation: operation, reason: describe(error))
            }
        }
        if let root, case .noSpace = failure { return .noSpace(path: root) }
        return .catalog(failure)
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
