// Whose distribution the running kernel belongs to. Inside a container, `uname -r` and /sys (the
// build-id in /sys/kernel/notes, /sys/kernel/btf/vmlinux) are the host kernel's, but
// /etc/os-release is the container image's: a Kubernetes DaemonSet built on Debian would file a
// RHEL 8 node's kernel under debian/12. The host's os-release is read where the conventions put
// the host's root instead, in this order:
//
//   1. --host-root DIR         explicit (a hostPath volume of / mounted at, say, /host)
//   2. $BTFGEN_HOST_ROOT       the same, for images that set it once
//   3. /proc/1/root            when pid 1 has another root or mount namespace than ours (a
//                              container with hostPID); unreadable without privileges, and the
//                              same as / on the host itself, and then skipped
//   4. /                       this process's own root
//
// Within a root, os-release(5) is etc/os-release, else usr/lib/os-release. Symlinks are followed
// inside that root, as a chroot would: Debian's etc/os-release → ../usr/lib/os-release must not
// lead to the container's own file, nor must an absolute link.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The root directory whose os-release names the host's distribution, and how it was found.
public struct HostRoot: Sendable, Codable, Equatable {
    /// How the root was chosen.
    public enum Source: String, Sendable, Codable {
        /// `--host-root DIR`.
        case option = "--host-root"
        /// `$BTFGEN_HOST_ROOT`.
        case environment = "BTFGEN_HOST_ROOT"
        /// `/proc/1/root`: pid 1 runs in another root (a container with the host's pid namespace).
        case initProcess = "/proc/1/root"
        /// This process's own `/`.
        case own = "/"
    }

    /// The root directory (`/` for the process's own).
    public var path: String
    public var source: Source

    public init(path: String, source: Source) {
        self.path = path
        self.source = source
    }

    /// The environment variable naming the host root when --host-root is not given.
    public static let environmentVariable = "BTFGEN_HOST_ROOT"
    /// This process's own root.
    public static let own = HostRoot(path: "/", source: .own)
    static let initProcessRoot = "/proc/1/root"

    /// The host root by the order above. An explicit root (option or environment) must exist and
    /// hold an os-release; the automatic ones are only taken when they do.
    public static func find(
        option: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(HostRootError) -> HostRoot {
        if let option, !option.isEmpty { return try explicit(option, source: .option) }
        if let value = environment[environmentVariable], !value.isEmpty {
            return try explicit(value, source: .environment)
        }
        if initProcessSeesAnotherRoot(), osReleasePath(in: initProcessRoot) != nil {
            return HostRoot(path: initProcessRoot, source: .initProcess)
        }
        return .own
    }

    static func explicit(_ given: String, source: Source) throws(HostRootError) -> HostRoot {
        var path = given
        if !path.hasPrefix("/") { path = FileManager.default.currentDirectoryPath + "/" + path }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        var st = stat()
        guard stat(path, &st) == 0 else { throw .missing(path: given, source: source) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .notADirectory(path: given, source: source) }
        guard osReleasePath(in: path) != nil else { throw .noOSRelease(path: given, source: source) }
        return HostRoot(path: path, source: source)
    }

    /// True when /proc/1/root is readable and is not simply our own root: another directory, or
    /// the same directory seen through another mount namespace.
    static func initProcessSeesAnotherRoot() -> Bool {
        var theirs = stat(), ours = stat()
        guard stat(initProcessRoot + "/", &theirs) == 0, stat("/", &ours) == 0 else { return false }
        if theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino { return true }
        let initNamespace = symlinkTarget("/proc/1/ns/mnt")
        return initNamespace != nil && initNamespace != symlinkTarget("/proc/self/ns/mnt")
    }

    /// `path` joined below this root (`/etc/os-release` → `/host/etc/os-release`).
    public func onDisk(_ path: String) -> String { Self.join(self.path, [path]) }

    /// The os-release file of the system rooted at `root`, symlinks resolved inside it; nil when
    /// it has neither etc/os-release nor usr/lib/os-release.
    public static func osReleasePath(in root: String) -> String? {
        for candidate in ["etc/os-release", "usr/lib/os-release"] {
            if let file = resolve(candidate, inside: root), isRegularFile(file) { return file }
        }
        return nil
    }

    /// `path` with every symlink on the way resolved as if `root` were `/`; nil when a component
    /// does not exist or the links loop.
    static func resolve(_ path: String, inside root: String) -> String? {
        var resolved: [String] = []
        var pending = components(path)
        var links = 0
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name == "." { continue }
            if name == ".." {
                _ = resolved.popLast()  // never above the root, as in a chroot
                continue
            }
            let onDisk = join(root, resolved + [name])
            var st = stat()
            guard lstat(onDisk, &st) == 0 else { return nil }
            guard (st.st_mode & S_IFMT) == S_IFLNK else {
                resolved.append(name)
                continue
            }
            links += 1
            guard links <= 40, let target = symlinkTarget(onDisk) else { return nil }  // 40: Linux's own limit
            if target.hasPrefix("/") { resolved = [] }
            pending = components(target) + pending
        }
        return join(root, resolved)
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init)
    }

    static func join(_ root: String, _ parts: [String]) -> String {
        let tail = parts.flatMap(components).joined(separator: "/")
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        return tail.isEmpty ? (base.isEmpty ? "/" : base) : base + "/" + tail
    }

    static func symlinkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// How this root was chosen, for `resolve`.
    public var summary: String {
        switch source {
        case .option: return "host root \(path) from --host-root"
        case .environment: return "host root \(path) from $\(Self.environmentVariable)"
        case .initProcess: return "host root /proc/1/root: pid 1 has another root or mount namespace"
        case .own: return "this process's own root: no --host-root, $\(Self.environmentVariable) or other /proc/1/root"
        }
    }
}

/// Why a host root that was named explicitly cannot be used.
public enum HostRootError: Error, Equatable, CustomStringConvertible {
    case missing(path: String, source: HostRoot.Source)
    case notADirectory(path: String, source: HostRoot.Source)
    case noOSRelease(path: String, source: HostRoot.Source)

    public var description: String {
        func named(_ path: String, _ source: HostRoot.Source) -> String {
            source == .environment ? "$\(HostRoot.environmentVariable)=\(path)" : "--host-root \(path)"
        }
        switch self {
        case .missing(let path, let source):
            return
                "\(named(path, source)) does not exist: mount the host's / there (a hostPath volume) or leave it out to use this system's own identity"
        case .notADirectory(let path, let source):
            return "\(named(path, source)) is not a directory: give the directory where the host's / is mounted"
        case .noOSRelease(let path, let source):
            return
                "\(named(path, source)) holds neither etc/os-release nor usr/lib/os-release: give the directory where the host's / is mounted (a hostPath volume of /)"
        }
    }
}
