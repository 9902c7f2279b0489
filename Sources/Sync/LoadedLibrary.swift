// A C library sync needs only for some repositories (libcurl for every download, libxml2 for
// rpm-md), loaded with dlopen on first use instead of linked, so the static btfgen and every
// command that never syncs run where the library is absent.

/// A table of a library's functions, filled once by its shim's loader and kept for the process.
final class LoadedLibrary<API>: @unchecked Sendable {
    /// Written once in `init`, read-only after: safe to share between threads.
    let table: UnsafeMutablePointer<API>?
    /// Why loading failed (the loader's message), empty when it worked.
    let failure: String

    /// `load` is the shim's `btfgen_*_load(table, error, error_size)` (0 on success); `ready`
    /// runs once after a successful load (a library's global init) and may refuse the library.
    init(
        empty: API, load: (UnsafeMutablePointer<API>, UnsafeMutablePointer<CChar>, Int) -> Int32,
        ready: (UnsafeMutablePointer<API>) -> Bool = { _ in true }
    ) {
        let table = UnsafeMutablePointer<API>.allocate(capacity: 1)
        table.initialize(to: empty)
        var message = [CChar](repeating: 0, count: 512)
        let loaded = message.withUnsafeMutableBufferPointer { load(table, $0.baseAddress!, $0.count) } == 0
        if loaded && ready(table) {
            self.table = table
            failure = ""
        } else {
            table.deallocate()
            self.table = nil
            failure = loaded ? "" : message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
    }
}
