// Writing tar archives through libarchive, reproducibly: members in the order given, fixed
// times, owner 0/0 with no names, fixed modes, ustar headers (no pax atime/ctime records), and
// single-threaded xz so the compressed bytes do not depend on the machine.
//
// `.xzSmallest` is for archives of a few KB (bundles), where the xz settings are worth a few
// percent: the tar is collected in memory and compressed by liblzma at preset 9 and 9e (which
// libarchive cannot ask for; neither is always the smaller), each with xz's default literal
// context and position bits (lc 3, pb 2: right for BTF's 4-byte records, 8% smaller on a whole
// kernel's BTF) and with neither (lc 0, pb 0: 3% smaller on a bundle's hex build-ids and
// few-hundred-byte blobs), keeping the smallest (the first of equals). Past 1 MiB, where four
// passes would cost seconds and the settings next to nothing, it is preset 9, lc 3, pb 2 only.
// Every one is a plain xz stream that any xz reader takes.
import CLZMA
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
    public enum Compression: Sendable { case none, xz, xzSmallest }

    private let handle: OpaquePointer
    public let path: String
    private var finished = false
    /// The uncompressed tar, for `.xzSmallest`.
    private let sink: Sink?
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
        if compression == .xzSmallest {
            let sink = Sink()
            self.sink = sink
            let opened = archive_write_open2(
                a, Unmanaged.passUnretained(sink).toOpaque(), nil,
                { _, context, bytes, count in
                    let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                    sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
                    return la_ssize_t(count)
                }, nil, nil)
            guard opened == ARCHIVE_OK else {
                throw ArchiveWriteError(path: path, reason: ArchiveWriter.message(a), errno: archive_errno(a))
            }
            return
        }
        sink = nil
        guard archive_write_open_filename(a, path) == ARCHIVE_OK else {
            throw ArchiveWriteError(path: path, reason: ArchiveWriter.message(a), errno: archive_errno(a))
        }
    }

    private final class Sink { var bytes: [UInt8] = [] }

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
        guard let entry = archive_entry_new() else {
            throw ArchiveWriteError(path: path, reason: "out of memory", errno: ENOMEM)
        }
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
        guard let sink else { return }
        var best = try compress(sink.bytes, extreme: false, lc: 3, pb: 2)
        if sink.bytes.count <= 1 << 20 {
            for (extreme, lc, pb) in [(false, UInt32(0), UInt32(0)), (true, 3, 2), (true, 0, 0)] {
                let xz = try compress(sink.bytes, extreme: extreme, lc: lc, pb: pb)
                if xz.count < best.count { best = xz }
            }
        }
        try write(best)
    }

    /// One xz stream of `bytes` at preset 9 or 9e with these literal context and position bits.
    private func compress(_ bytes: [UInt8], extreme: Bool, lc: UInt32, pb: UInt32) throws(ArchiveWriteError)
        -> [UInt8]
    {
        var out = [UInt8](repeating: 0, count: btfgen_xz_bound(bytes.count))
        var code: Int32 = 0
        let written = bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                btfgen_xz_encode(
                    input.baseAddress, input.count, output.baseAddress, output.count, extreme ? 1 : 0, lc, pb, &code)
            }
        }
        guard written > 0 else {
            throw ArchiveWriteError(path: path, reason: "liblzma failed with code \(code)", errno: ENOMEM)
        }
        return Array(out.prefix(written))
    }

    /// Write the compressed archive to `path`, whole.
    private func write(_ bytes: [UInt8]) throws(ArchiveWriteError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ArchiveWriteError(path: path, reason: String(cString: strerror(errno)), errno: errno)
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let code = errno
                close(fd)
                throw ArchiveWriteError(path: path, reason: String(cString: strerror(code)), errno: code)
            }
            offset += n
        }
        guard close(fd) == 0 else {
            throw ArchiveWriteError(path: path, reason: String(cString: strerror(errno)), errno: errno)
        }
    }

    private func failure() -> ArchiveWriteError {
        ArchiveWriteError(path: path, reason: ArchiveWriter.message(handle), errno: archive_errno(handle))
    }

    static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
