// A catalog file is trusted only while its bytes have the sha256 the index recorded when btfgen
// wrote it: a file edited, truncated or swapped since then still parses as BTF and would relocate
// programs to wrong offsets without a single error. Every consumer (minimize, bundle, attach,
// install, resolve) checks before use.
//
// Hashing a fleet's catalog on every use would cost more than the work itself (330 MB for 77
// kernels), so a check is remembered the way git's index remembers a file: by the file's device,
// inode, size, modification and change time. Any write to a file, a rename over it or a copy
// changes at least its change time, which no user-space call can set back; a file whose identity
// still matches the one it had when its bytes were hashed holds those bytes. Checks are kept per
// process, and across processes in `<root>/.verified` (one line per check, appended; written by
// whoever hashed: insert, merge and every verification). A catalog that cannot be written, or a
// file that has changed, is simply hashed again. `btfgen doctor` ignores the record and hashes
// every file.
import BTF
import FoundationEssentials
import Kernel
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

extension Catalog {
    /// The record of checks kept beside the index.
    public static let verifiedName = ".verified"
    static let verifiedFormat = "v1"

    /// Files already checked, by catalog root: catalog path → "sha256 identity", loaded from
    /// `<root>/.verified` on first use and extended by this process's own checks.
    private struct Checks {
        var loaded = false
        var byPath: [String: String] = [:]
    }
    private static let verified = Mutex([String: Checks]())

    var verifiedURL: URL { root.appendingPathComponent(Catalog.verifiedName) }

    /// The same catalog, checked without writing anything into it (merge's sources, which are
    /// only read): its record is still consulted.
    public var readOnly: Catalog {
        var copy = self
        copy.recordsChecks = false
        return copy
    }

    /// The entry's BTF bytes, refused unless they have the sha256 the index records. These bytes
    /// are what the caller uses (loads, installs), so they are always hashed themselves.
    public func verifiedBytes(of entry: CatalogEntry) throws(CatalogError) -> [UInt8] {
        let path = url(of: entry).path
        let identity = try Catalog.identity(of: path)
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw Catalog.unreadable(path, error) }
        return try file.withBytes { (bytes) throws(CatalogError) -> [UInt8] in
            try hashAndRecord(entry, path: path, identity: identity, bytes: bytes)
            return [UInt8](bytes)
        }
    }

    /// Check the entry's file without keeping its bytes: hashed unless a check of this very file
    /// (same identity, same recorded sha256) is on record. `full` hashes it whatever the record says.
    public func verify(_ entry: CatalogEntry, full: Bool = false) throws(CatalogError) {
        let path = url(of: entry).path
        let identity = try Catalog.identity(of: path)
        if !full, recorded(entry) == "\(entry.sha256) \(identity)" { return }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw Catalog.unreadable(path, error) }
        try file.withBytes { (bytes) throws(CatalogError) in
            try hashAndRecord(entry, path: path, identity: identity, bytes: bytes)
        }
    }

    /// Every entry's check, in index order, each file hashed (`btfgen doctor`).
    public func verifyAll() throws -> [(entry: CatalogEntry, problem: CatalogError?)] {
        try entries().map { entry -> (entry: CatalogEntry, problem: CatalogError?) in
            do throws(CatalogError) {
                try verify(entry, full: true)
                return (entry, nil)
            } catch {
                return (entry, error)
            }
        }
    }

    /// What makes a file the same file: device, inode, size, modification and change time.
    static func identity(of path: String) throws(CatalogError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == EACCES || code == EPERM { throw .readDenied(path: path) }
            throw .entryUnreadable(path: path, reason: String(cString: strerror(code)))
        }
        // Times as `stat -c %.9Y` prints them.
        func time(_ t: timespec) -> String {
            let ns = String(t.tv_nsec)
            return "\(t.tv_sec)." + String(repeating: "0", count: max(0, 9 - ns.count)) + ns
        }
        return "\(st.st_dev):\(st.st_ino):\(st.st_size):\(time(st.st_mtim)):\(time(st.st_ctim))"
    }

    /// Why an entry's file cannot be mapped: not ours to read is not a reason to rebuild it.
    private static func unreadable(_ path: String, _ error: FileAccessError) -> CatalogError {
        if case .unreadable(_, let code) = error, code == EACCES || code == EPERM { return .readDenied(path: path) }
        return .entryUnreadable(path: path, reason: error.description)
    }

    private func hashAndRecord(_ entry: CatalogEntry, path: String, identity: String, bytes: UnsafeRawBufferPointer)
        throws(CatalogError)
    {
        let actual = SHA256.hex(bytes)
        guard actual == entry.sha256 else {
            throw .digestMismatch(path: path, recorded: entry.sha256, actual: actual)
        }
        record(entry.path, "\(actual) \(identity)")
    }

    /// The check on record for the entry's file, loading the catalog's record once per process.
    private func recorded(_ entry: CatalogEntry) -> String? { recorded(path: entry.path) }

    private func recorded(path: String) -> String? {
        let key = root.path
        let known = Catalog.verified.withLock { all -> (loaded: Bool, check: String?) in
            (all[key]?.loaded ?? false, all[key]?.byPath[path])
        }
        if known.loaded { return known.check }
        let loaded = loadRecord()
        return Catalog.verified.withLock { all in
            all[key, default: Checks()].byPath.merge(loaded) { mine, _ in mine }
            all[key]!.loaded = true
            return all[key]!.byPath[path]
        }
    }

    // MARK: Type index files

    /// Where an entry's type index lives: `.index/<entry path>.types`.
    static func typeIndexPath(of path: String) -> String { ".index/\(path).types" }

    /// The entry's type index, when this catalog wrote it for the entry's BTF and it is unchanged
    /// since: trusted like the BTF files, by the identity on record.
    public func typeIndex(of entry: CatalogEntry) -> TypeIndexFile? {
        let relative = Catalog.typeIndexPath(of: entry.path)
        let path = root.appendingPathComponent(relative).path
        guard let sha = TypeIndexFile.digestBytes(entry.sha256), let identity = try? Catalog.identity(of: path),
            let check = recorded(path: relative), check.hasSuffix(" " + identity),
            let mapped = try? MappedFile(path: path)
        else { return nil }
        return TypeIndexFile(bytes: mapped.bytes, owner: mapped, btfSHA256: sha)
    }

    /// Write the entry's type index from `index` (indexed with `TypeIndexFile.fullPrefilter`),
    /// atomically, and record it with its identity. Derived data: a catalog that cannot be
    /// written goes without it.
    public func storeTypeIndex(of entry: CatalogEntry, from index: BTFIndex) {
        guard recordsChecks, let sha = TypeIndexFile.digestBytes(entry.sha256),
            let bytes = TypeIndexFile.encode(index, btfSHA256: sha)
        else { return }
        let relative = Catalog.typeIndexPath(of: entry.path)
        let url = root.appendingPathComponent(relative)
        do {
            try makeDirectories(url.deletingLastPathComponent().path)
            try replaceFile(at: url, with: Data(bytes), sync: false)
            let identity = try Catalog.identity(of: url.path)
            record(relative, "\(bytes.withUnsafeBytes { SHA256.hex($0) }) \(identity)")
        } catch {}
    }

    /// Hash a newly placed entry's file and write its type index, so that its first use neither
    /// hashes it again nor locates all its records.
    func recordPlaced(_ entry: CatalogEntry) {
        guard (try? verify(entry, full: true)) != nil,
            let mapped = try? BTFIndex.mapping(
                url(of: entry).path, validate: false, prefilter: TypeIndexFile.fullPrefilter)
        else { return }
        storeTypeIndex(of: entry, from: mapped.index)
    }

    /// Drop the type indexes of the files at `paths` (removed entries).
    func removeTypeIndexes(of paths: [String]) {
        for path in paths { unlink(root.appendingPathComponent(Catalog.typeIndexPath(of: path)).path) }
    }

    /// Remember a successful check, in this process and, where the catalog can be written, in
    /// `.verified` (one line, one append: concurrent writers never interleave within a line).
    private func record(_ path: String, _ check: String) {
        let key = root.path
        let new = Catalog.verified.withLock { all -> Bool in
            if all[key]?.byPath[path] == check { return false }
            all[key, default: Checks()].byPath[path] = check
            return true
        }
        guard new, recordsChecks, !path.contains("\n") else { return }
        let line = Array("\(Catalog.verifiedFormat) \(check) \(path)\n".utf8)
        let fd = open(verifiedURL.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }  // a read-only catalog: checked again next time
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// `.verified` read: the last check of each path. A record grown to several times the paths
    /// it holds (each re-check appends) is rewritten with one line per path.
    private func loadRecord() -> [String: String] {
        guard let bytes = try? readWholeFile(verifiedURL.path) else { return [:] }
        var checks: [String: String] = [:]
        var lines = 0
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            lines += 1
            // "v1 <sha256> <identity> <path>", path last (it may hold spaces).
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, fields[0].elementsEqual(Catalog.verifiedFormat.utf8), fields[1].count == 64
            else { continue }
            let path = String(decoding: fields[3], as: UTF8.self)
            checks[path] = String(decoding: fields[1], as: UTF8.self) + " " + String(decoding: fields[2], as: UTF8.self)
        }
        if lines > 2 * checks.count + 64 {
            let text = checks.sorted { $0.key < $1.key }.map { "\(Catalog.verifiedFormat) \($0.value) \($0.key)\n" }
            try? replaceFile(at: verifiedURL, with: Data(text.joined().utf8), sync: false)
        }
        return checks
    }
}
