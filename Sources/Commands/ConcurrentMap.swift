import Foundation

extension Array where Element: Sendable {
    /// `transform` over every element on up to `workers` threads (default: one per core), results
    /// in input order. Each element is independent work (a kernel to minimize, say); the first
    /// error, in input order, is rethrown after all finish.
    func concurrentMap<T: Sendable>(workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                                    _ transform: @Sendable (Element) throws -> T) throws -> [T] {
        nonisolated(unsafe) var results = [Result<T, Error>?](repeating: nil, count: count)
        let lock = NSLock()
        nonisolated(unsafe) var next = 0
        let items = self
        DispatchQueue.concurrentPerform(iterations: Swift.min(count, Swift.max(1, workers))) { _ in
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                guard i < items.count else { return }
                let r = Result { try transform(items[i]) }
                lock.lock()
                results[i] = r
                lock.unlock()
            }
        }
        return try results.map { try $0!.get() }
    }
}
