// `btfgen build` on real kernels: Debian's linux-image-6.1.0-*-cloud-amd64-dbg (its vmlinux and
// the .deb itself), its arm64 sibling linux-image-6.1.0-*-cloud-arm64-dbg, and the BTF-less 6.1
// kernel built from linux-source-6.1. scripts/test.sh
// fetches and builds them (cached) and exports their paths; in CI (BTFGEN_REQUIRE_FIXTURES=1) a
// missing fixture fails the test instead of skipping it.
import Foundation
import LibBPF
import TestSupport
import Testing

@Suite(.serialized) struct RealKernelTests {
    /// Build `input` into a fresh catalog and check the entry against independent oracles:
    /// build-id from `readelf -n` on the vmlinux, libbpf parsing, the image's native .BTF.
    func buildAndCheck(_ input: String, vmlinux: String, release: String?, arch: String = "x86_64") throws
        -> [String: Any]
    {
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
        #expect(identity["arch"] as? String == arch)

        let path = catalog + "/" + (e["path"] as! String)
        let btf = try LibBPFBTF(path: path)
        #expect(btf.typeCount == e["typeCount"] as? Int)
        #expect(btf.typeCount > 10_000, "a whole kernel has tens of thousands of types")
        let task = try #require(btf.structNamed("task_struct"))
        #expect(task.size > 1000)
        var result = e
        result["json"] = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        result["taskStruct"] = task
        result["btf"] = btf
        result["btfBytes"] = try Data(contentsOf: URL(fileURLWithPath: path))
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

    /// arm64 on this x86_64 host: Debian's cloud-arm64 -dbg package. Its vmlinux is an AArch64
    /// ELF, so the architecture must come from the ELF header, and the catalog must file it
    /// under BTFHub's `arm64` (what `uname -m`'s `aarch64` is matched against on the target).
    @Test(.requires(.fixture("BTFGEN_DEBIAN_ARM64_DEB"), .fixture("BTFGEN_DEBIAN_ARM64_VMLINUX")))
    func debianArm64DebuginfoPackage() throws {
        try checkArm64Package(
            deb: try #require(Fixture.debianArm64Deb), vmlinux: try #require(Fixture.debianArm64Vmlinux),
            release: ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_ARM64_RELEASE"])
    }

    /// The same for Debian's generic arm64 flavour (linux-image-*-arm64-dbg, for arm servers and
    /// boards: every SoC's drivers, a 314 MB vmlinux in an 804 MB package).
    @Test(.requires(.fixture("BTFGEN_DEBIAN_ARM64_GENERIC_DEB"), .fixture("BTFGEN_DEBIAN_ARM64_GENERIC_VMLINUX")))
    func debianGenericArm64DebuginfoPackage() throws {
        try checkArm64Package(
            deb: try #require(Fixture.path("BTFGEN_DEBIAN_ARM64_GENERIC_DEB")),
            vmlinux: try #require(Fixture.path("BTFGEN_DEBIAN_ARM64_GENERIC_VMLINUX")),
            release: ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_ARM64_GENERIC_RELEASE"])
    }

    func checkArm64Package(deb: String, vmlinux: String, release: String?) throws {
        let header = try runProcess("readelf", ["-h", vmlinux])
        try #require(header.stdout.contains("AArch64"), "not an arm64 vmlinux: \(vmlinux)")
        let e = try buildAndCheck(deb, vmlinux: vmlinux, release: release, arch: "arm64")
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["distro"] as? String == "debian")
        #expect(identity["distroVersion"] as? String == "12")
        let release64 = try #require(identity["release"] as? String)
        #expect(e["path"] as? String == "debian/12/arm64/\(release64).btf")

        // The image's own .BTF, read by libbpf straight from the vmlinux ELF (llvm-objcopy 14
        // refuses this arm64 vmlinux's .rela.dyn, and binutils on x86_64 knows no AArch64).
        let native = try LibBPFBTF(path: vmlinux)
        let ours = try #require(e["btf"] as? LibBPFBTF)
        let nativeTask = try #require(native.structNamed("task_struct"))
        let task = try #require(e["taskStruct"] as? LibBPFStruct)
        #expect(task.size == nativeTask.size)
        #expect(task.members == nativeTask.members)
        let summary = try #require((e["json"] as? [[String: Any]])?.first)
        #expect(summary["nativeTypes"] as? Int == native.typeCount)

        // arm64's registers, not x86's: orig_x0 (the first syscall argument, which bpf_tracing.h's
        // PT_REGS_PARM1_CORE_SYSCALL reads) and regs[] (user_pt_regs, and pt_regs through its
        // anonymous union), laid out as in the native BTF.
        let regs = try #require(ours.structNamed("pt_regs"))
        #expect(regs.members.contains { $0.name == "orig_x0" })
        #expect(!regs.members.contains { $0.name == "di" || $0.name == "orig_ax" })
        #expect(regs == native.structNamed("pt_regs"))
        let user = try #require(ours.structNamed("user_pt_regs"))
        #expect(user.members.first?.name == "regs")
        #expect(user == native.structNamed("user_pt_regs"))
        let dir = try ScratchDirectory("btfgen-arm64")
        defer { dir.remove() }
        let file = dir.file("arm64.btf")
        try #require(e["btfBytes"] as? Data).write(to: URL(fileURLWithPath: file))
        func cDeclaration(of path: String) throws -> String? {
            let r = try runProcess("bpftool", ["btf", "dump", "file", path, "format", "c"])
            try #require(r.status == 0, "bpftool: \(r.stderr)")
            return r.stdout.components(separatedBy: "\nstruct pt_regs {\n").dropFirst().first?
                .components(separatedBy: "\n};").first
        }
        let declared = try cDeclaration(of: file)
        #expect(declared?.contains("\t\t\tu64 regs[31];") == true, "pt_regs has regs[31] in its anonymous union")
        #expect(declared == (try cDeclaration(of: vmlinux)))
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

    /// arm64's boot image (an `Image`, "ARMd" at 0x38, no ELF and no DWARF) is refused like a bzImage.
    @Test(.requires(.fixture("BTFGEN_DEBIAN_ARM64_VMLINUZ"))) func realArm64ImageIsRefusedWithWhereToFindDebuginfo()
        throws
    {
        let image = try #require(Fixture.debianArm64Vmlinuz)
        let dir = try ScratchDirectory("btfgen-arm64-image")
        defer { dir.remove() }
        let r = try btfgen(["build", image, "--catalog", dir.file("kernels")])
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1)
        #expect(r.stderr.contains("compressed boot image"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("kernels/index.json")))
    }
}
