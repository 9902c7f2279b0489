// Who a kernel is: the facts that decide whether a BTF belongs to it.
import ELF

/// A GNU build-id (NT_GNU_BUILD_ID descriptor), written as lower-case hex like `readelf -n`.
public struct BuildID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let hex: String

    public init(bytes: [UInt8]) { hex = hexString(bytes) }

    /// Accepts hex of even length, at least 8 digits (a prefix is not an identity).
    public init?(hex: String) {
        let lower = hex.lowercased()
        guard lower.count >= 8, lower.count % 2 == 0, lower.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.hex = lower
    }

    public var description: String { hex }
    public static func < (a: BuildID, b: BuildID) -> Bool { a.hex < b.hex }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let id = BuildID(hex: s) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "not a build-id: \(s)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}

extension BuildID {
    /// How many leading bytes of each build-id a bundle records (format 4). Two different builds
    /// share their first 64 bits with odds of 2^-64, while the whole 20 bytes of a GNU build-id are
    /// random to xz and were 1.5 KB of a 77-kernel bundle whose blobs were 1 KB. A bundle pins the
    /// release and architecture as well; and no length guards against a forged build-id, which any
    /// linker writes as it is told.
    public static let recordedPrefixBytes = 8

    /// The id as a bundle records it: its first `recordedPrefixBytes` bytes.
    public var recordedPrefix: BuildID {
        hex.count > 2 * Self.recordedPrefixBytes
            ? BuildID(hex: String(hex.prefix(2 * Self.recordedPrefixBytes)))! : self
    }

    /// Whether this recorded id names the kernel whose whole build-id is `running`: equal, or, as
    /// bundles record them, at least `recordedPrefixBytes` bytes that begin it.
    public func names(_ running: BuildID) -> Bool {
        self == running || (hex.count >= 2 * Self.recordedPrefixBytes && running.hex.hasPrefix(hex))
    }
}

/// The one mapping between the names an architecture goes by.
///
/// btfgen records BTFHub's archive name (`x86_64`, `arm64`): the catalog's and a bundle's
/// `<distro>/<version>/<arch>/` directories, `KernelIdentity.arch` and the selection on the
/// target all use it. Everything else spells the same architecture its own way — the ELF header
/// (e_machine 183), `uname -m` (`aarch64`), Debian's package names (`arm64`, `amd64`), OCI
/// platforms (GOARCH: `arm64`, `amd64`) — and is translated here and nowhere else in Swift (the Makefile,
/// which cannot ask Swift, keeps its own two-line table for `-D__TARGET_ARCH_*` and `make install`).
public enum KernelArch {
    /// One architecture under all its names.
    public struct Names: Sendable, Equatable {
        /// BTFHub's directory name; what btfgen records.
        public let name: String
        /// ELF e_machine.
        public let elfMachine: UInt16
        /// `uname -m` on a kernel of this architecture (the first is the kernel's own).
        public let uname: [String]
        /// Debian's architecture (`dpkg --print-architecture`, package names like `-cloud-arm64`).
        public let debian: String
        /// OCI image platform `architecture` (Go's GOARCH).
        public let oci: String
    }

    /// Every architecture btfgen knows. No spelling names two rows (IdentityTests checks).
    public static let all: [Names] = [
        Names(name: "x86_64", elfMachine: ELFFile.machineX86_64, uname: ["x86_64"], debian: "amd64", oci: "amd64"),
        Names(
            name: "arm64", elfMachine: ELFFile.machineAArch64, uname: ["aarch64", "arm64"], debian: "arm64",
            oci: "arm64"),
        Names(name: "x86", elfMachine: 3, uname: ["i686", "i586", "i486", "i386"], debian: "i386", oci: "386"),
        Names(name: "arm", elfMachine: 40, uname: ["armv7l", "armv6l"], debian: "armhf", oci: "arm"),
        Names(name: "riscv64", elfMachine: 243, uname: ["riscv64"], debian: "riscv64", oci: "riscv64"),
        Names(name: "s390x", elfMachine: 22, uname: ["s390x"], debian: "s390x", oci: "s390x"),
        Names(name: "ppc64le", elfMachine: 21, uname: ["ppc64le"], debian: "ppc64el", oci: "ppc64le"),
    ]

    /// The row for any spelling of an architecture: BTFHub's, `uname -m`'s, Debian's or OCI's
    /// (`aarch64`, `arm64`, `amd64`, `x86_64`, …); nil for a name no row knows.
    public static func names(of spelling: String) -> Names? {
        all.first { $0.name == spelling }
            ?? all.first {
                $0.uname.contains(spelling) || $0.debian == spelling || $0.oci == spelling
            }
    }

    /// BTFHub's name for any spelling (`aarch64` → `arm64`, `amd64` → `x86_64`); nil when unknown.
    public static func canonical(_ spelling: String) -> String? { names(of: spelling)?.name }

    /// From an ELF e_machine value; `em<n>` for a machine no row knows, so nothing is mislabelled.
    public static func name(elfMachine: UInt16) -> String {
        all.first { $0.elfMachine == elfMachine }?.name ?? "em\(elfMachine)"
    }

    /// The ELF e_machine value for an architecture name; `em<n>` gives n back, and a name no row
    /// knows EM_NONE (0), so nothing is labelled as another architecture.
    public static func elfMachine(of name: String) -> UInt16 {
        if let known = names(of: name)?.elfMachine { return known }
        if name.hasPrefix("em"), let n = UInt16(name.dropFirst(2)) { return n }
        return 0
    }

    /// From `uname -m`; an unknown machine is kept as it is, so it matches only itself.
    public static func name(unameMachine: String) -> String {
        canonical(unameMachine) ?? unameMachine
    }

    /// The OCI platform architecture for an architecture name; the name itself when unknown.
    public static func ociArchitecture(of name: String) -> String {
        names(of: name)?.oci ?? name
    }
}

/// The identity of one kernel build.
public struct KernelIdentity: Hashable, Sendable, Codable {
    /// `uname -r`, e.g. `6.1.0-26-cloud-amd64`.
    public var release: String
    /// BTFHub-style architecture name.
    public var arch: String
    /// GNU build-id of the vmlinux; nil when it could not be read (BTFHub imports).
    public var buildID: BuildID?
    /// Distribution ID as in /etc/os-release (`debian`, `ubuntu`, `centos`, …) or `custom`.
    public var distro: String
    /// Distribution VERSION_ID (`12`, `20.04`, `8`), or `unknown`.
    public var distroVersion: String
    /// The compiler named in the banner, e.g. `gcc-12 (Debian 12.2.0-14) 12.2.0`.
    public var compiler: String?
    /// The whole `Linux version …` banner.
    public var banner: String?

    public init(
        release: String, arch: String, buildID: BuildID?, distro: String, distroVersion: String,
        compiler: String? = nil, banner: String? = nil
    ) {
        self.release = release
        self.arch = arch
        self.buildID = buildID
        self.distro = distro
        self.distroVersion = distroVersion
        self.compiler = compiler
        self.banner = banner
    }

    public static let unknownDistro = "custom"
    public static let unknownVersion = "unknown"
}
