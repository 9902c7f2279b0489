import Catalog
import Ingest
import SystemSupport

/// Why the directory a command was told to write into cannot take its files.
struct OutputDirectoryError: Error, CustomStringConvertible {
    /// How the user named the directory, for the next step: `-o DIR`, `the export DIR`.
    let option: String
    let cause: FileSystemError

    var description: String {
        switch cause {
        case .readOnly(let path):
            return "\(path) is on a read-only file system; give \(option) a directory on a writable one"
        case .permissionDenied:
            return "\(cause.reason); give \(option) a directory you can write"
        case .notADirectory:
            return "\(cause.reason); give \(option) a directory (a missing one is created)"
        case .noSpace:
            return "\(cause.reason); free some space and run the command again"
        case .failed:
            return "\(cause.reason); give \(option) another directory"
        }
    }
}

/// `prepareOutputDirectory`, its failure worded for `option`.
func prepareOutput(_ path: String, option: String) throws(OutputDirectoryError) {
    do { try prepareOutputDirectory(path) } catch { throw OutputDirectoryError(option: option, cause: error) }
}

/// A write failure met while filling an output directory, worded like the up-front check; nil
/// for errors that are not about the file system.
func outputFailure(_ error: any Error, path: String, option: String) -> OutputDirectoryError? {
    if let e = error as? FileSystemError { return OutputDirectoryError(option: option, cause: e) }
    if let e = error as? OutputDirectoryError { return e }
    switch error {
    case CatalogError.ioFailure(let p, let operation, let code):
        return OutputDirectoryError(option: option, cause: FileSystemError(errno: code, path: p, operation: operation))
    case CatalogError.noSpace(let p):
        return OutputDirectoryError(option: option, cause: .noSpace(path: p))
    case let e as ArchiveWriteError where e.errno != 0:
        return OutputDirectoryError(
            option: option, cause: FileSystemError(errno: e.errno, path: e.path, operation: "writing"))
    default: break
    }
    guard let cause = FileSystemError(error, path: path, operation: "writing") else { return nil }
    return OutputDirectoryError(option: option, cause: cause)
}
