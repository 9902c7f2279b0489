// `nice btfgen build` is honoured by every thread of btfgen that works and by pahole under it.
// Linux keeps a nice value per thread and libdispatch gives its worker threads their QoS's (0,
// and -4 for overcommit threads), so before the fix the work and pahole ran at 0 under
// `nice -n 7`: a fleet sync in a shared CI runner took the machine from everything else. (Idle
// libdispatch threads may keep their value; they use no CPU, and the check is on CPU used.)
import Foundation
import TestSupport
import Testing

@Suite struct NiceTests {
    struct ThreadSample { var comm: String; var nice: Int; var ticks: Int }

    /// Each thread of `pid` and its children, by "pid/tid": its name, nice value (field 19 of
    /// /proc/PID/task/TID/stat) and CPU ticks used (utime + stime, fields 14 and 15).
    static func threads(of pid: Int32) -> [String: ThreadSample] {
        var out: [String: ThreadSample] = [:]
        var pids = [pid]
        var seen = Set<Int32>()
        while let p = pids.popLast() {
            guard seen.insert(p).inserted,
                let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p)/task")
            else { continue }
            for t in tasks {
                let base = "/proc/\(p)/task/\(t)"
                guard let stat = try? String(contentsOfFile: base + "/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { continue }
                // Fields after "(comm)": state is field 3, so nice (19) is the 17th after it.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                guard fields.count > 16, let nice = Int(fields[16]), let user = Int(fields[11]),
                    let system = Int(fields[12])
                else { continue }
                let comm = String(stat[stat.index(after: stat.firstIndex(of: "(")!)..<close])
                out["\(p)/\(t)"] = ThreadSample(comm: comm, nice: nice, ticks: user + system)
                if let children = try? String(contentsOfFile: base + "/children", encoding: .utf8) {
                    pids += children.split(separator: " ").compactMap { Int32($0) }
                }
            }
        }
        return out
    }

    @Test(.requires(.fixture("BTFGEN_TEST_VMLINUX"), .tool("nice")))
    func everyThreadAndPaholeKeepTheNiceValueTheBuildWasStartedWith() throws {
        let vmlinux = try #require(Fixture.testVmlinux)
        let dir = try ScratchDirectory("btfgen-nice")
        defer { dir.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
        process.arguments = ["-n", "7", Repo.btfgen, "build", "--catalog", dir.file("kernels"), vmlinux]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var last: [String: ThreadSample] = [:]
        var working = Set<String>()  // threads seen using CPU
        var above = Set<String>()  // ... while at a nice value below 7
        var ticks = (above: 0, all: 0)
        while process.isRunning {
            let now = Self.threads(of: process.processIdentifier)
            for (id, sample) in now {
                guard let before = last[id], sample.ticks > before.ticks else { continue }
                working.insert(sample.comm)
                // Below 7 at both ends of the interval it worked in (a new thread takes the
                // process's value as it starts, so the start of its first interval may say 0).
                let nice = max(sample.nice, before.nice)
                ticks.all += sample.ticks - before.ticks
                if nice < 7 {
                    above.insert("\(sample.comm) at nice \(nice)")
                    ticks.above += sample.ticks - before.ticks
                }
            }
            last.merge(now) { $1 }
            usleep(2_000)
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // The test proves something only if it saw pahole and btfgen's worker threads at work.
        #expect(working.contains("pahole"), "pahole was never seen working: \(working)")
        #expect(working.contains { $0 != "btfgen" && $0 != "pahole" }, "no worker thread was seen working: \(working)")
        // pahole (a child: forked with the process's value) never; btfgen's threads for at most a
        // tick or two of libdispatch's own, at a new worker's start, before it takes the value.
        // Before the fix nearly every tick of both ran at 0.
        #expect(!above.contains { $0.hasPrefix("pahole") }, "pahole worked above nice 7: \(above.sorted())")
        #expect(
            ticks.above * 50 <= ticks.all,
            "\(ticks.above) of \(ticks.all) CPU ticks were used above nice 7, by \(above.sorted())")
    }
}
