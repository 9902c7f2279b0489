import Dispatch
import FoundationEssentials
import Synchronization
import SystemSupport

extension Array where Element: Sendable {
    /// `transform` over every element on up to `workers` threads (default: one per core), results
    /// in input order. Each element is independent work (a kernel to minimize, say); the first
    /// error, in input order, is rethrown after all finish.
    public func concurrentMap<T: Sendable>(
        workers: Int = ProcessInfo.processInfo.activeProcessorCount,
        _ transform: @Sendable (Element) throws -> T
    ) throws -> [T] {
        let results = Mutex([Result<T, Error>?](repeating: nil, count: count))
        let next = Mutex(0)
        let items = self
        DispatchQueue.concurrentPerform(iterations: Swift.min(count, Swift.max(1, workers))) { _ in
            keepProcessNice()
            while true {
                let i = next.withLock { n in
                    defer { n += 1 }
                    return n
                }
                guard i < items.count else { return }
                let r = Result { try transform(items[i]) }
                results.withLock { $0[i] = r }
            }
        }
        return try results.withLock { $0 }.map { try $0!.get() }
    }
}
