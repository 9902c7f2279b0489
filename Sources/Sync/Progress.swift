// What a sync shows while it runs. On a terminal: one status line on standard error (kernels
// done and left, bytes fetched, the download rate, an ETA, the packages being fetched or built),
// redrawn in place with a carriage return and erase-to-end-of-line, in one write each so it never
// flickers, cut to the terminal's width (read again at every redraw, so a resized window is
// followed without a SIGWINCH handler), and erased before anything else is printed and at the end.
// Anywhere else (CI logs, pipes, files): one plain line per package started, as a log reads best.
import FoundationEssentials
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The progress of one sync on standard error.
public final class SyncProgress: Sendable {
    /// Whether standard error is a terminal (the status line) or not (plain lines).
    public let terminal: Bool
    private let state: Mutex<State>

    private struct State {
        var total = 0
        var done = 0
        var failed = 0
        var bytes = 0
        var toFetch = 0
        /// Package name → "fetching" or "building", in the order they started.
        var current: [(name: String, stage: String)] = []
        var started = 0.0
        /// (time, bytes) a few seconds back, for the rate.
        var samples: [(Double, Int)] = []
        var lastDraw = 0.0
        var shown = false
        var finished = false
    }

    /// `terminal` defaults to whether standard error is one.
    public init(terminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.terminal = terminal
        state = Mutex(State())
    }

    /// The packages to fetch are known: `total` of them, `bytes` to download at most. On a
    /// terminal a ticker redraws twice a second, so the rate and the ETA move during long builds.
    public func start(total: Int, bytes: Int) {
        let now = SyncProgress.now()
        state.withLock {
            $0.total = total
            $0.toFetch = bytes
            $0.bytes = 0  // the indexes were fetched before: the count is the packages'
            $0.started = now
            $0.samples = [(now, 0)]
        }
        guard terminal, total > 0 else { return }
        detachThread { [self] in
            while true {
                usleep(500_000)
                let running = state.withLock { s -> Bool in
                    guard !s.finished else { return false }
                    draw(&s)
                    return true
                }
                if !running { return }
            }
        }
    }

    /// A sync notice: a package started, was fetched, or finished.
    public func handle(_ notice: SyncNotice) {
        switch notice {
        case .unsignedRelease, .noIndex: return  // the command words those
        case .fetching(let p, let number, let total):
            state.withLock {
                $0.current.append((p.name, "fetching"))
                if terminal {
                    draw(&$0)
                } else {
                    emit(&$0, "btfgen: [\(number)/\(total)] fetching \(p.name) \(p.version) (\(byteCount(p.size)))\n")
                }
            }
        case .building(let p):
            state.withLock {
                if let i = $0.current.firstIndex(where: { $0.name == p.name }) { $0.current[i].stage = "building" }
                if terminal { draw(&$0) }
            }
        case .finished(let o):
            state.withLock {
                $0.done += 1
                if case .failed = o.result { $0.failed += 1 }
                $0.current.removeAll { $0.name == o.package.name }
                if terminal { draw(&$0) }
            }
        }
    }

    /// `n` more bytes written by a download (called from the transfer, often: redraws at most
    /// ten times a second).
    public func addBytes(_ n: Int) {
        state.withLock {
            $0.bytes += n
            if terminal && SyncProgress.now() - $0.lastDraw >= 0.1 { draw(&$0) }
        }
    }

    /// Print `line` (a warning, a failure) above the status line, which is then drawn again.
    public func message(_ line: String) {
        state.withLock {
            emit(&$0, line.hasSuffix("\n") ? line : line + "\n")
            if terminal && !$0.finished && $0.total > 0 { draw(&$0) }
        }
    }

    /// Erase the status line and stop redrawing it: what follows is printed on a clean line.
    public func finish() {
        state.withLock {
            $0.finished = true
            if $0.shown { writeStandardError("\r\u{1b}[K") }
            $0.shown = false
        }
    }

    // MARK: Drawing (called with the state locked)

    private func emit(_ s: inout State, _ text: String) {
        writeStandardError((s.shown ? "\r\u{1b}[K" : "") + text)
        s.shown = false
    }

    private func draw(_ s: inout State) {
        guard !s.finished, s.total > 0 else { return }
        let now = SyncProgress.now()
        s.lastDraw = now
        writeStandardError("\r" + SyncProgress.clip(statusLine(&s, now: now), to: SyncProgress.columns()) + "\u{1b}[K")
        s.shown = true
    }

    /// `kernels 1/4 done, 3 left | 120.5 MiB of 1.1 GiB | 11.2 MiB/s | ETA 2m10s | building linux-…`
    private func statusLine(_ s: inout State, now: Double) -> String {
        var parts = ["kernels \(s.done)/\(s.total) done, \(s.total - s.done) left"]
        if s.failed > 0 { parts[0] += ", \(s.failed) failed" }
        parts.append("\(byteCount(s.bytes)) of \(byteCount(s.toFetch))")
        s.samples.append((now, s.bytes))
        // The rate over the last 5 seconds: a build with nothing downloading shows no rate.
        while s.samples.count > 2, now - s.samples[1].0 >= 5 { s.samples.removeFirst() }
        if let first = s.samples.first, now - first.0 > 0.2 {
            let rate = Double(s.bytes - first.1) / (now - first.0)
            if rate >= 1 { parts.append("\(byteCount(Int(rate)))/s") }
        }
        // Builds dominate a kernel's time, so the ETA is the kernels' own pace once one is done.
        if s.done > 0 && s.done < s.total {
            let seconds = (now - s.started) / Double(s.done) * Double(s.total - s.done)
            parts.append("ETA \(SyncProgress.duration(seconds))")
        }
        let current = s.current.map { "\($0.stage) \($0.name)" }
        if !current.isEmpty { parts.append(current.joined(separator: ", ")) }
        return parts.joined(separator: " | ")
    }

    /// `text` cut to fit `columns` (one column left free, so the cursor never wraps the line).
    static func clip(_ text: String, to columns: Int) -> String {
        let room = max(columns - 1, 10)
        guard text.count > room else { return text }
        return String(text.prefix(room - 1)) + "…"
    }

    /// The terminal's width, 80 when it cannot be asked.
    static func columns() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    /// `45s`, `2m10s`, `1h05m`.
    static func duration(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(s % 60).leftPadded(2))s" }
        return "\(s / 3600)h\(String(s / 60 % 60).leftPadded(2))m"
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
