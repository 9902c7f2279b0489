import FoundationEssentials
import SystemSupport

/// Why a catalog operation failed.
public enum CatalogError: Error, Equatable {
    /// The catalog (or its scratch space) cannot be written: read-only, not ours, a file in the way.
    case unwritable(root: String, FileSystemError)
    case unreadableIndex(path: String, reason: String)
    case ioFailure(path: String, operation: String, errno: Int32)
    case noSpace(path: String)
    case notFound(query: String, root: String)
    /// A hex query too short to be taken as a build-id prefix, matching no release either.
    case shortBuildIDPrefix(query: String, root: String)
    case ambiguous(query: String, matches: [String])
    case notADirectory(path: String)
    /// An entry's file no longer has the sha256 the index recorded.
    case digestMismatch(path: String, recorded: String, actual: String)
    /// An entry's file is gone or cannot be read.
    case entryUnreadable(path: String, reason: String)
    /// A catalog file (the index or an entry's BTF) exists but this user may not read it.
    case readDenied(path: String)
    /// A catalog write failed for a reason that carries no errno (the text says what).
    case failed(path: String, operation: String, reason: String)
    /// `catalog merge` was given a source directory that does not exist.
    case mergeSourceMissing(path: String)
    /// `catalog merge` was given the destination as a source.
    case mergeIntoItself(path: String)
    /// A `catalog merge` source cannot be read or holds a file that is not what its index says.
    case unusableMergeSource(root: String, reason: String)
}

extension CatalogError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unwritable(let root, let why):
            switch why {
            case .readOnly:
                return "catalog \(root) is on a read-only file system; give --catalog DIR on a writable one"
            case .permissionDenied:
                return
                    "\(why.reason), so nothing can be stored in catalog \(root); run as the catalog's owner, or give --catalog DIR you can write"
            case .noSpace:
                return
                    "no space left on the device holding catalog \(root); free some space and run the command again (nothing was stored)"
            case .notADirectory, .failed:
                return "catalog \(root) cannot be written: \(why.reason); give --catalog DIR with a writable directory"
            }
        case .unreadableIndex(let path, let reason):
            return
                "catalog index \(path) cannot be read (\(reason)); restore it from a backup or move it aside and rebuild the entries"
        case .ioFailure(let path, let operation, let code):
            return "\(operation) \(path) failed: \(errnoText(code))"
        case .noSpace(let path):
            return
                "no space left on the device holding \(path); free some space and run the command again (nothing was stored)"
        case .notFound(let query, let root):
            return
                "no catalog entry matches '\(query)' in \(root); see `btfgen list`, or make one with `btfgen build <debuginfo vmlinux>`"
        case .shortBuildIDPrefix(let query, let root):
            return
                "no catalog entry in \(root) has release '\(query)', and build-id prefixes need at least 8 hex digits; give 8 or more (see `btfgen list`)"
        case .ambiguous(let query, let matches):
            return
                "'\(query)' matches \(matches.count) entries (\(matches.joined(separator: ", "))); give a build-id (8 or more hex digits are enough)"
        case .notADirectory(let path):
            return "catalog root \(path) exists and is not a directory; pass --catalog DIR with a directory"
        case .digestMismatch(let path, let recorded, let actual):
            return
                "catalog file \(path) has sha256 \(actual) but the index records \(recorded): it changed after btfgen wrote it and is not used; rebuild it with `btfgen build --force <its debuginfo>`"
        case .entryUnreadable(let path, let reason):
            return
                "catalog file \(path) cannot be read (\(reason)); rebuild it with `btfgen build --force <its debuginfo>`"
        case .readDenied(let path):
            return
                "no read permission on catalog file \(path) (running as uid \(geteuid())); run as the catalog's owner, or have it made readable (chmod a+r)"
        case .failed(let path, let operation, let reason):
            return "\(operation) \(path) failed: \(reason)"
        case .mergeSourceMissing(let path):
            return "source catalog \(path) does not exist; give the directories `btfgen sync` or `btfgen build` wrote"
        case .mergeIntoItself(let path):
            return
                "source catalog \(path) is the destination (--catalog) itself; merge other catalogs into it, or give another --catalog DIR"
        case .unusableMergeSource(let root, let reason):
            return
                "source catalog \(root) is refused and nothing was merged: \(reason); fix that catalog (`btfgen doctor --catalog \(root)`) or leave it out"
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif

extension CatalogError {
    /// The errno `code` met while writing `path` inside the catalog at `root`: a read-only file
    /// system, a permission problem or a full disk is named as such, anything else as the errno.
    static func writing(_ code: Int32, path: String, operation: String, root: String) -> CatalogError {
        switch code {
        case EROFS:
            return .unwritable(root: root, FileSystemError(errno: code, path: path, operation: operation))
        case EACCES, EPERM:
            // Permission to create or rename an entry is its directory's: name that one.
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            return .unwritable(root: root, FileSystemError(errno: code, path: directory, operation: operation))
        case ENOSPC, EDQUOT: return .noSpace(path: path)
        default: return .ioFailure(path: path, operation: operation, errno: code)
        }
    }

    /// The errno `code` met while reading the catalog file `path`.
    static func reading(_ code: Int32, path: String) -> CatalogError {
        if code == EACCES || code == EPERM { return .readDenied(path: path) }
        return .ioFailure(path: path, operation: "reading", errno: code)
    }
}

/// `strerror` text for an errno value.
func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
