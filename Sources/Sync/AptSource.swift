// A REPO argument as users already write it in /etc/apt/sources.list:
//   deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/x.gpg] http://deb.debian.org/debian bookworm main
import FoundationEssentials
import Kernel

/// One `deb` line of a sources.list.
public struct AptSource: Sendable, Equatable {
    /// The archive root, without a trailing slash.
    public var baseURL: String
    public var suite: String
    public var components: [String]
    /// Debian architectures from `[arch=…]`; empty when the line names none.
    public var architectures: [String]
    /// `[signed-by=FILE]`: the keyring apt would check the Release signature with.
    public var signedBy: String?
    /// The line as given, for messages.
    public var line: String
    /// `[check-valid-until=no]` (apt's option, for archive snapshots) turns off refusing a
    /// Release file whose Valid-Until has passed.
    public var checkValidUntil = true

    /// Parse one line; `deb-src` and options other than `arch` and `signed-by` are refused or ignored.
    public init(parsing line: String) throws(SyncError) {
        self.line = line
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let kind = words.first else { throw .badSourceLine(line: line, problem: "it is empty") }
        guard kind == "deb" else {
            throw .badSourceLine(
                line: line,
                problem: kind == "deb-src"
                    ? "deb-src holds source packages, not debuginfo" : "it does not start with 'deb'")
        }
        words.removeFirst()
        let options = try takeLineOptions(&words, line: line)
        let architectures = options["arch"].map { $0.split(separator: ",").map(String.init) } ?? []
        let signedBy = options["signed-by"]
        if let check = options["check-valid-until"] {
            checkValidUntil = !["no", "false", "0"].contains(check.lowercased())
        }
        guard words.count >= 2 else {
            throw .badSourceLine(line: line, problem: "it needs a URL and a suite after 'deb'")
        }
        let url = words[0]
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw .badSourceLine(line: line, problem: "\(url) is not an http:// or https:// URL")
        }
        baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        suite = words[1]
        guard !suite.hasSuffix("/") else {
            throw .badSourceLine(
                line: line, problem: "flat repositories ('\(suite)') are not supported; name a suite and components")
        }
        components = Array(words.dropFirst(2))
        guard !components.isEmpty else {
            throw .badSourceLine(line: line, problem: "it names no component (main, contrib, …)")
        }
        self.architectures = architectures
        self.signedBy = signedBy
    }

    /// `<base>/dists/<suite>/<file>`.
    public func distsURL(_ file: String) -> String { "\(baseURL)/dists/\(suite)/\(file)" }
    /// A pool file named by a Packages `Filename:` field.
    public func poolURL(_ filename: String) -> String { "\(baseURL)/\(filename)" }

    /// The keyring to check the Release signature with when `--keyring` is not given: the line's
    /// `signed-by`, else the distribution's archive keyring if it is installed, else none.
    public func defaultKeyring(fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) })
        -> String?
    {
        if let signedBy { return signedBy }
        let candidates: [String]
        if baseURL.contains("ddebs.ubuntu.com") {
            candidates = [
                "/usr/share/keyrings/ubuntu-dbgsym-keyring.gpg", "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
            ]
        } else if baseURL.contains("ubuntu") {
            candidates = ["/usr/share/keyrings/ubuntu-archive-keyring.gpg"]
        } else {
            candidates = ["/usr/share/keyrings/debian-archive-keyring.gpg"]
        }
        return candidates.first(where: fileExists)
    }
}

/// Debian's architecture names and the catalog's (`uname -m` style, as `KernelArch` spells them).
public enum DebianArch {
    /// `x86_64`/`amd64` → `amd64`, `aarch64`/`arm64` → `arm64`; other Debian names pass through.
    public static func debian(_ name: String) -> String {
        switch KernelArch.name(unameMachine: name) {
        case "x86_64": return "amd64"
        case "arm64": return "arm64"
        case "x86": return "i386"
        default: return name
        }
    }

    /// The running machine's Debian architecture.
    public static var host: String {
        #if arch(x86_64)
            return "amd64"
        #elseif arch(arm64)
            return "arm64"
        #else
            return "amd64"
        #endif
    }
}

/// The `[key=value …]` options that may open a repository argument, as apt writes them
/// (`[arch=amd64,arm64 signed-by=FILE]`) and rpm-md arguments take them too: removed from the
/// front of `words` and returned by key; words without `=` are ignored, as apt ignores them.
func takeLineOptions(_ words: inout [String], line: String) throws(SyncError) -> [String: String] {
    guard let first = words.first, first.hasPrefix("[") else { return [:] }
    // Options run to the word that ends with "]".
    var options: [String] = []
    while let w = words.first {
        words.removeFirst()
        options.append(w)
        if w.hasSuffix("]") { break }
    }
    guard options.last?.hasSuffix("]") == true else {
        throw .badSourceLine(line: line, problem: "the [options] are not closed with ']'")
    }
    var byKey: [String: String] = [:]
    for option in options.joined(separator: " ").dropFirst().dropLast().split(separator: " ") {
        let pair = option.split(separator: "=", maxSplits: 1).map(String.init)
        if pair.count == 2 { byKey[pair[0]] = pair[1] }
    }
    return byKey
}
