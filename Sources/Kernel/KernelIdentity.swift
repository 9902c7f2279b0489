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

/// Architecture names as BTFHub's archive spells them (`x86_64`, `arm64`, …).
public enum KernelArch {
    /// From an ELF e_machine value.
    public static func name(elfMachine: UInt16) -> String {
        switch elfMachine {
        case 62: return "x86_64"
        case 183: return "arm64"
        case 3: return "x86"
        case 40: return "arm"
        case 243: return "riscv64"
        case 22: return "s390x"
        case 21: return "ppc64le"
        default: return "em\(elfMachine)"
        }
    }

    /// The ELF e_machine value for an architecture name (x86_64 for names it does not know).
    public static func elfMachine(of name: String) -> UInt16 {
        for machine: UInt16 in [62, 183, 3, 40, 243, 22, 21] where Self.name(elfMachine: machine) == name {
            return machine
        }
        return 62
    }

    /// From `uname -m`.
    public static func name(unameMachine: String) -> String {
        switch unameMachine {
        case "aarch64", "arm64": return "arm64"
        case "x86_64", "amd64": return "x86_64"
        case "i386", "i486", "i586", "i686": return "x86"
        default: return unameMachine
        }
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
