// Open BPF objects with libbpf against a chosen BTF, load them, attach their raw tracepoint
// programs and read the `events` perf event array of each object.
//
// libbpf's C API is wrapped here and nowhere else. Its options structs are versioned by their
// `sz` field (the LIBBPF_OPTS macro Swift cannot import), so each one is zeroed and given its
// size by hand. Everything libbpf prints goes through one callback into `LibBPFLog`, so a
// failure can quote libbpf's own explanation (a verifier log, a CO-RE relocation it could not
// resolve) instead of a bare errno.
import CLibBPF
import FoundationEssentials
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What to load and how.
public struct LoadRequest: Sendable {
    /// BPF object files.
    public var objects: [String]
    /// Program names, tracepoint names or section names to attach; empty attaches every raw_tp program.
    public var programs: [String]
    /// The BTF for CO-RE relocation; nil lets libbpf use /sys/kernel/btf/vmlinux.
    public var btfCustomPath: String?
    /// Echo libbpf's messages (debug level included) to stderr as they come.
    public var verbose: Bool

    public init(objects: [String], programs: [String] = [], btfCustomPath: String?, verbose: Bool = false) {
        self.objects = objects
        self.programs = programs
        self.btfCustomPath = btfCustomPath
        self.verbose = verbose
    }
}

/// A raw tracepoint program found in an object.
public struct RawTracepointProgram: Sendable, Equatable, Encodable {
    /// The C function name.
    public var name: String
    /// The tracepoint, e.g. `task_rename`.
    public var tracepoint: String
    /// The ELF section, e.g. `raw_tp/task_rename`.
    public var section: String
    public var object: String

    /// Does `query` (a program, tracepoint or section name) pick this program?
    public func matches(_ query: String) -> Bool {
        query == name || query == tracepoint || query == section
    }
}

/// When a trace stops on its own.
public struct StopCondition: Sendable {
    /// After this many events; 0 stops as soon as everything is attached.
    public var count: Int?
    /// After this many seconds.
    public var duration: Double?

    public init(count: Int? = nil, duration: Double? = nil) {
        self.count = count
        self.duration = duration
    }
}

/// Why a trace ended.
public enum StopReason: String, Sendable, Encodable {
    case count, duration, signal
}

/// Raw tracepoint programs loaded and attached; closed (detached) on deinit.
public final class TraceSession {
    public private(set) var attached: [RawTracepointProgram] = []
    private var objects: [OpaquePointer] = []
    private var links: [OpaquePointer] = []
    private var buffers: [OpaquePointer] = []
    private let sink = EventSink()

    /// Every raw_tp program in `path`, without loading anything (no privileges needed).
    public static func rawTracepoints(in path: String) throws(LoaderError) -> [RawTracepointProgram] {
        let object = try open(path, btfCustomPath: nil)
        defer { bpf_object__close(object) }
        return programs(of: object, path: path).map(\.1)
    }

    /// Open, load and attach. Throws with libbpf's own words on failure; nothing stays attached then.
    public init(_ request: LoadRequest) throws(LoaderError) {
        LibBPFLog.install(verbose: request.verbose)
        var unmatched = Set(request.programs)
        var available: [String] = []
        var chosen: [(OpaquePointer, String, [(OpaquePointer, RawTracepointProgram)])] = []
        do {
            for path in request.objects {
                guard FileManager.default.fileExists(atPath: path) else { throw LoaderError.objectMissing(path: path) }
                let object = try TraceSession.open(path, btfCustomPath: request.btfCustomPath)
                objects.append(object)
                let all = TraceSession.programs(of: object, path: path)
                if all.isEmpty && request.programs.isEmpty { throw LoaderError.noRawTracepoints(path: path) }
                available += all.map(\.1.name)
                let picked = all.filter { entry in
                    request.programs.isEmpty || request.programs.contains { entry.1.matches($0) }
                }
                for entry in picked { unmatched = unmatched.filter { !entry.1.matches($0) } }
                // Only the picked programs are loaded: one the kernel cannot verify must not block the rest.
                var program: OpaquePointer? = nil
                while let next = bpf_object__next_program(object, program) {
                    program = next
                    let keep = picked.contains { $0.0 == next }
                    bpf_program__set_autoload(next, keep)
                }
                if !picked.isEmpty { chosen.append((object, path, picked)) }
            }
            if let missing = unmatched.sorted().first {
                throw LoaderError.unknownProgram(name: missing, available: available)
            }
            for (object, path, picked) in chosen {
                LibBPFLog.reset()
                let rc = bpf_object__load(object)
                if rc != 0 { throw LoaderError.loadFailed(path: path, errno: -rc, libbpf: LibBPFLog.lines) }
                for (program, info) in picked {
                    LibBPFLog.reset()
                    errno = 0
                    guard let link = bpf_program__attach_raw_tracepoint(program, info.tracepoint) else {
                        throw LoaderError.attachFailed(
                            program: "\(info.section) (\(info.name) in \(path))",
                            errno: errno == 0 ? EINVAL : errno, libbpf: LibBPFLog.lines)
                    }
                    links.append(link)
                    attached.append(info)
                }
                let fd = bpf_object__find_map_fd_by_name(object, "events")
                guard fd >= 0 else { throw LoaderError.noEventsMap(path: path) }
                LibBPFLog.reset()
                errno = 0
                let context = Unmanaged.passUnretained(sink).toOpaque()
                guard
                    let buffer = perf_buffer__new(
                        fd, 64,
                        { ctx, _, data, size in
                            guard let ctx, let data else { return }
                            let sink = Unmanaged<EventSink>.fromOpaque(ctx).takeUnretainedValue()
                            sink.receive(UnsafeRawBufferPointer(start: data, count: Int(size)))
                        },
                        { ctx, _, lost in
                            guard let ctx else { return }
                            Unmanaged<EventSink>.fromOpaque(ctx).takeUnretainedValue().lost += lost
                        }, context, nil)
                else {
                    throw LoaderError.perfBufferFailed(
                        path: path, errno: errno == 0 ? EINVAL : errno,
                        libbpf: LibBPFLog.lines)
                }
                buffers.append(buffer)
            }
        } catch let error as LoaderError {
            close()
            throw error
        } catch {
            close()
            throw LoaderError.loadFailed(
                path: request.objects.joined(separator: ", "), errno: EINVAL, libbpf: ["\(error)"])
        }
    }

    deinit { close() }

    /// Events lost because the perf buffers overflowed.
    public var lostEvents: UInt64 { sink.lost }

    /// Read events and hand each to `onEvent` until `stop` is met or SIGINT/SIGTERM arrives. An
    /// error thrown by `onEvent` ends the run at once: no later event is handed over.
    public func run(
        until stop: StopCondition, onEvent: (TraceEvent) throws(LoaderError) -> Void
    ) throws(LoaderError) -> StopReason {
        StopSignals.install()
        if stop.count == 0 { return .count }
        let deadline = stop.duration.map { monotonicSeconds() + $0 }
        // Each perf buffer's epoll fd becomes readable when any of its per-CPU rings has data.
        var fds = buffers.map { pollfd(fd: perf_buffer__epoll_fd($0), events: Int16(POLLIN), revents: 0) }
        var delivered = 0
        while true {
            // On a stop request the buffers are still read once more: events already in the
            // rings belong to the trace (a SIGTERM right after the traced action must not lose it).
            var stopping: StopReason? = StopSignals.requested ? .signal : nil
            var timeout: Int32 = 250
            if let deadline, stopping == nil {
                let left = deadline - monotonicSeconds()
                if left <= 0 { stopping = .duration }
                timeout = Int32(min(250, max(0, left * 1000)))
            }
            let n = stopping == nil ? poll(&fds, nfds_t(fds.count), timeout) : 1
            if n < 0 && errno != EINTR { throw LoaderError.pollFailed(errno: errno) }
            if n > 0 {
                for buffer in buffers {
                    let rc = perf_buffer__consume(buffer)
                    if rc < 0 && -rc != EINTR { throw LoaderError.pollFailed(errno: -rc) }
                }
            }
            for event in sink.drain() {
                try onEvent(event)
                delivered += 1
                if let count = stop.count, delivered >= count { return .count }
            }
            if let stopping { return stopping }
        }
    }

    private func close() {
        for buffer in buffers { perf_buffer__free(buffer) }
        buffers.removeAll()
        for link in links { bpf_link__destroy(link) }
        links.removeAll()
        for object in objects { bpf_object__close(object) }
        objects.removeAll()
    }

    private static func open(_ path: String, btfCustomPath: String?) throws(LoaderError) -> OpaquePointer {
        guard FileManager.default.fileExists(atPath: path) else { throw .objectMissing(path: path) }
        LibBPFLog.reset()
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        errno = 0
        let object: OpaquePointer? = withOptionalCString(btfCustomPath) { custom in
            opts.btf_custom_path = custom
            return bpf_object__open_file(path, &opts)
        }
        guard let object else {
            throw .openFailed(path: path, errno: errno == 0 ? EINVAL : errno, libbpf: LibBPFLog.lines)
        }
        return object
    }

    private static func programs(of object: OpaquePointer, path: String) -> [(OpaquePointer, RawTracepointProgram)] {
        var result: [(OpaquePointer, RawTracepointProgram)] = []
        var program: OpaquePointer? = nil
        while let next = bpf_object__next_program(object, program) {
            program = next
            let section = String(cString: bpf_program__section_name(next))
            let name = String(cString: bpf_program__name(next))
            for prefix in ["raw_tp/", "raw_tracepoint/"] where section.hasPrefix(prefix) {
                let tracepoint = String(section.dropFirst(prefix.count))
                if !tracepoint.isEmpty {
                    result.append(
                        (next, RawTracepointProgram(name: name, tracepoint: tracepoint, section: section, object: path))
                    )
                }
            }
        }
        return result
    }
}

/// Samples collected by the perf buffer callback, handed out by `drain()`.
final class EventSink {
    var pending: [TraceEvent] = []
    var lost: UInt64 = 0
    var malformed = 0

    func receive(_ bytes: UnsafeRawBufferPointer) {
        if let event = TraceEvent(bytes: bytes) { pending.append(event) } else { malformed += 1 }
    }

    func drain() -> [TraceEvent] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }
}

/// SIGINT/SIGTERM set a flag the run loop checks; the loop then detaches and returns cleanly.
enum StopSignals {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    static var requested: Bool { flag != 0 }

    static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in StopSignals.flag = 1 }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }
}

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

private func withOptionalCString<T>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
