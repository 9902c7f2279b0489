// The on-disk catalog: `<root>/<distro>/<version>/<arch>/<release>.btf` (BTFHub's archive layout,
// uncompressed) plus `<root>/index.json`. Every write goes to a temporary file in `<root>/.tmp`
// and is renamed into place; the index is rewritten under an exclusive flock on `<root>/.lock`, so
// concurrent builds lose nothing. Each write is journaled (see `commit`): a build killed at any
// moment leaves a parseable index, and the next writer finishes a write that reached its commit
// point, so no BTF file is left that the index does not name.
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A per-kernel BTF catalog rooted at a directory.
public struct Catalog: Sendable {
    public let root: URL
    /// Whether checks of its files are written to its `.verified` record (see Verification.swift).
    var recordsChecks = true

    public static let environmentVariable = "BTFGEN_CATALOG"
    public static let indexName = "index.json"

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// `--catalog` if given, else `$BTFGEN_CATALOG`, else `./kernels`.
    public static func resolveRoot(_ option: String?) -> URL {
        if let option, !option.isEmpty { return URL(fileURLWithPath: option) }
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return URL(fileURLWithPath: "kernels")
    }

    public var indexURL: URL { root.appendingPathComponent(Catalog.indexName) }
    var lockURL: URL { root.appendingPathComponent(".lock") }
    /// Scratch space on the catalog's own filesystem, so finished files can be renamed into place.
    public var scratchURL: URL { root.appendingPathComponent(".tmp") }

    /// The absolute location of an entry's BTF file.
    public func url(of entry: CatalogEntry) -> URL { root.appendingPathComponent(entry.path) }

    // MARK: Reading

    /// The index; an absent index is an empty catalog.
    public func index() throws(CatalogError) -> CatalogIndex {
        var isDir = false
        if FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), !isDir {
            throw CatalogError.notADirectory(path: root.path)
        }
        let bytes: [UInt8]
        do { bytes = try readWholeFile(indexURL.path) } catch {
            switch error {
            case .missing: return CatalogIndex()
            case .unreadable(_, let code): throw CatalogError.reading(code, path: indexURL.path)
            case .isDirectory, .notAFile:
                throw CatalogError.unreadableIndex(path: indexURL.path, reason: "not a regular file")
            }
        }
        do {
            let index = try JSONDecoder().decode(CatalogIndex.self, from: Data(bytes))
            guard index.format == CatalogIndex.currentFormat else {
                throw CatalogError.unreadableIndex(
                    path: indexURL.path,
                    reason: "format \(index.format), this btfgen reads \(CatalogIndex.currentFormat)")
            }
            return index
        } catch let error as CatalogError {
            throw error
        } catch {
            throw .unreadableIndex(path: indexURL.path, reason: "\(error)")
        }
    }

    public func entries() throws(CatalogError) -> [CatalogEntry] { try index().entries }

    /// The entry with exactly this build-id.
    public func entry(buildID: BuildID) throws(CatalogError) -> CatalogEntry? {
        try entries().first { $0.identity.buildID == buildID }
    }

    /// Find one entry by release or by build-id (or a unique build-id prefix of ≥ 8 digits).
    public func lookup(_ query: String) throws(CatalogError) -> CatalogEntry {
        try Catalog.lookup(query, in: try entries(), root: root.path)
    }

    static func lookup(_ query: String, in all: [CatalogEntry], root: String) throws(CatalogError) -> CatalogEntry {
        let q = query.lowercased()
        var matches = all.filter { $0.identity.release == query || $0.identity.buildID?.hex == q }
        if matches.isEmpty, q.count >= 8, q.allSatisfy(\.isHexDigit) {
            matches = all.filter { $0.identity.buildID?.hex.hasPrefix(q) ?? false }
        }
        switch matches.count {
        case 0:
            if !q.isEmpty, q.count < 8, q.allSatisfy(\.isHexDigit) {
                throw CatalogError.shortBuildIDPrefix(query: query, root: root)
            }
            throw CatalogError.notFound(query: query, root: root)
        case 1: return matches[0]
        default:
            throw CatalogError.ambiguous(
                query: query,
                matches: matches.map {
                    "\($0.identity.release) \($0.identity.buildID?.hex.prefix(12) ?? "no-build-id")"
                })
        }
    }

    // MARK: Writing

    /// What `insert` did.
    public enum InsertOutcome: Equatable, Sendable {
        case added(CatalogEntry)
        case replaced(CatalogEntry)
        /// An entry with the same build-id was already there and `force` was off, or `force` was on
        /// and both are canonical BTF with the same sha256 (the same types): nothing was rewritten.
        case unchanged(CatalogEntry)
    }

    /// Store `btfFile` (a finished file inside `scratchURL`) as `entry`, atomically and under the lock.
    /// The entry's `path` is chosen here; the caller's is ignored.
    public func insert(btfFile: URL, entry proposed: CatalogEntry, force: Bool) throws -> InsertOutcome {
        try prepare()
        return try withLock {
            try recoverInterruptedWrites()
            var index = try index()
            var entry = proposed
            let outcome: InsertOutcome
            if let id = proposed.identity.buildID,
                let existing = index.entries.firstIndex(where: { $0.identity.buildID == id })
            {
                let current = index.entries[existing]
                // Canonical bytes depend only on the types, so an equal digest is an equal BTF: a
                // forced rebuild that changed nothing keeps the entry (and its builtAt) as it was.
                let identical =
                    current.canonical == true && proposed.canonical == true && current.sha256 == proposed.sha256
                    && (FileManager.default.contents(atPath: url(of: current).path)?.withUnsafeBytes {
                        SHA256.hex($0)
                    }) == current.sha256
                if !force || identical {
                    try? FileManager.default.removeItem(at: btfFile)
                    return .unchanged(current)
                }
                entry.path = index.entries[existing].path
                index.entries[existing] = entry
                outcome = .replaced(entry)
            } else {
                entry.path = freePath(for: proposed.identity, in: index)
                if let same = index.entries.firstIndex(where: { $0.path == entry.path }) {
                    // Same release and no build-id to tell the two apart (imports): the newer one wins.
                    index.entries[same] = entry
                    outcome = .replaced(entry)
                } else {
                    index.entries.append(entry)
                    outcome = .added(entry)
                }
            }
            if let package = entry.package {
                // It built: the package's earlier failure no longer stands.
                index.failures.removeAll { $0.package.isSameVersion(as: package) }
            }
            try commit(index, placing: btfFile, at: entry.path)
            recordPlaced(entry)
            return outcome
        }
    }

    /// Remove the entries that `queries` name (each a release or a build-id, as `lookup` takes
    /// them) and their BTF files, in one journaled write under the lock: all of them or, when a
    /// query matches nothing or more than one entry, none. Returns the removed entries.
    public func remove(_ queries: [String]) throws -> [CatalogEntry] {
        // Refused before anything is created or locked when a query cannot be answered now.
        let current = try entries()
        for query in queries { _ = try Catalog.lookup(query, in: current, root: root.path) }
        try prepare()
        return try withLock {
            try recoverInterruptedWrites()
            // Looked up under the lock: a build that replaced an entry meanwhile is not undone.
            var index = try index()
            var doomed: [CatalogEntry] = []
            for query in queries {
                let entry = try Catalog.lookup(query, in: index.entries, root: root.path)
                if !doomed.contains(where: { $0.path == entry.path }) { doomed.append(entry) }
            }
            let paths = Set(doomed.map(\.path))
            index.entries.removeAll { paths.contains($0.path) }
            try commit(index, removing: paths.sorted())
            removeTypeIndexes(of: paths.sorted())
            return doomed
        }
    }

    // MARK: The write journal

    /// A write in progress, recorded in `.tmp/<pid>-…-intent.json` once everything it needs is
    /// durably in scratch. From then on the write is decided: if its writer dies, the next writer
    /// finishes it (`recoverInterruptedWrites`). Scratch names are relative to `.tmp` and catalog
    /// paths to the root, so a catalog moved while a write was pending still recovers.
    struct Intent: Codable {
        /// The finished BTF in scratch, and where it goes.
        var btf: String?
        var destination: String?
        /// More BTF files placed by the same write (`merge`), each like `btf` and `destination`.
        var place: [Placement]? = nil
        /// The new index in scratch.
        var index: String
        /// Catalog files to delete once the new index no longer names them.
        var remove: [String]
    }

    /// One scratch file of an intent and the catalog path it is renamed to.
    struct Placement: Codable {
        var btf: String
        var destination: String
    }

    static let intentSuffix = "-intent.json"

    /// Make `index` the catalog's index, placing one BTF file and dropping others, so that a
    /// writer killed at any moment leaves either no trace or an intent the next writer completes:
    ///   1. the new index, durably, in scratch;
    ///   2. the intent, durably: the commit point;
    ///   3. the BTF renamed into place;
    ///   4. the index renamed over `index.json`;
    ///   5. files the index no longer names removed, then the intent.
    /// Steps 3–5 are what recovery redoes; each is idempotent. Readers never take the lock: they
    /// see the old index or the new one, whole.
    /// `placingAll` adds more files (scratch file, catalog path) to the same write.
    func commit(
        _ index: CatalogIndex, placing file: URL? = nil, at destination: String? = nil, removing: [String] = [],
        placingAll more: [(file: URL, destination: String)] = []
    ) throws {
        let indexTemp = try writeIndexToScratch(index)
        var intent = Intent(
            btf: file?.lastPathComponent, destination: destination, index: indexTemp.lastPathComponent,
            remove: removing)
        if !more.isEmpty {
            intent.place = more.map { Placement(btf: $0.file.lastPathComponent, destination: $0.destination) }
        }
        let intentURL = scratchFile(String(Catalog.intentSuffix.dropFirst()))
        do {
            try writeFileDurably(try JSONEncoder().encode(intent), to: intentURL)
        } catch {
            unlink(indexTemp.path)
            throw error
        }
        fsyncDirectory(scratchURL.path)
        do {
            try redo(intent, recordedAt: intentURL)
        } catch {
            // This writer reports the failure, so the write must not be finished later behind the
            // user's back: withdraw the intent, and drop a BTF already renamed into place unless
            // the index names it (then it is the same kernel's, replaced by the next build).
            unlink(intentURL.path)
            unlink(indexTemp.path)
            let named = (try? self.index().entries.map(\.path)).map(Set.init)
            for placed in ([destination].compactMap { $0 } + more.map(\.destination))
            where named?.contains(placed) == false {
                unlink(root.appendingPathComponent(placed).path)
            }
            throw error
        }
    }

    /// Steps 3–5 of `commit`, for the writer itself and for recovery alike.
    private func redo(_ intent: Intent, recordedAt intentURL: URL) throws {
        var placements = intent.place ?? []
        if let btf = intent.btf, let destination = intent.destination {
            placements.insert(Placement(btf: btf, destination: destination), at: 0)
        }
        for placement in placements {
            let source = scratchURL.appendingPathComponent(placement.btf)
            if FileManager.default.fileExists(atPath: source.path) {
                try placeFile(source, at: root.appendingPathComponent(placement.destination))
            }
        }
        let indexTemp = scratchURL.appendingPathComponent(intent.index)
        if FileManager.default.fileExists(atPath: indexTemp.path) {
            guard rename(indexTemp.path, indexURL.path) == 0 else {
                throw CatalogError.writing(errno, path: indexURL.path, operation: "renaming into", root: root.path)
            }
            fsyncDirectory(root.path)
        }
        if !intent.remove.isEmpty {
            let named = Set(try self.index().entries.map(\.path))
            for path in intent.remove where !named.contains(path) {
                try? FileManager.default.removeItem(at: root.appendingPathComponent(path))
                removeEmptyDirectories(above: path)
            }
        }
        unlink(intentURL.path)
    }

    /// Drop the directories of a removed file that it leaves empty (`<distro>/<version>/<arch>`),
    /// up to the root. Under the lock no writer is placing a file there; rmdir keeps any that is
    /// not empty.
    private func removeEmptyDirectories(above path: String) {
        var components = path.split(separator: "/").dropLast()
        while !components.isEmpty {
            guard rmdir(root.appendingPathComponent(components.joined(separator: "/")).path) == 0 else { return }
            components = components.dropLast()
        }
    }

    /// Finish the writes of writers that died after their commit point, then drop the scratch
    /// files of dead processes. Call under the lock: every intent found then belongs to a writer
    /// that no longer holds it, that is one that was killed (a writer that fails withdraws its own).
    func recoverInterruptedWrites() throws {
        for name in pendingIntents() {
            let url = scratchURL.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path),
                let intent = try? JSONDecoder().decode(Intent.self, from: data)
            else {
                // Torn before its fsync completed: that write never reached its commit point.
                unlink(url.path)
                continue
            }
            try redo(intent, recordedAt: url)
        }
        removeScratchOfDeadProcesses()
    }

    /// Names of the intent files in scratch.
    func pendingIntents() -> [String] {
        scratchNames().filter(Catalog.isIntent).sorted()
    }

    func scratchNames() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: scratchURL.path)) ?? []
    }

    static func isIntent(_ name: String) -> Bool {
        name.hasSuffix(intentSuffix) && owner(ofScratch: name) != nil
    }

    /// `<distro>/<version>/<arch>/<release>.btf`, or with a build-id suffix when another build of
    /// the same release already owns that name (distros reuse `uname -r` across builds).
    func freePath(for id: KernelIdentity, in index: CatalogIndex) -> String {
        let dir = [id.distro, id.distroVersion, id.arch].map(Catalog.safeComponent).joined(separator: "/")
        let base = "\(dir)/\(Catalog.safeComponent(id.release)).btf"
        guard let owner = index.entries.first(where: { $0.path == base }) else { return base }
        if owner.identity.buildID == nil || id.buildID == nil { return base }
        return "\(dir)/\(Catalog.safeComponent(id.release))+\(id.buildID!.hex.prefix(12)).btf"
    }

    /// A path component that cannot climb out of the catalog or hide as a dotfile.
    static func safeComponent(_ s: String) -> String {
        var out = String(
            s.map { c -> Character in
                (c.isLetter || c.isNumber || "._+-~".contains(c)) && c.isASCII ? c : "_"
            })
        while out.hasPrefix(".") { out.removeFirst() }
        return out.isEmpty ? "_" : out
    }

    /// Create the root and scratch directories, prove that files can be created in scratch, and
    /// drop scratch files left by dead processes. Builds call this before running any tool, so a
    /// catalog that cannot be written is reported as such and never as the tool's failure.
    public func prepare() throws(CatalogError) {
        var isDir = false
        if FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), !isDir {
            throw CatalogError.notADirectory(path: root.path)
        }
        do {
            try makeDirectories(scratchURL.path)
            try checkWritableDirectory(scratchURL.path)
        } catch {
            if case .notADirectory(_, let blocking) = error, blocking == root.path {
                throw CatalogError.notADirectory(path: root.path)
            }
            throw CatalogError.unwritable(root: root.path, error)
        }
        removeScratchOfDeadProcesses()
    }

    /// Drop scratch files whose owner (the pid their name starts with) is gone, except those of a
    /// process that left an intent: recovery needs them, and drops them once it has finished.
    func removeScratchOfDeadProcesses() {
        let names = scratchNames()
        let pending = Set(names.filter(Catalog.isIntent).compactMap(Catalog.owner(ofScratch:)))
        for name in names {
            guard let pid = Catalog.owner(ofScratch: name), Catalog.isDead(pid), !pending.contains(pid) else {
                continue
            }
            try? FileManager.default.removeItem(at: scratchURL.appendingPathComponent(name))
        }
    }

    /// What `.tmp` holds, by whether its owner still runs.
    public struct ScratchUsage: Sendable, Equatable {
        /// Files of processes that died (killed builds): the next writer, or `clearScratch`, drops them.
        public var staleFiles = 0
        public var staleBytes: Int64 = 0
        /// Writes whose writer died after their commit point: finished, not dropped, by the next writer.
        public var interruptedWrites = 0
        /// Files of processes that still run (a build in progress): never touched.
        public var liveFiles = 0
        public var liveBytes: Int64 = 0
        public var livePIDs: [Int32] = []
        public init() {}
    }

    /// Measure the scratch space without changing it (nor creating the catalog).
    public func scratchUsage() -> ScratchUsage {
        var usage = ScratchUsage()
        var live = Set<Int32>()
        for name in scratchNames() {
            guard let pid = Catalog.owner(ofScratch: name) else { continue }
            var st = stat()
            guard lstat(scratchURL.appendingPathComponent(name).path, &st) == 0 else { continue }
            let bytes = Int64(st.st_size)
            if Catalog.isDead(pid) {
                usage.staleFiles += 1
                usage.staleBytes += bytes
                if Catalog.isIntent(name) { usage.interruptedWrites += 1 }
            } else {
                usage.liveFiles += 1
                usage.liveBytes += bytes
                live.insert(pid)
            }
        }
        usage.livePIDs = live.sorted()
        return usage
    }

    /// Do what the next writer would do to scratch, now: under the lock, finish the writes of
    /// killed writers (their intents are decided, so dropping them would lose an entry the index
    /// is about to name), then drop every file of a dead process. Files of running builds stay.
    /// Returns what was there before.
    @discardableResult
    public func clearScratch() throws -> ScratchUsage {
        let before = scratchUsage()
        guard before.staleFiles > 0 else { return before }
        try withLock { try recoverInterruptedWrites() }
        return before
    }

    /// Scratch names start with the owner's pid: `<pid>-…`.
    static func owner(ofScratch name: String) -> Int32? {
        guard let pid = Int32(name.prefix { $0.isNumber }), pid > 0 else { return nil }
        return pid
    }

    static func isDead(_ pid: Int32) -> Bool { kill(pid, 0) != 0 && errno == ESRCH }

    /// A fresh scratch path owned by this process.
    public func scratchFile(_ label: String) -> URL {
        scratchURL.appendingPathComponent("\(getpid())-\(UUID().uuidString.prefix(8))-\(label)")
    }

    /// Run `body` holding the catalog's exclusive lock.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        do { try makeDirectories(root.path) } catch { throw CatalogError.unwritable(root: root.path, error) }
        let fd = open(lockURL.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            if code == EROFS || code == EACCES || code == EPERM {
                throw CatalogError.unwritable(
                    root: root.path, FileSystemError(errno: code, path: lockURL.path, operation: "opening"))
            }
            throw CatalogError.ioFailure(path: lockURL.path, operation: "opening", errno: code)
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw CatalogError.ioFailure(path: lockURL.path, operation: "locking", errno: errno)
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    private func placeFile(_ file: URL, at destination: URL) throws {
        do { try makeDirectories(destination.deletingLastPathComponent().path) } catch {
            throw CatalogError.unwritable(root: root.path, error)
        }
        try fsyncPath(file.path)
        guard rename(file.path, destination.path) == 0 else {
            throw CatalogError.writing(errno, path: destination.path, operation: "renaming into", root: root.path)
        }
        fsyncDirectory(destination.deletingLastPathComponent().path)
    }

    private func writeIndexToScratch(_ index: CatalogIndex) throws -> URL {
        var sorted = index
        sorted.sort()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(sorted) + Data("\n".utf8)
        let temp = scratchFile("index.json")
        try writeFileDurably(data, to: temp)
        return temp
    }
}

/// Write `data` to a new file and fsync it; ENOSPC becomes `CatalogError.noSpace`, and the
/// partial file is removed on any failure.
public func writeFileDurably(_ data: Data, to url: URL) throws {
    try writeNewFile(data, to: url, sync: true)
}

/// Where to write `path` before renaming it into place: `.NAME.tmp-PID` in the same directory, so
/// the rename is atomic, dot-named so listings and globs skip it, with the pid so writers differ.
public func temporarySibling(of path: String) -> String {
    let url = URL(fileURLWithPath: path)
    return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
}

/// Replace the file at `url` with `data` atomically: written to a temporary file beside it, then
/// renamed over it, so readers see the old or the new file and never a partial one. `sync`
/// fsyncs the data first (skip it only where a crash may lose the file but not half-write it).
public func replaceFile(at url: URL, with data: Data, sync: Bool = true) throws {
    let temp = URL(fileURLWithPath: temporarySibling(of: url.path))
    try writeNewFile(data, to: temp, sync: sync)
    guard rename(temp.path, url.path) == 0 else {
        let code = errno
        unlink(temp.path)
        throw CatalogError.ioFailure(path: url.path, operation: "renaming into", errno: code)
    }
}

func writeNewFile(_ data: Data, to url: URL, sync: Bool) throws {
    let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        throw errno == ENOSPC
            ? CatalogError.noSpace(path: url.path)
            : CatalogError.ioFailure(path: url.path, operation: "creating", errno: errno)
    }
    var failure = data.withUnsafeBytes { writeAll(fd, $0) }
    if failure == 0 && sync && fsync(fd) != 0 { failure = errno }
    close(fd)
    if failure != 0 {
        unlink(url.path)
        throw failure == ENOSPC || failure == EDQUOT
            ? CatalogError.noSpace(path: url.path)
            : CatalogError.ioFailure(path: url.path, operation: "writing", errno: failure)
    }
}

func fsyncPath(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CatalogError.ioFailure(path: path, operation: "opening", errno: errno) }
    defer { close(fd) }
    if fsync(fd) != 0 {
        throw errno == ENOSPC
            ? CatalogError.noSpace(path: path)
            : CatalogError.ioFailure(path: path, operation: "syncing", errno: errno)
    }
}

func fsyncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 { fsync(fd); close(fd) }
}
