// `--keep-packages DIR`, apt's /var/cache/apt/archives for sync: each verified package is kept
// under its own file name, and a file found there is used instead of downloading it again, but
// only when it has exactly the size and SHA256 the signed index gives now. CI keeps the 280 MB
// Debian packages it already has this way, and a catalog rebuilt from scratch costs no download.
import Catalog
import FoundationEssentials
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

extension RepositorySync {
    /// The kept copy of `name` when it is the very file the index vouches for; nil when there is
    /// none, or it differs (then the download replaces it).
    func keptPackage(name: String, expected: ExpectedFile) throws(SyncError) -> String? {
        guard let directory = options.keepPackages else { return nil }
        let path = directory + "/" + name
        guard fileSize(path) == expected.size else { return nil }
        return try sha256(ofFile: path) == expected.sha256.lowercased() ? path : nil
    }

    /// Move the verified download `file` into the keep directory (renamed when on the same
    /// filesystem, else copied to a temporary sibling first), so readers never see half a
    /// package. Returns the kept path, or nil without --keep-packages.
    func keep(_ file: String, name: String) throws(SyncError) -> String? {
        guard let directory = options.keepPackages else { return nil }
        let destination = directory + "/" + name
        let temp = temporarySibling(of: destination)
        if rename(file, temp) != 0 {
            guard errno == EXDEV else { throw Downloader.writeFailure(errno, path: temp) }
            try copyDurably(file, to: temp)
            unlink(file)
        }
        chmod(temp, 0o644)
        guard rename(temp, destination) == 0 else {
            let code = errno
            unlink(temp)
            throw Downloader.writeFailure(code, path: destination)
        }
        return destination
    }

    private func copyDurably(_ source: String, to destination: String) throws(SyncError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .io(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw Downloader.writeFailure(errno, path: destination) }
        var failure: Int32 = 0
        readChunks(input, chunk: 1 << 20) { chunk in
            if failure == 0 { failure = writeAll(output, chunk) }
        }
        if failure == 0 && fsync(output) != 0 { failure = errno }
        close(output)
        if failure == 0 && fileSize(destination) != fileSize(source) { failure = EIO }
        if failure != 0 {
            unlink(destination)
            throw Downloader.writeFailure(failure, path: destination)
        }
    }
}
