import CLibBPF

#if canImport(Glibc)
    import Glibc
#endif

/// Why no BTF could be chosen, or programs could not be loaded, attached or read.
public enum LoaderError: Error, Equatable {
    case notPrivileged(euid: UInt32)
    case kernelTooOld(release: String)
    case objectMissing(path: String)
    case noDefaultObjects(searched: [String])
    case noRawTracepoints(path: String)
    case unknownProgram(name: String, available: [String])
    case openFailed(path: String, errno: Int32, libbpf: [String])
    case loadFailed(path: String, errno: Int32, libbpf: [String])
    case attachFailed(program: String, errno: Int32, libbpf: [String])
    case noEventsMap(path: String)
    case perfBufferFailed(path: String, errno: Int32, libbpf: [String])
    case pollFailed(errno: Int32)
    // Choosing the BTF (BTFSelector).
    case btfFileMissing(path: String)
    case notBTF(path: String, reason: String)
    /// An object's CO-RE relocation finds nothing in a minimized BTF made for other objects.
    case uncovered(object: String, btf: String, missing: String, count: Int)
    /// CO-RE reads of a loaded program contradict what the kernel itself reports.
    case contradiction(btf: String, detail: String)
    case buildIDMismatch(entry: String, entryBuildID: String, running: String, runningRelease: String)
    case releaseMismatch(entry: String, runningRelease: String)
    case archMismatch(entry: String, entryArch: String, runningArch: String)
    case ambiguousRelease(release: String, candidates: [String])
    case noMatch(running: String, searched: [String])
    case catalog(String)
    case bundle(String)
}

extension LoaderError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notPrivileged(let euid):
            return
                "loading BPF programs needs root or CAP_BPF+CAP_PERFMON (CAP_SYS_ADMIN before 5.8); running as uid \(euid) without them: run with sudo"
        case .kernelTooOld(let release):
            return
                "kernel \(release) is older than 4.17 and has no raw tracepoints (BPF_PROG_TYPE_RAW_TRACEPOINT); the programs cannot attach here"
        case .objectMissing(let path):
            return "BPF object \(path): no such file; build it with `make bpf` or pass --object FILE"
        case .noDefaultObjects(let searched):
            return
                "no BPF objects (*.bpf.o) found in \(searched.joined(separator: ", ")); build them with `make bpf`, set BTFGEN_BPF_DIR, or pass --object FILE"
        case .noRawTracepoints(let path):
            return "\(path) has no raw_tp/ or raw_tracepoint/ programs to attach"
        case .unknownProgram(let name, let available):
            return "no raw_tp program called '\(name)'; available: \(available.joined(separator: ", "))"
        case .openFailed(let path, let code, let log):
            return "libbpf cannot open \(path): \(text(code))\(tail(log))"
        case .loadFailed(let path, let code, let log):
            return "libbpf failed to load \(path): \(text(code))\(tail(log))"
        case .attachFailed(let program, let code, let log):
            return "cannot attach \(program): \(text(code))\(tail(log))"
        case .noEventsMap(let path):
            return "\(path) has no `events` perf event array map; btfgen reads events only from that map"
        case .perfBufferFailed(let path, let code, let log):
            return "cannot open the perf buffer of \(path): \(text(code))\(tail(log))"
        case .pollFailed(let code):
            return "reading the perf buffers failed: \(text(code))"
        case .btfFileMissing(let path):
            return "--btf \(path): no such file; pass a raw BTF file or an ELF with a .BTF section"
        case .notBTF(let path, let reason):
            return
                "\(path) is not usable BTF (\(reason)); pass raw BTF or an ELF with a .BTF section, e.g. one written by `btfgen resolve --extract FILE`"
        case .uncovered(let object, let btf, let missing, let count):
            return
                "\(btf) was minimized for other BPF objects: \(object) needs \(missing)\(count > 1 ? " and \(count - 1) more" : "") that it does not hold, and libbpf would silently read 0 or poison the instruction; make the bundle for this object with `btfgen bundle --object \(object) … -o BUNDLE`"
        case .contradiction(let btf, let detail):
            return
                "\(detail): the BTF \(btf) does not describe this kernel; stopped before printing anything it got wrong. Build the right one with `btfgen build` from this kernel's debuginfo"
        case .buildIDMismatch(let entry, let entryBuildID, let running, let release):
            return
                "build-id mismatch: \(entry) has build-id \(entryBuildID) but the running kernel \(release) has build-id \(running); its BTF would relocate the programs to wrong offsets and report garbage. Build BTF from this kernel's own debuginfo (`btfgen build <vmlinux of \(release) with build-id \(running)>`), or pass --force to use it anyway"
        case .releaseMismatch(let entry, let release):
            return
                "\(entry) is for another kernel than the running \(release); pass --force to use it anyway"
        case .archMismatch(let entry, let entryArch, let runningArch):
            return "\(entry) is for \(entryArch) but this machine is \(runningArch)"
        case .ambiguousRelease(let release, let candidates):
            return
                "the running kernel's build-id cannot be read and \(candidates.count) catalog entries share release \(release) (\(candidates.joined(separator: ", "))); name one with --kernel BUILD-ID (8 or more hex digits are enough)"
        case .noMatch(let running, let searched):
            return
                "no BTF for the running kernel (\(running)); searched: \(searched.joined(separator: "; ")). Make it with `btfgen build <debuginfo vmlinux or -dbg/-debuginfo package of this kernel> --catalog DIR`"
        case .catalog(let text):
            return text
        case .bundle(let text):
            return text
        }
    }

    /// errno text; libbpf's own codes (≥ 4000, LIBBPF_ERRNO__*) through libbpf_strerror.
    private func text(_ code: Int32) -> String {
        let positive = code < 0 ? -code : code
        guard positive >= 4000 else { return String(cString: strerror(positive)) }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = libbpf_strerror(positive, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The last lines libbpf printed, which name the real cause (verifier log, relocation failure).
    private func tail(_ log: [String]) -> String {
        let useful = log.suffix(12)
        return useful.isEmpty ? "" : "\nlibbpf said:\n  " + useful.joined(separator: "\n  ")
    }
}
