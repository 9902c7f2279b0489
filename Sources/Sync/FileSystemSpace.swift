// Which filesystem a path is on and how much of it is free, for the one line a full disk prints:
// the user must know which mount to grow or clean, not just the scratch file that hit ENOSPC.
import Builder
import FoundationEssentials
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The filesystem holding a path: its mount point, type and free bytes (for an unprivileged writer).
public struct FileSystemSpace: Sendable, Equatable {
    /// The mount point, e.g. `/var/cache`.
    public var mountPoint: String
    /// e.g. `ext4`, `tmpfs`; empty when /proc/self/mountinfo is not readable.
    public var type: String
    /// Bytes an unprivileged process may still write (`f_bavail`).
    public var available: Int

    /// Measured now for `path`, or for its nearest existing parent.
    public init(holding path: String) {
        var existing = path
        var st = stat()
        while stat(existing, &st) != 0, existing != "/", !existing.isEmpty {
            existing = URL(fileURLWithPath: existing).deletingLastPathComponent().path
        }
        var vfs = statvfs()
        available = statvfs(existing, &vfs) == 0 ? Int(vfs.f_bavail) * Int(vfs.f_frsize) : 0
        let resolved = realpath(existing, nil).map { p in
            defer { free(p) }
            return String(cString: p)
        }
        (mountPoint, type) = FileSystemSpace.mount(containing: resolved ?? existing)
    }

    public init(mountPoint: String, type: String, available: Int) {
        self.mountPoint = mountPoint
        self.type = type
        self.available = available
    }

    /// The mountinfo line with the longest mount point that is `path` or a parent of it.
    static func mount(containing path: String) -> (String, String) {
        guard let data = FileManager.default.contents(atPath: "/proc/self/mountinfo") else { return ("/", "") }
        var best = ("/", "")
        var bestLength = -1
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
            let fields = line.split(separator: " ")
            guard fields.count > 6, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let point = unescapeMountField(fields[4])
            let covers = point == "/" || path == point || path.hasPrefix(point + "/")
            if covers && point.count >= bestLength {
                best = (point, String(fields[dash + 1]))
                bestLength = point.count
            }
        }
        return best
    }

    /// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
    static func unescapeMountField(_ field: Substring) -> String {
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
                let value = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                out.append(value)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `/mnt/small (tmpfs)`.
    public var name: String { type.isEmpty ? mountPoint : "\(mountPoint) (\(type))" }
}

extension RepositorySync {
    /// A build that failed because the catalog's filesystem is full, whichever write met it.
    static func isDiskFull(_ error: BuildError) -> Bool {
        switch error {
        case .noSpace, .catalog(.noSpace), .catalog(.unwritable(_, .noSpace)), .ingest(.noSpace): return true
        default: return false
        }
    }
}

/// `270.2 MiB`-style sizes for messages, as the sync command prints package sizes.
package func byteCount(_ n: Int) -> String {
    if n >= 1 << 30 { return "\(fixed(Double(n) / Double(1 << 30), digits: 1)) GiB" }
    if n >= 1 << 20 { return "\(fixed(Double(n) / Double(1 << 20), digits: 1)) MiB" }
    if n >= 1 << 10 { return "\(fixed(Double(n) / Double(1 << 10), digits: 1)) KiB" }
    return "\(n) B"
}
