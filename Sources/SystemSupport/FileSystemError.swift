// Creating directories and files where the user pointed btfgen, with the errno that really
// failed. FileManager's createDirectory reports a CocoaError whose code loses the reason (and
// leaves errno stale), so every caller that must tell "read-only" from "not yours" from "a file
// is in the way" goes through `makeDirectories` and `FileSystemError` instead.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a path could not be created or written, by the errno that said so.
public enum FileSystemError: Error, Equatable, Sendable {
    /// EROFS.
    case readOnly(path: String)
    /// EACCES or EPERM.
    case permissionDenied(path: String)
    /// A component of the path (`blocking`) exists and is not a directory.
    case notADirectory(path: String, blocking: String)
    /// ENOSPC or EDQUOT.
    case noSpace(path: String)
    case failed(path: String, operation: String, errno: Int32)

    /// The errno `code` met while doing `operation` on `path`, classified.
    package init(errno code: Int32, path: String, operation: String) {
        switch code {
        case EROFS: self = .readOnly(path: path)
        case EACCES, EPERM: self = .permissionDenied(path: path)
        case ENOSPC, EDQUOT: self = .noSpace(path: path)
        case ENOTDIR, EEXIST: self = .notADirectory(path: path, blocking: firstNonDirectory(in: path) ?? path)
        default: self = .failed(path: path, operation: operation, errno: code)
        }
    }

    /// A Foundation file error (CocoaError with an underlying POSIXError, or a POSIXError) classified
    /// the same way; nil for anything that carries no errno.
    package init?(_ error: any Error, path: String, operation: String) {
        guard let code = posixCode(of: error) else { return nil }
        self.init(errno: code, path: path, operation: operation)
    }

    /// What went wrong, without the next step (the caller knows which option to name).
    public var reason: String {
        switch self {
        case .readOnly(let path): return "\(path) is on a read-only file system"
        case .permissionDenied(let path): return "no write permission on \(path) (running as uid \(geteuid()))"
        case .notADirectory(_, let blocking): return "\(blocking) is a file, not a directory"
        case .noSpace(let path): return "no space left on the device holding \(path)"
        case .failed(let path, let operation, let code):
            return "\(operation) \(path) failed: \(String(cString: strerror(code)))"
        }
    }

    public var path: String {
        switch self {
        case .readOnly(let p), .permissionDenied(let p), .notADirectory(let p, _), .noSpace(let p),
            .failed(let p, _, _):
            return p
        }
    }
}

/// The errno inside a Foundation file error: a POSIXError, or a CocoaError's underlying one.
package func posixCode(of error: any Error) -> Int32? {
    if let e = error as? POSIXError { return e.code.rawValue }
    if let e = error as? CocoaError {
        if let underlying = e.userInfo["NSUnderlyingError"] as? any Error, let code = posixCode(of: underlying) {
            return code
        }
        switch e.code.rawValue {
        case 4, 260: return ENOENT
        case 257, 513: return EACCES
        case 516: return EEXIST
        case 640: return ENOSPC
        case 642: return EROFS
        default: return nil
        }
    }
    return nil
}

/// `mkdir -p`: create `path` and its missing parents (mode 0755), reporting the errno that failed.
/// An existing directory, or a symbolic link to one, is fine.
package func makeDirectories(_ path: String) throws(FileSystemError) {
    var st = stat()
    if stat(path, &st) == 0 {
        if (st.st_mode & S_IFMT) == S_IFDIR { return }
        throw .notADirectory(path: path, blocking: path)
    }
    let parent = parentDirectory(of: path)
    if parent != path && !parent.isEmpty { try makeDirectories(parent) }
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
        let code = errno
        // Permission to create an entry is the parent's: name the directory the user must fix.
        let denied = (code == EACCES || code == EPERM) && !parent.isEmpty
        throw FileSystemError(errno: code, path: denied ? parent : path, operation: "creating")
    }
    // Lost a race with another creator, or EEXIST for something that is not a directory.
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
        throw .notADirectory(path: path, blocking: path)
    }
}

/// Can this process create files in the existing directory `path`? Creating one is the only
/// test that cannot lie (access(2) ignores NFS root squashing and ACL subtleties). The probe is
/// named `<pid>-…-write-probe`, as scratch files are, so a scratch sweep drops one left by a kill.
package func checkWritableDirectory(_ path: String) throws(FileSystemError) {
    // Unique per call: builds on several threads of one process probe the same directory.
    let probe = path + "/\(getpid())-\(UUID().uuidString.prefix(8))-write-probe"
    let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw FileSystemError(errno: errno, path: path, operation: "writing into") }
    close(fd)
    unlink(probe)
}

/// `path` without its last component ("" for a bare name, "/" for a top-level one).
func parentDirectory(of path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "" }
    if slash == p.startIndex { return "/" }
    return String(p[..<slash])
}

/// The first existing component of `path`, from the root down, that is not a directory.
func firstNonDirectory(in path: String) -> String? {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix = prefix.isEmpty ? "/\(part)" : (prefix == "." ? String(part) : "\(prefix)/\(part)")
        var st = stat()
        guard stat(prefix, &st) == 0 else { return nil }
        if (st.st_mode & S_IFMT) != S_IFDIR { return prefix }
    }
    return nil
}

/// Make sure `path` is a directory this process can create files in: created (with its parents)
/// when missing, refused when it is a file, read-only or not writable. Commands call this before
/// doing any work, so a bad output directory costs nothing and is named plainly.
package func prepareOutputDirectory(_ path: String) throws(FileSystemError) {
    try makeDirectories(path)
    if access(path, W_OK) != 0 { throw FileSystemError(errno: errno, path: path, operation: "writing into") }
}
