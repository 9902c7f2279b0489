// `btfgen bundle` end to end on real BTF (the host's own, imported twice BTFHub-style, and the
// BTF-less test kernel's) and the real BPF objects from bpf/.
import BTF
import Bundle
import Deploy
import Foundation
import LibBPF
import TestSupport
import Testing

@Suite(.requires(.bpfObjects, .hostBTF, .fixture("BTFGEN_TEST_VMLINUX"))) struct BundleCommandTests {
    static let objects = ["task_rename", "unlinkat", "exec"].map {
        Repo.root.appendingPathComponent("bpf/\($0).bpf.o").path
    }

    /// A catalog holding the host's BTF under two distros (same bytes: must share one blob) and
    /// the test kernel's generated BTF.
    func catalog(in dir: ScratchDirectory) throws -> (catalog: String, kernels: Int) {
        let host = try #require(FileManager.default.contents(atPath: "/sys/kernel/btf/vmlinux"), "host without BTF")
        for (distro, version) in [("fedora", "40"), ("ubuntu", "24.04")] {
            let d = dir.file("tree/\(distro)/\(version)/x86_64")
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            try host.write(to: URL(fileURLWithPath: d + "/6.18.0-host.btf"))
        }
        let catalog = dir.file("kernels")
        let im = try btfgen(["catalog", "import", dir.file("tree"), "--catalog", catalog])
        try #require(im.status == 0, "\(im.stderr)")
        let b = try btfgen(["build", try #require(Fixture.testVmlinux), "--catalog", catalog])
        try #require(b.status == 0, "\(b.stderr)")
        return (catalog, 3)
    }

    @Test func bundleIsMinimalDeduplicatedVerifiableAndReproducible() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let (catalog, kernels) = try catalog(in: dir)
        let objectArgs = Self.objects.flatMap { ["--object", $0] }
        let out = dir.file("bundle.tar.xz")
        let r = try btfgen(["bundle", "--catalog", catalog, "-o", out] + objectArgs)
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\(kernels) kernels"))
        // The size it reports is the file's.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
        let shown = size >= 1024 ? String(format: "%.1f KiB", Double(size) / 1024) : "\(size) B"
        #expect(size > 0 && r.stdout.contains("bundle \(shown),"), "\(r.stdout)")

        let reader = try BundleReader(path: out)
        let m = reader.manifest
        #expect(m.kernels.count == kernels)
        #expect(m.blobs.count == kernels - 1, "the host BTF filed twice must be stored once")
        #expect(m.objects.map(\.name) == ["exec.bpf.o", "task_rename.bpf.o", "unlinkat.bpf.o"])
        for (name, path) in zip(["task_rename.bpf.o", "unlinkat.bpf.o", "exec.bpf.o"], Self.objects) {
            #expect(m.objects.first { $0.name == name }?.sha256 == String(try sha256sum(path).prefix(16)))
        }
        #expect(m.compat == "libbpf-1.x")

        // Each blob is exactly what `btfgen minimize` makes for that kernel, and libbpf reads it.
        let minimized = dir.file("minimized")
        let mr = try btfgen(["minimize", "--catalog", catalog, "-o", minimized] + objectArgs)
        try #require(mr.status == 0, "\(mr.stderr)")
        let index =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: catalog + "/index.json")))
            as! [String: Any]
        for e in index["entries"] as! [[String: Any]] {
            let identity = e["identity"] as! [String: Any]
            let k = try #require(
                m.kernels.first {
                    $0.release == identity["release"] as? String && $0.distro == identity["distro"] as? String
                })
            #expect(k.buildID?.hex == (identity["buildID"] as? String).map { String($0.prefix(16)) })
            let blob = try reader.blob(k.blob)
            let expected = try Data(contentsOf: URL(fileURLWithPath: minimized + "/" + (e["path"] as! String)))
            #expect(
                blob == (try BTF(decoding: [UInt8](expected))).inNameOrder().encoded(),
                "blob of \(k.release) is not btfgen minimize's, in name order")
            let blobFile = dir.file("blob-\(k.blob.prefix(8))")
            try Data(blob).write(to: URL(fileURLWithPath: blobFile))
            let parsed = try LibBPFBTF(path: blobFile)
            #expect(parsed.structNamed("task_struct") != nil)
            #expect(blob.count < 4096, "a minimized BTF for three programs is a few hundred bytes")
        }

        // Same catalog and objects, objects given in another order: the same bytes.
        let again = dir.file("again.tar.xz")
        let r2 = try btfgen(
            ["bundle", "--catalog", catalog, "-o", again] + Self.objects.reversed().flatMap { ["--object", $0] })
        try #require(r2.status == 0, "\(r2.stderr)")
        #expect(try sha256sum(out) == (try sha256sum(again)))

        // An existing output is not replaced silently.
        let exists = try btfgen(["bundle", "--catalog", catalog, "-o", out] + objectArgs)
        #expect(exists.status != 0)
        #expect(exists.stderrLines.count == 1 && exists.stderr.contains("--force"))
        #expect(try btfgen(["bundle", "--force", "--catalog", catalog, "-o", out] + objectArgs).status == 0)
    }

    @Test func selectCompatAndOCI() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let (catalog, _) = try catalog(in: dir)
        let objectArgs = Self.objects.flatMap { ["--object", $0] }
        let selected = dir.file("ubuntu.tar.xz")
        let s = try btfgen(
            ["bundle", "--select", "ubuntu/*", "--compat", "libbpf-0.x", "--catalog", catalog, "-o", selected]
                + objectArgs)
        try #require(s.status == 0, "\(s.stderr)")
        let m = try BundleReader(path: selected).manifest
        #expect(m.kernels.map(\.distro) == ["ubuntu"])
        #expect(m.compat == "libbpf-0.x")

        let none = try btfgen(
            ["bundle", "--select", "rhel/7/*", "--catalog", catalog, "-o", dir.file("none.tar.xz")] + objectArgs)
        #expect(none.status != 0)
        #expect(none.stderrLines.count == 1 && none.stderr.contains("no catalog kernel matches"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("none.tar.xz")))

        let oci = dir.file("oci")
        let o = try btfgen(["bundle", "--format", "oci", "--catalog", catalog, "-o", oci] + objectArgs)
        try #require(o.status == 0, "\(o.stderr)")
        #expect(FileManager.default.fileExists(atPath: oci + "/oci-layout"))
        #expect(FileManager.default.fileExists(atPath: oci + "/index.json"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")

        let garbage = dir.file("garbage.bpf.o")
        try Data("not an object".utf8).write(to: URL(fileURLWithPath: garbage))
        let bad = try btfgen(["bundle", "--object", garbage, "--catalog", catalog, "-o", dir.file("bad.tar.xz")])
        #expect(bad.status != 0)
        #expect(bad.stderrLines.count == 1 && bad.stderr.contains("garbage.bpf.o"))
    }
}
