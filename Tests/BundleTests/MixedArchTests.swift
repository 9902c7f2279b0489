// One bundle for an x86_64 and an arm64 fleet: Debian's real -dbg kernels of both architectures
// and the real objects `make bpf` builds for each. Each kernel's blob is minimized for its own
// architecture's objects exactly as `bpftool gen min_core_btf` does; on this x86_64 machine the
// target side refuses what is arm64's in one line, and serves it when the arm64 kernel is named.
import BTF
import Bundle
import Catalog
import Deploy
import ELF
import Foundation
import Kernel
import TestSupport
import Testing

@Suite(
    .serialized,
    .requires(
        .bpfObjects, .tool("bpftool"), .fixture("BTFGEN_DEBIAN_VMLINUX"), .fixture("BTFGEN_DEBIAN_ARM64_VMLINUX")))
struct MixedArchTests {
    static let programs = ["exec", "task_rename", "unlinkat"]

    static func objects(_ arch: String) -> [String] {
        programs.map { Repo.root.appendingPathComponent("bpf/\(arch)/\($0).bpf.o").path }
    }

    /// A catalog entry for a real vmlinux: its identity (release, arch, build-id) and its own .BTF.
    @discardableResult
    static func add(_ vmlinux: String, to catalog: Catalog) throws -> CatalogEntry {
        let file = try MappedFile(path: vmlinux)
        let info = try KernelImageInfo.read(file)
        let btf = try #require(try file.withBytes { try btfPayload(of: $0).map { [UInt8]($0) } })
        try catalog.prepare()
        let scratch = catalog.scratchFile("btf")
        try Data(btf).write(to: scratch)
        let identity = KernelIdentity(
            release: try #require(info.release), arch: info.arch, buildID: info.buildID, distro: "debian",
            distroVersion: "12")
        let entry = CatalogEntry(
            identity: identity, path: "", sha256: btf.withUnsafeBytes { SHA256.hex($0) }, size: btf.count,
            typeCount: 1, build: nil, source: vmlinux, builtAt: "2026-12-01T00:00:00Z")
        switch try catalog.insert(btfFile: scratch, entry: entry, force: false) {
        case .added(let e), .replaced(let e), .unchanged(let e): return e
        }
    }

    struct Fleet {
        let dir: ScratchDirectory
        let catalog: Catalog
        let x86: CatalogEntry
        let arm: CatalogEntry
        /// Both kernels, objects of both architectures.
        let mixed: String
        /// The arm64 kernel alone, with arm64's objects.
        let armOnly: String
        var empty: String { dir.file("empty-catalog") }
    }

    static func fleet() throws -> Fleet {
        for a in ["x86_64", "arm64"] {
            for o in objects(a) {
                try #require(FileManager.default.fileExists(atPath: o), "\(o) not built: run `make bpf`")
            }
        }
        let dir = try ScratchDirectory("btfgen-mixed")
        let catalog = Catalog(root: URL(fileURLWithPath: dir.file("kernels")))
        let x86 = try add(try #require(Fixture.debianVmlinux), to: catalog)
        let arm = try add(try #require(Fixture.debianArm64Vmlinux), to: catalog)
        #expect(x86.identity.arch == "x86_64" && arm.identity.arch == "arm64")
        let mixed = dir.file("mixed.tar.xz")
        let objectArgs = (objects("x86_64") + objects("arm64")).flatMap { ["--object", $0] }
        let r = try btfgen(["bundle", "--catalog", catalog.root.path, "-o", mixed] + objectArgs)
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 kernels, 2 distinct BTF blobs"), "\(r.stdout)")
        let armOnly = dir.file("arm64.tar.xz")
        let a = try btfgen(
            ["bundle", "--catalog", catalog.root.path, "--select", "*/*/arm64/*", "-o", armOnly]
                + objects("arm64").flatMap { ["--object", $0] })
        try #require(a.status == 0, "\(a.stderr)")
        try FileManager.default.createDirectory(atPath: dir.file("empty-catalog"), withIntermediateDirectories: true)
        return Fleet(dir: dir, catalog: catalog, x86: x86, arm: arm, mixed: mixed, armOnly: armOnly)
    }

    @Test func eachKernelsBlobIsBpftoolsForItsOwnArchitecturesObjects() throws {
        let f = try Self.fleet()
        defer { f.dir.remove() }
        let reader = try BundleReader(path: f.mixed)
        let m = reader.manifest
        #expect(m.format == 4)
        // exec and task_rename are the same bytes in both builds: one neutral record each.
        #expect(
            m.objects.map { "\($0.name)@\($0.arch ?? "?")" }.sorted() == [
                "exec.bpf.o@any", "task_rename.bpf.o@any", "unlinkat.bpf.o@arm64", "unlinkat.bpf.o@x86_64",
            ])
        for (entry, arch) in [(f.x86, "x86_64"), (f.arm, "arm64")] {
            let k = try #require(m.kernels.first { $0.buildID == entry.identity.buildID?.recordedPrefix })
            #expect(k.arch == arch)
            let blob = try reader.blob(k.blob)
            // bpftool, given only this architecture's objects, in the order they were given.
            let theirs = f.dir.file("bpftool-\(arch).btf")
            let r = try runProcess(
                "bpftool", ["gen", "min_core_btf", f.catalog.url(of: entry).path, theirs] + Self.objects(arch))
            try #require(r.status == 0, "bpftool: \(r.stderr)")
            // The bundle holds bpftool's types in name order (what lines a fleet's blobs up for xz).
            let bpftool = try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: theirs))))
            #expect(blob == bpftool.inNameOrder().encoded(), "\(arch) blob is not bpftool's, in name order")
            let mine = f.dir.file("blob-\(arch).btf")
            try Data(blob).write(to: URL(fileURLWithPath: mine))
            let dump = try runProcess("bpftool", ["btf", "dump", "file", mine])
            try #require(dump.status == 0, "\(dump.stderr)")
            if arch == "arm64" {
                #expect(dump.stdout.contains("STRUCT 'user_pt_regs'") && dump.stdout.contains("'regs' type_id="))
                #expect(!dump.stdout.contains("'si' type_id="), "no x86_64 register in the arm64 blob")
            } else {
                #expect(dump.stdout.contains("STRUCT 'pt_regs'") && dump.stdout.contains("'si' type_id="))
                #expect(!dump.stdout.contains("user_pt_regs"), "no arm64 register in the x86_64 blob")
            }
        }
        // `btfgen minimize` over the same mixed catalog makes the same per-kernel bytes.
        let out = f.dir.file("minimized")
        let mr = try btfgen(
            ["minimize", "--catalog", f.catalog.root.path, "-o", out]
                + (Self.objects("x86_64") + Self.objects("arm64")).flatMap { ["--object", $0] })
        try #require(mr.status == 0, "\(mr.stderr)")
        for entry in [f.x86, f.arm] {
            let k = try #require(m.kernels.first { $0.buildID == entry.identity.buildID?.recordedPrefix })
            let minimized = try BTF(
                decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/" + entry.path))))
            #expect(minimized.inNameOrder().encoded() == (try reader.blob(k.blob)))
        }
    }

    @Test func objectsOfAnArchitectureWithoutKernelsAndKernelsWithoutObjectsAreSaidSo() throws {
        let f = try Self.fleet()
        defer { f.dir.remove() }
        // Only x86_64 kernels selected, an arm64-only object: refused in one line naming both.
        let r = try btfgen([
            "bundle", "--catalog", f.catalog.root.path, "--select", "*/*/x86_64/*", "-o", f.dir.file("no.tar.xz"),
            "--object", Self.objects("arm64")[2],
        ])
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("is for arm64 kernels") && r.stderr.contains("the kernels are x86_64"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("no.tar.xz")))
        // Both kernels, only x86_64's unlinkat: the arm64 kernel is left out with a notice, not an empty blob.
        let out = f.dir.file("x86.tar.xz")
        let s = try btfgen([
            "bundle", "--catalog", f.catalog.root.path, "-o", out, "--object", Self.objects("x86_64")[2],
        ])
        try #require(s.status == 0, "\(s.stderr)")
        #expect(s.stderr.contains("leaving out debian/12/arm64/") && s.stderr.contains("no object applies to arm64"))
        #expect(try BundleReader(path: out).manifest.kernels.map(\.arch) == ["x86_64"])
        // FILE@ARCH overrides the inference: declared neutral, it applies to the arm64 kernel too.
        let forced = f.dir.file("any.tar.xz")
        let o = try btfgen([
            "bundle", "--catalog", f.catalog.root.path, "-o", forced, "--object", Self.objects("x86_64")[2] + "@any",
        ])
        try #require(o.status == 0, "\(o.stderr)")
        #expect(try BundleReader(path: forced).manifest.objects.map(\.arch) == ["any"])
        #expect(try BundleReader(path: forced).manifest.kernels.count == 2)
        // minimize, likewise: the arm64 kernel is skipped with a notice.
        let m = try btfgen([
            "minimize", "--catalog", f.catalog.root.path, "-o", f.dir.file("min"), "--object",
            Self.objects("x86_64")[2],
        ])
        try #require(m.status == 0, "\(m.stderr)")
        #expect(m.stderr.contains("skipping") && m.stderr.contains("arm64"), "\(m.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("min/" + f.arm.path)))
        // A --btf file's architecture is read from its registers.
        let b = try btfgen([
            "minimize", "--btf", f.catalog.url(of: f.arm).path, "-o", f.dir.file("min2"), "--object",
            Self.objects("x86_64")[2],
        ])
        #expect(b.status != 0 && b.stderrLines.count == 1, "\(b.stderr)")
        #expect(b.stderr.contains("is for x86_64 kernels") && b.stderr.contains("the kernels are arm64"), "\(b.stderr)")
    }

    @Test(.requires(.kernelNotes))
    func thisMachineRefusesWhatIsArm64sAndServesTheArm64KernelWhenNamed() throws {
        let f = try Self.fleet()
        defer { f.dir.remove() }
        var names = utsname()
        _ = uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        try #require(machine == "x86_64", "this test is for an x86_64 host")
        let common = ["--catalog", f.empty, "--force-catalog"]
        // An arm64-only bundle: resolve, attach and install refuse it in one line naming both architectures.
        let tree = f.dir.file("tree")
        try FileManager.default.createDirectory(atPath: tree + "/etc", withIntermediateDirectories: true)
        try "ID=debian\nVERSION_ID=12\n".write(toFile: tree + "/etc/os-release", atomically: true, encoding: .utf8)
        for args in [
            ["resolve", "--bundle", f.armOnly], ["attach", "--dry-run", "--bundle", f.armOnly],
            ["install", "--host-root", tree, "--bundle", f.armOnly],
        ] {
            let r = try btfgen(args + common)
            #expect(r.status != 0, "\(args[0]) accepted an arm64-only bundle")
            #expect(r.stderrLines.count == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("holds only arm64 kernels but this machine is x86_64"), "\(args[0]): \(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree) == ["etc"], "install wrote nothing")
        // An arm64 object or BTF for this x86_64 machine: one line naming both.
        let armUnlinkat = Self.objects("arm64")[2]
        for args in [
            ["resolve", "--btf", f.catalog.url(of: f.x86).path, "--object", armUnlinkat],
            ["attach", "--dry-run", "--btf", f.catalog.url(of: f.x86).path, "--object", armUnlinkat],
        ] {
            let r = try btfgen(args)
            #expect(r.status != 0 && r.stderrLines.count == 1, "\(args[0]): \(r.stderr)")
            #expect(
                r.stderr.contains("is built for arm64 (reads user_pt_regs.regs) but this machine is x86_64"),
                "\(args[0]): \(r.stderr)")
        }
        let wrongBTF = try btfgen(["resolve", "--btf", f.catalog.url(of: f.arm).path])
        #expect(wrongBTF.status != 0 && wrongBTF.stderrLines.count == 1, "\(wrongBTF.stderr)")
        #expect(
            wrongBTF.stderr.contains("describes a arm64 kernel")
                || wrongBTF.stderr.contains("describes an arm64 kernel"))
        #expect(wrongBTF.stderr.contains("this machine is x86_64"), "\(wrongBTF.stderr)")

        // Named by build-id, the arm64 kernel is another machine's: resolve extracts its blob,
        // raw and as an ELF for aarch64.
        let armID = try #require(f.arm.identity.buildID).hex
        let reader = try BundleReader(path: f.mixed)
        let armBlob = try reader.blob(try #require(reader.manifest.kernels.first { $0.arch == "arm64" }).blob)
        let raw = f.dir.file("arm64.raw.btf")
        let r = try btfgen(
            [
                "resolve", "--kernel", armID, "--bundle", f.mixed, "--catalog", f.empty, "--extract", raw, "--format",
                "raw",
            ])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("target:         another machine: arm64"), "\(r.stdout)")
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: raw))) == armBlob)
        let elf = f.dir.file("arm64.elf")
        let e = try btfgen(["resolve", "--kernel", armID, "--bundle", f.mixed, "--catalog", f.empty, "--extract", elf])
        try #require(e.status == 0, "\(e.stderr)")
        let elfBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: elf)))
        #expect(elfBytes[18] == 183 && elfBytes[19] == 0, "e_machine is EM_AARCH64")
        // attach loads here: the same named arm64 kernel is refused.
        let a = try btfgen(["attach", "--dry-run", "--kernel", armID, "--bundle", f.mixed, "--catalog", f.empty])
        #expect(a.status != 0 && a.stderrLines.count == 1, "\(a.stderr)")
        #expect(a.stderr.contains("is for arm64 but this machine is x86_64"), "\(a.stderr)")

        // install into the arm64 guest's root: its /bin/sh is an AArch64 ELF (the header of
        // Debian's arm64 vmlinux stands in for one), so the tree is arm64's and the kernel must be named.
        let guest = f.dir.file("guest")
        try FileManager.default.createDirectory(atPath: guest + "/usr/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: guest + "/bin", withDestinationPath: "usr/bin")
        try FileManager.default.createDirectory(atPath: guest + "/etc", withIntermediateDirectories: true)
        try "ID=debian\nVERSION_ID=12\n".write(toFile: guest + "/etc/os-release", atomically: true, encoding: .utf8)
        let header = try FileHandle(forReadingFrom: URL(fileURLWithPath: try #require(Fixture.debianArm64Vmlinux)))
        try header.read(upToCount: 64)!.write(to: URL(fileURLWithPath: guest + "/usr/bin/sh"))
        try header.close()
        let auto = try btfgen(["install", "--host-root", guest, "--bundle", f.mixed, "--catalog", f.empty])
        #expect(auto.status != 0 && auto.stderrLines.count == 1, "\(auto.stderr)")
        #expect(auto.stderr.contains("the target machine is arm64 but this one is x86_64"), "\(auto.stderr)")
        let x86ID = try #require(f.x86.identity.buildID).hex
        let wrong = try btfgen(
            ["install", "--host-root", guest, "--kernel", x86ID, "--bundle", f.mixed, "--catalog", f.empty])
        #expect(wrong.status != 0 && wrong.stderr.contains("but the target machine is arm64"), "\(wrong.stderr)")
        let ok = try btfgen([
            "install", "--host-root", guest, "--kernel", armID, "--bundle", f.mixed, "--catalog", f.empty,
        ])
        try #require(ok.status == 0, "\(ok.stderr)")
        let installed = guest + "/boot/vmlinux-" + f.arm.identity.release
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: installed)))
        #expect(bytes[18] == 183, "installed as an AArch64 ELF")
        #expect(bytes == elfBytes, "the same ELF resolve --extract writes")
        // Without a host root, BTF for another machine has nowhere to go on this one.
        let here = try btfgen(["install", "--kernel", armID, "--bundle", f.mixed, "--catalog", f.empty])
        #expect(here.status != 0 && here.stderr.contains("install it into that machine's root with --host-root"))
    }

    /// A bundle as formats 1 and 2 were written (`manifest.json`, `blobs/sha256/<hex>` members),
    /// packed by tar from `dir/t`, at `dir/old.tar.xz`.
    func packOldBundle(_ dir: ScratchDirectory, manifest: String, blobs: [(digest: String, bytes: [UInt8])]) throws
        -> String
    {
        try FileManager.default.createDirectory(atPath: dir.file("t/blobs/sha256"), withIntermediateDirectories: true)
        try (manifest + "\n").write(toFile: dir.file("t/manifest.json"), atomically: true, encoding: .utf8)
        for blob in blobs {
            try Data(blob.bytes).write(to: URL(fileURLWithPath: dir.file("t/blobs/sha256/\(blob.digest)")))
        }
        let path = dir.file("old.tar.xz")
        let tar = try runProcess("tar", ["-cJf", path, "-C", dir.file("t"), "manifest.json", "blobs"])
        try #require(tar.status == 0, "\(tar.stderr)")
        return path
    }

    @Test func aFormatOneBundleIsStillRead() throws {
        let dir = try ScratchDirectory("btfgen-format1")
        defer { dir.remove() }
        // A format 1 bundle as btfgen wrote it before object architectures: no "arch" on objects.
        let blob = Array("minimized btf".utf8)
        let digest = blob.withUnsafeBytes { SHA256.hex($0) }
        let manifest = """
            {"blobs":{"\(digest)":\(blob.count)},"btfgen":"0.9","compat":"libbpf-1.x","format":1,\
            "kernels":[{"arch":"x86_64","blob":"\(digest)","buildID":"deadbeef01020304","distro":"debian",\
            "distroVersion":"12","release":"6.1.0-26-cloud-amd64"}],\
            "objects":[{"name":"unlinkat.bpf.o","sha256":"\(String(repeating: "ab", count: 32))"}]}
            """
        let reader = try BundleReader(path: try packOldBundle(dir, manifest: manifest, blobs: [(digest, blob)]))
        #expect(reader.manifest.format == 1)
        #expect(reader.manifest.objects.first?.arch == nil)
        // Its blobs were minimized for every listed object: each applies to every kernel in it.
        #expect(reader.manifest.objects(for: "x86_64").count == 1)
        #expect(try reader.blob(digest) == blob)
    }

    /// Format 3, as btfgen wrote it before format 4: whole build-ids and object sha256s, the blobs
    /// member's sha256 in `blobs` and the manifest's own over itself alone. Still read, both sums
    /// still checked.
    @Test func aFormatThreeBundleIsStillRead() throws {
        let dir = try ScratchDirectory("btfgen-format3")
        defer { dir.remove() }
        let script = """
            import hashlib, io, json, sys, tarfile
            blobs = [b'minimized btf x86', b'minimized btf arm64']
            payload = b''.join(blobs)
            if sys.argv[2] == 'flip': payload = payload[:3] + bytes([payload[3] ^ 1]) + payload[4:]
            m = {'blobs': {'sha256': hashlib.sha256(b''.join(blobs)).hexdigest(), 'sizes': [len(b) for b in blobs]},
                 'btfgen': '0.1.0', 'compat': 'libbpf-1.x', 'format': 3,
                 'kernels': [{'arch': 'arm64', 'distro': 'debian', 'k': [['6.1.0-26-cloud-arm64', None, 1]], 'version': '12'},
                             {'arch': 'x86_64', 'distro': 'debian', 'k': [['6.1.0-26-cloud-amd64', 'deadbeef' * 5, 0]],
                              'pahole': '1.24', 'version': '12'}],
                 'objects': [{'arch': 'arm64', 'name': 'unlinkat.bpf.o', 'sha256': 'ab' * 32}]}
            j = json.dumps(m, sort_keys=True, separators=(',', ':'))
            j = (j[:-1] + ',"sha256":"' + hashlib.sha256(j[:-1].encode()).hexdigest() + '"}\\n').encode()
            with tarfile.open(sys.argv[1], 'w:xz', format=tarfile.USTAR_FORMAT) as t:
                for name, data in (('manifest.json', j), ('blobs', payload)):
                    info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
            """
        let good = dir.file("format3.tar.xz"), bad = dir.file("flipped.tar.xz")
        for (path, mode) in [(good, "good"), (bad, "flip")] {
            let r = try runProcess("python3", ["-c", script, path, mode])
            try #require(r.status == 0, "\(r.stderr)")
        }
        let reader = try BundleReader(path: good)
        #expect(reader.manifest.format == 3)
        let x86 = try #require(reader.manifest.kernels.first { $0.arch == "x86_64" })
        #expect(x86.buildID?.hex == String(repeating: "deadbeef", count: 5) && x86.pahole == "1.24")
        #expect(try reader.blob(x86.blob) == Array("minimized btf x86".utf8))
        #expect(reader.manifest.objects(for: "arm64").map(\.sha256) == [String(repeating: "ab", count: 32)])
        #expect {
            try BundleReader(path: bad)
        } throws: { error in
            guard case .corruptBlob = error as? BundleError else { return false }
            return true
        }
    }

    @Test func aFormatTwoBundleIsStillRead() throws {
        let dir = try ScratchDirectory("btfgen-format2")
        defer { dir.remove() }
        // A format 2 bundle as btfgen wrote it before format 3: a blobs/sha256/<hex> member per
        // blob, one record per kernel naming its blob's sha256, objects with architectures.
        let blobs = [Array("minimized btf x86".utf8), Array("minimized btf arm".utf8)]
        let digests = blobs.map { b in b.withUnsafeBytes { SHA256.hex($0) } }
        let manifest = """
            {"blobs":{"\(digests[0])":\(blobs[0].count),"\(digests[1])":\(blobs[1].count)},"btfgen":"0.9",\
            "compat":"libbpf-1.x","format":2,"kernels":[\
            {"arch":"x86_64","blob":"\(digests[0])","buildID":"deadbeef01020304","distro":"debian",\
            "distroVersion":"12","pahole":"1.24","release":"6.1.0-26-cloud-amd64"},\
            {"arch":"arm64","blob":"\(digests[1])","distro":"debian","distroVersion":"12",\
            "release":"6.1.0-26-cloud-arm64"}],\
            "objects":[{"arch":"arm64","name":"unlinkat.bpf.o","sha256":"\(String(repeating: "ab", count: 32))"}]}
            """
        let reader = try BundleReader(
            path: try packOldBundle(dir, manifest: manifest, blobs: Array(zip(digests, blobs))))
        #expect(reader.manifest.format == 2)
        let x86 = try #require(reader.manifest.kernels.first { $0.arch == "x86_64" })
        #expect(x86.buildID?.hex == "deadbeef01020304" && x86.pahole == "1.24" && x86.blob == digests[0])
        #expect(reader.manifest.objects(for: "x86_64").isEmpty && reader.manifest.objects(for: "arm64").count == 1)
        for (blob, digest) in zip(blobs, digests) { #expect(try reader.blob(digest) == blob) }
        // Its blobs are still verified one by one as they are read.
        let flipped = Array("minimized btf x87".utf8)
        try Data(flipped).write(to: URL(fileURLWithPath: dir.file("t/blobs/sha256/\(digests[0])")))
        let bad = dir.file("bad.tar.xz")
        try #require(try runProcess("tar", ["-cJf", bad, "-C", dir.file("t"), "manifest.json", "blobs"]).status == 0)
        #expect {
            try BundleReader(path: bad).blob(digests[0])
        } throws: { error in
            guard case .corruptBlob = error as? BundleError else { return false }
            return true
        }
    }
}
