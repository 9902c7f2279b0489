// What a build reads from the vmlinux while pahole encodes it, on a thread of its own: the
// image's own .BTF (for the native comparison) and, for pahole -j, the index of the DWARF's
// function definitions (to keep each duplicated function's first definition).
//
// pahole -j keeps both cores busy while it reads the DWARF, then deduplicates and writes on one
// thread, leaving the other core idle: the reading thread runs at nice 19, so it takes that idle
// core and barely touches pahole's threads before. Once pahole is done the thread gets the process's
// priority back where the system allows it (root, or RLIMIT_NICE), so the build never waits long
// on a loaded machine.
import Dispatch
import ELF
import FoundationEssentials
import Kernel
import LibBPF
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The image's own .BTF as libbpf reads it.
struct NativeBTF: Sendable {
    let typeCount: Int
    let taskStruct: LibBPFStruct?
}

/// Work done beside pahole (see the top of this file). Results are read only after `wait()`.
final class AlongsidePahole: @unchecked Sendable {
    private let vmlinux: String
    private let finished = DispatchSemaphore(value: 0)
    private let stop = Atomic<Bool>(false)
    /// The thread's kernel id, and whether pahole is done; under one lock so that the priority is
    /// never lowered after it was given back.
    private let state = Mutex((tid: Int32(0), paholeDone: false, exited: false))
    private var waited = false
    private var native: Result<NativeBTF, BuildError>?
    private var index: Result<(MappedFile, DWARFFunctionIndex), any Error>?
    /// CPU and wall seconds the thread ran.
    private(set) var cpuSeconds = 0.0
    private(set) var wallSeconds = 0.0

    /// Start reading `vmlinux`: its function index when `functions`, its native .BTF with `readNative`.
    init(vmlinux: String, functions: Bool, readNative: (@Sendable () throws(BuildError) -> NativeBTF)?) {
        self.vmlinux = vmlinux
        detachThread { [self] in
            let started = Date()
            let cpu = threadCPUSeconds()
            state.withLock { s in
                s.tid = currentThreadID()
                if !s.paholeDone { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(s.tid), 19) }
            }
            if let readNative { native = Result { () throws(BuildError) in try readNative() } }
            if functions { index = Result { try Self.readIndex(vmlinux) { self.stop.load(ordering: .relaxed) } } }
            cpuSeconds = threadCPUSeconds() - cpu
            wallSeconds = Date().timeIntervalSince(started)
            state.withLock { $0.exited = true }
            finished.signal()
        }
    }

    /// The function index of `vmlinux`, with the mapping it points into.
    static func readIndex(_ vmlinux: String, cancelled: () -> Bool) throws -> (MappedFile, DWARFFunctionIndex) {
        let mapped = try MappedFile(path: vmlinux)
        return (mapped, try DWARFFunctionIndex(ELFFile(bytes: mapped.bytes), cancelled: cancelled))
    }

    /// pahole is done: the thread may have its normal priority back (allowed or not, it goes on).
    func paholeFinished() {
        state.withLock { s in
            s.paholeDone = true
            // Back to the process's own nice (`nice btfgen build`), never above it.
            if s.tid != 0 && !s.exited {
                setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(s.tid), processNice())
            }
        }
    }

    /// Wait for the thread to finish (once; later calls return at once).
    func wait() {
        guard !waited else { return }
        finished.wait()
        waited = true
    }

    /// Stop reading early and wait for the thread: the build is over.
    func cancel() {
        stop.store(true, ordering: .relaxed)
        paholeFinished()
        wait()
    }

    /// Each name's definitions in compilation-unit order (the index is read now if it was not read
    /// alongside: single-threaded pahole writes each function once, so this is rarely needed).
    func definitions(of names: Set<String>) throws -> [String: [String]] {
        wait()
        if index == nil { index = Result { try Self.readIndex(vmlinux) { false } } }
        let (mapped, functions) = try index!.get()
        return try withExtendedLifetime(mapped) { try functions.definitions(named: names) }
    }

    /// The image's own .BTF, nil when it has none.
    func nativeBTF() throws(BuildError) -> NativeBTF? {
        wait()
        return try native?.get()
    }
}

/// CPU seconds (user + system) the calling thread has used.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// CPU seconds (user + system) of the children this process has waited for.
func childrenCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec)
        + Double(u.ru_stime.tv_usec) / 1e6
}

/// The calling thread's kernel id (what setpriority takes), from /proc/thread-self ("PID/task/TID");
/// 0 when unknown. Glibc's gettid is not visible to Swift.
func currentThreadID() -> Int32 {
    var buffer = [CChar](repeating: 0, count: 64)
    let n = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    guard n > 0 else { return 0 }
    let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text.split(separator: "/").last.flatMap { Int32($0) } ?? 0
}
