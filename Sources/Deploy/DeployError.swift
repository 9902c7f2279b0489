import Bundle
import Catalog
import LibBPF

#if canImport(Glibc)
    import Glibc
#endif

/// Why no BTF could be chosen or verified, or why programs cannot be loaded here at all.
public enum DeployError: Error, Equatable {
    // Before libbpf is asked (Preflight, DefaultObjects).
    case notPrivileged(euid: UInt32)
    case kernelTooOld(release: String)
    case noDefaultObjects(searched: [String])
    // Choosing the BTF (BTFSelector).
    case btfFileMissing(path: String)
    case notBTF(path: String, reason: String)
    case buildIDMismatch(entry: String, entryBuildID: String, running: String, runningRelease: String)
    case releaseMismatch(entry: String, runningRelease: String)
    case archMismatch(entry: String, entryArch: String, runningArch: String)
    /// A named entry of another architecture than the declared target machine's (--arch, the host root's).
    case targetArchMismatch(entry: String, entryArch: String, target: ArchTarget)
    /// A machine of another architecture has no running kernel here to match: it must be named.
    case otherMachineNeedsKernel(targetArch: String, machineArch: String)
    /// The bundle (and catalog) hold no kernel of this machine's architecture.
    case noKernelOfArch(bundle: String, arches: [String], target: ArchTarget)
    /// A BTF whose registers show another architecture.
    case btfArchMismatch(btf: String, btfArch: String, reason: String, target: ArchTarget)
    /// A BPF object built for another architecture.
    case objectArchMismatch(object: String, objectArch: String, reason: String, target: ArchTarget)
    /// A BPF object whose types speak for two architectures.
    case objectArchConflict(object: String, reason: String)
    case ambiguousRelease(release: String, candidates: [String])
    case noMatch(running: String, searched: [String])
    case catalog(CatalogError)
    case bundle(BundleError)
    // Using the chosen BTF (VerifiedBTF).
    /// An object's CO-RE relocation finds nothing in a minimized BTF made for other objects.
    case uncovered(object: String, btf: String, missing: String, count: Int)
    /// A BPF object that cannot be read or parsed, worded as libbpf's own open failure would be.
    case object(LoadError)
    /// The sealed memory file handed to libbpf could not be made (`copying`: or filled).
    case memoryFile(btf: String, copying: Bool, errno: Int32)
}

/// The machine whose architecture a BTF or object must have, for messages.
public struct ArchTarget: Sendable, Equatable, CustomStringConvertible {
    /// BTFHub's name.
    public var arch: String
    /// The machine btfgen runs on, rather than one named by --arch, --kernel or a host root.
    public var isThisMachine: Bool

    public init(arch: String, isThisMachine: Bool) {
        self.arch = arch
        self.isThisMachine = isThisMachine
    }

    public var description: String {
        isThisMachine ? "this machine is \(arch)" : "the target machine is \(arch)"
    }
}

extension DeployError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notPrivileged(let euid):
            return
                "loading BPF programs needs root or CAP_BPF+CAP_PERFMON (CAP_SYS_ADMIN before 5.8); running as uid \(euid) without them: run with sudo"
        case .kernelTooOld(let release):
            return
                "kernel \(release) is older than 4.17 and has no raw tracepoints (BPF_PROG_TYPE_RAW_TRACEPOINT); the programs cannot attach here"
        case .noDefaultObjects(let searched):
            return
                "no BPF objects (*.bpf.o) found in \(searched.joined(separator: ", ")); build them with `make bpf`, set BTFGEN_BPF_DIR, or pass --object FILE"
        case .btfFileMissing(let path):
            return "--btf \(path): no such file; pass a raw BTF file or an ELF with a .BTF section"
        case .notBTF(let path, let reason):
            return
                "\(path) is not usable BTF (\(reason)); pass raw BTF or an ELF with a .BTF section, e.g. one written by `btfgen resolve --extract FILE`"
        case .uncovered(let object, let btf, let missing, let count):
            return
                "\(btf) was minimized for other BPF objects: \(object) needs \(missing)\(count > 1 ? " and \(count - 1) more" : "") that it does not hold, and libbpf would silently read 0 or poison the instruction; make the bundle for this object with `btfgen bundle --object \(object) … -o BUNDLE`"
        case .buildIDMismatch(let entry, let entryBuildID, let running, let release):
            return
                "build-id mismatch: \(entry) has build-id \(entryBuildID) but the running kernel \(release) has build-id \(running); its BTF would relocate the programs to wrong offsets and report garbage. Build BTF from this kernel's own debuginfo (`btfgen build <vmlinux of \(release) with build-id \(running)>`), or pass --force to use it anyway"
        case .releaseMismatch(let entry, let release):
            return
                "\(entry) is for another kernel than the running \(release); pass --force to use it anyway"
        case .archMismatch(let entry, let entryArch, let runningArch):
            return
                "\(entry) is for \(entryArch) but this machine is \(runningArch); use a \(runningArch) kernel's BTF (to prepare BTF for a \(entryArch) machine, run `btfgen resolve --kernel BUILD-ID --extract FILE` or `btfgen install --host-root ITS-ROOT --kernel BUILD-ID`)"
        case .targetArchMismatch(let entry, let entryArch, let target):
            return "\(entry) is for \(entryArch) but \(target); name a \(target.arch) kernel"
        case .otherMachineNeedsKernel(let targetArch, let machineArch):
            return
                "the target machine is \(targetArch) but this one is \(machineArch), so the running kernel here says nothing about it: name its kernel with --kernel BUILD-ID (its /sys/kernel/notes build-id)"
        case .noKernelOfArch(let bundle, let arches, let target):
            return
                "bundle \(bundle) holds only \(arches.joined(separator: ", ")) kernels but \(target); make one that includes \(target.arch) kernels (`btfgen bundle --object bpf/\(target.arch)/PROG.bpf.o …`)"
        case .btfArchMismatch(let btf, let btfArch, let reason, let target):
            return "\(btf) describes a \(btfArch) kernel (\(reason)) but \(target); use BTF of a \(target.arch) kernel"
        case .objectArchMismatch(let object, let objectArch, let reason, let target):
            return
                "\(object) is built for \(objectArch) (\(reason)) but \(target); use its \(target.arch) build (make bpf writes bpf/\(target.arch)/), or name its architecture with \(object)@ARCH"
        case .objectArchConflict(let object, let reason):
            return "\(object): \(reason)"
        case .ambiguousRelease(let release, let candidates):
            return
                "the running kernel's build-id cannot be read and \(candidates.count) catalog entries share release \(release) (\(candidates.joined(separator: ", "))); name one with --kernel BUILD-ID (8 or more hex digits are enough)"
        case .noMatch(let running, let searched):
            return
                "no BTF for the running kernel (\(running)); searched: \(searched.joined(separator: "; ")). Make it with `btfgen build <debuginfo vmlinux or -dbg/-debuginfo package of this kernel> --catalog DIR`"
        case .catalog(let error):
            return error.description
        case .bundle(let error):
            return error.description
        case .object(let error):
            return error.description
        case .memoryFile(let btf, let copying, let code):
            let reason = String(cString: strerror(code))
            return copying
                ? "cannot copy \(btf) into a memory file: \(reason)"
                : "cannot create a memory file for \(btf): \(reason)"
        }
    }
}
