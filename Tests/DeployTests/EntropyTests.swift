// btfgen must start at once on a kernel whose CRNG is not initialized yet (before 5.4, early
// boot, no virtio-rng), where getrandom(2) without GRND_NONBLOCK sleeps for minutes. Two checks,
// on the binary built with the tests and on the static one deployed in images:
//   - strace: every getrandom btfgen's own threads make carries GRND_NONBLOCK;
//   - crng-not-ready (Tests/Tools): a seccomp filter gives non-blocking getrandom EAGAIN and puts
//     every other getrandom to sleep, as such a kernel does; each command must still finish.
import Foundation
import TestSupport
import Testing

enum Entropy {
    /// getrandom's GRND_NONBLOCK (linux/random.h).
    static let nonBlock: UInt64 = 0x1

    /// Commands that start no helper tool, so every getrandom seen is btfgen's own: start-up, the
    /// catalog, BTF selection, the BTF engine and libbpf.
    static func commands(scratch: ScratchDirectory) throws -> [[String]] {
        let catalog = scratch.file("kernels")
        var commands: [[String]] = [
            ["--version"], ["--help"], ["list", "--catalog", catalog], ["list", "--json", "--catalog", catalog],
        ]
        // The tests that run these require the host's BTF.
        let native = "/sys/kernel/btf/vmlinux"
        let object = try bpfObjects() + "/task_rename.bpf.o"
        commands += [
            ["resolve", "--catalog", catalog], ["resolve", "--json", "--catalog", catalog],
            ["inspect", native],
            ["minimize", "--object", object, "--btf", native, "-o", scratch.file("min")],
        ]
        return commands
    }

    /// One getrandom(2) call as `strace -e raw=getrandom` printed it.
    struct Call: CustomStringConvertible {
        let pid: Int
        let length: UInt64
        let flags: UInt64
        let line: String
        var description: String { line }
    }

    /// Every getrandom made by `binary` itself (threads included; programs it executes excluded)
    /// while running `arguments`, and the command's result.
    static func traceGetrandom(_ binary: String, _ arguments: [String], scratch: ScratchDirectory) throws -> (
        [Call], ProcessResult
    ) {
        let log = scratch.file("strace-\(UUID().uuidString.prefix(8)).log")
        let result = try runProcess(
            "/usr/bin/strace",
            [
                "-f", "-qq", "-o", log, "-e", "trace=getrandom,execve", "-e", "raw=getrandom", "-e", "signal=none",
                binary,
            ]
                + arguments,
            environment: ["SWIFT_DETERMINISTIC_HASHING": ""])
        let text = try String(contentsOfFile: log, encoding: .utf8)
        var foreign: Set<Int> = []
        var calls: [Call] = []
        // `PID getrandom(0x7ffd…, 0x8, 0x1) = 8`, or split into `<unfinished …>` and `<… resumed>`
        // when threads interleave; the arguments are on the first half.
        let call = /^(\d+) +getrandom\((0x[0-9a-f]+|NULL|0), (0x[0-9a-f]+|\d+), (0x[0-9a-f]+|\d+)/
        let exec = /^(\d+) +execve\("([^"]*)".* = 0$/
        for line in text.split(separator: "\n").map(String.init) {
            if let m = line.firstMatch(of: exec) {
                if String(m.2) != binary { foreign.insert(Int(m.1)!) }
                continue
            }
            guard line.contains("getrandom(") else { continue }
            let m = try #require(
                line.firstMatch(of: call), "strace printed a getrandom line this test cannot read: \(line)")
            let pid = Int(m.1)!
            if foreign.contains(pid) { continue }
            calls.append(Call(pid: pid, length: number(m.3), flags: number(m.4), line: line))
        }
        return (calls, result)
    }

    static func number(_ text: Substring) -> UInt64 {
        text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16)! : UInt64(text)!
    }

    /// Tests/Tools/crng-not-ready.c, compiled once.
    static let crngNotReady: Result<String, CompileFailure> = {
        do {
            let dir = try ScratchDirectory("btfgen-crng")
            let out = dir.file("crng-not-ready")
            let source = Repo.root.appendingPathComponent("Tests/Tools/crng-not-ready.c").path
            let r = try runProcess("cc", ["-O2", "-Wall", "-o", out, source])
            return r.status == 0 ? .success(out) : .failure(CompileFailure(text: "cc crng-not-ready.c: \(r.stderr)"))
        } catch {
            return .failure(CompileFailure(text: "\(error)"))
        }
    }()

    struct CompileFailure: Error, CustomStringConvertible {
        let text: String
        var description: String { text }
    }

    /// Seconds a command may take under crng-not-ready; a blocked getrandom never ends by itself.
    static let patience = 30

    static func checkEveryCallIsNonBlocking(_ binary: String) throws {
        let scratch = try ScratchDirectory("btfgen-entropy")
        defer { scratch.remove() }
        for arguments in try commands(scratch: scratch) {
            let (calls, result) = try traceGetrandom(binary, arguments, scratch: scratch)
            let command = "btfgen \(arguments.joined(separator: " "))"
            #expect(result.status == 0, "\(command) failed: \(result.stderr.suffix(1000))")
            // The Swift runtime seeds its hashing at start-up: no call at all means strace saw nothing.
            #expect(!calls.isEmpty, "strace saw no getrandom from \(command); the trace is not working")
            let blocking = calls.filter { $0.flags & nonBlock == 0 }
            #expect(blocking.isEmpty, "\(command) called getrandom without GRND_NONBLOCK: \(blocking)")
        }
    }

    static func checkStartsWithoutEntropy(_ binary: String) throws {
        let harness = try crngNotReady.get()
        let scratch = try ScratchDirectory("btfgen-entropy")
        defer { scratch.remove() }
        for arguments in try commands(scratch: scratch) {
            let started = Date()
            let result = try runProcess(
                harness, ["\(patience)", binary] + arguments, environment: ["SWIFT_DETERMINISTIC_HASHING": ""])
            let command = "btfgen \(arguments.joined(separator: " "))"
            #expect(result.status != 125, "crng-not-ready could not run: \(result.stderr)")
            let blocked = result.stderrLines.filter { $0.hasPrefix("crng-not-ready: blocked") }
            #expect(blocked.isEmpty, "\(command) waited for entropy: \(blocked)")
            #expect(
                result.status == 0,
                "\(command) exited \(result.status) after \(Int(Date().timeIntervalSince(started))) s: \(result.stderr.suffix(1000))"
            )
            if !blocked.isEmpty { break }  // every further command would wait out its time the same way
        }
    }
}

@Suite struct EntropyTests {
    @Test(.requires(.hostBTF, .tool("strace")))
    func everyGetrandomIsNonBlocking() throws {
        try Entropy.checkEveryCallIsNonBlocking(Repo.btfgen)
    }

    @Test(.requires(.hostBTF, .tool("strace"), .fixture("BTFGEN_STATIC_BIN")))
    func everyGetrandomOfTheStaticBinaryIsNonBlocking() throws {
        try Entropy.checkEveryCallIsNonBlocking(try #require(Fixture.staticBtfgen))
    }

    @Test(.requires(.hostBTF)) func startsOnAKernelWhoseCRNGIsNotReady() throws {
        try Entropy.checkStartsWithoutEntropy(Repo.btfgen)
    }

    @Test(.requires(.hostBTF, .fixture("BTFGEN_STATIC_BIN")))
    func theStaticBinaryStartsOnAKernelWhoseCRNGIsNotReady() throws {
        try Entropy.checkStartsWithoutEntropy(try #require(Fixture.staticBtfgen))
    }

    /// The harness itself: a blocking getrandom really sleeps under it (or this suite proves nothing).
    @Test func crngNotReadyHoldsABlockingGetrandom() throws {
        let harness = try Entropy.crngNotReady.get()
        let result = try runProcess(harness, ["2", "python3", "-c", "import os; os.getrandom(8)"])
        #expect(result.status == 124, "\(result.stderr)")
        #expect(
            result.stderrLines.contains { $0.hasPrefix("crng-not-ready: blocked getrandom(8, 0x0)") },
            "\(result.stderr)")
        // A non-blocking getrandom returns at once under the harness; the long bound only keeps a
        // loaded machine's slow python3 start from reading as a hang.
        let nonBlocking = try runProcess(
            harness,
            [
                "60", "python3", "-c",
                "import os\ntry:\n os.getrandom(8, os.GRND_NONBLOCK)\nexcept BlockingIOError:\n print('EAGAIN')",
            ])
        #expect(nonBlocking.status == 0 && nonBlocking.stdout == "EAGAIN\n", "\(nonBlocking.stderr)")
    }
}
