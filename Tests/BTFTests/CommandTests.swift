import BTF
import Catalog
import Foundation
import Kernel
import TestSupport
import Testing

/// `btfgen minimize` and `btfgen inspect` as a user runs them.
@Suite(.serialized) struct CommandTests {
    @Test(.requires(.bpfObjects)) func minimizeCatalogMirrorsItsLayoutAndMatchesTheLibrary() throws {
        let scratch = try ScratchDirectory("btfgen-cmd")
        defer { scratch.remove() }
        let catalog = Catalog(root: URL(fileURLWithPath: scratch.file("kernels")))
        try catalog.prepare()
        var expected: [String: [UInt8]] = [:]
        let objects = try BTFFixtures.objects.map { try BPFObject(bytes: try BTFFixtures.read($0)) }
        for (i, kernel) in BTFFixtures.kernels.enumerated() {
            let bytes = try BTFFixtures.read(kernel.path)
            let staged = catalog.scratchFile("k\(i)")
            try Data(bytes).write(to: staged)
            let identity = KernelIdentity(
                release: "6.1.\(i)-test", arch: "x86_64", buildID: BuildID(hex: String(repeating: "\(i)", count: 40)),
                distro: "debian", distroVersion: "12")
            let entry = CatalogEntry(
                identity: identity, path: "", sha256: bytes.withUnsafeBytes { SHA256.hex($0) }, size: bytes.count,
                typeCount: 0, build: nil,
                source: kernel.label, builtAt: "2026-11-23T00:00:00Z")
            guard case .added(let added) = try catalog.insert(btfFile: staged, entry: entry, force: false) else {
                Issue.record("catalog insert did not add \(kernel)")
                continue
            }
            expected[added.path] = try BTF(decoding: bytes).minimized(for: objects).encoded()
        }
        let out = scratch.file("out")
        let r = try btfgen(
            ["minimize", "--catalog", catalog.root.path, "-o", out] + BTFFixtures.objects.flatMap { ["--object", $0] })
        #expect(r.status == 0, "\(r.stderr)")
        for (path, bytes) in expected {
            #expect(try BTFFixtures.read(out + "/" + path) == bytes, "\(path)")
        }
        #expect(expectPathHasFiles(out) == expected.count)

        // A re-run that changes nothing rewrites nothing (same inode, same time); an output that
        // no longer holds its kernel's bytes is written again.
        func identities() throws -> [String: String] {
            try Dictionary(
                uniqueKeysWithValues: expected.keys.map { path in
                    (path, try runProcess("stat", ["-c", "%i %.9Y", out + "/" + path]).stdout)
                })
        }
        let before = try identities()
        let damaged = try #require(expected.keys.sorted().first)
        var wrong = try #require(expected[damaged])
        wrong[wrong.count - 1] ^= 0xff
        try Data(wrong).write(to: URL(fileURLWithPath: out + "/" + damaged))
        let again = try btfgen(
            ["minimize", "--catalog", catalog.root.path, "-o", out] + BTFFixtures.objects.flatMap { ["--object", $0] })
        #expect(again.status == 0, "\(again.stderr)")
        let after = try identities()
        for (path, bytes) in expected {
            #expect(try BTFFixtures.read(out + "/" + path) == bytes, "\(path)")
            if path != damaged { #expect(after[path] == before[path], "\(path) was rewritten unchanged") }
        }
        #expect(after[damaged] != before[damaged])
    }

    @Test(.requires(.bpfObjects, .fixture("BTFGEN_DEBIAN_VMLINUX"), .tool("llvm-objcopy-14")))
    func minimizeReadsAVmlinuxDirectly() throws {
        let vmlinux = try #require(Fixture.debianVmlinux)
        let debian = try #require(BTFFixtures.debian, "llvm-objcopy-14 could not dump .BTF from \(vmlinux)")
        let scratch = try ScratchDirectory("btfgen-cmd")
        defer { scratch.remove() }
        let r = try btfgen(
            ["minimize", "--btf", vmlinux, "-o", scratch.path] + BTFFixtures.objects.flatMap { ["--object", $0] })
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try BTFFixtures.objects.map { try BPFObject(bytes: try BTFFixtures.read($0)) }
        let expected = try BTF(decoding: try BTFFixtures.read(debian.path)).minimized(for: objects).encoded()
        let name = URL(fileURLWithPath: vmlinux).lastPathComponent + ".btf"
        #expect(try BTFFixtures.read(scratch.file(name)) == expected)
    }

    @Test(.requires(.bpfObjects, .hostBTF)) func minimizeBadInputsFailWithOneLine() throws {
        let host = try #require(BTFFixtures.host)
        let scratch = try ScratchDirectory("btfgen-cmd")
        defer { scratch.remove() }
        let garbage = scratch.file("garbage.o")
        try Data("not an object".utf8).write(to: URL(fileURLWithPath: garbage))
        for args in [
            ["minimize", "--object", garbage, "--btf", host.path, "-o", scratch.file("o")],
            ["minimize", "--object", BTFFixtures.testObjects[0], "--btf", garbage, "-o", scratch.file("o")],
            ["minimize", "--object", scratch.file("missing.o"), "--btf", host.path, "-o", scratch.file("o")],
            ["inspect", garbage],
        ] {
            let r = try btfgen(args)
            #expect(r.status == 1, "\(args)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("btfgen: "), "\(args): \(r.stderr)")
        }
        let r = try btfgen(["minimize", "--btf", host.path, "-o", scratch.file("o")])
        #expect(r.status != 0 && r.stderr.contains("--object"))
    }

    /// `-o` naming a file, a path under a file, or a read-only directory: one plain line before
    /// any work, never Foundation's NSError dump, and the file left as it was.
    @Test(.requires(.bpfObjects, .hostBTF, .root)) func minimizeNamesAnOutputItCannotWrite() throws {
        let host = try #require(BTFFixtures.host)
        let scratch = try ScratchDirectory("btfgen-cmd")
        defer { scratch.remove() }
        let file = scratch.file("existing")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: file))
        var targets: [(String, String)] = [
            (file, "\(file) is a file, not a directory"), (file + "/sub", "\(file) is a file, not a directory"),
        ]
        // A read-only tmpfs needs root (the test requires it).
        let mount = scratch.file("ro")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try runProcess("mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mount]).status == 0
        #expect(mounted, "mounting a read-only tmpfs failed")
        targets += [
            (mount, "\(mount) is on a read-only file system"),
            (mount + "/sub", "\(mount)/sub is on a read-only file system"),
        ]
        defer { if mounted { _ = try? runProcess("umount", ["-l", mount]) } }
        for (target, phrase) in targets {
            let r = try btfgen(["minimize", "--object", BTFFixtures.testObjects[0], "--btf", host.path, "-o", target])
            #expect(r.status == 1, "\(target): \(r.stderr)")
            #expect(r.stderrLines.count == 1, "\(target): \(r.stderr)")
            #expect(r.stderr.contains(phrase) && r.stderr.contains("give -o a directory"), "\(target): \(r.stderr)")
            #expect(!r.stderr.contains("Error Domain"), "\(target): \(r.stderr)")
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep")

        // Inputs that are no files: a fifo nobody writes to (the open would block) and
        // /dev/zero (a read that never ends), as --btf and as --object.
        let fifo = scratch.file("fifo")
        try #require(mkfifo(fifo, 0o644) == 0)
        let object = BTFFixtures.testObjects[0]
        let inputs = [("--btf", fifo), ("--btf", "/dev/zero"), ("--object", fifo), ("--object", "/dev/zero")]
        for (option, input) in inputs {
            var args = ["minimize", "-o", scratch.file("out")]
            args += option == "--btf" ? ["--object", object, "--btf", input] : ["--object", input, "--btf", host.path]
            let r = try runProcess("timeout", ["-s", "KILL", "30", Repo.btfgen] + args)
            #expect(r.status == 1, "\(option) \(input): status \(r.status) \(r.stderr)")
            #expect(r.stderrLines.count == 1 && r.stderr.contains("\(input) is a "), "\(option) \(input): \(r.stderr)")
            #expect(r.stderr.contains("not a regular file"), "\(option) \(input): \(r.stderr)")
        }
    }

    @Test(.requires(.bpfObjects, .hostBTF)) func compatOutputHasNoNewKinds() throws {
        let host = try #require(BTFFixtures.host)
        let scratch = try ScratchDirectory("btfgen-cmd")
        defer { scratch.remove() }
        let r = try btfgen(
            ["minimize", "--compat", "libbpf-0.x", "--btf", host.path, "-o", scratch.path]
                + BTFFixtures.testObjects.flatMap { ["--object", $0] })
        #expect(r.status == 0, "\(r.stderr)")
        let out = try BTF(decoding: try BTFFixtures.read(scratch.file("vmlinux.btf")))
        #expect(Set(out.types.map(\.kind.code)).isDisjoint(with: [.float, .declTag, .typeTag, .enum64]))
        // The ENUM64 perf_callchain_context's values do not fit 32 bits: it became a union of names.
        #expect(
            out.types.contains {
                $0.kind.code == .union && out.strings.string(at: $0.nameOffset) == "perf_callchain_context"
            })
    }

    /// `--compat libbpf-0.x` judged by a real old libbpf (Debian 11's libbpf0, 0.3) in its own
    /// process: it refuses every kernel's full BTF and our default output wherever that holds kinds
    /// it predates, and parses the compat output with the same type count and task_struct id.
    @Test(.requires(.bpfObjects, .fixture("BTFGEN_OLD_LIBBPF0")))
    func compatOutputParsesWithARealOldLibbpf() throws {
        let libbpf0 = try #require(Fixture.oldLibbpf0)
        let scratch = try ScratchDirectory("btfgen-old-libbpf")
        defer { scratch.remove() }
        let oracle = scratch.file("old_libbpf_parse")
        let source = Repo.root.appendingPathComponent("scripts/oracles/old_libbpf_parse.c").path
        let cc = try runProcess("cc", ["-O1", "-o", oracle, source, "-ldl"])
        try #require(cc.status == 0, "\(cc.stderr)")
        let newKinds: Set<KindCode> = [.float, .declTag, .typeTag, .enum64]
        var refusedOurDefault = 0
        for kernel in BTFFixtures.kernels {
            let full = try runProcess(oracle, [libbpf0, kernel.path])
            #expect(full.status == 1 && full.stdout.contains("error="), "\(kernel.label): libbpf 0.3 took the full BTF")
            for compat in [false, true] {
                let dir = scratch.file("\(kernel.label)-\(compat ? "compat" : "current")")
                let r = try btfgen(
                    ["minimize", "--btf", kernel.path, "-o", dir] + (compat ? ["--compat", "libbpf-0.x"] : [])
                        + BTFFixtures.testObjects.flatMap { ["--object", $0] })
                try #require(r.status == 0, "\(r.stderr)")
                let file = dir + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first))
                let ours = try BTF(decoding: try BTFFixtures.read(file))
                let seen = try runProcess(oracle, [libbpf0, file])
                if compat || Set(ours.types.map(\.kind.code)).isDisjoint(with: newKinds) {
                    let task = (1...ours.types.count).first {
                        ours.types[$0 - 1].kind.code == .structure && ours.name(of: TypeID(UInt32($0))) == "task_struct"
                    }
                    #expect(seen.status == 0, "\(kernel.label) compat=\(compat): \(seen.stdout) \(seen.stderr)")
                    #expect(
                        seen.stdout.contains("types=\(ours.types.count) task_struct=\(task ?? -2)"), "\(seen.stdout)")
                } else {
                    #expect(seen.status == 1, "\(kernel.label): libbpf 0.3 took BTF with kinds it predates")
                    refusedOurDefault += 1
                }
            }
        }
        // The oracle must have told the two levels apart somewhere, or this test proves nothing.
        #expect(refusedOurDefault > 0)
    }

    @Test(.requires(.hostBTF, .bpfObjects)) func inspectPrintsSummaryAndJSON() throws {
        let host = try #require(BTFFixtures.host)
        let text = try btfgen(["inspect", host.path, "--top", "3"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("raw BTF") && text.stdout.contains("STRUCT") && text.stdout.contains("RECORD"))
        let json = try btfgen(["inspect", "--json", host.path])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let full = try BTF(decoding: try BTFFixtures.read(host.path))
        #expect(object?["types"] as? Int == full.types.count)
        #expect(object?["totalBytes"] as? Int == full.encoded().count)
        let obj = try #require(BTFFixtures.testObjects.first)
        let r = try btfgen(["inspect", "--json", obj])
        #expect(r.status == 0 && r.stdout.contains("coreRelocations") && r.stdout.contains("byte_off"))
    }
}

/// Count regular files under a directory tree.
func expectPathHasFiles(_ path: String) -> Int {
    let e = FileManager.default.enumerator(atPath: path)
    var n = 0
    while let f = e?.nextObject() as? String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path + "/" + f, isDirectory: &isDir), !isDir.boolValue { n += 1 }
    }
    return n
}
