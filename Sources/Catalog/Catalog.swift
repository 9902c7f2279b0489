// The on-disk catalog: `<root>/<distro>/<version>/<arch>/<release>.btf` (BTFHub's archive layout,
// uncompressed) plus `<root>/index.json`. Every write goes to a temporary file in `<root>/.tmp`
// and is renamed into place; the index is rewritten under an exclusive flock on `<root>/.lock`, so
// concurrent builds lose nothing and a build killed at any moment leaves the index parseable.
import Foundation
import Kernel

#if canImport(Glibc)
    import Glibc
#endif

/// A per-kernel BTF catalog rooted at a directory.
public struct Catalog: Sendable {
    public let root: URL

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
    public func index() throws -> CatalogIndex {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), !isDir.boolValue {
            throw CatalogError.notADirectory(path: root.path)
        }
        guard let data = FileManager.default.contents(atPath: indexURL.path) else { return CatalogIndex() }
        do {
            let index = try JSONDecoder().decode(CatalogIndex.self, from: data)
            guard index.format == CatalogIndex.currentFormat else {
                throw CatalogError.unreadableIndex(
                    path: indexURL.path,
                    reason: "format \(index.format), this btfgen reads \(CatalogIndex.currentFormat)")
            }
            return index
        } catch let error as CatalogError {
            throw error
        } catch {
            throw CatalogError.unreadableIndex(path: indexURL.path, reason: "\(error)")
        }
    }

    public func entries() throws -> [CatalogEntry] { try index().entries }

    /// The entry with exactly this build-id.
    public func entry(buildID: BuildID) throws -> CatalogEntry? {
        try entries().first { $0.identity.buildID == buildID }
    }

    /// Entries whose release (and, when given, distro and arch) match.
    public func entries(release: String, distro: String? = nil, arch: String? = nil) throws -> [CatalogEntry] {
        try entries().filter {
            $0.identity.release == release && (distro == nil || $0.identity.distro == distro)
                && (arch == nil || $0.identity.arch == arch)
        }
    }

    /// Find one entry by release or by build-id (or a unique build-id prefix of ≥ 8 digits).
    public func lookup(_ query: String) throws -> CatalogEntry {
        let all = try entries()
        let q = query.lowercased()
        var matches = all.filter { $0.identity.release == query || $0.identity.buildID?.hex == q }
        if matches.isEmpty, q.count >= 8, q.allSatisfy(\.isHexDigit) {
            matches = all.filter { $0.identity.buildID?.hex.hasPrefix(q) ?? false }
        }
        switch matches.count {
        case 0: throw CatalogError.notFound(query: query, root: root.path)
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
        /// An entry with the same build-id was already there and `force` was off.
        case unchanged(CatalogEntry)
    }

    /// Store `btfFile` (a finished file inside `scratchURL`) as `entry`, atomically and under the lock.
    /// The entry's `path` is chosen here; the caller's is ignored.
    public func insert(btfFile: URL, entry proposed: CatalogEntry, force: Bool) throws -> InsertOutcome {
        try prepare()
        return try withLock {
            var index = try index()
            if let id = proposed.identity.buildID,
                let existing = index.entries.firstIndex(where: { $0.identity.buildID == id })
            {
                if !force {
                    try? FileManager.default.removeItem(at: btfFile)
                    return .unchanged(index.entries[existing])
                }
                var entry = proposed
                entry.path = index.entries[existing].path
                try placeFile(btfFile, at: url(of: entry))
                index.entries[existing] = entry
                try write(index)
                return .replaced(entry)
            }
            var entry = proposed
            entry.path = freePath(for: proposed.identity, in: index)
            if let same = index.entries.firstIndex(where: { $0.path == entry.path }) {
                // Same release and no build-id to tell the two apart (imports): the newer one wins.
                try placeFile(btfFile, at: url(of: entry))
                index.entries[same] = entry
                try write(index)
                return .replaced(entry)
            }
            try placeFile(btfFile, at: url(of: entry))
            index.entries.append(entry)
            try write(index)
            return .added(entry)
        }
    }

    /// Remove entries (and their files) under the lock.
    public func remove(_ doomed: [CatalogEntry]) throws {
        try withLock {
            var index = try index()
            let paths = Set(doomed.map(\.path))
            index.entries.removeAll { paths.contains($0.path) }
            try write(index)
            for p in paths { try? FileManager.default.removeItem(at: root.appendingPathComponent(p)) }
        }
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

    /// Create the root and scratch directories and drop scratch files left by dead processes.
    public func prepare() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), !isDir.boolValue {
            throw CatalogError.notADirectory(path: root.path)
        }
        do {
            try FileManager.default.createDirectory(at: scratchURL, withIntermediateDirectories: true)
        } catch {
            throw CatalogError.ioFailure(path: scratchURL.path, operation: "creating", errno: errno == 0 ? EIO : errno)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: scratchURL.path)) ?? []
        for name in names {
            // Scratch names start with the owner's pid: `<pid>-…`.
            guard let pid = Int32(name.prefix { $0.isNumber }), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: scratchURL.appendingPathComponent(name))
            }
        }
    }

    /// A fresh scratch path owned by this process.
    public func scratchFile(_ label: String) -> URL {
        scratchURL.appendingPathComponent("\(getpid())-\(UUID().uuidString.prefix(8))-\(label)")
    }

    /// Run `body` holding the catalog's exclusive lock.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let fd = open(lockURL.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CatalogError.ioFailure(path: lockURL.path, operation: "opening", errno: errno) }
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
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(),
            withIntermediateDirectories: true)
        try fsyncPath(file.path)
        guard rename(file.path, destination.path) == 0 else {
            throw CatalogError.ioFailure(path: destination.path, operation: "renaming into", errno: errno)
        }
        fsyncDirectory(destination.deletingLastPathComponent().path)
    }

    private func write(_ index: CatalogIndex) throws {
        var sorted = index
        sorted.sort()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(sorted) + Data("\n".utf8)
        let temp = scratchFile("index.json")
        try writeFileDurably(data, to: temp)
        guard rename(temp.path, indexURL.path) == 0 else {
            let code = errno
            unlink(temp.path)
            throw CatalogError.ioFailure(path: indexURL.path, operation: "renaming into", errno: code)
        }
        fsyncDirectory(root.path)
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
    var failure: Int32 = 0
    data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            offset += n
        }
    }
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
