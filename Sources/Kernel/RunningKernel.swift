// The kernel this process runs on: `uname -r` and `uname -m`, the host's os-release, and the GNU
// build-id the kernel exposes in /sys/kernel/notes (the same note bytes as its vmlinux). Every
// path is read below a root directory so tests can point the probe at a fake tree; os-release is
// read below the host root (HostRoot.swift), which differs from / inside a container. /sys is
// read where it is mounted: a container's /sys is the host kernel's already.
import ELF
import FoundationEssentials
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Where the running kernel's facts are read from; the default is the real system.
public struct KernelProbe: Sendable {
    /// Prefix for `/sys/...`; `/` on a real system.
    public var root: String
    /// Where os-release is read; by default `root` itself.
    public var hostRoot: HostRoot
    /// Overrides `uname -r` (tests); nil reads uname(2).
    public var release: String?
    /// Overrides `uname -m` (tests); nil reads uname(2).
    public var machine: String?

    public init(root: String = "/", hostRoot: HostRoot? = nil, release: String? = nil, machine: String? = nil) {
        self.root = root
        self.hostRoot = hostRoot ?? HostRoot(path: root, source: .own)
        self.release = release
        self.machine = machine
    }

    /// The real system.
    public static let system = KernelProbe()

    /// `path` (absolute, e.g. `/sys/kernel/notes`) under `root`.
    public func resolve(_ path: String) -> String {
        root == "/" ? path : URL(fileURLWithPath: root).appendingPathComponent(path).path
    }

    public var notesPath: String { resolve("/sys/kernel/notes") }
    public var nativeBTFPath: String { resolve("/sys/kernel/btf/vmlinux") }
    /// The os-release file that names the distro, if the host root has one.
    public var osReleasePath: String? { HostRoot.osReleasePath(in: hostRoot.path) }
}

/// A kernel version as the first three numbers of a release string (`4.18.0-513.el8` → 4.18.0).
public struct KernelVersion: Comparable, Sendable, CustomStringConvertible {
    public let major: Int, minor: Int, patch: Int

    public init(major: Int, minor: Int, patch: Int = 0) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses the leading `X.Y[.Z]` of a release; nil when it does not start that way.
    public init?(release: String) {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(3).compactMap { Int($0) }
        guard numbers.count >= 2, release.first?.isNumber == true else { return nil }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers.count > 2 ? numbers[2] : 0)
    }

    public var description: String { "\(major).\(minor).\(patch)" }
    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }
}

/// What we know about the running kernel.
public struct RunningKernel: Sendable, Codable, Equatable {
    public var release: String
    public var arch: String
    /// /etc/os-release ID, or `custom` when there is none (an initramfs, a minimal container).
    public var distro: String
    /// /etc/os-release VERSION_ID, or `unknown`.
    public var distroVersion: String
    /// The GNU build-id from /sys/kernel/notes; nil when it cannot be read.
    public var buildID: BuildID?
    /// Why `buildID` is nil.
    public var buildIDProblem: String?
    /// /sys/kernel/btf/vmlinux when the kernel exposes its own BTF.
    public var nativeBTF: String?
    /// The root whose os-release gave `distro` (the host's, inside a container), and how it was found.
    public var hostRoot: HostRoot
    /// The os-release file read; nil when the host root has none.
    public var osRelease: String?

    public init(
        release: String, arch: String, distro: String, distroVersion: String,
        buildID: BuildID?, buildIDProblem: String?, nativeBTF: String?,
        hostRoot: HostRoot = .own, osRelease: String? = nil
    ) {
        self.release = release
        self.arch = arch
        self.distro = distro
        self.distroVersion = distroVersion
        self.buildID = buildID
        self.buildIDProblem = buildIDProblem
        self.nativeBTF = nativeBTF
        self.hostRoot = hostRoot
        self.osRelease = osRelease
    }

    /// Read every fact through `probe`; never fails (missing facts become nil or `unknown`).
    public static func read(_ probe: KernelProbe = .system) -> RunningKernel {
        var names = utsname()
        _ = uname(&names)
        let release = probe.release ?? field(&names.release)
        let machine = probe.machine ?? field(&names.machine)
        var distro = KernelIdentity.unknownDistro
        var version = KernelIdentity.unknownVersion
        let osRelease = probe.osReleasePath
        if let osRelease, let text = try? String(contentsOfFile: osRelease, encoding: .utf8) {
            let values = parseOSRelease(text)
            distro = values["ID"].flatMap { $0.isEmpty ? nil : $0 } ?? distro
            version = values["VERSION_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? version
        }
        var buildID: BuildID? = nil
        var problem: String? = nil
        switch readBuildID(notesPath: probe.notesPath) {
        case .success(let id): buildID = id
        case .failure(let why): problem = why.description
        }
        let native = FileManager.default.fileExists(atPath: probe.nativeBTFPath) ? probe.nativeBTFPath : nil
        return RunningKernel(
            release: release, arch: KernelArch.name(unameMachine: machine), distro: distro,
            distroVersion: version, buildID: buildID, buildIDProblem: problem, nativeBTF: native,
            hostRoot: probe.hostRoot, osRelease: osRelease)
    }

    /// Which os-release named the distro and how its root was found, in one line.
    public var hostIdentitySummary: String {
        "\(osRelease ?? "no os-release under \(hostRoot.path)") (\(hostRoot.summary); uname and /sys as mounted here)"
    }

    /// The kernel version numbers, when the release starts with them.
    public var version: KernelVersion? { KernelVersion(release: release) }

    /// `KEY=value` lines of os-release(5), quotes removed.
    public static func parseOSRelease(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimming(.whitespaces)
            guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            var value = String(trimmed[trimmed.index(after: eq)...])
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            values[String(trimmed[..<eq])] = value
        }
        return values
    }

    /// The GNU build-id note of /sys/kernel/notes (a run of native-endian Elf_Nhdr records).
    public static func readBuildID(notesPath: String) -> Result<BuildID, BuildIDProblem> {
        guard let data = FileManager.default.contents(atPath: notesPath) else {
            return .failure(
                FileManager.default.fileExists(atPath: notesPath)
                    ? .unreadable(path: notesPath) : .missing(path: notesPath))
        }
        let notes: [ELFNote]
        do {
            notes = try data.withUnsafeBytes { raw throws(ELFError) in
                try ELFFile.parseNotes(raw, littleEndian: isLittleEndianHost)
            }
        } catch {
            return .failure(.malformed(path: notesPath, reason: "\(error)"))
        }
        guard let note = notes.first(where: \.isGNUBuildID), !note.descriptor.isEmpty else {
            return .failure(.noBuildIDNote(path: notesPath))
        }
        return .success(BuildID(bytes: note.descriptor))
    }

    private static let isLittleEndianHost = 1.littleEndian == 1

    private static func field<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// Why the running kernel's build-id is unknown.
public enum BuildIDProblem: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    case unreadable(path: String)
    case malformed(path: String, reason: String)
    case noBuildIDNote(path: String)

    public var description: String {
        switch self {
        case .missing(let path): return "\(path) does not exist (is sysfs mounted?)"
        case .unreadable(let path): return "\(path) cannot be read"
        case .malformed(let path, let reason): return "\(path) is not a list of ELF notes: \(reason)"
        case .noBuildIDNote(let path): return "\(path) holds no GNU build-id note (kernel built without --build-id)"
        }
    }
}
