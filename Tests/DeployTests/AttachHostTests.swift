// `btfgen attach` on this machine (root, a kernel with native BTF): the programs in bpf/ attach,
// a process renames itself and unlinks a file, and the events carry its real pid, new name and
// path — with the native BTF and with --btf pointing at a copy of it, identically.
import Foundation
import TestSupport
import Testing

/// The BPF objects from `make bpf`; built here when absent.
func bpfObjects() throws -> String {
    let dir = Repo.root.appendingPathComponent("bpf").path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    if !names.contains("task_rename.bpf.o") || !names.contains("unlinkat.bpf.o") || !names.contains("exec.bpf.o") {
        let r = try runProcess("make", ["-C", Repo.root.path, "bpf"])
        try #require(r.status == 0, "make bpf failed: \(r.stderr)")
    }
    return dir
}

/// An object from bpf/attach-tests (programs that misbehave on purpose); built here when absent.
func attachTestObject(_ name: String) throws -> String {
    let path = Repo.root.appendingPathComponent("bpf/attach-tests/\(name).bpf.o").path
    if !FileManager.default.fileExists(atPath: path) {
        let r = try runProcess("make", ["-C", Repo.root.path, "bpf"])
        try #require(r.status == 0, "make bpf failed: \(r.stderr)")
    }
    return path
}

/// scripts/qemu/actor.c compiled for the host.
func buildActor(in dir: ScratchDirectory) throws -> String {
    let out = dir.file("actor")
    let r = try runProcess("cc", ["-O2", "-o", out, Repo.root.appendingPathComponent("scripts/qemu/actor.c").path])
    try #require(r.status == 0, "cc actor.c: \(r.stderr)")
    return out
}

/// What the actor says it did.
struct ActorTruth: Equatable {
    var pid: Int
    var name: String
    var path: String

    init(_ line: String) throws {
        var fields: [String: String] = [:]
        for part in line.split(separator: " ").dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        pid = try #require(fields["pid"].flatMap { Int($0) })
        name = try #require(fields["name"])
        path = try #require(fields["path"])
    }
}

/// A running `btfgen attach --json`, its streams going to files.
final class AttachProcess {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(_ arguments: [String], in dir: ScratchDirectory, label: String, environment: [String: String] = [:]) throws {
        stdoutPath = dir.file("\(label).out")
        stderrPath = dir.file("\(label).err")
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Repo.btfgen)
        process.arguments = ["attach", "--json"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// Wait (bounded) for the "attached" line; false if the process died or took too long.
    func waitAttached(seconds: Double = 60) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if stderr.contains("btfgen: attached ") { return true }
            if !process.isRunning { return false }
            usleep(50_000)
        }
        return false
    }

    /// SIGTERM (or `signal`), then wait (bounded) for a clean exit.
    func terminate(_ signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let end = Date().addingTimeInterval(20)
        while process.isRunning && Date() < end { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The JSON events of one pid.
    func events(pid: Int) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").compactMap { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["pid"] as? Int == pid ? object : nil
        }
    }
}

/// Run the actor under a fresh `btfgen attach` and check every event against the actor's own account.
/// Returns the events with the pid taken out, for comparing runs.
func traceActor(
    _ extra: [String], label: String, dir: ScratchDirectory, actor: String, objects: String,
    stopWith signal: Int32 = SIGTERM
) throws
    -> [String]
{
    let attach = try AttachProcess(extra, in: dir, label: label, environment: ["BTFGEN_BPF_DIR": objects])
    guard attach.waitAttached() else {
        _ = attach.terminate()
        Issue.record("attach (\(label)) never attached: \(attach.stderr)")
        return []
    }
    let name = "bt-\(label.prefix(4))-\(UInt32.random(in: 1000...9999))"
    let path = dir.file("unlink-me-\(label)")
    let r = try runProcess(actor, [name, path])
    try #require(r.status == 0, "actor: \(r.stderr)")
    let truth = try ActorTruth(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    // perf buffers are read every ≤250 ms: give the events time to arrive before stopping.
    let end = Date().addingTimeInterval(10)
    while Date() < end, (try attach.events(pid: truth.pid)).count < 4 { usleep(100_000) }
    let status = attach.terminate(signal)
    #expect(status == 0, "signal \(signal) must stop attach cleanly: \(attach.stderr)")
    #expect(attach.stderr.contains("stopped (signal)"))
    #expect(!attach.stderr.contains("contradict"), "CO-RE values contradicted the kernel: \(attach.stderr)")

    let events = try attach.events(pid: truth.pid)
    let rename = events.first { $0["kind"] as? String == "rename" && $0["new_comm"] as? String == name }
    let unlink = events.first { $0["kind"] as? String == "unlinkat" && $0["path"] as? String == path }
    let exec = events.first { $0["kind"] as? String == "exec" && $0["path"] as? String == actor }
    #expect(rename != nil, "no rename event for pid \(truth.pid) to \(name): \(attach.stdout.suffix(2000))")
    #expect(unlink != nil, "no unlinkat event for \(path)")
    #expect(exec != nil, "no exec event for \(actor)")
    if let rename {
        #expect(rename["tid"] as? Int == truth.pid)
        #expect(rename["comm"] as? String == "actor", "the old name is the exec'd file's")
        let oom = try String(contentsOfFile: "/proc/self/oom_score_adj", encoding: .utf8)
        #expect(
            rename["oom_score_adj"] as? Int == Int(oom.trimmingCharacters(in: .whitespacesAndNewlines)),
            "the actor inherits the test's oom_score_adj")
    }
    if let unlink {
        #expect(unlink["comm"] as? String == name)
        #expect(unlink["syscall"] as? Int == 263)
        #expect(unlink["helper_pid"] as? Int == truth.pid)
    }
    return [rename, unlink, exec].compactMap { $0 }.map { event in
        var e = event
        for k in ["pid", "tid", "helper_pid", "helper_tid"] { e[k] = (e[k] as? Int) == truth.pid ? "actor" : e[k] }
        e["new_comm"] = (e["new_comm"] as? String) == name ? "NAME" : e["new_comm"]
        e["comm"] = (e["comm"] as? String) == name ? "NAME" : e["comm"]
        e["path"] = (e["path"] as? String) == path ? "PATH" : e["path"]
        let data = try! JSONSerialization.data(withJSONObject: e, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite(.serialized, .requires(.root, .hostBTF))
struct AttachHostTests {
    @Test func nativeAndCopiedBTFReportTheSameTrueValues() throws {
        let dir = try ScratchDirectory("btfgen-attach")
        defer { dir.remove() }
        let objects = try bpfObjects()
        let actor = try buildActor(in: dir)
        let copy = dir.file("vmlinux.btf")
        try FileManager.default.copyItem(atPath: "/sys/kernel/btf/vmlinux", toPath: copy)
        let native = try traceActor([], label: "native", dir: dir, actor: actor, objects: objects)
        let viaFile = try traceActor(
            ["--btf", copy], label: "file", dir: dir, actor: actor, objects: objects, stopWith: SIGINT)
        #expect(native.count == 3)
        #expect(native == viaFile, "native and --btf runs differ")
    }

    @Test(.requires(.tool("bpftool")))  // gen min_core_btf: the reference minimizer
    func minimizedBTFReportsTheSameValues() throws {
        // bpftool's BTFGen keeps only what the objects' CO-RE relocations touch.
        try expectMinimizedTracesMatchNative(label: "min", what: "minimized") { dir, objectFiles in
            let minimized = dir.file("min.btf")
            let r = try runProcess(
                "bpftool", ["gen", "min_core_btf", "/sys/kernel/btf/vmlinux", minimized] + objectFiles)
            try #require(r.status == 0, "bpftool gen min_core_btf: \(r.stderr)")
            let size = try #require(FileManager.default.attributesOfItem(atPath: minimized)[.size] as? Int)
            #expect(size < 16_384, "a 3-program minimized BTF is a few KB, got \(size) B")
            return minimized
        }
    }

    @Test func btfgenMinimizedBTFReportsTheSameValues() throws {
        try expectMinimizedTracesMatchNative(label: "bmin", what: "btfgen-minimized") { dir, objectFiles in
            let copy = dir.file("vmlinux.btf")
            try FileManager.default.copyItem(atPath: "/sys/kernel/btf/vmlinux", toPath: copy)
            let r = try btfgen(
                ["minimize", "--btf", copy, "-o", dir.file("min")] + objectFiles.flatMap { ["--object", $0] })
            try #require(r.status == 0, "btfgen minimize: \(r.stderr)")
            return dir.file("min/vmlinux.btf")
        }
    }

    /// Trace the actor with the native BTF and with the one `minimize` makes from it for the three
    /// objects (given the scratch directory and the objects' paths): the values must be the same.
    func expectMinimizedTracesMatchNative(
        label: String, what: String, minimize: (ScratchDirectory, [String]) throws -> String
    ) throws {
        let dir = try ScratchDirectory("btfgen-attach")
        defer { dir.remove() }
        let objects = try bpfObjects()
        let actor = try buildActor(in: dir)
        let minimized = try minimize(dir, ["exec", "task_rename", "unlinkat"].map { "\(objects)/\($0).bpf.o" })
        let native = try traceActor([], label: "native", dir: dir, actor: actor, objects: objects)
        let small = try traceActor(["--btf", minimized], label: label, dir: dir, actor: actor, objects: objects)
        #expect(native.count == 3)
        #expect(native == small, "native and \(what) runs differ")
    }

    @Test(.requires(.fixture("BTFGEN_TEST_VMLINUX")))  // another kernel's BTF
    func anotherKernelsBTFIsCaughtAtRunTime() throws {
        // The 6.1 test kernel's BTF on this host's kernel: libbpf loads and attaches without a
        // word, the CO-RE reads are garbage, and attach must say so and fail.
        let dir = try ScratchDirectory("btfgen-attach")
        defer { dir.remove() }
        let vmlinux = try #require(Fixture.testVmlinux)
        let objects = try bpfObjects()
        let actor = try buildActor(in: dir)
        let catalog = dir.file("kernels")
        let built = try btfgen(["build", vmlinux, "--catalog", catalog])
        try #require(built.status == 0, "\(built.stderr)")
        let r = try btfgen(["resolve", "--catalog", catalog, "--kernel", "auto", "--force-catalog"])
        #expect(r.status == 1, "the host must not match the test kernel's entry")
        let release = try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_RELEASE"])
        let refused = try btfgen(
            ["attach", "--catalog", catalog, "--kernel", release, "--count", "0"],
            environment: ["BTFGEN_BPF_DIR": objects])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("btfgen: build-id mismatch:"), "\(refused.stderr)")

        let attach = try AttachProcess(
            ["--catalog", catalog, "--kernel", release, "--force", "--program", "sys_enter"],
            in: dir, label: "wrong", environment: ["BTFGEN_BPF_DIR": objects])
        try #require(attach.waitAttached(), "\(attach.stderr)")
        #expect(attach.stderr.contains("--force: using"))
        let end = Date().addingTimeInterval(20)
        while Date() < end && attach.process.isRunning {
            _ = try runProcess(actor, ["bt-wrong", dir.file("wrong")])
            usleep(200_000)
        }
        // It stops by itself at the first contradiction, before printing that event or any other.
        #expect(!attach.process.isRunning, "attach went on after a contradiction: \(attach.stderr)")
        let status = attach.terminate()
        #expect(attach.stderr.contains("does not describe this kernel"), "\(attach.stderr)")
        #expect(status == 3, "garbage CO-RE values must fail the run")
        #expect(attach.stdout.isEmpty, "events printed from a BTF proven wrong: \(attach.stdout.prefix(2000))")
    }

    @Test func countStopsAfterThatManyEventsOfTheNamedProgram() throws {
        let dir = try ScratchDirectory("btfgen-attach")
        defer { dir.remove() }
        let objects = try bpfObjects()
        let actor = try buildActor(in: dir)
        let attach = try AttachProcess(
            [
                "--object", objects + "/task_rename.bpf.o", "--program", "task_rename",
                "--count", "1", "--duration", "60s",
            ], in: dir, label: "count")
        try #require(attach.waitAttached(), "\(attach.stderr)")
        #expect(attach.stderr.contains("attached 1 program (task_rename)"))
        _ = try runProcess(actor, ["bt-count", dir.file("x")])
        let end = Date().addingTimeInterval(20)
        while attach.process.isRunning && Date() < end { usleep(50_000) }
        #expect(!attach.process.isRunning, "--count 1 did not stop attach")
        #expect(attach.terminate() == 0)
        #expect(attach.stderr.contains("stopped (count)"))
        #expect(attach.stdout.split(separator: "\n").count == 1)
    }

    @Test func countZeroExitsRightAfterAttaching() throws {
        let r = try btfgen(["attach", "--count", "0"], environment: ["BTFGEN_BPF_DIR": try bpfObjects()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("attached 3 programs"))
        #expect(r.stderr.contains("[native]"))
    }

    @Test func durationStopsTheTrace() throws {
        let objects = try bpfObjects()
        let started = Date()
        let r = try btfgen(["attach", "--object", objects + "/exec.bpf.o", "--duration", "700ms"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("stopped (duration)"))
        #expect(Date().timeIntervalSince(started) >= 0.7)
        let bad = try btfgen(["attach", "--duration", "2x"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--duration 2x is not a duration"))
    }

    @Test func resolveExplainsTheChoiceAndRefusesWithoutAMatch() throws {
        let dir = try ScratchDirectory("btfgen-resolve")
        defer { dir.remove() }
        let native = try btfgen(["resolve", "--json", "--catalog", dir.file("kernels")])
        try #require(native.status == 0, "\(native.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(native.stdout.utf8)) as? [String: Any])
        let btf = try #require(json["btf"] as? [String: Any])
        #expect(btf["source"] as? String == "native")
        let running = try #require(json["running"] as? [String: Any])
        #expect((running["buildID"] as? String)?.count == 40)
        let refused = try btfgen(["resolve", "--force-catalog", "--catalog", dir.file("kernels")])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("btfgen: no BTF for the running kernel"))
        #expect(refused.stderr.contains("btfgen build"))
        #expect(refused.stderr.split(separator: "\n").count == 1, "one line: \(refused.stderr)")
    }

    @Test func badInputGivesOneLineAndFails() throws {
        let objects = try bpfObjects()
        let missing = try btfgen(["attach", "--object", "/nonexistent/x.bpf.o", "--count", "0"])
        #expect(missing.status == 1)
        #expect(
            missing.stderr
                == "btfgen: BPF object /nonexistent/x.bpf.o: no such file; build it with `make bpf` or pass --object FILE\n"
        )
        let unknown = try btfgen(["attach", "--object", objects + "/exec.bpf.o", "--program", "nope", "--count", "0"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no raw_tp program called 'nope'; available: sched_process_exec"))
        let badBTF = try btfgen(["attach", "--object", objects + "/exec.bpf.o", "--btf", "/nonexistent.btf"])
        #expect(badBTF.status == 1)
        #expect(badBTF.stderr.contains("--btf /nonexistent.btf: no such file"))
    }

    @Test func aBTFFileThatIsNotBTFIsRefusedAsSuchNotBlamedOnTheObject() throws {
        let dir = try ScratchDirectory("btfgen-attach")
        defer { dir.remove() }
        let objects = try bpfObjects()
        let junk = dir.file("junk.btf")
        try Data(repeating: 0x41, count: 64).write(to: URL(fileURLWithPath: junk))
        let r = try btfgen(["attach", "--object", objects + "/exec.bpf.o", "--btf", junk, "--count", "0"])
        #expect(r.status == 1)
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("\(junk) is not usable BTF (not BTF: magic is 0x4141"), "\(r.stderr)")
        #expect(!r.stderr.contains("failed to load"), "the object is not what is wrong: \(r.stderr)")
    }

    @Test func samplesThatAreNotBtfgenEventsAreDroppedAndCounted() throws {
        // Every syscall sends an 8-byte sample: none is printed, and the closing line counts them.
        let r = try btfgen(["attach", "--object", try attachTestObject("short_sample"), "--duration", "500ms"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty, "\(r.stdout)")
        let closing = try #require(r.stderrLines.last)
        #expect(closing.hasPrefix("btfgen: stopped (duration)"), "\(r.stderr)")
        #expect(closing.hasSuffix("malformed samples dropped (not btfgen events)"), "\(r.stderr)")
    }

    @Test func anObjectWithoutRawTracepointsIsRefusedByTheDryRunAsByTheRun() throws {
        let object = try attachTestObject("no_raw_tp")
        let line = "btfgen: \(object) has no raw_tp/ or raw_tracepoint/ programs to attach\n"
        let dry = try btfgen(["attach", "--dry-run", "--object", object])
        #expect(dry.status == 1)
        #expect(dry.stderr == line)
        let run = try btfgen(["attach", "--count", "0", "--object", object])
        #expect(run.status == 1)
        #expect(run.stderr == line)
    }

    @Test(.requires(.tool("setpriv")))  // to drop root
    func withoutPrivilegesTheErrorSaysWhatToDo() throws {
        // A copy outside the checkout, which may sit below a directory nobody cannot enter (/root).
        let dir = try ScratchDirectory("btfgen-nobody")
        defer { dir.remove() }
        chmod(dir.path, 0o755)
        let bin = dir.file("btfgen")
        try FileManager.default.copyItem(atPath: Repo.btfgen, toPath: bin)
        let object = dir.file("exec.bpf.o")
        try FileManager.default.copyItem(atPath: try bpfObjects() + "/exec.bpf.o", toPath: object)
        let r = try runProcess(
            "setpriv",
            [
                "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                bin, "attach", "--object", object, "--count", "0",
            ])
        #expect(r.status == 1)
        #expect(r.stderr.contains("needs root or CAP_BPF"), "\(r.stderr)")
    }
}
