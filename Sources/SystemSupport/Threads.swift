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
            body.run()
            return nil
        }, context)
    guard code == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        fatalError("cannot start a thread: \(String(cString: strerror(code)))")
    }
    pthread_detach(thread)
}
