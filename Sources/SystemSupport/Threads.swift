// A detached thread without Foundation's Thread.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Run `body` on a new detached thread (`Thread.detachNewThread`). Builds block for minutes in
/// waitpid, so they get threads of their own rather than Dispatch's bounded pool.
package func detachThread(_ body: @escaping @Sendable () -> Void) {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let code = pthread_create(
        &thread, nil,
        { context in
            let body = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
            keepProcessNice()
            body.run()
            return nil
        }, context)
    guard code == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        fatalError("cannot start a thread: \(String(cString: strerror(code)))")
    }
    pthread_detach(thread)
}

/// Keep the calling thread at least as nice as the process was started (`nice btfgen sync …`).
/// Linux keeps a nice value per thread, and new threads and children inherit their creator's;
/// libdispatch gives its worker threads the value of their QoS (0, and -4 for overcommit
/// threads), so without this the work, and pahole under it, would run above the priority the user
/// asked for. The main thread (whose id is the pid) keeps the value the process started with.
/// Only ever lowers priority, which needs no privilege.
package func keepProcessNice() {
    let which = __priority_which_t(PRIO_PROCESS.rawValue)
    errno = 0
    let process = getpriority(which, id_t(getpid()))
    guard errno == 0 else { return }
    errno = 0
    let own = getpriority(which, 0)  // 0: the calling thread
    guard errno == 0, own < process else { return }
    setpriority(which, 0, process)
}

/// The nice value the process was started with (its main thread's), 0 when it cannot be read.
package func processNice() -> Int32 {
    errno = 0
    let n = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
    return errno == 0 ? n : 0
}
