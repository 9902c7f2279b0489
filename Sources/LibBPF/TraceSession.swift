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

    /// The programs `queries` pick out of each object's raw_tp programs; no query picks them all.
    /// What attach loads and what its dry run lists, so both refuse the same requests: an object
    /// with nothing to attach (when all are asked for), and the first query that picks nothing.
    public static func pick(
        _ queries: [String], from objects: [(path: String, programs: [RawTracepointProgram])]
    ) throws(LoadError) -> [RawTracepointProgram] {
        if queries.isEmpty, let empty = objects.first(where: { $0.programs.isEmpty }) {
            throw .noRawTracepoints(path: empty.path)
        }
        let all = objects.flatMap(\.programs)
        if let unknown = queries.first(where: { query in !all.contains { $0.matches(query) } }) {
            throw .unknownProgram(name: unknown, available: all.map(\.name))
        }
        return all.filter { program in queries.isEmpty || queries.contains { program.matches($0) } }
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
    public static func rawTracepoints(in path: String) throws(LoadError) -> [RawTracepointProgram] {
        let object = try open(path, btfCustomPath: nil)
        defer { bpf_object__close(object) }
        return programs(of: object, path: path).map(\.1)
    }

    /// Open, load and attach. Throws with libbpf's own words on failure; nothing stays attached then.
    public init(_ request: LoadRequest) throws(LoadError) {
        LibBPFLog.install(verbose: request.verbose)
        do {
            let opened = try openAll(request)
            let picked = try RawTracepointProgram.pick(
                request.programs, from: opened.map { (path: $0.path, programs: $0.programs.map(\.1)) })
            for object in opened {
                let chosen = object.programs.filter { picked.contains($0.1) }
                guard !chosen.isEmpty else { continue }
                try load(object.handle, path: object.path, only: chosen.map(\.0))
                try attach(chosen, path: object.path)
                try openPerfBuffer(of: object.handle, path: object.path)
            }
        } catch {
            close()
            throw error
        }
    }

    /// An object opened (not loaded yet) and the raw_tp programs in it.
    private struct OpenedObject {
        let handle: OpaquePointer
        let path: String
        let programs: [(OpaquePointer, RawTracepointProgram)]
    }

    /// Opens every object (kept in `objects`, so `close()` frees them on failure).
    private func openAll(_ request: LoadRequest) throws(LoadError) -> [OpenedObject] {
        var opened: [OpenedObject] = []
        for path in request.objects {
            let object = try TraceSession.open(path, btfCustomPath: request.btfCustomPath)
            objects.append(object)
            opened.append(
                OpenedObject(handle: object, path: path, programs: TraceSession.programs(of: object, path: path)))
        }
        return opened
    }

    /// Loads `object` with only `programs` marked for loading: one the kernel cannot verify must
    /// not block the rest.
    private func load(_ object: OpaquePointer, path: String, only programs: [OpaquePointer]) throws(LoadError) {
        var program: OpaquePointer? = nil
        while let next = bpf_object__next_program(object, program) {
            program = next
            bpf_program__set_autoload(next, programs.contains(next))
        }
        LibBPFLog.reset()
        let rc = bpf_object__load(object)
        if rc != 0 { throw .loadFailed(path: path, errno: -rc, libbpf: LibBPFLog.lines) }
    }

    private func attach(_ programs: [(OpaquePointer, RawTracepointProgram)], path: String) throws(LoadError) {
        for (program, info) in programs {
            LibBPFLog.reset()
            errno = 0
            guard let link = bpf_program__attach_raw_tracepoint(program, info.tracepoint) else {
                throw .attachFailed(
                    program: "\(info.section) (\(info.name) in \(path))",
                    errno: errno == 0 ? EINVAL : errno, libbpf: LibBPFLog.lines)
            }
            links.append(link)
            attached.append(info)
        }
    }

    /// A perf buffer on the object's `events` map, delivering into `sink`.
    private func openPerfBuffer(of object: OpaquePointer, path: String) throws(LoadError) {
        let fd = bpf_object__find_map_fd_by_name(object, "events")
        guard fd >= 0 else { throw .noEventsMap(path: path) }
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
            throw .perfBufferFailed(path: path, errno: errno == 0 ? EINVAL : errno, libbpf: LibBPFLog.lines)
        }
        buffers.append(buffer)
    }

    deinit { close() }

    /// Events lost because the perf buffers overflowed.
    public var lostEvents: UInt64 { sink.lost }

    /// Samples dropped because they were not btfgen events (too short, or of an unknown kind).
    public var malformedSamples: Int { sink.malformed }

    /// Read events and hand each to `onEvent` until `stop` is met or SIGINT/SIGTERM arrives. An
    /// error thrown by `onEvent` ends the run at once: no later event is handed over.
    public func run(
        until stop: StopCondition, onEvent: (TraceEvent) throws(LoadError) -> Void
    ) throws(LoadError) -> StopReason {
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
            if n < 0 && errno != EINTR { throw LoadError.pollFailed(errno: errno) }
            if n > 0 {
                for buffer in buffers {
                    let rc = perf_buffer__consume(buffer)
                    if rc < 0 && -rc != EINTR { throw LoadError.pollFailed(errno: -rc) }
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

    private static func open(_ path: String, btfCustomPath: String?) throws(LoadError) -> OpaquePointer {
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

private func withOptionalCString<T>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
