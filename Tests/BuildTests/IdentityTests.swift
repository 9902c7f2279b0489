// Kernel identity, file recognition, hashing and tool-version logic, checked against independent
// oracles (readelf, sha256sum) and real banner strings from distro kernels.
import Catalog
import ELF
import Foundation
import Ingest
import Kernel
import TestSupport
import Testing

@testable import Toolchain

@Suite struct IdentityTests {
    /// One architecture, every spelling: BTFHub's (recorded), uname -m's, Debian's, OCI's, ELF's.
    @Test func architectureNamesMapToBTFHubsInOnePlace() {
        for spelling in ["arm64", "aarch64"] { #expect(KernelArch.canonical(spelling) == "arm64") }
        for spelling in ["x86_64", "amd64"] { #expect(KernelArch.canonical(spelling) == "x86_64") }
        #expect(KernelArch.canonical("sparc9") == nil)
        #expect(KernelArch.name(unameMachine: "aarch64") == "arm64")
        #expect(KernelArch.name(unameMachine: "sparc9") == "sparc9", "unknown machines match only themselves")
        #expect(KernelArch.name(elfMachine: ELFFile.machineAArch64) == "arm64")
        #expect(KernelArch.name(elfMachine: ELFFile.machineX86_64) == "x86_64")
        #expect(KernelArch.name(elfMachine: 9999) == "em9999")
        #expect(KernelArch.ociArchitecture(of: "x86_64") == "amd64")
        #expect(KernelArch.ociArchitecture(of: "aarch64") == "arm64")
        for row in KernelArch.all {
            #expect(KernelArch.name(elfMachine: row.elfMachine) == row.name)
            #expect(KernelArch.elfMachine(of: row.name) == row.elfMachine)
            for spelling in row.uname + [row.debian, row.oci, row.name] {
                #expect(KernelArch.canonical(spelling) == row.name, "\(spelling)")
            }
        }
        // No spelling may name two architectures.
        let spellings = KernelArch.all.map { Set($0.uname + [$0.debian, $0.oci, $0.name]) }
        for (i, a) in spellings.enumerated() {
            for b in spellings[(i + 1)...] { #expect(a.isDisjoint(with: b), "\(a) and \(b)") }
        }
    }

    @Test func fakeKernelIdentityMatchesReadelf() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let path = try FakeKernel.compile(in: dir, release: "4.18.0-305.el8.x86_64")
        let info = try KernelImageInfo.read(try MappedFile(path: path))
        #expect(info.release == "4.18.0-305.el8.x86_64")
        #expect(info.arch == "x86_64")
        #expect(info.buildID?.hex == (try FakeKernel.readelfBuildID(path)))
        #expect(info.compiler == "gcc (GCC) 12.2.0, GNU ld 2.40")
        #expect(info.dwarfBytes > 0)
        #expect(info.nativeBTFBytes == nil)
    }

    @Test func withoutDWARFIsRefused() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let path = try FakeKernel.compile(in: dir, debugInfo: false)
        #expect(throws: KernelImageError.noDWARF(path: path)) { try KernelImageInfo.read(try MappedFile(path: path)) }
    }

    @Test(arguments: [
        // RHEL 8 (old GCC banner with nested parentheses)
        (
            "Linux version 4.18.0-305.el8.x86_64 (mockbuild@x86-vm-07.build.eng.bos.redhat.com) (gcc version 8.4.1 20200928 (Red Hat 8.4.1-1) (GCC)) #1 SMP Thu Apr 29 08:54:30 EDT 2021",
            "4.18.0-305.el8.x86_64", "gcc version 8.4.1 20200928 (Red Hat 8.4.1-1) (GCC)",
            "#1 SMP Thu Apr 29 08:54:30 EDT 2021", "rhel", "8"
        ),
        // Debian 12 cloud kernel
        (
            "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-01)",
            "6.1.0-56-cloud-amd64", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-01)", "debian", "12"
        ),
        // Ubuntu 18.04
        (
            "Linux version 4.15.0-213-generic (buildd@lcy02-amd64-079) (gcc version 7.5.0 (Ubuntu 7.5.0-3ubuntu1~18.04)) #224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023",
            "4.15.0-213-generic", "gcc version 7.5.0 (Ubuntu 7.5.0-3ubuntu1~18.04)",
            "#224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023", "ubuntu", "18.04"
        ),
        // Amazon Linux 2
        (
            "Linux version 4.14.336-257.562.amzn2.x86_64 (mockbuild@ip-10-0-35-56) (gcc version 7.3.1 20180712 (Red Hat 7.3.1-17) (GCC)) #1 SMP Sat Feb 24 09:50:35 UTC 2024",
            "4.14.336-257.562.amzn2.x86_64", "gcc version 7.3.1 20180712 (Red Hat 7.3.1-17) (GCC)",
            "#1 SMP Sat Feb 24 09:50:35 UTC 2024", "amzn", "2"
        ),
        // A custom build: no distro can be told
        (
            "Linux version 6.1.158 (root@builder) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 Mon Nov 23 10:00:00 UTC 2026",
            "6.1.158", "gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
            "#1 Mon Nov 23 10:00:00 UTC 2026", "custom", "unknown"
        ),
    ])
    func bannerAndDistro(_ c: (String, String, String, String, String, String)) {
        let banner = Banner(c.0)
        #expect(banner.release == c.1)
        #expect(banner.compiler == c.2)
        #expect(banner.utsVersion == c.3)
        let (distro, version) = DistroInference.infer(
            release: c.1, utsVersion: banner.utsVersion,
            packageMaintainer: nil, packageVersion: nil, container: nil)
        #expect(distro == c.4)
        #expect(version == c.5)
    }

    @Test func packageMetadataDecidesTheDistro() {
        let debian = DistroInference.infer(
            release: "6.1.0-56-amd64", utsVersion: "#1 SMP",
            packageMaintainer: "Debian Kernel Team <debian-kernel@lists.debian.org>",
            packageVersion: "6.1.192-2", container: "deb")
        #expect(debian == ("debian", "12"))
        let ubuntu = DistroInference.infer(
            release: "5.4.0-150-generic", utsVersion: nil, packageMaintainer: nil,
            packageVersion: nil, container: "ddeb")
        #expect(ubuntu == ("ubuntu", "20.04"))
    }

    @Test func fileKindsByMagic() {
        func kind(_ bytes: [UInt8]) -> FileKind { bytes.withUnsafeBytes { detectKind($0) } }
        #expect(kind([]) == .empty)
        #expect(kind([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]) == .elf)
        var boot = [UInt8](repeating: 0, count: 0x300)
        boot.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        #expect(kind(boot) == .bzImage)
        #expect(kind([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0]) == .xz)
        #expect(kind([0x1f, 0x8b, 8]) == .gzip)
        #expect(kind([0x28, 0xb5, 0x2f, 0xfd]) == .zstd)
        #expect(kind(Array("!<arch>\ndebian-binary".utf8)) == .debPackage)
        #expect(kind([0xed, 0xab, 0xee, 0xdb, 3, 0]) == .rpmPackage)
        #expect(kind(Array("hello, world".utf8)) == .unknown)
    }

    @Test func vmlinuxMembersOfPackages() {
        #expect(Ingest.isVmlinuxMember("./usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64"))
        #expect(Ingest.isVmlinuxMember("./usr/lib/debug/lib/modules/4.18.0-305.el8.x86_64/vmlinux"))
        #expect(Ingest.isVmlinuxMember("usr/lib/debug/boot/vmlinux-4.15.0-213-generic"))
        #expect(!Ingest.isVmlinuxMember("./usr/lib/debug/boot/vmlinux-"))
        #expect(!Ingest.isVmlinuxMember("./usr/lib/debug/lib/modules/6.1.0/kernel/fs/ext4.ko"))
        #expect(!Ingest.isVmlinuxMember("./usr/share/doc/linux-image/vmlinux-notes"))
    }

    @Test(arguments: [0, 1, 55, 56, 63, 64, 65, 1000, 1 << 20])
    func sha256MatchesCoreutils(size: Int) throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = dir.file("data")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(bytes.withUnsafeBytes { SHA256.hex($0) } == (try sha256sum(path)))
    }

    @Test func toolVersionsParse() {
        #expect(ToolVersion(parsing: "v1.24") == ToolVersion([1, 24]))
        #expect(ToolVersion(parsing: "  LLVM version 14.0.6") == ToolVersion([14, 0, 6]))
        #expect(ToolVersion(parsing: "2.40") == ToolVersion([2, 40]))
        #expect(ToolVersion(parsing: "no digits here") == nil)
        #expect(ToolVersion([1, 9]) < ToolVersion([1, 16]))
        #expect(ToolVersion([1, 16]) == ToolVersion([1, 16, 0]))
    }

    @Test func paholeFlagsFollowTheVersion() {
        func flags(_ v: [Int], parallel: Bool = false) -> [String] {
            let pahole = Tool(name: "pahole", path: "/usr/bin/pahole", version: ToolVersion(v), versionText: "")
            return Toolchain(pahole: pahole, llvmObjcopy: nil, strip: nil).paholeFlags(parallel: parallel)
        }
        #expect(flags([1, 16]) == [])
        #expect(flags([1, 19]) == ["--skip_encoding_btf_vars"])
        #expect(flags([1, 24]) == ["--btf_gen_floats", "--lang_exclude=rust"])
        #expect(flags([1, 24], parallel: true) == ["--btf_gen_floats", "-j", "--lang_exclude=rust"])
        #expect(flags([1, 25]).contains("--skip_encoding_btf_inconsistent_proto"))
    }

    @Test func catalogLayoutIsBTFHubsAndSameReleaseBuildsCoexist() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let catalog = Catalog(root: dir.url.appendingPathComponent("kernels"))
        func entry(_ buildID: String) -> CatalogEntry {
            let identity = KernelIdentity(
                release: "4.18.0-305.el8.x86_64", arch: "x86_64",
                buildID: BuildID(hex: buildID), distro: "rhel", distroVersion: "8",
                compiler: nil, banner: nil)
            return CatalogEntry(
                identity: identity, path: "", sha256: "", size: 4, typeCount: 1, build: nil,
                source: "vmlinux", builtAt: "2026-11-23T00:00:00Z")
        }
        func insert(_ buildID: String) throws -> CatalogEntry {
            try catalog.prepare()
            let file = catalog.scratchFile("btf")
            try Data("BTF!".utf8).write(to: file)
            switch try catalog.insert(btfFile: file, entry: entry(buildID), force: false) {
            case .added(let e): return e
            case let other: Issue.record("expected .added, got \(other)"); return entry(buildID)
            }
        }
        let first = try insert("339fb5561c03c788888fbfb7f6b94f2620a042fa")
        #expect(first.path == "rhel/8/x86_64/4.18.0-305.el8.x86_64.btf")
        // Another build of the same `uname -r` (distros do this) must not overwrite the first.
        let second = try insert("aaaabbbbccccddddeeeeffff0000111122223333")
        #expect(second.path == "rhel/8/x86_64/4.18.0-305.el8.x86_64+aaaabbbbcccc.btf")
        #expect(try catalog.entries().count == 2)
        #expect(FileManager.default.fileExists(atPath: catalog.url(of: first).path))
        #expect(try catalog.lookup("339fb556").path == first.path)
        #expect(throws: CatalogError.self) { try catalog.lookup("4.18.0-305.el8.x86_64") }  // ambiguous
    }

    @Test func emptySectionNameTablePastTheEndIsAnError() throws {
        // ELFWriter's layout: 3 section headers at e_shoff; [2] is .shstrtab (offset at +24, size at +32).
        var bytes = ELFWriter.btfObject([0x9f, 0xeb, 1, 0] + [UInt8](repeating: 0, count: 20))
        let shoff = bytes[0x28..<0x30].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = shoff + 2 * 64
        for k in 0..<8 { bytes[header + 24 + k] = k == 3 ? 0x10 : 0 }  // offset 0x10000000, far past the end
        for k in 0..<8 { bytes[header + 32 + k] = 0 }  // size 0
        #expect(throws: ELFError.self) { try bytes.withUnsafeBytes { _ = try ELFFile(bytes: $0) } }
    }
}
