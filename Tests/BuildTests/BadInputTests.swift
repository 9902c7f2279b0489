// Every bad input named by the build issue: exactly one line on stderr saying what is wrong and
// what to do, a non-zero exit, and a catalog (pre-populated with one entry) left byte-identical.
import Foundation
import TestSupport
import Testing

@Suite struct BadInputTests {
    /// A catalog holding one good entry, and the snapshot to compare against afterwards.
    struct Setup {
        let dir: ScratchDirectory
        let catalog: String
        let goodKernel: String
        let snapshot: [String: String]

        init() throws {
            dir = try ScratchDirectory("btfgen-bad")
            catalog = dir.file("kernels")
            goodKernel = try FakeKernel.compile(in: dir, name: "good-vmlinux", release: "5.10.0-good")
            let r = try btfgen(["build", goodKernel, "--catalog", catalog])
            try #require(r.status == 0, "seeding the catalog failed: \(r.stderr)")
            snapshot = try treeSnapshot(catalog)
        }

        /// Run `btfgen build` and check the contract; returns stderr for message checks.
        @discardableResult
        func expectRefusal(
            _ arguments: [String], environment: [String: String]? = nil, mentions phrases: [String],
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> String {
            let inputs = arguments.filter { !$0.hasPrefix("-") && FileManager.default.fileExists(atPath: $0) }
            let before = try inputs.map { try treeOrHash($0) }
            let r = try btfgen(["build"] + arguments + ["--catalog", catalog], environment: environment)
            #expect(r.status != 0, "exit status 0 for \(arguments)", sourceLocation: sourceLocation)
            #expect(r.stderrLines.count == 1, "expected one line, got: \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.hasPrefix("btfgen: "), sourceLocation: sourceLocation)
            for p in phrases {
                #expect(r.stderr.contains(p), "\"\(p)\" not in: \(r.stderr)", sourceLocation: sourceLocation)
            }
            var now = try treeSnapshot(catalog)
            now = now.filter { !$0.key.hasPrefix(".tmp/") }
            #expect(
                now == snapshot.filter { !$0.key.hasPrefix(".tmp/") }, "catalog changed", sourceLocation: sourceLocation
            )
            #expect(try inputs.map { try treeOrHash($0) } == before, "input changed", sourceLocation: sourceLocation)
            return r.stderr
        }

        func treeOrHash(_ path: String) throws -> String {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            return isDir.boolValue ? "\(try treeSnapshot(path))" : try sha256sum(path)
        }

        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = dir.file(name)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }

        func script(_ name: String, _ body: String) throws -> String {
            let path = dir.file(name)
            try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
            return path
        }
    }

    @Test func notAnELF() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        try s.expectRefusal([try s.write("config.txt", Array("CONFIG_BPF=y\n".utf8))], mentions: ["is not an ELF file"])
    }

    @Test func truncatedELF() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: s.goodKernel)))
        for (name, length) in [
            ("head-40", 40), ("head-64", 64), ("half", whole.count / 2), ("most", whole.count - 200),
        ] {
            try s.expectRefusal(
                [try s.write("vmlinux-\(name)", Array(whole.prefix(length)))],
                mentions: ["damaged or incomplete"])
        }
    }

    @Test func elfWithoutDWARF() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let stripped = try FakeKernel.compile(in: s.dir, name: "vmlinux-nodebug", debugInfo: false)
        try s.expectRefusal([stripped], mentions: ["no DWARF", "debuginfo vmlinux"])
    }

    @Test func dwarfButNotAKernel() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let src = s.dir.file("hello.c")
        try "int main(void) { return 0; }\n".write(toFile: src, atomically: true, encoding: .utf8)
        try #require(try runProcess("gcc", ["-g", "-o", s.dir.file("hello"), src]).status == 0)
        try s.expectRefusal([s.dir.file("hello")], mentions: ["no `Linux version` banner"])
    }

    @Test func compressedBootImage() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        // The x86 boot protocol header as a bzImage carries it; the real one is checked in RealKernelTests.
        var boot = [UInt8](repeating: 0, count: 4096)
        boot[0x1fe] = 0x55; boot[0x1ff] = 0xaa
        boot.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        try s.expectRefusal(
            [try s.write("vmlinuz-4.18.0", boot)],
            mentions: ["compressed boot image", "usr/lib/debug"])
        // A gzip'd bzImage is still a boot image.
        let gz = s.dir.file("vmlinuz.gz")
        try #require(
            try runProcess("sh", ["-c", "gzip -c < \"$0\" > \"$1\"", s.dir.file("vmlinuz-4.18.0"), gz]).status == 0)
        try s.expectRefusal([gz], mentions: ["compressed boot image"])
    }

    @Test func emptyFile() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        try s.expectRefusal([try s.write("vmlinux-empty", [])], mentions: ["is empty"])
    }

    @Test func directoryAndMissingPath() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        try FileManager.default.createDirectory(atPath: s.dir.file("somedir"), withIntermediateDirectories: true)
        try s.expectRefusal([s.dir.file("somedir")], mentions: ["is a directory"])
        try s.expectRefusal([s.dir.file("no-such-vmlinux")], mentions: ["no such file"])
    }

    @Test func packageWithoutVmlinux() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let root = s.dir.file("pkg")
        try FileManager.default.createDirectory(atPath: root + "/DEBIAN", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: root + "/usr/share/doc/linux", withIntermediateDirectories: true)
        try "x\n".write(toFile: root + "/usr/share/doc/linux/copyright", atomically: true, encoding: .utf8)
        try
            "Package: linux-headers-6.1.0-99\nVersion: 1\nArchitecture: amd64\nMaintainer: x <x@example>\nDescription: x\n"
            .write(toFile: root + "/DEBIAN/control", atomically: true, encoding: .utf8)
        let deb = s.dir.file("linux-headers.deb")
        try #require(try runProcess("dpkg-deb", ["--build", "--root-owner-group", root, deb]).status == 0)
        try s.expectRefusal([deb], mentions: ["holds no vmlinux", "-dbg"])
        // A damaged package: cut in the middle of its data member.
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: deb)))
        try s.expectRefusal(
            [try s.write("cut.deb", Array(whole.prefix(whole.count - 40)))],
            mentions: ["cut.deb", "damaged or incomplete"])
    }

    @Test func toolsMissing() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let k = try FakeKernel.compile(in: s.dir, name: "vmlinux-2", release: "5.10.0-two", variant: 1)
        try s.expectRefusal(
            [k], environment: ["BTFGEN_PAHOLE": "/nonexistent/pahole"],
            mentions: ["pahole not found", "apt-get install dwarves"])
        try s.expectRefusal(
            [k, "--method", "objcopy"], environment: ["BTFGEN_LLVM_OBJCOPY": "/nonexistent/llvm-objcopy"],
            mentions: ["llvm-objcopy not found", "apt-get install llvm"])
        try s.expectRefusal(
            [k, "--method", "objcopy"], environment: ["BTFGEN_STRIP": "/nonexistent/strip"],
            mentions: ["strip not found", "apt-get install binutils"])
    }

    @Test func paholeTooOld() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let old = try s.script("pahole", "echo v1.15")
        try s.expectRefusal(
            [s.goodKernel, "--force"], environment: ["BTFGEN_PAHOLE": old],
            mentions: ["pahole 1.15 is too old", "1.16"])
    }

    @Test func paholeFailingShowsItsStderrTail() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let failing = try s.script(
            "pahole",
            """
            case "$1" in --version) echo v1.24; exit 0;; esac
            echo "die__process_unit: DW_TAG_label (0xa) @ <0x2b> not handled!" >&2
            echo "btf_encoder__encode: dwarf_loader failed" >&2
            exit 139
            """)
        let k = try FakeKernel.compile(in: s.dir, name: "vmlinux-3", release: "5.10.0-three", variant: 2)
        try s.expectRefusal(
            [k], environment: ["BTFGEN_PAHOLE": failing],
            mentions: ["pahole failed with exit status 139", "dwarf_loader failed"])
    }

    @Test func paholeWritingGarbageIsNotStored() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let liar = try s.script(
            "pahole",
            """
            case "$1" in --version) echo v1.24; exit 0;; esac
            for a in "$@"; do case "$a" in --btf_encode_detached=*) printf 'garbage' > "${a#*=}";; esac; done
            exit 0
            """)
        let k = try FakeKernel.compile(in: s.dir, name: "vmlinux-4", release: "5.10.0-four", variant: 3)
        try s.expectRefusal([k], environment: ["BTFGEN_PAHOLE": liar], mentions: ["unusable", "nothing was stored"])
    }

    @Test(.requires(.root))  // mounting a small tmpfs
    func diskFull() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let mount = s.dir.file("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        try #require(try runProcess("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount]).status == 0)
        defer { _ = try? runProcess("umount", [mount]) }
        // Move the seeded catalog onto the small filesystem, then fill it up.
        let catalog = mount + "/kernels"
        try #require(try runProcess("cp", ["-a", s.catalog, catalog]).status == 0)
        _ = try runProcess("dd", ["if=/dev/zero", "of=\(mount)/filler", "bs=4k"])
        let snapshot = try treeSnapshot(catalog)
        let k = try FakeKernel.compile(in: s.dir, name: "vmlinux-5", release: "5.10.0-five", variant: 4)
        let r = try btfgen(["build", k, "--catalog", catalog])
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("no space left"), "\(r.stderr)")
        #expect(
            try treeSnapshot(catalog).filter { !$0.key.hasPrefix(".tmp") }
                == snapshot.filter { !$0.key.hasPrefix(".tmp") })
        // Space freed: the same command now works and nothing stale is left in scratch.
        try FileManager.default.removeItem(atPath: mount + "/filler")
        let again = try btfgen(["build", k, "--catalog", catalog])
        #expect(again.status == 0, "\(again.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? [] == [])
    }

    @Test func badArgumentsAndCatalogs() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        // --catalog naming a file.
        let file = try s.write("not-a-dir", Array("x".utf8))
        let r = try btfgen(["build", s.goodKernel, "--catalog", file])
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1)
        #expect(r.stderr.contains("not a directory"))
        // A corrupt index is reported, not overwritten.
        let broken = s.dir.file("broken")
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        try "{\"format\": 1, \"entries\": [".write(toFile: broken + "/index.json", atomically: true, encoding: .utf8)
        let k = try FakeKernel.compile(in: s.dir, name: "vmlinux-6", release: "5.10.0-six", variant: 5)
        let c = try btfgen(["build", k, "--catalog", broken])
        #expect(c.status != 0)
        #expect(c.stderrLines.count == 1)
        #expect(try String(contentsOfFile: broken + "/index.json", encoding: .utf8) == "{\"format\": 1, \"entries\": [")
    }
}
