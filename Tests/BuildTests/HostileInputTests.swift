// Inputs and places a user (or a script gone wrong) can hand btfgen that are not plain files and
// writable directories: fifos, /dev/stdin, devices, read-only and foreign catalogs, a missing
// import tree, negative limits, short build-id prefixes, and the scratch a killed build leaves.
// Each gets one line naming the real cause and the next step, a non-zero exit, and no leftovers.
// Every btfgen run here is bounded by timeout(1): a hang is a failure, not a stuck test run.
import Foundation
import TestSupport
import Testing

/// Run btfgen under `timeout SECONDS` (status 124 when it had to be killed).
@discardableResult
func boundedBtfgen(
    _ arguments: [String], seconds: Int = 60, environment: [String: String]? = nil, stdin: Data? = nil
) throws -> ProcessResult {
    try runProcess(
        "timeout", ["-s", "KILL", "\(seconds)", Repo.btfgen] + arguments, environment: environment, stdin: stdin)
}

/// `cat FILE | btfgen ARGS…` (btfgen reading a real pipe on stdin; cat, not this process, takes the
/// SIGPIPE when btfgen stops reading early).
func btfgenReadingPipe(from file: String, _ arguments: [String]) throws -> ProcessResult {
    try runProcess(
        "sh", ["-c", "cat \"$0\" | exec timeout -s KILL 60 \"$@\"", file, Repo.btfgen] + arguments)
}

/// Run btfgen as the unprivileged user nobody (uid 65534), as a user without write access would.
/// The binary is run from a copy in `dir`: the checkout it was built in may be closed to others
/// (a clone under /root), and its libraries are found by absolute run path.
func btfgenAsNobody(_ arguments: [String], in dir: ScratchDirectory) throws -> ProcessResult {
    let copy = dir.file("btfgen-as-nobody")
    if !FileManager.default.fileExists(atPath: copy) {
        try FileManager.default.copyItem(atPath: Repo.btfgen, toPath: copy)
        chmod(copy, 0o755)
    }
    let drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return try runProcess("timeout", ["-s", "KILL", "60"] + drop + [copy] + arguments)
}

/// A tmpfs mounted at `path` for the life of `body`, unmounted even when `body` fails.
func withTmpfs<T>(at path: String, _ body: () throws -> T) throws -> T {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    let m = try runProcess("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", path])
    try #require(m.status == 0, "mount tmpfs: \(m.stderr)")
    defer { _ = try? runProcess("umount", ["-l", path]) }
    return try body()
}

/// Remount the tmpfs at `path` read-only.
func remountReadOnly(_ path: String) throws {
    let r = try runProcess("mount", ["-o", "remount,ro", path])
    try #require(r.status == 0, "remount ro: \(r.stderr)")
}

@Suite struct HostileInputTests {
    /// One-line refusal: non-zero exit, one `btfgen: ` line holding every phrase and none of `never`.
    func expectOneLine(
        _ r: ProcessResult, _ phrases: [String], never: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            r.status != 0 && r.status != 124 && r.status != 137, "status \(r.status)", sourceLocation: sourceLocation)
        #expect(r.stderrLines.count == 1, "expected one line, got: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("btfgen: "), "\(r.stderr)", sourceLocation: sourceLocation)
        for p in phrases {
            #expect(r.stderr.contains(p), "\"\(p)\" not in: \(r.stderr)", sourceLocation: sourceLocation)
        }
        for p in never + ["Error Domain", "The operation could not be completed"] {
            #expect(!r.stderr.contains(p), "\"\(p)\" in: \(r.stderr)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Inputs that are not regular files

    @Test func aFifoNobodyWritesIsRefusedInsteadOfBlocking() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let fifo = dir.file("fifo"), catalog = dir.file("kernels")
        try #require(mkfifo(fifo, 0o644) == 0)
        let started = Date()
        let r = try boundedBtfgen(["build", fifo, "--catalog", catalog], seconds: 30)
        expectOneLine(r, [fifo, "fifo", "no process opened for writing", "start the writer first"])
        #expect(Date().timeIntervalSince(started) < 25)
        // Nothing left behind: not even the catalog directory.
        #expect(!FileManager.default.fileExists(atPath: catalog))
    }

    @Test func aFifoOrAPipeCarryingAVmlinuxIsBuilt() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        let vmlinux = try FakeKernel.compile(in: dir, release: "5.10.0-piped", variant: 11)
        let other = try FakeKernel.compile(in: dir, name: "other", release: "5.10.0-fifo", variant: 12)
        // A pipe on stdin (`… | btfgen build /dev/stdin`).
        let piped = try btfgenReadingPipe(from: vmlinux, ["build", "/dev/stdin", "--catalog", catalog])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.contains(try FakeKernel.readelfBuildID(vmlinux)), "\(piped.stdout)")

        // stdin redirected from the file: /dev/stdin is then a regular file, but a different one
        // in pahole's process.
        let redirected = try runProcess(
            "sh",
            [
                "-c", "exec timeout -s KILL 60 \"$0\" build /dev/stdin --force --catalog \"$1\" < \"$2\"", Repo.btfgen,
                catalog, vmlinux,
            ])
        #expect(redirected.status == 0, "\(redirected.stderr)")
        // The same kernel again, forced: canonical BTF makes it byte-identical, so it is left as is.
        #expect(redirected.stdout.contains("byte-identical"), "\(redirected.stdout)")

        // A fifo whose writer starts after btfgen, compressed on the way.
        let fifo = dir.file("fifo")
        try #require(mkfifo(fifo, 0o644) == 0)
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = ["-c", "sleep 1; xz -c \"$0\" > \"$1\"", other, fifo]
        try writer.run()
        defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) }; writer.waitUntilExit() }
        let fromFifo = try boundedBtfgen(["build", fifo, "--catalog", catalog])
        #expect(fromFifo.status == 0, "\(fromFifo.stderr)")
        #expect(fromFifo.stdout.contains("5.10.0-fifo"), "\(fromFifo.stdout)")
        #expect(try indexEntries(catalog).count == 2)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? [] == [])

        // An empty pipe is empty, and a pipe of garbage is refused from its first bytes.
        expectOneLine(
            try boundedBtfgen(["build", "/dev/stdin", "--catalog", catalog], stdin: Data()), ["/dev/stdin is empty"])
        let garbage = dir.file("garbage")
        try Data(repeating: 0x41, count: 1 << 20).write(to: URL(fileURLWithPath: garbage))
        expectOneLine(
            try btfgenReadingPipe(from: garbage, ["build", "/dev/stdin", "--catalog", catalog]),
            ["/dev/stdin is not an ELF file"])
    }

    @Test func devicesAreRefusedWithoutReadingThem() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        for device in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let r = try boundedBtfgen(["build", device, "--catalog", catalog], seconds: 20)
            expectOneLine(
                r, [device, "is a character device, not a file or a pipe", "/dev/stdin"], never: ["is empty"])
        }
        #expect(!FileManager.default.fileExists(atPath: catalog))
    }

    // MARK: Catalogs that cannot be written

    @Test(.requires(.root))  // mounting a tmpfs, mknod, setpriv to nobody
    func aReadOnlyCatalogIsNamedAndPaholeIsNotBlamed() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let seed = try FakeKernel.compile(in: dir, name: "seed", release: "5.10.0-seed", variant: 13)
        let fresh = try FakeKernel.compile(in: dir, name: "fresh", release: "5.10.0-fresh", variant: 14)
        let mount = dir.file("ro")
        try withTmpfs(at: mount) {
            // No catalog yet, on a read-only file system.
            try remountReadOnly(mount)
            let missing = try boundedBtfgen(["build", fresh, "--catalog", mount + "/kernels"])
            expectOneLine(
                missing, ["catalog \(mount)/kernels is on a read-only file system", "--catalog DIR on a writable one"],
                never: ["No such file", "pahole"])
            // A catalog with its scratch directory, made read-only afterwards.
            try #require(try runProcess("mount", ["-o", "remount,rw", mount]).status == 0)
            let catalog = mount + "/kernels"
            try #require(try boundedBtfgen(["build", seed, "--catalog", catalog]).status == 0)
            try #require(FileManager.default.fileExists(atPath: catalog + "/.tmp"))
            let before = try treeSnapshot(catalog)
            try remountReadOnly(mount)
            let r = try boundedBtfgen(["build", fresh, "--catalog", catalog])
            expectOneLine(r, ["catalog \(catalog) is on a read-only file system"], never: ["pahole", "Couldn't open"])
            #expect(try treeSnapshot(catalog) == before)
            // What is already catalogued needs no write: the no-op still succeeds.
            let again = try boundedBtfgen(["build", seed, "--catalog", catalog])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("already in the catalog"))
        }
    }

    @Test(.requires(.root))  // mounting a tmpfs, mknod, setpriv to nobody
    func aCatalogTheUserCannotWriteIsNamedAndPaholeIsNotBlamed() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        chmod(dir.path, 0o755)
        let seed = try FakeKernel.compile(in: dir, name: "seed", release: "5.10.0-seed", variant: 15)
        let fresh = try FakeKernel.compile(in: dir, name: "fresh", release: "5.10.0-fresh", variant: 16)
        chmod(fresh, 0o644)
        let catalog = dir.file("kernels")
        try #require(try boundedBtfgen(["build", seed, "--catalog", catalog]).status == 0)
        let before = try treeSnapshot(catalog)
        let r = try btfgenAsNobody(["build", fresh, "--catalog", catalog], in: dir)
        expectOneLine(
            r, ["no write permission on \(catalog)", "uid 65534", "--catalog DIR you can write"], never: ["pahole"])
        #expect(try treeSnapshot(catalog) == before)
        // A catalog to be created in a directory that is not the user's: the parent is named.
        let created = try btfgenAsNobody(["build", fresh, "--catalog", dir.file("new")], in: dir)
        expectOneLine(created, ["no write permission on \(dir.path) "], never: ["No such file", "pahole"])
    }

    // MARK: catalog import and export

    @Test func importOfAMissingTreeSaysItIsMissing() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels"), missing = dir.file("no-such-tree")
        let r = try boundedBtfgen(["catalog", "import", "--catalog", catalog, missing])
        expectOneLine(r, ["import tree \(missing): no such directory"], never: ["exists and is not a directory"])
        #expect(!FileManager.default.fileExists(atPath: catalog))
        let file = dir.file("a-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        expectOneLine(
            try boundedBtfgen(["catalog", "import", "--catalog", catalog, file]), ["\(file): not a directory"])
    }

    @Test(.requires(.root))  // mounting a tmpfs, mknod, setpriv to nobody
    func importRefusesDeviceNodesAndFifosLikeLinks() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let tree = dir.file("tree"), leaf = dir.file("tree/debian/12/x86_64")
        try FileManager.default.createDirectory(atPath: leaf, withIntermediateDirectories: true)
        try #require(try runProcess("mknod", [leaf + "/6.1.0-dev.btf", "c", "1", "3"]).status == 0)
        try #require(mkfifo(leaf + "/6.1.0-fifo.btf.tar.xz", 0o644) == 0)
        let r = try boundedBtfgen(["catalog", "import", "--catalog", dir.file("kernels"), tree], seconds: 30)
        #expect(r.status == 1)
        #expect(r.stderr.contains("refused debian/12/x86_64/6.1.0-dev.btf: is a character device"), "\(r.stderr)")
        #expect(r.stderr.contains("refused debian/12/x86_64/6.1.0-fifo.btf.tar.xz: is a fifo"), "\(r.stderr)")
        #expect(r.stdout.contains("0 imported, 0 already present, 2 refused"), "\(r.stdout)")
    }

    @Test func exportIntoAFileIsNamedPlainly() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        let k = try FakeKernel.compile(in: dir, release: "5.10.0-export", variant: 17)
        try #require(try boundedBtfgen(["build", k, "--catalog", catalog]).status == 0)
        let file = dir.file("a-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for target in [file, file + "/sub"] {
            let r = try boundedBtfgen(["catalog", "export", "--catalog", catalog, target])
            expectOneLine(r, ["\(file) is a file, not a directory", "give `catalog export` a directory"])
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "x")
    }

    @Test(.requires(.root))  // mounting a tmpfs, mknod, setpriv to nobody
    func exportIntoAReadOnlyDirectoryIsNamedPlainly() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        let k = try FakeKernel.compile(in: dir, release: "5.10.0-export", variant: 18)
        try #require(try boundedBtfgen(["build", k, "--catalog", catalog]).status == 0)
        let mount = dir.file("ro")
        try withTmpfs(at: mount) {
            try remountReadOnly(mount)
            for target in [mount, mount + "/sub"] {
                let r = try boundedBtfgen(["catalog", "export", "--catalog", catalog, target])
                expectOneLine(
                    r,
                    ["\(target) is on a read-only file system", "give `catalog export` a directory on a writable one"])
            }
        }
    }

    // MARK: Arguments

    @Test func negativeCountAndDurationAreRejectedByName() throws {
        for (args, phrase) in [
            (["--count", "-1"], "--count must be 0 or more events, got -1"),
            (["--duration", "-5s"], "--duration must be 0 or more, got -5s"),
            (["--count=-1"], "--count must be 0 or more events, got -1"),
        ] {
            let r = try boundedBtfgen(["attach", "--dry-run"] + args)
            #expect(r.status != 0)
            #expect(r.stderr.contains(phrase), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
        }
    }

    @Test func shortBuildIDPrefixesAndAmbiguousReleasesSayWhatWorks() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        // Two builds of one release (distros reuse `uname -r`).
        let a = try FakeKernel.compile(in: dir, name: "a", release: "5.10.0-same", variant: 19)
        let b = try FakeKernel.compile(in: dir, name: "b", release: "5.10.0-same", variant: 20)
        for k in [a, b] { try #require(try boundedBtfgen(["build", k, "--catalog", catalog]).status == 0) }
        let id = try FakeKernel.readelfBuildID(a)

        let short = try boundedBtfgen(["show", String(id.prefix(5)), "--catalog", catalog])
        expectOneLine(short, ["build-id prefixes need at least 8 hex digits"])
        let ambiguous = try boundedBtfgen(["show", "5.10.0-same", "--catalog", catalog])
        expectOneLine(ambiguous, ["matches 2 entries", "8 or more hex digits are enough"], never: ["full build-id"])
        // What the message promises works.
        let eight = try boundedBtfgen(["show", String(id.prefix(8)), "--catalog", catalog])
        #expect(eight.status == 0, "\(eight.stderr)")
        #expect(eight.stdout.contains(id))
    }

    // MARK: doctor

    @Test func doctorWithoutPaholeStillPrintsEveryOtherRow() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let r = try boundedBtfgen(
            ["doctor", "--catalog", dir.file("kernels")], environment: ["BTFGEN_PAHOLE": "/nonexistent/pahole"])
        #expect(r.status != 0)
        #expect(r.stdout.contains("apt-get install dwarves"), "\(r.stdout)")
        for row in ["llvm-objcopy", "strip", "method", "catalog", "scratch"] {
            #expect(
                r.stdout.split(separator: "\n").contains {
                    $0.split(separator: " ").dropFirst().first == Substring(row)
                },
                "no \(row) row in:\n\(r.stdout)")
        }
    }

    /// A build killed while it copies a large input into scratch (a .deb build leaves hundreds of
    /// MB there): doctor reports it as stale, --clear-scratch clears it, and a killed writer's
    /// decided write is finished rather than dropped.
    @Test func doctorReportsAndClearsWhatAKilledBuildLeftInScratch() throws {
        let dir = try ScratchDirectory("btfgen-hostile")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        let seed = try FakeKernel.compile(in: dir, name: "seed", release: "5.10.0-seed", variant: 21)
        try #require(try boundedBtfgen(["build", seed, "--catalog", catalog]).status == 0)
        let clean = try boundedBtfgen(["doctor", "--catalog", catalog])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("scratch"))

        // A build fed through a fifo whose writer stalls after 3 MB, killed mid-copy.
        let fifo = dir.file("fifo")
        try #require(mkfifo(fifo, 0o644) == 0)
        let build = Process()
        build.executableURL = URL(fileURLWithPath: Repo.btfgen)
        build.arguments = ["build", fifo, "--force", "--catalog", catalog]
        build.standardOutput = FileHandle.nullDevice
        build.standardError = FileHandle.nullDevice
        try build.run()
        let writerShell = Process()
        writerShell.executableURL = URL(fileURLWithPath: "/bin/sh")
        writerShell.arguments = [
            "-c", "exec > \"$1\"; cat \"$0\"; head -c 3000000 /dev/zero; exec sleep 60", seed, fifo,
        ]
        try writerShell.run()
        defer {
            if writerShell.isRunning { kill(writerShell.processIdentifier, SIGKILL) }
            writerShell.waitUntilExit()
        }
        var copied: Int64 = 0
        for _ in 0..<200 {
            copied = scratchBytes(catalog)
            if copied >= 3_000_000 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        try #require(copied >= 3_000_000, "the build never filled scratch")
        kill(build.processIdentifier, SIGKILL)
        build.waitUntilExit()

        let stale = try boundedBtfgen(["doctor", "--catalog", catalog])
        #expect(stale.status != 0)
        let row = stale.stdout.split(separator: "\n").first { $0.contains(" scratch ") } ?? ""
        #expect(row.hasPrefix("stale"), "\(stale.stdout)")
        #expect(row.contains("2.9 MiB") || row.contains("3.0 MiB"), "\(row)")
        #expect(row.contains("btfgen doctor --clear-scratch"), "\(row)")

        // And a write killed after its commit point (made by hand, as BuildCommandTests does):
        // --clear-scratch must finish it, not drop it.
        let ahead = dir.file("ahead")
        try FileManager.default.copyItem(atPath: catalog, toPath: ahead)
        let k2 = try FakeKernel.compile(in: dir, name: "k2", release: "5.10.0-k2", variant: 22)
        try #require(try boundedBtfgen(["build", k2, "--catalog", ahead]).status == 0)
        let k2Path = try #require(try indexEntries(ahead).first { $0["source"] as? String == "k2" }?["path"] as? String)
        let dead = try runProcess("sh", ["-c", "echo $$"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tmp = catalog + "/.tmp/"
        let btf = "\(dead)-aaaaaaaa-raw.btf", index = "\(dead)-bbbbbbbb-index.json"
        try FileManager.default.copyItem(atPath: ahead + "/" + k2Path, toPath: tmp + btf)
        try FileManager.default.copyItem(atPath: ahead + "/index.json", toPath: tmp + index)
        try Data("{\"btf\":\"\(btf)\",\"destination\":\"\(k2Path)\",\"index\":\"\(index)\",\"remove\":[]}".utf8)
            .write(to: URL(fileURLWithPath: tmp + "\(dead)-cccccccc-intent.json"))
        let pending = try boundedBtfgen(["doctor", "--catalog", catalog])
        #expect(pending.stdout.contains("1 interrupted catalog write to finish"), "\(pending.stdout)")

        let cleared = try boundedBtfgen(["doctor", "--clear-scratch", "--catalog", catalog])
        #expect(cleared.status == 0, "\(cleared.stdout)\(cleared.stderr)")
        #expect(cleared.stdout.contains("finished 1 interrupted catalog write"), "\(cleared.stdout)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? [] == [])
        let sources = Set(try indexEntries(catalog).compactMap { $0["source"] as? String })
        #expect(sources == ["seed", "k2"])
        #expect(FileManager.default.fileExists(atPath: catalog + "/" + k2Path))
        let after = try boundedBtfgen(["doctor", "--catalog", catalog])
        #expect(after.status == 0, "\(after.stdout)\(after.stderr)")
    }

    /// Bytes in a catalog's scratch directory.
    func scratchBytes(_ catalog: String) -> Int64 {
        let tmp = catalog + "/.tmp"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
        return names.reduce(0) { sum, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: tmp + "/" + name)[.size] as? NSNumber)?
                .int64Value
            return sum + (size ?? 0)
        }
    }
}
