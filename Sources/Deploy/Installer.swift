// `btfgen install`: put the running kernel's BTF where libbpf itself looks, so unmodified
// libbpf-based tools (bpftool, libbpf-tools, any skeleton) work on a kernel without
// /sys/kernel/btf/vmlinux. libbpf (btf__load_vmlinux_btf) tries, in order, with %s = uname -r:
//
//   /sys/kernel/btf/vmlinux  /boot/vmlinux-%s  /lib/modules/%s/vmlinux-%s
//   /lib/modules/%s/build/vmlinux  /usr/lib/modules/%s/kernel/vmlinux
//   /usr/lib/debug/boot/vmlinux-%s  /usr/lib/debug/boot/vmlinux-%s.debug
//   /usr/lib/debug/lib/modules/%s/vmlinux
//
// and uses the first file that parses as BTF. btfgen writes an ELF holding only .BTF (every
// libbpf release reads that; raw BTF needs libbpf ≥ 0.1 there) at the first free location, and
// refuses when an earlier file it did not write already parses as BTF (it would win). It never
// overwrites a file it did not create: what it wrote is recorded with its sha256 in
// /var/lib/btfgen/installed.json, and `uninstall` removes only files whose bytes still match.
import Catalog
import ELF
import FoundationEssentials
import Kernel
import LibBPF
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Why install or uninstall could not proceed.
public enum InstallError: Error, Equatable {
    case shadowed(path: String)
    case noFreeLocation(tried: [String])
    case io(path: String, reason: String)
    case registry(path: String, reason: String)
}

extension InstallError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .shadowed(let path):
            return
                "\(path) already holds BTF that btfgen did not write, and libbpf reads it first; btfgen never overwrites a file it did not create: check it belongs to this kernel or remove it, then run `btfgen install` again"
        case .noFreeLocation(let tried):
            return
                "every place libbpf looks is taken by files btfgen did not write (\(tried.joined(separator: ", "))); remove one of them"
        case .io(let path, let reason):
            return "cannot write \(path): \(reason)"
        case .registry(let path, let reason):
            return "\(path) (btfgen's record of installed files) is unreadable: \(reason); fix or remove it"
        }
    }
}

/// One file btfgen installed.
public struct InstalledFile: Codable, Equatable, Sendable {
    /// Absolute path as seen from the system root.
    public var path: String
    public var sha256: String
    public var release: String
    public var buildID: String?
    /// Where the BTF came from (catalog path, bundle blob, file).
    public var source: String
    public var installedAt: String
    /// Directories btfgen created to hold the file (outermost first), removed with it when empty.
    public var createdDirectories: [String]?
}

/// What `install` did.
public enum InstallOutcome: Equatable, Sendable {
    case installed(InstalledFile)
    case updated(InstalledFile)
    case unchanged(InstalledFile)
}

/// Writes and removes btfgen's BTF files under a system root (`/` normally; an image tree in tests).
public struct BTFInstaller: Sendable {
    public let root: String
    public static let registryPath = "/var/lib/btfgen/installed.json"

    public init(root: String = "/") {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    /// The locations libbpf searches after /sys/kernel/btf/vmlinux, in its order.
    public static func libbpfLocations(release r: String) -> [String] {
        [
            "/boot/vmlinux-\(r)", "/lib/modules/\(r)/vmlinux-\(r)", "/lib/modules/\(r)/build/vmlinux",
            "/usr/lib/modules/\(r)/kernel/vmlinux", "/usr/lib/debug/boot/vmlinux-\(r)",
            "/usr/lib/debug/boot/vmlinux-\(r).debug", "/usr/lib/debug/lib/modules/\(r)/vmlinux",
        ]
    }

    func onDisk(_ path: String) -> String { root == "/" ? path : root + path }

    /// Install `btf` (raw BTF bytes) for `release` of a kernel of `arch` (the ELF wrapper's
    /// machine: libbpf ignores it, but binutils and people read it).
    public func install(
        btf: [UInt8], release: String, buildID: String?, source: String, arch: String
    ) throws(InstallError) -> InstallOutcome {
        let payload = ELFWriter.btfObject(btf, machine: KernelArch.elfMachine(of: arch))
        let digest = payload.withUnsafeBytes { SHA256.hex($0) }
        var registry = try readRegistry()
        var tried: [String] = []
        for location in Self.libbpfLocations(release: release) {
            let full = onDisk(location)
            var st = stat()
            let exists = lstat(full, &st) == 0
            if let mine = registry.firstIndex(where: { $0.path == location }) {
                if exists, let current = try? sha256(of: full), current != registry[mine].sha256 {
                    // Someone replaced our file: it is theirs now.
                    registry.remove(at: mine)
                } else {
                    var record = InstalledFile(
                        path: location, sha256: digest, release: release, buildID: buildID,
                        source: source, installedAt: utcTimestamp())
                    record.createdDirectories = registry[mine].createdDirectories
                    if exists && registry[mine].sha256 == digest {
                        return .unchanged(registry[mine])
                    }
                    try writeAtomically(payload, to: full)
                    registry[mine] = record
                    try writeRegistry(registry)
                    return .updated(record)
                }
            }
            if exists {
                tried.append(location)
                // A file libbpf can read as BTF comes before ours: installing later would be useless.
                if (st.st_mode & S_IFMT) == S_IFREG, (try? LibBPFBTF(path: full)) != nil {
                    throw .shadowed(path: location)
                }
                continue  // not BTF (a DWARF-only vmlinux, say): libbpf skips it, and so do we
            }
            var record = InstalledFile(
                path: location, sha256: digest, release: release, buildID: buildID,
                source: source, installedAt: utcTimestamp())
            let created = try createParents(of: location)
            record.createdDirectories = created.isEmpty ? nil : created
            try writeAtomically(payload, to: full)
            registry.append(record)
            try writeRegistry(registry)
            return .installed(record)
        }
        throw .noFreeLocation(tried: tried)
    }

    /// Remove what btfgen installed (for `release`, or all). Files changed since are left alone.
    public func uninstall(release: String? = nil) throws(InstallError) -> (
        removed: [InstalledFile], keptChanged: [InstalledFile]
    ) {
        var registry = try readRegistry()
        var removed: [InstalledFile] = [], kept: [InstalledFile] = []
        for record in registry where release == nil || record.release == release {
            let full = onDisk(record.path)
            if let current = try? sha256(of: full) {
                if current == record.sha256 {
                    guard unlink(full) == 0 else {
                        throw .io(path: record.path, reason: String(cString: strerror(errno)))
                    }
                    // Innermost first; a directory someone else put files in stays.
                    for dir in (record.createdDirectories ?? []).reversed() { rmdir(onDisk(dir)) }
                    removed.append(record)
                } else {
                    kept.append(record)
                }
            }
        }
        registry.removeAll { release == nil || $0.release == release }
        try writeRegistry(registry)
        return (removed, kept)
    }

    /// The registry's records.
    public func installed() throws(InstallError) -> [InstalledFile] { try readRegistry() }

    func readRegistry() throws(InstallError) -> [InstalledFile] {
        let path = onDisk(Self.registryPath)
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        do { return try JSONDecoder().decode([InstalledFile].self, from: data) } catch {
            throw .registry(path: Self.registryPath, reason: "\(error)")
        }
    }

    func writeRegistry(_ records: [InstalledFile]) throws(InstallError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(records.sorted { $0.path < $1.path }) } catch {
            throw .registry(path: Self.registryPath, reason: "\(error)")
        }
        try writeAtomically([UInt8](data), to: onDisk(Self.registryPath))
    }

    func writeAtomically(_ bytes: [UInt8], to path: String) throws(InstallError) {
        let dir = deletingLastPathComponent(path)
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw .io(path: dir, reason: localizedDescription(error))
        }
        do { try replaceFile(at: URL(fileURLWithPath: path), with: Data(bytes)) } catch {
            throw .io(path: path, reason: describe(error))
        }
    }

    /// Create the missing directories above `location` (a path under the system root) and return
    /// them, outermost first, so uninstall can take them away again.
    func createParents(of location: String) throws(InstallError) -> [String] {
        var missing: [String] = []
        var dir = deletingLastPathComponent(location)
        while dir != "/" && !dir.isEmpty {
            var st = stat()
            if lstat(onDisk(dir), &st) == 0 { break }
            missing.insert(dir, at: 0)
            dir = deletingLastPathComponent(dir)
        }
        for d in missing where mkdir(onDisk(d), 0o755) != 0 && errno != EEXIST {
            throw .io(path: d, reason: String(cString: strerror(errno)))
        }
        return missing
    }

    func sha256(of path: String) throws -> String {
        let file = try MappedFile(path: path)
        return file.withBytes { SHA256.hex($0) }
    }
}
