// Architecture checks on the target side. A BPF object or a BTF of another architecture than the
// machine it is for would load (x86_64's pt_regs.si relocates fine against nothing, and an arm64
// BTF parses on x86_64) and then read the wrong registers or poison instructions: refused in one
// line naming both architectures. What an object or a BTF is for is inferred from its registers
// (BTF's `Architectures`), or declared for an object with FILE@ARCH.
import BTF
import ELF
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A BPF object to load, and the architecture declared for it (FILE@ARCH), if any.
public struct TargetObject: Sendable, Equatable {
    public var path: String
    /// nil: inferred from the object; `.some(nil)`: every kernel; `.some(name)`: that architecture.
    public var declaredArch: String??

    public init(path: String, declaredArch: String?? = nil) {
        self.path = path
        self.declaredArch = declaredArch
    }
}

extension TargetObject {
    /// Refuse the object when it is for another architecture than `target`'s.
    public func checkArchitecture(for target: ArchTarget) throws(DeployError) {
        let arch: String?, reason: String
        if let declared = declaredArch {
            (arch, reason) = (declared, "given as \(path)@\(declared ?? "any")")
        } else {
            let bytes: [UInt8]
            do { bytes = try readWholeFile(path) } catch {
                if case .missing = error { throw .object(.objectMissing(path: path)) }
                throw .object(.openFailed(path: path, errno: EIO, libbpf: [error.description]))
            }
            let object: BPFObject
            do { object = try BPFObject(bytes: bytes) } catch {
                throw .object(.openFailed(path: path, errno: EINVAL, libbpf: ["\(error)"]))
            }
            do throws(ArchitectureConflict) {
                let evidence = try Architectures.of(object)
                (arch, reason) = (evidence?.arch, evidence?.reason ?? "")
            } catch { throw .objectArchConflict(object: path, reason: error.description) }
        }
        if let arch, arch != target.arch {
            throw .objectArchMismatch(object: path, objectArch: arch, reason: reason, target: target)
        }
    }
}

extension VerifiedBTF {
    /// Refuse a BTF whose register structures describe a kernel of another architecture than
    /// `target`'s (a minimized BTF without them passes: its entry's recorded arch was matched).
    public func checkArchitecture(for target: ArchTarget) throws(DeployError) {
        if case .native = chosen { return }
        guard let index = try? BTFIndex(rawBTF, validate: false), let evidence = Architectures.ofKernel(index),
            evidence.arch != target.arch
        else { return }
        throw .btfArchMismatch(btf: chosen.location, btfArch: evidence.arch, reason: evidence.reason, target: target)
    }
}

/// The architecture of an image tree given as the host root: the ELF machine of its shell or
/// init. Read so that `install --host-root TREE` for another machine's image (an arm64 guest's
/// root built on an x86_64 host) writes BTF for that machine, not this one.
public enum TreeArchitecture {
    /// Programs every Linux root has one of, tried in order.
    static let probes = ["bin/sh", "usr/bin/sh", "bin/busybox", "sbin/init", "usr/lib/systemd/systemd", "bin/ls"]

    /// BTFHub's name for the tree's machine; nil when no probe is an ELF file.
    public static func of(root: String) -> String? {
        for probe in probes {
            guard let file = resolve(probe, inside: root) else { continue }
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var header = [UInt8](repeating: 0, count: 64)
            let n = header.withUnsafeMutableBytes { read(fd, $0.baseAddress, 64) }
            close(fd)
            guard n >= 20, header.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else { continue }
            // e_machine at offset 18, in the byte order EI_DATA (offset 5) names.
            let machine =
                header[5] == 2
                ? UInt16(header[18]) << 8 | UInt16(header[19]) : UInt16(header[19]) << 8 | UInt16(header[18])
            return KernelArch.name(elfMachine: machine)
        }
        return nil
    }

    /// `path` (relative to `root`) with every symlink followed inside `root`, as a chroot would:
    /// an absolute link target (`/bin/busybox`) is the tree's, never this machine's.
    static func resolve(_ path: String, inside root: String) -> String? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                _ = resolved.popLast()
                continue
            }
            let candidate = root + "/" + (resolved + [part]).joined(separator: "/")
            var st = stat()
            guard lstat(candidate, &st) == 0 else { return nil }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                guard links <= 40, let target = try? FileManager.default.destinationOfSymbolicLink(atPath: candidate)
                else { return nil }
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
            } else {
                resolved.append(part)
            }
        }
        let full = root + "/" + resolved.joined(separator: "/")
        var st = stat()
        return stat(full, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? full : nil
    }
}
