import FoundationEssentials
import Kernel

#if canImport(Glibc)
    import Glibc
#endif

/// How a catalog BTF file was produced.
public struct BuildRecord: Codable, Hashable, Sendable {
    /// `detached` (pahole --btf_encode_detached) or `objcopy` (pahole -J, llvm-objcopy, strip -x).
    public var method: String
    public var pahole: String
    public var llvmObjcopy: String?
    public var strip: String?
    /// The pahole flags used, in order.
    public var paholeFlags: [String]
    public var btfgen: String

    public init(
        method: String, pahole: String, llvmObjcopy: String?, strip: String?,
        paholeFlags: [String], btfgen: String
    ) {
        self.method = method
        self.pahole = pahole
        self.llvmObjcopy = llvmObjcopy
        self.strip = strip
        self.paholeFlags = paholeFlags
        self.btfgen = btfgen
    }
}

/// `2026-11-23T11:08:28Z`: how the catalog, bundles and install records write times. The same
/// text as Foundation's `ISO8601DateFormatter` with `.withInternetDateTime`, which rounds to the
/// millisecond before it drops the fraction (…:28.9996 is written as …:29).
public func utcTimestamp(_ date: Date = Date()) -> String {
    let milliseconds = ((date.timeIntervalSince1970) * 1000).rounded()
    var seconds = time_t((milliseconds / 1000).rounded(.down))
    var t = tm()
    guard gmtime_r(&seconds, &t) != nil else { return "1970-01-01T00:00:00Z" }
    func digits(_ n: Int32, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(digits(t.tm_year + 1900, 4))-\(digits(t.tm_mon + 1, 2))-\(digits(t.tm_mday, 2))"
        + "T\(digits(t.tm_hour, 2)):\(digits(t.tm_min, 2)):\(digits(t.tm_sec, 2))Z"
}

/// One kernel's BTF in the catalog, as recorded in `index.json`.
public struct CatalogEntry: Codable, Hashable, Sendable {
    public var identity: KernelIdentity
    /// Path of the raw BTF file relative to the catalog root: `<distro>/<version>/<arch>/<release>.btf`.
    public var path: String
    public var sha256: String
    public var size: Int
    public var typeCount: Int
    public var build: BuildRecord?
    /// File name of the input the entry was built from (or imported from).
    public var source: String
    /// ISO 8601 UTC.
    public var builtAt: String
    /// True when the file is in btfgen's canonical type order (written by `btfgen build`): its
    /// bytes depend only on the kernel's types, so two canonical entries with one sha256 hold the
    /// same BTF, whoever built them. Absent for imports and older entries.
    public var canonical: Bool?
    /// The repository package the entry was built from (`btfgen sync`); nil for entries built
    /// from local files and for indexes written before sync existed.
    public var package: SourcePackage? = nil

    public init(
        identity: KernelIdentity, path: String, sha256: String, size: Int, typeCount: Int,
        build: BuildRecord?, source: String, builtAt: String, canonical: Bool? = nil
    ) {
        self.identity = identity
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.typeCount = typeCount
        self.build = build
        self.source = source
        self.builtAt = builtAt
        self.canonical = canonical
    }
}

/// The whole `index.json`.
public struct CatalogIndex: Codable, Sendable, Equatable {
    public static let currentFormat = 1
    public var format: Int
    public var entries: [CatalogEntry]
    /// Repository packages that could not be built (`btfgen sync`), so they are not retried.
    /// Absent from indexes written before sync existed, and omitted while empty, so older
    /// btfgens read the index unchanged.
    public var failures: [FailureRecord]

    public init(entries: [CatalogEntry] = [], failures: [FailureRecord] = []) {
        format = CatalogIndex.currentFormat
        self.entries = entries
        self.failures = failures
    }

    enum CodingKeys: String, CodingKey { case format, entries, failures }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(Int.self, forKey: .format)
        entries = try c.decode([CatalogEntry].self, forKey: .entries)
        failures = try c.decodeIfPresent([FailureRecord].self, forKey: .failures) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(entries, forKey: .entries)
        if !failures.isEmpty { try c.encode(failures, forKey: .failures) }
    }

    /// Entries in a stable order: distro, version, arch, release, build-id.
    public mutating func sort() {
        entries.sort {
            (
                $0.identity.distro, $0.identity.distroVersion, $0.identity.arch, $0.identity.release,
                $0.identity.buildID?.hex ?? ""
            )
                < (
                    $1.identity.distro, $1.identity.distroVersion, $1.identity.arch, $1.identity.release,
                    $1.identity.buildID?.hex ?? ""
                )
        }
        failures.sort { ($0.package.name, $0.package.version) < ($1.package.name, $1.package.version) }
    }
}
