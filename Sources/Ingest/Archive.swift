// libarchive, wrapped just enough to walk an archive (possibly nested inside another one, as a
// .deb's data.tar.xz sits inside its ar container) and copy one member to a file.
import CLibArchive

#if canImport(Glibc)
    import Glibc
#endif

/// A libarchive read handle over a file or over the current member of another archive.
public final class ArchiveReader {
    let handle: OpaquePointer
    let label: String
    private var source: NestedSource?

    /// Open `path` with every filter and the given formats enabled. Messages name `label` (the
    /// user's name for the file when `path` is btfgen's copy of it).
    public init(path: String, format: ArchiveFormat, label: String? = nil) throws(IngestError) {
        let label = label ?? path
        guard let a = archive_read_new() else { throw .archive(path: label, reason: "out of memory") }
        handle = a
        self.label = label
        archive_read_support_filter_all(a)
        format.enable(on: a)
        if archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK {
            // Fully initialised by now: deinit frees the handle.
            throw .archive(path: label, reason: ArchiveReader.message(a))
        }
    }

    /// Open the current member of `outer` as an archive of its own.
    init(member outer: ArchiveReader, name: String, format: ArchiveFormat) throws(IngestError) {
        guard let a = archive_read_new() else { throw .archive(path: name, reason: "out of memory") }
        handle = a
        label = "\(outer.label):\(name)"
        archive_read_support_filter_all(a)
        format.enable(on: a)
        let src = NestedSource(outer: outer.handle)
        source = src
        let status = archive_read_open(a, Unmanaged.passUnretained(src).toOpaque(), nil, nestedRead, nil)
        if status != ARCHIVE_OK {
            throw .archive(path: label, reason: ArchiveReader.message(a))
        }
    }

    deinit { archive_read_free(handle) }

    /// Advance to the next member; nil at the end.
    public func next() throws(IngestError) -> ArchiveMember? {
        var entry: OpaquePointer? = nil
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
            throw .archive(path: label, reason: ArchiveReader.message(handle))
        }
        let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let link = (archive_entry_symlink(entry) ?? archive_entry_hardlink(entry)).map { String(cString: $0) }
        return ArchiveMember(
            name: name, size: archive_entry_size(entry), fileType: UInt32(archive_entry_filetype(entry)),
            isHardlink: archive_entry_hardlink(entry) != nil, linkTarget: link)
    }

    /// Copy the current member into a new file at `path` (removed again on failure).
    func extractCurrent(to path: String) throws(IngestError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw errno == ENOSPC ? .noSpace(path: path) : .io(path: path, reason: String(cString: strerror(errno)))
        }
        let status = archive_read_data_into_fd(handle, fd)
        let code = archive_errno(handle)
        let syncFailed = fsync(fd) != 0 ? errno : 0
        close(fd)
        if status != ARCHIVE_OK || syncFailed != 0 {
            unlink(path)
            if code == ENOSPC || syncFailed == ENOSPC { throw .noSpace(path: path) }
            throw .archive(path: label, reason: ArchiveReader.message(handle))
        }
    }

    /// The current member's bytes, up to `limit`.
    public func readCurrent(limit: Int) throws(IngestError) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 14)
        while out.count < limit {
            let n = buffer.withUnsafeMutableBytes { archive_read_data(handle, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 { throw .archive(path: label, reason: ArchiveReader.message(handle)) }
            out += buffer[0..<Int(n)]
        }
        return out
    }

    /// The next bytes of the current member into `buffer`; 0 at its end. For members too large
    /// to hold (a repository's decompressed index), read as they are used.
    public func readData(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        let n = archive_read_data(handle, buffer.baseAddress, buffer.count)
        if n < 0 { throw .archive(path: label, reason: ArchiveReader.message(handle)) }
        return Int(n)
    }

    static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "truncated or corrupt data"
    }
}

/// One member's header.
public struct ArchiveMember: Sendable, Equatable {
    public let name: String
    public let size: Int64
    /// `S_IFMT` bits: regular 0o100000, directory 0o040000, symlink 0o120000, devices, fifos.
    public let fileType: UInt32
    public let isHardlink: Bool
    public let linkTarget: String?

    public var isRegular: Bool { fileType == 0o100000 && !isHardlink }
    public var isDirectory: Bool { fileType == 0o040000 }
}

/// Feeds an inner archive from the outer archive's current member.
private final class NestedSource {
    let outer: OpaquePointer
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
    init(outer: OpaquePointer) { self.outer = outer }
    deinit { buffer.deallocate() }
}

private let nestedRead:
    @convention(c) (
        OpaquePointer?, UnsafeMutableRawPointer?,
        UnsafeMutablePointer<UnsafeRawPointer?>?
    ) -> la_ssize_t = { _, context, out in
        let source = Unmanaged<NestedSource>.fromOpaque(context!).takeUnretainedValue()
        let n = archive_read_data(source.outer, source.buffer, 1 << 16)
        out?.pointee = UnsafeRawPointer(source.buffer)
        return la_ssize_t(n)
    }

/// The container formats btfgen reads.
public enum ArchiveFormat: Sendable {
    case ar, tar, cpio, raw

    func enable(on a: OpaquePointer) {
        switch self {
        case .ar: archive_read_support_format_ar(a)
        case .tar: archive_read_support_format_tar(a)
        case .cpio: archive_read_support_format_cpio(a)
        case .raw: archive_read_support_format_raw(a)
        }
    }
}
