// Writing tar archives through libarchive, reproducibly: members in the order given, fixed
// times, owner 0/0 with no names, fixed modes, ustar headers (no pax atime/ctime records), and
// single-threaded xz so the compressed bytes do not depend on the machine.
import CLibArchive
#if canImport(Glibc)
import Glibc
#endif

/// Why an archive could not be written.
public struct ArchiveWriteError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public let errno: Int32
    public init(path: String, reason: String, errno: Int32) {
        self.path = path
        self.reason = reason
        self.errno = errno
    }
    public var description: String {
        errno == ENOSPC
            ? "no space left on the device holding \(path); free some space and run the command again"
            : "cannot write \(path): \(reason)"
    }
}

/// A tar (optionally xz-compressed) written member by member.
public final class ArchiveWriter {
    public enum Compression: Sendable { case none, xz }

    private let handle: OpaquePointer
    public let path: String
    private var finished = false
    /// Modification time stamped on every member (seconds since the epoch).
    public var mtime: Int = 0

    public init(path: String, compression: Compression) throws(ArchiveWriteError) {
        guard let a = archive_write_new() else {
            throw ArchiveWriteError(path: path, reason: "out of memory", errno: ENOMEM)
        }
        handle = a
        self.path = path
        archive_write_set_format_ustar(a)
        if compression == .xz {
            archive_write_add_filter_xz(a)
            archive_write_set_filter_option(a, "xz", "threads", "1")
            archive_write_set_filter_option(a, "xz", "compression-level", "9")
        }
        // Pad only to the tar record, not libarchive's default 10 KiB block.
        archive_write_set_bytes_in_last_block(a, 1)
        guard archive_write_open_filename(a, path) == ARCHIVE_OK else {
            throw ArchiveWriteError(path: path, reason: ArchiveWriter.message(a), errno: archive_errno(a))
        }
    }

    deinit {
        if !finished { archive_write_close(handle) }
        archive_write_free(handle)
    }

    /// Append a regular file.
    public func addFile(_ name: String, bytes: UnsafeRawBufferPointer, mode: Int32 = 0o644) throws(ArchiveWriteError) {
        try addEntry(name, type: 0o100000, mode: mode, size: bytes.count)
        var offset = 0
        while offset < bytes.count {
            let n = archive_write_data(handle, bytes.baseAddress! + offset, bytes.count - offset)
            guard n > 0 else { throw failure() }
            offset += n
        }
    }

    /// Append a regular file from an array.
    public func addFile(_ name: String, contents: [UInt8], mode: Int32 = 0o644) throws(ArchiveWriteError) {
        var failure: ArchiveWriteError? = nil
        contents.withUnsafeBytes { raw in
            do throws(ArchiveWriteError) { try addFile(name, bytes: raw, mode: mode) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Append a directory.
    public func addDirectory(_ name: String) throws(ArchiveWriteError) {
        try addEntry(name.hasSuffix("/") ? name : name + "/", type: 0o040000, mode: 0o755, size: 0)
    }

    private func addEntry(_ name: String, type: UInt32, mode: Int32, size: Int) throws(ArchiveWriteError) {
        guard let entry = archive_entry_new() else { throw ArchiveWriteError(path: path, reason: "out of memory", errno: ENOMEM) }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_filetype(entry, type)
        archive_entry_set_perm(entry, mode_t(mode))
        archive_entry_set_size(entry, la_int64_t(size))
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        archive_entry_set_mtime(entry, time_t(mtime), 0)
        guard archive_write_header(handle, entry) == ARCHIVE_OK else { throw failure() }
    }

    /// Flush and close; the file is complete only after this returns.
    public func finish() throws(ArchiveWriteError) {
        finished = true
        guard archive_write_close(handle) == ARCHIVE_OK else { throw failure() }
    }

    private func failure() -> ArchiveWriteError {
        ArchiveWriteError(path: path, reason: ArchiveWriter.message(handle), errno: archive_errno(handle))
    }

    static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
