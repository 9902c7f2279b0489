// Nothing unverified is used or written, on this host with real BPF objects and the host's real
// BTF filed under the running kernel's identity: a catalog file changed after it was written, a
// bundle blob that is corrupt or missing, a `--btf` file that is not BTF, a bundle minimized for
// other objects — each refused in one line by every command that would use it, the dry run
// included. And what passes can be handed to a team's own libbpf loader with `resolve --extract`.
import Bundle
import Catalog
import Foundation
import Kernel
import TestSupport
import Testing

/// Root and a kernel with its own BTF (CI has both): the host's BTF plays the role of a kernel's.
@Suite(.requires(.root, .hostBTF))
struct VerifiedUseTests {
    let objects = Repo.root.appendingPathComponent("bpf").path

    /// A catalog holding the host's BTF under the running kernel's identity, build-id included.
    func hostCatalog(_ dir: ScratchDirectory) throws -> (catalog: Catalog, entry: CatalogEntry) {
        let running = RunningKernel.read()
        let id = try #require(running.buildID, "running build-id unreadable: \(running.buildIDProblem ?? "?")")
        let btf = try #require(FileManager.default.contents(atPath: "/sys/kernel/btf/vmlinux"))
        let catalog = Catalog(root: URL(fileURLWithPath: dir.file("kernels")))
        try catalog.prepare()
        let file = catalog.scratchFile("host")
        try btf.write(to: file)
        let identity = KernelIdentity(
            release: running.release, arch: running.arch, buildID: id, distro: running.distro,
            distroVersion: running.distroVersion)
        let proposed = CatalogEntry(
            identity: identity, path: "", sha256: btf.withUnsafeBytes { SHA256.hex($0) }, size: btf.count,
            typeCount: 1, build: nil, source: "/sys/kernel/btf/vmlinux", builtAt: "2026-12-01T00:00:00Z")
        switch try catalog.insert(btfFile: file, entry: proposed, force: false) {
        case .added(let e), .replaced(let e), .unchanged(let e): return (catalog, e)
        }
    }

    func object(_ name: String) throws -> String {
        let path = objects + "/\(name).bpf.o"
        if !FileManager.default.fileExists(atPath: path) {
            try #require(try runProcess("make", ["-C", Repo.root.path, "-s", "bpf"]).status == 0, "make bpf failed")
        }
        return path
    }

    @Test func aCatalogFileChangedAfterItWasWrittenIsRefusedEverywhere() throws {
        let dir = try ScratchDirectory("btfgen-verify")
        defer { dir.remove() }
        let (catalog, entry) = try hostCatalog(dir)
        let root = catalog.root.path
        let base = ["--catalog", root, "--force-catalog"]
        #expect(try btfgen(["resolve"] + base).status == 0)
        // One byte changed in place: same size, still parses, and every consumer must refuse it.
        let path = catalog.url(of: entry).path
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        let actual = try sha256sum(path)
        let task = try object("task_rename")
        let runs: [(String, [String])] = [
            ("resolve", ["resolve"] + base),
            ("attach --dry-run", ["attach", "--dry-run", "--object", task] + base),
            ("attach", ["attach", "--count", "0", "--object", task] + base),
            ("minimize", ["minimize", "--catalog", root, "--object", task, "-o", dir.file("min")]),
            ("bundle", ["bundle", "--catalog", root, "--object", task, "-o", dir.file("b.tar.xz")]),
        ]
        for (label, arguments) in runs {
            let r = try btfgen(arguments)
            #expect(r.status == 1, "\(label): \(r.stderr)")
            #expect(r.stderrLines.count == 1, "\(label): \(r.stderr)")
            #expect(
                r.stderr.contains(path) && r.stderr.contains(entry.sha256) && r.stderr.contains(actual),
                "\(label) must name the file and both digests: \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("b.tar.xz")))
        #expect(!FileManager.default.fileExists(atPath: dir.file("min")))
        let doctor = try btfgen(["doctor", "--catalog", root])
        #expect(doctor.status == 1, "\(doctor.stdout)")
        #expect(doctor.stderr.contains(path) && doctor.stderr.contains(actual), "\(doctor.stderr)")
        #expect(doctor.stdout.split(separator: "\n").contains { $0.hasPrefix("error") && $0.contains("catalog") })
    }

    /// The file's identity as the check record writes it, read by stat(1).
    func statIdentity(_ path: String) throws -> String {
        let r = try runProcess("stat", ["-c", "%d:%i:%s:%.9Y:%.9Z", path])
        try #require(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The lines of a catalog's `.verified` record about its BTF files (not the type index files
    /// derived from them, under `.index/`).
    func recordLines(_ root: String) -> [String] {
        ((try? String(contentsOfFile: root + "/.verified", encoding: .utf8)) ?? "").split(separator: "\n").map(
            String.init
        ).filter { !$0.contains(" .index/") }
    }

    @Test func aCheckIsRememberedByTheFilesIdentityAndAnyChangeMakesItHashedAgain() throws {
        let dir = try ScratchDirectory("btfgen-verified")
        defer { dir.remove() }
        let (catalog, entry) = try hostCatalog(dir)
        let root = catalog.root.path
        let path = catalog.url(of: entry).path
        let task = try object("task_rename")
        // Stored and hashed as placed: one line, the file's sha256, its identity, its catalog path.
        #expect(recordLines(root) == ["v1 \(entry.sha256) \(try statIdentity(path)) \(entry.path)"])
        // Later processes find the check and add nothing.
        for n in 0..<2 {
            let r = try btfgen(["bundle", "--catalog", root, "--object", task, "-o", dir.file("b\(n).tar.xz")])
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(recordLines(root).count == 1)

        // One byte changed in place, then its modification time put back: same size, same mtime,
        // but the change time moved, so the check no longer applies and the file is hashed again.
        let mtime = try runProcess("stat", ["-c", "%.9Y", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(try runProcess("touch", ["-m", "-d", "@\(mtime)", path]).status == 0)
        let changed = try btfgen(["bundle", "--catalog", root, "--object", task, "-o", dir.file("c.tar.xz")])
        #expect(changed.status == 1, "\(changed.stderr)")
        #expect(changed.stderr.contains(try sha256sum(path)), "\(changed.stderr)")

        // What a later process trusts is exactly the record: a line vouching for the changed file's
        // present identity is taken (a command hashes no file it has a check for), and doctor,
        // which hashes every file whatever the record says, still finds the change.
        let forged = "v1 \(entry.sha256) \(try statIdentity(path)) \(entry.path)\n"
        try forged.write(toFile: root + "/.verified", atomically: true, encoding: .utf8)
        let trusted = try btfgen(["bundle", "--catalog", root, "--object", task, "-o", dir.file("d.tar.xz")])
        #expect(trusted.status == 0, "\(trusted.stderr)")
        let doctor = try btfgen(["doctor", "--catalog", root])
        let changedDigest = try sha256sum(path)
        #expect(doctor.status == 1 && doctor.stderr.contains(changedDigest), "\(doctor.stderr)")

        // A record grown by many re-checks is rewritten with one line per file when next read.
        try String(repeating: forged, count: 200).write(toFile: root + "/.verified", atomically: true, encoding: .utf8)
        #expect(try btfgen(["bundle", "--catalog", root, "--object", task, "-o", dir.file("e.tar.xz")]).status == 0)
        #expect(recordLines(root).count == 1)

        // A catalog that cannot be written is hashed on every use, and nothing is added to it.
        try FileManager.default.removeItem(atPath: root + "/.verified")
        var restored = bytes
        restored[restored.count / 2] ^= 0x01
        try restored.write(to: URL(fileURLWithPath: path))
        // (A read-only bind mount of the catalog over itself, as a container's mount would be.)
        try #require(try runProcess("mount", ["--bind", root, root]).status == 0)
        defer { _ = try? runProcess("umount", [root]) }
        let remount = try runProcess("mount", ["-o", "remount,bind,ro", root])
        try #require(remount.status == 0, "\(remount.stderr)")
        for n in 0..<2 {
            let r = try btfgen(["bundle", "--catalog", root, "--object", task, "-o", dir.file("f\(n).tar.xz")])
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/.verified"))
    }

    /// `btfgen bundle` of the host catalog for `objects`.
    func bundle(_ dir: ScratchDirectory, _ catalog: Catalog, objects: [String], name: String) throws -> String {
        let out = dir.file(name)
        let r = try btfgen(
            ["bundle", "--catalog", catalog.root.path, "-o", out] + objects.flatMap { ["--object", $0] })
        try #require(r.status == 0, "\(r.stderr)")
        return out
    }

    @Test func aBundleMinimizedForOtherObjectsIsRefusedForThem() throws {
        let dir = try ScratchDirectory("btfgen-verify")
        defer { dir.remove() }
        let (catalog, _) = try hostCatalog(dir)
        let task = try object("task_rename"), unlink = try object("unlinkat")
        let b = try bundle(dir, catalog, objects: [task], name: "task-only.tar.xz")
        let base = ["--bundle", b, "--catalog", dir.file("none"), "--force-catalog"]
        // The object it was made for: listed in the manifest, passes at once, and really attaches.
        let ok = try btfgen(["attach", "--count", "0", "--object", task] + base)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.contains("[bundle-build-id]"))
        // Another object reaches for pt_regs, which minimizing for task_rename dropped.
        for dry in [true, false] {
            let r = try btfgen(["attach", "--count", "0", "--object", unlink] + (dry ? ["--dry-run"] : []) + base)
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stderrLines.count == 1, "\(r.stderr)")
            #expect(r.stderr.contains("minimized for other BPF objects") && r.stderr.contains(unlink), "\(r.stderr)")
            #expect(r.stderr.contains("pt_regs"), "names what is missing: \(r.stderr)")
            #expect(r.stderr.contains("btfgen bundle --object \(unlink)"), "\(r.stderr)")
            #expect(!r.stderr.contains("attached"))
        }
        let checked = try btfgen(["resolve", "--object", unlink] + base)
        #expect(checked.status == 1 && checked.stderr.contains("minimized for other BPF objects"), "\(checked.stderr)")
        // Another build of task_rename (other bytes, the same relocations): not listed, but every
        // relocation finds its target, so it passes.
        let note = dir.file("note")
        try Data("rebuilt".utf8).write(to: URL(fileURLWithPath: note))
        let rebuilt = dir.file("task_rename-rebuilt.bpf.o")
        let copy = try runProcess("llvm-objcopy-14", ["--add-section", ".comment.rebuild=\(note)", task, rebuilt])
        try #require(copy.status == 0, "\(copy.stderr)")
        #expect(try sha256sum(rebuilt) != (try sha256sum(task)))
        let again = try btfgen(["attach", "--dry-run", "--object", rebuilt] + base)
        #expect(again.status == 0, "\(again.stderr)")
    }

    @Test func aCorruptOrIncompleteBundleIsRefusedByTheDryRunAsByTheRealRun() throws {
        let dir = try ScratchDirectory("btfgen-verify")
        defer { dir.remove() }
        let (catalog, _) = try hostCatalog(dir)
        let task = try object("task_rename")
        let b = try bundle(dir, catalog, objects: [task], name: "good.tar.xz")
        // A blob flipped, and a bundle whose blob member is gone (the manifest still names it).
        let script = """
            import io, sys, tarfile
            mode = sys.argv[3]
            with tarfile.open(sys.argv[1]) as s, tarfile.open(sys.argv[2], 'w:xz') as d:
                for m in s.getmembers():
                    data = s.extractfile(m).read() if m.isfile() else None
                    if data is not None and m.name == 'blobs':
                        if mode == 'drop': continue
                        data = bytearray(data); data[len(data) // 2] ^= 0x01; data = bytes(data)
                    d.addfile(m, io.BytesIO(data) if data is not None else None)
            """
        for mode in ["flip", "drop"] {
            let bad = dir.file("\(mode).tar.xz")
            try #require(try runProcess("python3", ["-c", script, b, bad, mode]).status == 0)
            let base = ["--bundle", bad, "--catalog", dir.file("none"), "--force-catalog"]
            for arguments in [
                ["resolve"], ["attach", "--dry-run", "--object", task], ["resolve", "--extract", dir.file("x")],
            ] {
                let r = try btfgen(arguments + base)
                #expect(r.status == 1, "\(mode) \(arguments): \(r.stderr)")
                #expect(r.stderrLines.count == 1, "\(r.stderr)")
                #expect(r.stderr.contains(mode == "flip" ? "corrupted" : "lacks the blob"), "\(mode): \(r.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: dir.file("x")))
        }
    }

    @Test func aBTFFileThatIsNotBTFIsRefusedBeforeAnythingIsLoadedOrWritten() throws {
        let dir = try ScratchDirectory("btfgen-verify")
        defer { dir.remove() }
        let random = dir.file("random.bin")
        var generator = SystemRandomNumberGenerator()
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(
            to: URL(fileURLWithPath: random))
        let task = try object("task_rename")
        let target = "/boot/vmlinux-" + RunningKernel.read().release
        let existed = FileManager.default.fileExists(atPath: target)
        for file in [random, "/bin/ls"] {
            for arguments in [["install"], ["attach", "--count", "0", "--object", task], ["resolve"]] {
                let r = try btfgen(arguments + ["--btf", file])
                #expect(r.status == 1, "\(arguments) \(file): \(r.stderr)")
                #expect(r.stderrLines.count == 1, "\(r.stderr)")
                #expect(r.stderr.contains("\(file) is not usable BTF"), "\(arguments) \(file): \(r.stderr)")
                #expect(!r.stderr.contains("failed to load"), "blamed on the object: \(r.stderr)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: target) == existed, "install wrote \(target)")
    }

    @Test func resolveExtractGivesAPlainLibbpfLoaderTheBundlesVerifiedBTF() throws {
        // A team's own loader: `resolve --extract` hands it the build-id-matched, verified BTF (here
        // a bundle's minimized blob), and libbpf's btf_custom_path relocates the programs truthfully.
        let dir = try ScratchDirectory("btfgen-verify")
        defer { dir.remove() }
        let (catalog, _) = try hostCatalog(dir)
        let task = try object("task_rename"), unlink = try object("unlinkat")
        let b = try bundle(dir, catalog, objects: [task, unlink], name: "b.tar.xz")
        let loader = dir.file("plain_loader")
        let cc = try runProcess(
            "cc",
            [
                "-O2", "-I", objects + "/include", "-o", loader,
                Repo.root.appendingPathComponent("scripts/qemu/plain_loader.c").path, "-lbpf",
            ])
        try #require(cc.status == 0, "\(cc.stderr)")
        let actor = dir.file("actor")
        try #require(
            try runProcess("cc", ["-O2", "-o", actor, Repo.root.appendingPathComponent("scripts/qemu/actor.c").path])
                .status == 0)
        for format in ["raw", "elf"] {
            let out = dir.file("vmlinux.\(format)")
            let r = try btfgen([
                "resolve", "--bundle", b, "--catalog", dir.file("none"), "--force-catalog", "--extract", out,
                "--format", format, "--json",
            ])
            try #require(r.status == 0, "\(r.stderr)")
            #expect(
                r.stdout.contains("\"source\":\"bundle-build-id\"")
                    || r.stdout.contains("\"source\" : \"bundle-build-id\""), "\(r.stdout)")
            let head = try #require(FileManager.default.contents(atPath: out)).prefix(4)
            #expect(format == "elf" ? Array(head) == [0x7f, 0x45, 0x4c, 0x46] : Array(head.prefix(2)) == [0x9f, 0xeb])
            let truth = try traceWithPlainLoader(loader, btf: out, objects: [task, unlink], actor: actor, dir: dir)
            #expect(truth.rename?["helper_pid"] as? Int == truth.pid, "CO-RE pid == kernel's: \(truth.events)")
            #expect(truth.rename?["pid"] as? Int == truth.pid, "\(truth.events)")
            #expect(truth.rename?["comm"] as? String == "actor", "\(truth.events)")
            #expect(truth.unlink?["path"] as? String == truth.path, "\(truth.events)")
        }
    }

    struct PlainTrace {
        var pid: Int
        var path: String
        var events: [[String: Any]]
        /// The actor's own rename (its exec also renames it, from the parent's name to "actor").
        var rename: [String: Any]? {
            events.first { $0["kind"] as? String == "rename" && $0["new_comm"] as? String == "btfgen-probe" }
        }
        var unlink: [String: Any]? { events.first { $0["kind"] as? String == "unlinkat" } }
    }

    /// Run plain_loader with btf_custom_path, let the actor rename itself and unlink a file, and
    /// return the actor's own account with the loader's events about it.
    func traceWithPlainLoader(_ loader: String, btf: String, objects: [String], actor: String, dir: ScratchDirectory)
        throws -> PlainTrace
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: loader)
        process.arguments = ["--btf", btf] + objects
        let outPath = dir.file("loader.out"), errPath = dir.file("loader.err")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let end = Date().addingTimeInterval(30)
        func stderr() -> String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
        while !stderr().contains("attached") && process.isRunning && Date() < end { usleep(50_000) }
        try #require(stderr().contains("plain_loader: attached"), "\(stderr())")
        let unlinkPath = dir.file("unlink-me")
        let ran = try runProcess(actor, ["btfgen-probe", unlinkPath])
        let fields = Dictionary(
            uniqueKeysWithValues: ran.stdout.split(separator: " ").dropFirst().compactMap { part -> (String, String)? in
                let kv = part.split(separator: "=", maxSplits: 1)
                return kv.count == 2
                    ? (String(kv[0]), String(kv[1]).trimmingCharacters(in: .whitespacesAndNewlines)) : nil
            })
        let pid = try #require(fields["pid"].flatMap { Int($0) }, "actor said: \(ran.stdout)")
        // The loader prints and flushes each event as it polls (every 50 ms). Foundation starts it
        // with SIGTERM blocked, so it is stopped with SIGKILL once its events had time to arrive.
        usleep(1_000_000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let events = text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }.filter { $0["pid"] as? Int == pid || $0["helper_pid"] as? Int == pid }
        return PlainTrace(pid: pid, path: unlinkPath, events: events)
    }
}
