// How many builds to run at once. Each build mostly waits for pahole, which needs about 1 GB
// for a 6.1 kernel (1.2 GB is allowed per build): one build per core, but never more than the
// memory the kernel says is available.
import FoundationEssentials

/// The default number of concurrent builds for this machine.
public enum BuildConcurrency {
    /// Memory one build may use: pahole's peak for a 6.1 kernel, with some room.
    public static let bytesPerBuild: UInt64 = 1_200 << 20

    /// One build per core, no more than available memory allows at `bytesPerBuild` each, at least one.
    public static func defaultJobs() -> Int {
        let available = availableMemory() ?? ProcessInfo.processInfo.physicalMemory
        return jobs(cores: ProcessInfo.processInfo.activeProcessorCount, availableBytes: available)
    }

    /// The job count for `cores` and `availableBytes` of memory.
    public static func jobs(cores: Int, availableBytes: UInt64) -> Int {
        max(1, min(cores, Int(availableBytes / bytesPerBuild)))
    }

    /// MemAvailable from /proc/meminfo (what can be allocated without swapping), nil when unknown.
    public static func availableMemory() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        return memAvailable(meminfo: text)
    }

    /// The `MemAvailable:` line of /proc/meminfo text, in bytes.
    public static func memAvailable(meminfo text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let kb = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
