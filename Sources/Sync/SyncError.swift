import Catalog
import SystemSupport
import Toolchain

/// Why a sync, or one package of it, failed.
public enum SyncError: Error, Equatable {
    /// A REPO argument that is neither a `deb URL SUITE COMPONENT...` line nor an rpm-md URL.
    case badSourceLine(line: String, problem: String)
    /// The transfer failed (HTTP status, connection, timeout); `status` is 0 when no HTTP status came.
    case download(url: String, status: Int, reason: String)
    /// The bytes differ from what the signed index promises.
    case mismatch(url: String, expected: String, actual: String)
    /// The Release file's signature did not verify against the keyring.
    case badSignature(url: String, keyring: String, detail: String)
    case keyringMissing(path: String)
    /// An ASCII-armored (.asc) keyring, which gpgv cannot read.
    case armoredKeyring(path: String)
    /// A Release or Packages file that cannot be read as one.
    case badIndex(url: String, problem: String)
    /// libcurl.so.4 could not be loaded (sync loads it at run time).
    case libcurlMissing(reason: String)
    case tool(ToolError)
    case catalog(CatalogError)
    case io(path: String, reason: String)
    /// A write met ENOSPC or EDQUOT on `space`; `needed` is what `what` takes there, when known.
    case noSpace(FileSystemSpace, needed: Int?, what: String)
    /// The signed Release file's Valid-Until has passed: a stale mirror, or an old index replayed.
    case expiredRelease(url: String, validUntil: String)
    /// A keyring was given, but the rpm-md repository publishes no repomd.xml.asc to check.
    case unsignedRepository(url: String, keyring: String)
    /// libxml2.so.2 could not be loaded (rpm-md metadata is XML, read with it at run time).
    case libxml2Missing(reason: String)
}

extension SyncError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .badSourceLine(let line, let problem):
            return
                "'\(line)' is not a repository: \(problem); give a sources.list line such as 'deb [arch=amd64] http://deb.debian.org/debian bookworm main' or an rpm-md base URL such as 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/debug/tree/'"
        case .download(let url, let status, let reason):
            return
                "cannot fetch \(url): \(status > 0 ? "HTTP \(status)" : reason); check the repository URL and the network (proxy variables are honoured)"
        case .mismatch(let url, let expected, let actual):
            return
                "\(url) does not match the repository's signed index (expected \(expected), got \(actual)); refused: the mirror is stale or tampered with, try again later or another mirror"
        case .badSignature(let url, let keyring, let detail):
            return
                "the signature of \(url) does not verify against \(keyring)\(detail.isEmpty ? "" : " (\(detail))"); nothing was fetched from it: give the repository's keyring with --keyring FILE"
        case .keyringMissing(let path):
            return "keyring \(path) does not exist; give the repository's public keyring with --keyring FILE"
        case .armoredKeyring(let path):
            return
                "keyring \(path) is ASCII-armored, and gpgv reads only binary keyrings; convert it with `gpg --dearmor < \(path) > keyring.gpg` and pass --keyring keyring.gpg"
        case .badIndex(let url, let problem):
            return "\(url) is not a usable repository index: \(problem); the mirror may be mid-update, try again later"
        case .libcurlMissing(let reason):
            return
                "btfgen sync downloads through libcurl, which cannot be loaded (\(reason)); install it with `apt-get install libcurl4`"
        case .tool(let e): return e.description
        case .catalog(let e): return e.description
        case .io(let path, let reason): return "\(path): \(reason)"
        case .noSpace(let space, let needed, let what):
            let need = needed.map { "it needs about \(byteCount($0)), " } ?? ""
            return
                "no space left on \(space.name) while \(what): \(need)\(byteCount(space.available)) free; free some space there or give --catalog DIR on a bigger filesystem (nothing was stored; the next sync tries it again)"
        case .expiredRelease(let url, let validUntil):
            return
                "\(url) expired on \(validUntil) (its signed Valid-Until): the mirror is stale or replays an old index, so nothing was fetched from it; use an up-to-date mirror, or for an archive snapshot add check-valid-until=no to the line's [options]"
        case .unsignedRepository(let url, let keyring):
            return
                "\(url) has no signature (no repomd.xml.asc) to check against \(keyring); nothing was fetched from it: distributions' own rpm-md repositories are often unsigned, drop --keyring to trust their https and the digests"
        case .libxml2Missing(let reason):
            return
                "btfgen sync reads rpm-md metadata with libxml2, which cannot be loaded (\(reason)); install it with `apt-get install libxml2` or `dnf install libxml2`"
        }
    }
}
