// A catalog file is trusted only while its bytes have the sha256 the index recorded when btfgen
// wrote it: a file edited, truncated or swapped since then still parses as BTF and would relocate
// programs to wrong offsets without a single error. Every consumer (minimize, bundle, attach,
// install, resolve) checks before use; each file is hashed once per process.
import FoundationEssentials
import Kernel
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension Catalog {
    /// Files already checked in this process: path, digest, and the file's identity and change
    /// time, so a file replaced or rewritten since is hashed again.
    private static let verified = Mutex(Set<String>())

    /// The entry's BTF bytes, refused unless they have the sha256 the index records.
    public func verifiedBytes(of entry: CatalogEntry) throws(CatalogError) -> [UInt8] {
        let path = url(of: entry).path
        let key = try Catalog.checkKey(path, entry)
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw Catalog.unreadable(path, error) }
        return try file.withBytes { (bytes) throws(CatalogError) -> [UInt8] in
            try check(entry, path: path, key: key, bytes: bytes)
            return [UInt8](bytes)
        }
    }

    /// Check the entry's file without keeping its bytes (hashed once per process).
    public func verify(_ entry: CatalogEntry) throws(CatalogError) {
        let path = url(of: entry).path
        let key = try Catalog.checkKey(path, entry)
        if Catalog.verified.withLock({ $0.contains(key) }) { return }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw Catalog.unreadable(path, error) }
        try file.withBytes { (bytes) throws(CatalogError) in try check(entry, path: path, key: key, bytes: bytes) }
    }

    private static func checkKey(_ path: String, _ entry: CatalogEntry) throws(CatalogError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == EACCES || code == EPERM { throw .readDenied(path: path) }
            throw .entryUnreadable(path: path, reason: String(cString: strerror(code)))
        }
        return
            "\(path)\0\(entry.sha256)\0\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec):\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
    }

    /// Why an entry's file cannot be mapped: not ours to read is not a reason to rebuild it.
    private static func unreadable(_ path: String, _ error: FileAccessError) -> CatalogError {
        if case .unreadable(_, let code) = error, code == EACCES || code == EPERM { return .readDenied(path: path) }
        return .entryUnreadable(path: path, reason: error.description)
    }

    /// Every entry's check, in index order (`btfgen doctor`).
    public func verifyAll() throws -> [(entry: CatalogEntry, problem: CatalogError?)] {
        try entries().map { entry -> (entry: CatalogEntry, problem: CatalogError?) in
            do throws(CatalogError) {
                try verify(entry)
                return (entry, nil)
            } catch {
                return (entry, error)
            }
        }
    }

    private func check(_ entry: CatalogEntry, path: String, key: String, bytes: UnsafeRawBufferPointer)
        throws(CatalogError)
    {
        if Catalog.verified.withLock({ $0.contains(key) }) { return }
        let actual = SHA256.hex(bytes)
        guard actual == entry.sha256 else {
            throw .digestMismatch(path: path, recorded: entry.sha256, actual: actual)
        }
        _ = Catalog.verified.withLock { $0.insert(key) }
    }
}
