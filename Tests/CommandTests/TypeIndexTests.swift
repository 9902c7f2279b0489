// A catalog is minimized through each entry's type index file (`.index/<path>.types`, written on
// first use) to the very bytes a full scan of the kernel's BTF gives; an index file that is not
// the one written for that BTF — another kernel's, a damaged one — is never used, even with a
// record that vouches for it, and is written again.
import BTF
import Catalog
import Foundation
import Kernel
import Minimize
import TestSupport
import Testing

@Suite(.requires(.bpfObjects, .hostBTF))
struct TypeIndexTests {
    let objectPaths = ["task_rename", "unlinkat", "exec"].map {
        Repo.root.appendingPathComponent("bpf/\($0).bpf.o").path
    }

    /// File `btf` in `catalog` under a made-up identity.
    func insert(_ btf: [UInt8], release: String, into catalog: Catalog) throws -> CatalogEntry {
        let staged = catalog.scratchFile(release)
        try Data(btf).write(to: staged)
        let identity = KernelIdentity(
            release: release, arch: RunningKernel.read().arch,
            buildID: BuildID(hex: String(repeating: release.hasPrefix("a") ? "a" : "b", count: 40)),
            distro: "debian", distroVersion: "12")
        let entry = CatalogEntry(
            identity: identity, path: "", sha256: btf.withUnsafeBytes { SHA256.hex($0) }, size: btf.count,
            typeCount: 0, build: nil, source: release, builtAt: "2026-12-02T00:00:00Z")
        switch try catalog.insert(btfFile: staged, entry: entry, force: false) {
        case .added(let e), .replaced(let e), .unchanged(let e): return e
        }
    }

    /// Append a record line vouching for `relative` as it is now (what a later process trusts).
    func vouch(for relative: String, in root: String) throws {
        let path = root + "/" + relative
        let identity = try runProcess("stat", ["-c", "%d:%i:%s:%.9Y:%.9Z", path]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let line = "v1 \(try sha256sum(path)) \(identity) \(relative)\n"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/.verified"))
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
        try handle.close()
    }

    @Test func minimizingThroughTheTypeIndexGivesTheFullScansBytesAndAForeignIndexIsNeverUsed() throws {
        let dir = try ScratchDirectory("btfgen-typeindex")
        defer { dir.remove() }
        let objects = try objectPaths.map { try BPFObject(bytes: try readWholeFile($0)) }
        let host = try readWholeFile("/sys/kernel/btf/vmlinux")
        let catalog = Catalog(root: URL(fileURLWithPath: dir.file("kernels")))
        try catalog.prepare()
        // Two kernels of different bytes: the host's BTF, and that BTF cut down to these objects
        // (itself a kernel BTF that serves them).
        let small = try KernelMinimizer.minimize("/sys/kernel/btf/vmlinux", objects: objects, compat: .current).bytes
        let a = try insert(host, release: "a-6.1-host", into: catalog)
        let b = try insert(small, release: "b-6.1-small", into: catalog)
        let root = catalog.root.path
        // What a scan of every record gives, without any index file.
        var expected: [String: [UInt8]] = [:]
        for e in [a, b] {
            expected[e.path] = try KernelMinimizer.minimize(catalog.url(of: e).path, objects: objects, compat: .current)
                .bytes
        }
        let arguments = ["minimize", "--catalog", root] + objectPaths.flatMap { ["--object", $0] }
        func run(_ out: String) throws {
            let r = try btfgen(arguments + ["-o", dir.file(out)])
            #expect(r.status == 0, "\(r.stderr)")
            for (path, bytes) in expected {
                #expect(try readWholeFile(dir.file(out) + "/" + path) == bytes, "\(out): \(path)")
            }
        }
        // First use writes each entry's index file and records it; later uses read it.
        try run("first")
        let indexA = ".index/\(a.path).types", indexB = ".index/\(b.path).types"
        let record = try String(contentsOfFile: root + "/.verified", encoding: .utf8)
        for relative in [indexA, indexB] {
            #expect(FileManager.default.fileExists(atPath: root + "/" + relative), "\(relative) not written")
            #expect(record.contains(" \(relative)\n"), "\(relative) not recorded: \(record)")
        }
        let written = try runProcess("stat", ["-c", "%i %.9Y", root + "/" + indexB]).stdout
        try run("second")
        #expect(try runProcess("stat", ["-c", "%i %.9Y", root + "/" + indexB]).stdout == written, "rewritten")

        // Kernel a's index file put in b's place, with a record vouching for it: it describes
        // other bytes (its sha256 is a's), so it is not used, and b's own is written again.
        try FileManager.default.removeItem(atPath: root + "/" + indexB)
        try FileManager.default.copyItem(atPath: root + "/" + indexA, toPath: root + "/" + indexB)
        try vouch(for: indexB, in: root)
        try run("foreign")
        #expect(try sha256sum(root + "/" + indexB) != (try sha256sum(root + "/" + indexA)))

        // A damaged one (cut short) likewise.
        let bytes = try readWholeFile(root + "/" + indexB)
        try Data(bytes.prefix(bytes.count - 7)).write(to: URL(fileURLWithPath: root + "/" + indexB))
        try vouch(for: indexB, in: root)
        try run("damaged")
        #expect(try readWholeFile(root + "/" + indexB) == bytes)

        // Damaged inside, at its full size: the first record offset (byte 56) no longer the type
        // section's start. It is not used (the records are located instead), and written again.
        var inside = bytes
        inside[56] ^= 0x04
        try Data(inside).write(to: URL(fileURLWithPath: root + "/" + indexB))
        try vouch(for: indexB, in: root)
        try run("damaged-inside")
        #expect(try readWholeFile(root + "/" + indexB) == bytes)

        // `catalog remove` takes the entry's index file with it.
        let removed = try btfgen(["catalog", "remove", b.identity.buildID!.hex, "--catalog", root])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root + "/" + indexB))
        #expect(FileManager.default.fileExists(atPath: root + "/" + indexA))
    }
}
