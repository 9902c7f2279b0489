import CLibBPF

#if canImport(Glibc)
    import Glibc
#endif

/// Why programs could not be opened, loaded, attached or read, in libbpf's own words where it has any.
public enum LoadError: Error, Equatable {
    case objectMissing(path: String)
    case noRawTracepoints(path: String)
    case unknownProgram(name: String, available: [String])
    case openFailed(path: String, errno: Int32, libbpf: [String])
    case loadFailed(path: String, errno: Int32, libbpf: [String])
    case attachFailed(program: String, errno: Int32, libbpf: [String])
    case noEventsMap(path: String)
    case perfBufferFailed(path: String, errno: Int32, libbpf: [String])
    case pollFailed(errno: Int32)
    /// CO-RE reads of a loaded program contradict what the kernel itself reports.
    case contradiction(btf: String, detail: String)
}

extension LoadError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .objectMissing(let path):
            return "BPF object \(path): no such file; build it with `make bpf` or pass --object FILE"
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
        case .contradiction(let btf, let detail):
            return
                "\(detail): the BTF \(btf) does not describe this kernel; stopped before printing anything it got wrong. Build the right one with `btfgen build` from this kernel's debuginfo"
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
