// Read-only memory maps: a 600 MB debuginfo vmlinux is examined without copying it.
#if canImport(Glibc)
    import Glibc
#endif

/// Why a file could not be opened for reading.
public enum FileAccessError: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    case isDirectory(path: String)
    /// A fifo, socket or device: nothing that can be mapped (`kind` names which).
    case notAFile(path: String, kind: String)
    case unreadable(path: String, errno: Int32)

    /// What a non-regular, non-directory `st_mode` is, in words; nil for a regular file or a directory.
    public static func specialKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG, S_IFDIR: return nil
        case S_IFIFO: return "fifo (named pipe)"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFSOCK: return "socket"
        default: return "special file"
        }
    }

    public var description: String {
        switch self {
        case .missing(let path):
            return "\(path): no such file; check the path"
        case .isDirectory(let path):
            return "\(path) is a directory; pass the vmlinux file (or package) inside it"
        case .notAFile(let path, let kind):
            return "\(path) is a \(kind), not a regular file; save what it carries to a file and pass that"
        case .unreadable(let path, let code):
            return "\(path) cannot be read: \(String(cString: strerror(code)))"
        }
    }
}

/// A whole file mapped read-only (`MAP_PRIVATE`); nothing is ever written through it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws(FileAccessError) {
        self.path = path
        // O_NONBLOCK: opening a fifo without a writer would otherwise wait forever, before fstat
        // could tell it is no file at all. Regular files ignore the flag.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw errno == ENOENT ? .missing(path: path) : .unreadable(path: path, errno: errno)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw .isDirectory(path: path) }
        if let kind = FileAccessError.specialKind(st.st_mode) { throw .notAFile(path: path, kind: kind) }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .unreadable(path: path, errno: errno) }
        base = p
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// The file's bytes; valid only while this object lives. Callers that do not otherwise keep
    /// the object alive past their last use of the bytes must use `withBytes` instead.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Run `body` on the file's bytes with the mapping guaranteed to outlive it.
    public func withBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        defer { withExtendedLifetime(self) {} }
        return try body(bytes)
    }
}

/// A whole file in one read(2) into an array: cheaper than mapping it and copying. Only regular
/// files: a fifo would block and /dev/zero never ends.
public func readWholeFile(_ path: String) throws(FileAccessError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw errno == ENOENT ? .missing(path: path) : .unreadable(path: path, errno: errno) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, errno: errno) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw .isDirectory(path: path) }
    if let kind = FileAccessError.specialKind(st.st_mode) { throw .notAFile(path: path, kind: kind) }
    // sysfs files report size 4096 whatever they hold: read until EOF, growing as needed.
    var capacity = max(Int(st.st_size) + 1, 1 << 16)
    while true {
        var failure: Int32 = 0
        var complete = false
        let buffer = [UInt8](unsafeUninitializedCapacity: capacity) { raw, count in
            count = 0
            while count < raw.count {
                let n = read(fd, raw.baseAddress! + count, raw.count - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                if n == 0 {
                    complete = true
                    return
                }
                count += n
            }
        }
        if failure != 0 { throw .unreadable(path: path, errno: failure) }
        if complete { return buffer }
        // Filled the buffer without reaching EOF: start over with more room.
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw .unreadable(path: path, errno: errno) }
        capacity *= 4
    }
}

/// Offset of the first occurrence of `needle` in `haystack`.
public func firstOffset(of needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Int? {
    guard let base = haystack.baseAddress, !needle.isEmpty, haystack.count >= needle.count else { return nil }
    return needle.withUnsafeBytes { n -> Int? in
        // memchr for the first byte, memcmp for the rest: glibc's vectorised loops do the scanning.
        let first = Int32(n[0])
        var at = 0
        let last = haystack.count - n.count
        while at <= last {
            guard let hit = memchr(base + at, first, last - at + 1) else { return nil }
            let offset = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + offset, n.baseAddress!, n.count) == 0 { return offset }
            at = offset + 1
        }
        return nil
    }
}
