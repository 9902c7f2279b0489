// `btfgen install`'s rules on a scratch system root: the first free libbpf location, libbpf
// reading what was written, never touching files btfgen did not create, uninstall removing only
// its own unchanged files. (The QEMU proof runs the real command on a BTF-less kernel.)
import Catalog
import Deploy
import ELF
import Foundation
import LibBPF
import TestSupport
import Testing

@Suite(.requires(.hostBTF)) struct InstallerTests {
    static let release = "4.18.0-305.el8.x86_64"

    func hostBTF() throws -> [UInt8] {
        [UInt8](try #require(FileManager.default.contents(atPath: "/sys/kernel/btf/vmlinux"), "host without BTF"))
    }

    @Test func installsWhereLibbpfLooksAndUninstallsOnlyItsOwn() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let btf = try hostBTF()
        let installer = BTFInstaller(root: dir.path)
        guard
            case .installed(let record) = try installer.install(
                btf: btf, release: Self.release, buildID: "ab", source: "test", arch: "x86_64")
        else {
            Issue.record("expected a fresh install"); return
        }
        #expect(record.path == "/boot/vmlinux-\(Self.release)")
        let written = dir.path + record.path
        // libbpf reads it exactly as it reads kernel BTF, and it is the same BTF.
        let parsed = try LibBPFBTF(path: written)
        let raw = dir.file("raw.btf")
        try Data(btf).write(to: URL(fileURLWithPath: raw))
        #expect(parsed.typeCount == (try LibBPFBTF(path: raw)).typeCount)
        #expect(record.sha256 == (try sha256sum(written)))

        // Installing the same BTF again is a no-op.
        #expect(
            try installer.install(btf: btf, release: Self.release, buildID: "ab", source: "test", arch: "x86_64")
                == .unchanged(record))
        // Someone edits our file: it is theirs now, and it holds no BTF, so libbpf skips it and so do we.
        try Data("user's notes".utf8).write(to: URL(fileURLWithPath: written))
        guard
            case .installed(let second) = try installer.install(
                btf: btf, release: Self.release, buildID: "ab", source: "test", arch: "x86_64")
        else {
            Issue.record("expected an install at the next location"); return
        }
        #expect(second.path == "/lib/modules/\(Self.release)/vmlinux-\(Self.release)")
        #expect(try String(contentsOfFile: written, encoding: .utf8) == "user's notes")

        let (removed, kept) = try installer.uninstall()
        #expect(removed.map(\.path) == [second.path])
        #expect(kept.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.path + second.path))
        #expect(
            try String(contentsOfFile: written, encoding: .utf8) == "user's notes",
            "uninstall removed a file it did not own")
        #expect(try installer.installed().isEmpty)
    }

    @Test func refusesWhenForeignBTFWouldShadowIt() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let btf = try hostBTF()
        let foreign = dir.path + "/boot/vmlinux-\(Self.release)"
        try FileManager.default.createDirectory(atPath: dir.path + "/boot", withIntermediateDirectories: true)
        try Data(ELFWriter.btfObject(btf)).write(to: URL(fileURLWithPath: foreign))
        let before = try sha256sum(foreign)
        #expect(throws: InstallError.shadowed(path: "/boot/vmlinux-\(Self.release)")) {
            try BTFInstaller(root: dir.path).install(
                btf: btf, release: Self.release, buildID: nil, source: "test", arch: "x86_64")
        }
        #expect(try sha256sum(foreign) == before)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/lib/modules"))
        // A changed file of ours is left in place by uninstall, with a note.
        try FileManager.default.removeItem(atPath: foreign)
        let installer = BTFInstaller(root: dir.path)
        guard
            case .installed(let r) = try installer.install(
                btf: btf, release: Self.release, buildID: nil, source: "t", arch: "x86_64")
        else {
            Issue.record("expected install"); return
        }
        try Data([0]).write(to: URL(fileURLWithPath: dir.path + r.path), options: .atomic)  // changed by someone
        let (removed, kept) = try installer.uninstall()
        #expect(removed.isEmpty)
        #expect(kept.map(\.path) == [r.path])
        #expect(FileManager.default.fileExists(atPath: dir.path + r.path))
    }

    @Test func uninstallTakesAwayTheDirectoriesInstallCreatedAndNoOthers() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let btf = try hostBTF()
        // /boot holds a DWARF-only vmlinux (libbpf skips it) and /lib/modules exists already:
        // the BTF goes to /lib/modules/R/vmlinux-R, and only /lib/modules/R is new.
        try FileManager.default.createDirectory(atPath: dir.path + "/boot", withIntermediateDirectories: true)
        try Data("not btf".utf8).write(to: URL(fileURLWithPath: dir.path + "/boot/vmlinux-\(Self.release)"))
        try FileManager.default.createDirectory(atPath: dir.path + "/lib/modules", withIntermediateDirectories: true)
        let installer = BTFInstaller(root: dir.path)
        guard
            case .installed(let r) = try installer.install(
                btf: btf, release: Self.release, buildID: nil, source: "t", arch: "x86_64")
        else {
            Issue.record("expected install"); return
        }
        #expect(r.path == "/lib/modules/\(Self.release)/vmlinux-\(Self.release)")
        #expect(r.createdDirectories == ["/lib/modules/\(Self.release)"])
        _ = try installer.uninstall()
        #expect(
            !FileManager.default.fileExists(atPath: dir.path + "/lib/modules/\(Self.release)"),
            "left the directory it made")
        #expect(
            FileManager.default.fileExists(atPath: dir.path + "/lib/modules"), "removed a directory it did not make")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/boot/vmlinux-\(Self.release)"))
        // Where nothing existed, the whole chain it made goes, innermost first.
        let bare = try ScratchDirectory()
        defer { bare.remove() }
        let other = BTFInstaller(root: bare.path)
        try FileManager.default.createDirectory(atPath: bare.path + "/boot", withIntermediateDirectories: true)
        try Data("not btf".utf8).write(to: URL(fileURLWithPath: bare.path + "/boot/vmlinux-\(Self.release)"))
        guard
            case .installed(let r2) = try other.install(
                btf: btf, release: Self.release, buildID: nil, source: "t", arch: "x86_64")
        else {
            Issue.record("expected install"); return
        }
        #expect(r2.createdDirectories == ["/lib", "/lib/modules", "/lib/modules/\(Self.release)"])
        _ = try other.uninstall()
        #expect(!FileManager.default.fileExists(atPath: bare.path + "/lib"))
    }
}
