// libbpf prints through one process-wide callback; it is routed here so a failure can quote
// libbpf's own explanation (a verifier log, a CO-RE relocation it could not resolve).
import CLibBPF
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Everything libbpf prints, kept so errors can quote it.
public enum LibBPFLog {
    private struct State {
        var buffer: [String] = []
        var echo = false
        var installed = false
    }
    private static let state = Mutex(State())

    /// Route libbpf's output here; with `verbose`, also to stderr as it comes.
    public static func install(verbose: Bool) {
        let first = state.withLock { s in
            s.echo = verbose
            defer { s.installed = true }
            return !s.installed
        }
        guard first else { return }
        libbpf_set_print { level, format, args in
            guard let format, let args else { return 0 }
            var text = [CChar](repeating: 0, count: 2048)
            _ = vsnprintf(&text, text.count, format, args)
            let bytes = text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            let line = String(decoding: bytes, as: UTF8.self).trimming(.newlines)
            LibBPFLog.append(line, debug: level == LIBBPF_DEBUG)
            return 0
        }
    }

    static func append(_ line: String, debug: Bool) {
        state.withLock { s in
            if s.echo { writeStandardError("libbpf: \(line)\n") }
            if debug || line.isEmpty { return }
            s.buffer.append(line)
            if s.buffer.count > 400 { s.buffer.removeFirst(s.buffer.count - 400) }
        }
    }

    /// Non-debug lines since the last `reset()`.
    public static var lines: [String] { state.withLock { $0.buffer } }

    public static func reset() { state.withLock { $0.buffer.removeAll() } }
}
