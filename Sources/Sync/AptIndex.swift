// The apt chain of trust, followed link by link: the Release file (InRelease, or Release with
// Release.gpg) is checked with gpgv against a keyring; it gives the size and SHA256 of each
// Packages index; each Packages index gives the size and SHA256 of each package file. Only what
// the previous link vouched for is read.
import FoundationEssentials
import Ingest
import SystemSupport
import Toolchain

#if canImport(Glibc)
    import Glibc
#endif

/// A deb822 paragraph: `Field: value` lines, continuation lines starting with a space.
public struct Deb822Paragraph: Sendable, Equatable {
    public var fields: [String: String] = [:]

    public subscript(_ name: String) -> String? { fields[name.lowercased()] }

    /// Paragraphs of `text`, separated by blank lines.
    public static func parse(_ text: Substring) -> [Deb822Paragraph] {
        var result: [Deb822Paragraph] = []
        var current = Deb822Paragraph()
        var last: String? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                if !current.fields.isEmpty { result.append(current) }
                current = Deb822Paragraph()
                last = nil
            } else if line.first == " " || line.first == "\t" {
                if let last { current.fields[last, default: ""] += "\n" + line.trimming(.whitespaces) }
            } else if let colon = line.firstIndex(of: ":") {
                let key = line[..<colon].lowercased()
                current.fields[key] = String(line[line.index(after: colon)...]).trimming(.whitespaces)
                last = key
            }
        }
        if !current.fields.isEmpty { result.append(current) }
        return result
    }
}

/// A repository's signed Release file: the digests of its indexes.
public struct AptRelease: Sendable {
    /// `path` (relative to dists/SUITE/) → size and SHA256.
    public var files: [String: ExpectedFile]
    public var origin: String?
    public var suite: String?
    /// Where it was read from, for messages.
    public var url: String
    /// `Valid-Until` as given (RFC 2822 date) and in seconds since the epoch.
    public var validUntil: (text: String, seconds: Int)?

    public init(text: Substring, url: String) throws(SyncError) {
        guard let paragraph = Deb822Paragraph.parse(text).first else {
            throw .badIndex(url: url, problem: "it holds no fields")
        }
        guard let list = paragraph["SHA256"] else {
            throw .badIndex(url: url, problem: "it has no SHA256 list, so its indexes cannot be verified")
        }
        var files: [String: ExpectedFile] = [:]
        for line in list.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 3, let size = Int(words[1]), words[0].count == 64 else { continue }
            files[String(words[2])] = ExpectedFile(size: size, sha256: String(words[0]).lowercased())
        }
        guard !files.isEmpty else { throw .badIndex(url: url, problem: "its SHA256 list names no file") }
        self.files = files
        origin = paragraph["Origin"]
        suite = paragraph["Suite"] ?? paragraph["Codename"]
        self.url = url
        if let text = paragraph["Valid-Until"] {
            guard let seconds = AptRelease.parseDate(text) else {
                throw .badIndex(url: url, problem: "its Valid-Until '\(text)' is not a date")
            }
            validUntil = (text, seconds)
        }
    }

    /// Refuse a Release whose Valid-Until has passed (apt's Acquire::Check-Valid-Until): a
    /// mirror serving it is stale, or an attacker replays an old, validly signed index to hide
    /// newer packages.
    public func checkValid(now: Int = Int(time(nil))) throws(SyncError) {
        if let validUntil, validUntil.seconds < now {
            throw .expiredRelease(url: url, validUntil: validUntil.text)
        }
    }

    /// An RFC 2822 date as Release files write it (`Sat, 07 Dec 2026 00:22:33 UTC`), in seconds
    /// since the epoch; the zone must be UTC, GMT, Z or a numeric offset.
    static func parseDate(_ text: String) -> Int? {
        var words = text.split(separator: " ").map(String.init)
        if let first = words.first, first.hasSuffix(",") { words.removeFirst() }
        guard words.count == 5 else { return nil }
        var offset = 0
        switch words[4] {
        case "UTC", "GMT", "Z", "UT": offset = 0
        default:
            let zone = Array(words[4].utf8)
            guard zone.count == 5, zone[0] == UInt8(ascii: "+") || zone[0] == UInt8(ascii: "-"),
                let hhmm = Int(String(decoding: zone[1...], as: UTF8.self))
            else { return nil }
            offset = (hhmm / 100 * 3600 + hhmm % 100 * 60) * (zone[0] == UInt8(ascii: "-") ? -1 : 1)
        }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let clock = words[3].split(separator: ":").compactMap { Int($0) }
        guard let day = Int(words[0]), (1...31).contains(day), let month = months.firstIndex(of: words[1]),
            let year = Int(words[2]), year >= 1970, clock.count == 3, clock[0] < 24, clock[1] < 60, clock[2] <= 60
        else { return nil }
        return daysSinceEpoch(year: year, month: month + 1, day: day) * 86400 + clock[0] * 3600 + clock[1] * 60
            + clock[2] - offset
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }

    /// The best-compressed Packages index the Release file lists for one component and architecture.
    public func packagesIndex(component: String, architecture: String) -> (path: String, expected: ExpectedFile)? {
        for suffix in [".xz", ".gz", ""] {
            let path = "\(component)/binary-\(architecture)/Packages\(suffix)"
            if let e = files[path] { return (path, e) }
        }
        return nil
    }
}

/// Checking a Release file's OpenPGP signature with gpgv.
public struct SignatureCheck: Sendable {
    public let keyring: String
    public let gpgv: String

    /// `keyring` must exist; gpgv must be on PATH (or `$BTFGEN_GPGV`).
    public init(keyring: String) throws(SyncError) {
        let absolute = keyring.hasPrefix("/") ? keyring : FileManager.default.currentDirectoryPath + "/" + keyring
        guard FileManager.default.fileExists(atPath: absolute) else { throw .keyringMissing(path: keyring) }
        // gpgv takes an armored keyring for an empty one and reports "No public key".
        if SignatureCheck.isArmored(absolute) { throw .armoredKeyring(path: keyring) }
        guard let gpgv = locateTool(["gpgv"]) else { throw .tool(.missing(tool: "gpgv", package: "gpgv")) }
        self.keyring = absolute
        self.gpgv = gpgv
    }

    static func isArmored(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 14)
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n == head.count && head == Array("-----BEGIN PGP".utf8)
    }

    /// Verify a clearsigned InRelease at `path` and return the text it signs (gpgv's own output,
    /// so nothing outside the signature can slip in).
    public func verifiedClearsigned(_ path: String, output: String, url: String) throws(SyncError) -> [UInt8] {
        unlink(output)
        defer { unlink(output) }
        try run(["--keyring", keyring, "--output", output, path], url: url)
        guard let data = FileManager.default.contents(atPath: output) else {
            throw .badSignature(url: url, keyring: keyring, detail: "gpgv wrote no signed text")
        }
        return Array(data)
    }

    /// Verify a detached signature (Release.gpg) over `path` (Release).
    public func verifyDetached(signature: String, data path: String, url: String) throws(SyncError) {
        try run(["--keyring", keyring, signature, path], url: url)
    }

    private func run(_ arguments: [String], url: String) throws(SyncError) {
        let result: ToolOutput
        do { result = try ToolRunner().run(gpgv, arguments, name: "gpgv", check: false) } catch let e as ToolError {
            throw .tool(e)
        } catch { throw .tool(.launchFailed(tool: "gpgv", reason: "\(error)")) }
        guard result.status == 0 else {
            let lines = result.stderr.split(separator: "\n").map { $0.replacing("gpgv: ", with: "") }
            let detail =
                lines.first {
                    $0.contains("BAD signature") || $0.contains("No public key") || $0.contains("no valid OpenPGP")
                        || $0.contains("not a detached")
                } ?? lines.last ?? ""
            throw .badSignature(url: url, keyring: keyring, detail: String(detail))
        }
    }
}

/// The text a clearsigned message signs, without checking the signature (used only when no
/// keyring is available, and said so).
func unverifiedClearsignedText(_ bytes: [UInt8]) -> Substring {
    let text = String(decoding: bytes, as: UTF8.self)
    guard text.hasPrefix("-----BEGIN PGP SIGNED MESSAGE-----") else { return Substring(text) }
    var out: [Substring] = []
    var inBody = false
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if !inBody {
            if line.isEmpty { inBody = true }
            continue
        }
        if line.hasPrefix("-----BEGIN PGP SIGNATURE-----") { break }
        out.append(line.hasPrefix("- ") ? line.dropFirst(2) : line)
    }
    return Substring(out.joined(separator: "\n"))
}

/// One package stanza of a Packages index, with what is needed to fetch and verify it.
public struct AptPackage: Sendable, Equatable {
    public var name: String
    public var version: String
    public var architecture: String
    public var filename: String
    public var size: Int
    public var sha256: String
    /// `Installed-Size` (the index gives KiB), in bytes.
    public var installedSize: Int? = nil

    /// Every package stanza of a decompressed Packages index.
    public static func parseIndex(_ text: Substring, url: String) throws(SyncError) -> [AptPackage] {
        var result: [AptPackage] = []
        let paragraphs = Deb822Paragraph.parse(text)
        if paragraphs.isEmpty && !text.allSatisfy(\.isWhitespace) {
            throw .badIndex(url: url, problem: "it holds no package stanzas")
        }
        for (n, p) in paragraphs.enumerated() {
            guard let name = p["Package"] else {
                throw .badIndex(url: url, problem: "stanza \(n + 1) has no Package field")
            }
            guard let version = p["Version"], let arch = p["Architecture"], let filename = p["Filename"],
                let sizeText = p["Size"], let size = Int(sizeText), let sha = p["SHA256"], sha.count == 64
            else {
                throw .badIndex(
                    url: url, problem: "package \(name) lacks Version, Architecture, Filename, Size or SHA256")
            }
            guard !filename.hasPrefix("/"), !filename.split(separator: "/").contains("..") else {
                throw .badIndex(url: url, problem: "package \(name) has Filename \(filename) outside the archive")
            }
            result.append(
                AptPackage(
                    name: name, version: version, architecture: arch, filename: filename, size: size,
                    sha256: sha.lowercased(), installedSize: p["Installed-Size"].flatMap { Int($0) }.map { $0 * 1024 }))
        }
        return result
    }

    /// A kernel debuginfo package: Debian's `linux-image-<release>-dbg`, Ubuntu's
    /// `linux-image-<release>-dbgsym` and `linux-image-unsigned-<release>-dbgsym`. A release
    /// starts with three version numbers (`6.1.0-26-…`, `6.12.107+deb12-…`, `5.15.0-91-…`);
    /// meta packages, which hold no vmlinux, do not (`linux-image-amd64-dbg`,
    /// `linux-image-6.12-cloud-amd64-dbg`).
    public static func isKernelDebuginfo(_ name: String) -> Bool {
        guard name.hasPrefix("linux-image-"), name.hasSuffix("-dbg") || name.hasSuffix("-dbgsym") else {
            return false
        }
        var rest = name.dropFirst("linux-image-".count)
        if rest.hasPrefix("unsigned-") { rest = rest.dropFirst("unsigned-".count) }
        let version = rest.prefix { $0.isNumber || $0 == "." }
        let numbers = version.split(separator: ".", omittingEmptySubsequences: false)
        return numbers.count >= 3 && numbers.allSatisfy { !$0.isEmpty }
    }
}

/// Decompress a Packages index (xz, gz or plain) with libarchive's raw format.
func decompressIndex(_ path: String, url: String) throws(SyncError) -> Substring {
    if !url.hasSuffix(".xz") && !url.hasSuffix(".gz") {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io(path: path, reason: "cannot read back the download")
        }
        return Substring(String(decoding: data, as: UTF8.self))
    }
    do {
        let reader = try ArchiveReader(path: path, format: .raw, label: url)
        guard try reader.next() != nil else { throw SyncError.badIndex(url: url, problem: "it is empty") }
        let bytes = try reader.readCurrent(limit: 4 << 30)
        return Substring(String(decoding: bytes, as: UTF8.self))
    } catch let e as SyncError {
        throw e
    } catch {
        throw .badIndex(url: url, problem: "it does not decompress (\(error))")
    }
}
