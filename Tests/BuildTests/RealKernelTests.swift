// `btfgen build` on real kernels: Debian's linux-image-6.1.0-*-cloud-amd64-dbg (its vmlinux and
// the .deb itself) and the BTF-less 6.1 kernel built from linux-source-6.1. scripts/test.sh
// fetches and builds them (cached) and exports their paths; in CI (BTFGEN_REQUIRE_FIXTURES=1) a
// missing fixture fails the test instead of skipping it.
import Foundation
import Loader
import TestSupport
import Testing

@Suite(.serialized) struct RealKernelTests {
    /// Build `input` into a fresh catalog and check the entry against independent oracles:
    /// build-id from `readelf -n` on the vmlinux, libbpf parsing, the image's native .BTF.
    func buildAndCheck(_ input: String, vmlinux: String, release: String?) throws -> [String: Any] {
        let dir = try ScratchDirectory("btfgen-real")
        defer { dir.remove() }
        let before = try sha256sum(input)
        let catalog = dir.file("kernels")
        let r = try btfgen(["build", input, "--json", "--catalog", catalog])
        try #require(r.status == 0, "build \(input) failed: \(r.stderr)")
        #expect(try sha256sum(input) == before, "the input changed")

        let entries = try indexEntries(catalog)
        try #require(entries.count == 1)
        let e = entries[0]
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["buildID"] as? String == (try FakeKernel.readelfBuildID(vmlinux)))
        if let release { #expect(identity["release"] as? String == release) }
        #expect(identity["arch"] as? String == "x86_64")

        let path = catalog + "/" + (e["path"] as! String)
        let btf = try LibBPFBTF(path: path)
        #expect(btf.typeCount == e["typeCount"] as? Int)
        #expect(btf.typeCount > 10_000, "a whole kernel has tens of thousands of types")
        let task = try #require(btf.structNamed("task_struct"))
        #expect(task.size > 1000)
        var result = e
        result["json"] = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        result["taskStruct"] = task
        return result
    }

    /// The image's own .BTF, extracted with llvm-objcopy from a copy (an independent oracle).
    func nativeTaskStruct(_ vmlinux: String) throws -> (LibBPFStruct, Int) {
        let dir = try ScratchDirectory("btfgen-native")
        defer { dir.remove() }
        let out = dir.file("native.btf")
        let r = try runProcess("llvm-objcopy", ["--dump-section", ".BTF=\(out)", vmlinux, dir.file("discard")])
        try #require(r.status == 0, "llvm-objcopy: \(r.stderr)")
        let btf = try LibBPFBTF(path: out)
        return (try #require(btf.structNamed("task_struct")), btf.typeCount)
    }

    @Test(.requires(.fixture("BTFGEN_DEBIAN_VMLINUX"))) func debianDebuginfoVmlinux() throws {
        let vmlinux = try #require(Fixture.debianVmlinux)
        let release = ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_RELEASE"]
        let e = try buildAndCheck(vmlinux, vmlinux: vmlinux, release: release)
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["distro"] as? String == "debian")
        #expect(identity["distroVersion"] as? String == "12")
        // The image carries its own .BTF: task_struct must be laid out identically.
        let (native, nativeTypes) = try nativeTaskStruct(vmlinux)
        let ours = try #require(e["taskStruct"] as? LibBPFStruct)
        #expect(ours.size == native.size)
        #expect(ours.members == native.members)
        let summary = try #require((e["json"] as? [[String: Any]])?.first)
        #expect(summary["nativeTypes"] as? Int == nativeTypes)
    }

    @Test(.requires(.fixture("BTFGEN_DEBIAN_DEB"), .fixture("BTFGEN_DEBIAN_VMLINUX")))
    func debianDebuginfoPackage() throws {
        let deb = try #require(Fixture.debianDeb), vmlinux = try #require(Fixture.debianVmlinux)
        let release = ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_RELEASE"]
        let e = try buildAndCheck(deb, vmlinux: vmlinux, release: release)
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["distro"] as? String == "debian")
        #expect(identity["distroVersion"] as? String == "12")
        #expect(e["source"] as? String == URL(fileURLWithPath: deb).lastPathComponent)
        let (native, _) = try nativeTaskStruct(vmlinux)
        #expect((e["taskStruct"] as? LibBPFStruct)?.members == native.members)
    }

    @Test(.requires(.fixture("BTFGEN_TEST_VMLINUX"))) func btflessTestKernel() throws {
        let vmlinux = try #require(Fixture.testVmlinux)
        let release = ProcessInfo.processInfo.environment["BTFGEN_TEST_RELEASE"]
        // The point of this kernel: it has DWARF and no .BTF of its own.
        let sections = try runProcess("readelf", ["-S", "-W", vmlinux])
        #expect(!sections.stdout.contains(" .BTF "))
        #expect(sections.stdout.contains(".debug_info"))
        let e = try buildAndCheck(vmlinux, vmlinux: vmlinux, release: release)
        #expect((e["identity"] as? [String: Any])?["distro"] as? String == "custom")
    }

    @Test(.requires(.fixture("BTFGEN_TEST_BZIMAGE"))) func realBzImageIsRefusedWithWhereToFindDebuginfo() throws {
        let bzImage = try #require(Fixture.testBzImage)
        let dir = try ScratchDirectory("btfgen-bz")
        defer { dir.remove() }
        let r = try btfgen(["build", bzImage, "--catalog", dir.file("kernels")])
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1)
        #expect(r.stderr.contains("compressed boot image"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("kernels/index.json")))
    }
}
