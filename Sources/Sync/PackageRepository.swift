// A REPO argument of `btfgen sync`, told apart by its first word:
//   deb [arch=amd64 signed-by=KEYRING] URL SUITE COMPONENT...   an apt source (sources.list line)
//   rpm-md [arch=x86_64 signed-by=KEYRING] URL                  an rpm-md repository (dnf/yum)
//   https://…/BaseOS/x86_64/debug/tree/                         the same, with no options
import FoundationEssentials

/// Where kernel debuginfo packages come from: an apt source or an rpm-md repository.
public enum PackageRepository: Sendable, Equatable {
    case apt(AptSource)
    case rpmMD(RpmRepository)

    /// Parse one REPO argument: `deb …` / `deb-src …` is apt; `rpm-md …` or a bare http(s) URL
    /// is rpm-md; anything else is refused.
    public init(parsing argument: String) throws(SyncError) {
        let first = argument.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) ?? ""
        if first == "deb" || first == "deb-src" {
            self = .apt(try AptSource(parsing: argument))
        } else if first == "rpm-md" || first.hasPrefix("http://") || first.hasPrefix("https://") {
            self = .rpmMD(try RpmRepository(parsing: argument))
        } else {
            throw .badSourceLine(
                line: argument,
                problem: first.isEmpty
                    ? "it is empty"
                    : "it starts with neither 'deb' (an apt source) nor 'rpm-md' or an http(s) URL (an rpm-md repository)"
            )
        }
    }

    /// The argument as given, for messages.
    public var line: String {
        switch self {
        case .apt(let s): return s.line
        case .rpmMD(let r): return r.line
        }
    }
}
