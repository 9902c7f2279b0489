// An rpm-md repository (what dnf and yum read) as a REPO argument, and the discovery of its
// kernel debuginfo packages: repomd.xml → primary index → package files, each link verified
// before the next is read.
import Catalog
import FoundationEssentials
import Kernel

#if canImport(Glibc)
    import Glibc
#endif

/// One rpm-md repository: the directory that holds `repodata/repomd.xml`.
public struct RpmRepository: Sendable, Equatable {
    /// The base URL, without a trailing slash.
    public var baseURL: String
    /// rpm architectures from `[arch=…]` (any spelling `KernelArch` knows); empty when none.
    public var architectures: [String]
    /// `[signed-by=FILE]`: the keyring to check repomd.xml.asc with.
    public var signedBy: String?
    /// The argument as given, for messages.
    public var line: String

    /// Parse `rpm-md [arch=… signed-by=…] URL` or a bare `URL`.
    public init(parsing line: String) throws(SyncError) {
        self.line = line
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if words.first == "rpm-md" { words.removeFirst() }
        let options = try takeLineOptions(&words, line: line)
        let architectures = options["arch"].map { $0.split(separator: ",").map(String.init) } ?? []
        let signedBy = options["signed-by"]
        guard words.count == 1, let url = words.first else {
            throw .badSourceLine(
                line: line,
                problem: words.isEmpty
                    ? "it names no repository URL" : "an rpm-md repository is one URL, not \(words.count) words")
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw .badSourceLine(line: line, problem: "\(url) is not an http:// or https:// URL")
        }
        var base = Substring(url)
        while base.hasSuffix("/") { base = base.dropLast() }
        guard !base.hasSuffix("/repodata") && !base.hasSuffix("/repomd.xml") else {
            throw .badSourceLine(
                line: line, problem: "name the repository's base URL, the directory that holds repodata/")
        }
        baseURL = String(base)
        self.architectures = architectures
        self.signedBy = signedBy
    }

    /// A file of the repository, by its path relative to the base URL.
    public func url(_ path: String) -> String { "\(baseURL)/\(path)" }

    /// Where a package of the primary index is fetched from.
    public func url(of package: RpmPackage) -> String {
        guard let packageBase = package.base else { return url(package.location) }
        var base = packageBase[...]
        while base.hasSuffix("/") { base = base.dropLast() }
        return "\(base)/\(package.location)"
    }

    /// rpm's name for an architecture (`amd64`, `x86_64` → `x86_64`; `arm64`, `aarch64` →
    /// `aarch64`): the kernel's own `uname -m`, as rpm spells it.
    public static func rpmArch(_ spelling: String) -> String {
        KernelArch.names(of: spelling)?.uname.first ?? spelling
    }
}

extension RepositorySync {
    /// The kernel debuginfo packages of `repository` for the architectures asked for, each
    /// vouched for by a verified primary index.
    func rpmPackages(_ repository: RpmRepository, scratch: IndexScratch, notice: (SyncNotice) -> Void)
        throws(SyncError) -> [SourcePackage]
    {
        let keyringPath = options.keyring ?? repository.signedBy
        let check = try keyringPath.map { (k) throws(SyncError) in try SignatureCheck(keyring: k) }
        let repomdURL = repository.url("repodata/repomd.xml")
        let repomdFile = scratch.file("repomd.xml")
        defer { unlink(repomdFile) }
        try downloader.fetch(repomdURL, to: repomdFile, expected: nil)
        if let check {
            let signature = scratch.file("repomd.xml.asc")
            defer { unlink(signature) }
            do {
                try downloader.fetch(repomdURL + ".asc", to: signature, expected: nil)
            } catch .download(_, 404, _) {
                throw .unsignedRepository(url: repomdURL, keyring: check.keyring)
            }
            try check.verifyDetached(signature: signature, data: repomdFile, url: repomdURL)
        } else {
            notice(.unsignedRelease(url: repomdURL))
        }
        guard let data = FileManager.default.contents(atPath: repomdFile) else {
            throw .io(path: repomdFile, reason: "cannot read back the download")
        }
        let repomd = try RpmRepomd(xml: Array(data), url: repomdURL)
        let primary = try repomd.primary(url: repomdURL)
        guard !primary.location.hasPrefix("/"), !primary.location.contains("://"),
            !primary.location.split(separator: "/").contains("..")
        else {
            throw .badIndex(
                url: repomdURL, problem: "its primary location \(primary.location) is outside the repository")
        }
        let primaryURL = repository.url(primary.location)
        let primaryFile = scratch.file(
            "primary-" + (primary.location.split(separator: "/").last.map(String.init) ?? ""))
        defer { unlink(primaryFile) }
        try downloader.fetch(primaryURL, to: primaryFile, expected: primary.expected)
        let architectures = Set(
            (!options.architectures.isEmpty
                ? options.architectures
                : (!repository.architectures.isEmpty ? repository.architectures : [DebianArch.host]))
                .map(RpmRepository.rpmArch))
        let packages = try RpmPackage.parsePrimary(
            path: primaryFile, url: primaryURL, open: primary.open, keep: RpmPackage.isKernelDebuginfo)
        return packages.filter { architectures.contains($0.architecture) }.map {
            SourcePackage(
                name: $0.name, version: $0.version, architecture: $0.architecture, sha256: $0.sha256, size: $0.size,
                url: repository.url(of: $0))
        }
    }
}
