// `btfgen build`, `list`, `show` end to end on fake kernels: the pipeline, the catalog's layout
// and index, both encoding methods, compressed and packaged inputs, parallel builds, concurrent
// writers and a build killed at any moment.
import Foundation
import LibBPF
import TestSupport
import Testing

@Suite struct BuildCommandTests {
    @Test func buildStoresAValidatedEntryAndLeavesTheInputAlone() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let vmlinux = try FakeKernel.compile(in: dir, release: "4.18.0-305.el8.x86_64")
        let before = try sha256sum(vmlinux)
        let catalog = dir.file("kernels")
        let r = try btfgen(["build", vmlinux, "--catalog", catalog])
        try #require(r.status == 0, "build failed: \(r.stderr)")
        #expect(r.stderr.isEmpty, "a quiet build prints nothing on stderr off a terminal")
        #expect(try sha256sum(vmlinux) == before)

        let entries = try indexEntries(catalog)
        try #require(entries.count == 1)
        let e = entries[0]
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["release"] as? String == "4.18.0-305.el8.x86_64")
        #expect(identity["arch"] as? String == "x86_64")
        #expect(identity["distro"] as? String == "rhel")
        #expect(identity["distroVersion"] as? String == "8")
        #expect(identity["buildID"] as? String == (try FakeKernel.readelfBuildID(vmlinux)))
        #expect(e["path"] as? String == "rhel/8/x86_64/4.18.0-305.el8.x86_64.btf")
        #expect(e["source"] as? String == "vmlinux")
        let build = try #require(e["build"] as? [String: Any])
        #expect(build["method"] as? String == "detached")
        #expect((build["pahole"] as? String)?.hasPrefix("1.") == true)
        #expect((build["paholeFlags"] as? [String])?.contains("-j") == true, "pahole -j is the default")
        #expect(e["canonical"] as? Bool == true)
        #expect(e["builtAt"] as? String != nil)

        let btfPath = catalog + "/" + (e["path"] as! String)
        #expect(e["sha256"] as? String == (try sha256sum(btfPath)))
        let size = try FileManager.default.attributesOfItem(atPath: btfPath)[.size] as? Int
        #expect(e["size"] as? Int == size)
        let btf = try LibBPFBTF(path: btfPath)
        #expect(e["typeCount"] as? Int == btf.typeCount)
        let task = try #require(btf.structNamed("task_struct"))
        #expect(task.members.map(\.name).contains("pid"))
        #expect(task.members.first { $0.name == "in_execve" }?.bitfieldSize == 1)
        // Hashed as stored, and its type index written beside it (`minimize` reads that), both on
        // record with their sha256s.
        let record = (try? String(contentsOfFile: catalog + "/.verified", encoding: .utf8)) ?? ""
        let typeIndex = ".index/" + (e["path"] as! String) + ".types"
        #expect(FileManager.default.fileExists(atPath: catalog + "/" + typeIndex))
        #expect(record.contains("v1 \(try sha256sum(btfPath)) "), "\(record)")
        #expect(record.contains("v1 \(try sha256sum(catalog + "/" + typeIndex)) "), "\(record)")
        // No scratch left behind.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? [] == [])
    }

    @Test func detachedAndObjcopyMethodsGiveTheSameBTF() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let vmlinux = try FakeKernel.compile(in: dir)
        let before = try sha256sum(vmlinux)
        for method in ["detached", "objcopy"] {
            let r = try btfgen(["build", vmlinux, "--method", method, "--catalog", dir.file(method)])
            try #require(r.status == 0, "\(method): \(r.stderr)")
        }
        // pahole -J rewrites its input: the objcopy method must have worked on a private copy.
        #expect(try sha256sum(vmlinux) == before)
        let a = try indexEntries(dir.file("detached"))[0], b = try indexEntries(dir.file("objcopy"))[0]
        #expect(a["sha256"] as? String == b["sha256"] as? String)
        #expect((b["build"] as? [String: Any])?["llvmObjcopy"] as? String != nil)
    }

    @Test func sameBuildIDIsANoOpUnlessForced() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let vmlinux = try FakeKernel.compile(in: dir)
        let catalog = dir.file("kernels")
        try #require(try btfgen(["build", vmlinux, "--catalog", catalog]).status == 0)
        let first = try indexEntries(catalog)[0]["builtAt"] as? String
        let again = try btfgen(["build", vmlinux, "--catalog", catalog])
        #expect(again.status == 0)
        #expect(again.stdout.contains("already in the catalog"))
        #expect(try indexEntries(catalog).count == 1)
        Thread.sleep(forTimeInterval: 1.1)
        // Forced, the same kernel gives the same canonical bytes: the entry stays as it was.
        let forced = try btfgen(["build", vmlinux, "--force", "--catalog", catalog])
        #expect(forced.status == 0)
        #expect(forced.stdout.contains("byte-identical"), "\(forced.stdout)")
        #expect(try indexEntries(catalog)[0]["builtAt"] as? String == first)
        // A stored file that no longer matches its digest is rewritten.
        let stored = catalog + "/" + (try indexEntries(catalog)[0]["path"] as! String)
        let handle = try #require(FileHandle(forWritingAtPath: stored))
        handle.seekToEndOfFile()
        handle.write(Data([0]))
        handle.closeFile()
        let repaired = try btfgen(["build", vmlinux, "--force", "--catalog", catalog])
        #expect(repaired.status == 0)
        #expect(repaired.stdout.contains("replaced"))
        let entries = try indexEntries(catalog)
        #expect(entries.count == 1)
        #expect(entries[0]["builtAt"] as? String != first)
        #expect(try sha256sum(stored) == entries[0]["sha256"] as? String)
    }

    @Test func compressedInputsBuildTheSameEntry() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let vmlinux = try FakeKernel.compile(in: dir)
        let reference = try btfgen(["build", vmlinux, "--json", "--catalog", dir.file("plain")])
        try #require(reference.status == 0, "\(reference.stderr)")
        let expected = try indexEntries(dir.file("plain"))[0]["sha256"] as? String
        for (tool, ext) in [("xz", "xz"), ("gzip", "gz"), ("zstd", "zst")] {
            let compressed = dir.file("vmlinux.\(ext)")
            let r = try runProcess("sh", ["-c", "\(tool) -c < \"$0\" > \"$1\"", vmlinux, compressed])
            try #require(r.status == 0, "\(tool): \(r.stderr)")
            let before = try sha256sum(compressed)
            let catalog = dir.file("cat-\(ext)")
            let b = try btfgen(["build", compressed, "--catalog", catalog])
            try #require(b.status == 0, "\(ext): \(b.stderr)")
            let e = try indexEntries(catalog)[0]
            #expect(e["sha256"] as? String == expected, "\(ext) input gives different BTF")
            #expect(e["source"] as? String == "vmlinux.\(ext)")
            #expect(try sha256sum(compressed) == before)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? [] == [])
        }
    }

    @Test func debianPackageIsReadThroughLibarchive() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let release = "6.1.0-99-cloud-amd64"
        let root = dir.file("pkg")
        try FileManager.default.createDirectory(atPath: root + "/usr/lib/debug/boot", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/DEBIAN", withIntermediateDirectories: true)
        let vmlinux = try FakeKernel.compile(
            in: dir, release: release,
            utsVersion: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.999-1 (2026-11-01)")
        try FileManager.default.copyItem(atPath: vmlinux, toPath: root + "/usr/lib/debug/boot/vmlinux-\(release)")
        try FileManager.default.createDirectory(atPath: root + "/usr/share/doc/x", withIntermediateDirectories: true)
        try Data("padding\n".utf8).write(to: URL(fileURLWithPath: root + "/usr/share/doc/x/README"))
        try """
        Package: linux-image-\(release)-dbg
        Version: 6.1.999-1
        Architecture: amd64
        Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
        Description: Debug symbols for linux-image-\(release)

        """.write(toFile: root + "/DEBIAN/control", atomically: true, encoding: .utf8)
        let deb = dir.file("linux-image-\(release)-dbg_6.1.999-1_amd64.deb")
        let pack = try runProcess("dpkg-deb", ["-Zxz", "--build", "--root-owner-group", root, deb])
        try #require(pack.status == 0, "dpkg-deb: \(pack.stderr)")
        let before = try sha256sum(deb)
        let catalog = dir.file("kernels")
        let r = try btfgen(["build", deb, "--catalog", catalog])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(try sha256sum(deb) == before)
        let e = try indexEntries(catalog)[0]
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["release"] as? String == release)
        #expect(identity["distro"] as? String == "debian")
        #expect(identity["distroVersion"] as? String == "12")
        #expect(identity["buildID"] as? String == (try FakeKernel.readelfBuildID(vmlinux)))
        #expect(e["path"] as? String == "debian/12/x86_64/\(release).btf")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? [] == [])

        // Packages with no vmlinux are refused with one line.
        try FileManager.default.removeItem(atPath: root + "/usr/lib/debug")
        let empty = dir.file("linux-headers.deb")
        try #require(try runProcess("dpkg-deb", ["--build", "--root-owner-group", root, empty]).status == 0)
        let bad = try btfgen(["build", empty, "--catalog", catalog])
        #expect(bad.status != 0)
        #expect(bad.stderrLines.count == 1)
        #expect(bad.stderr.contains("holds no vmlinux"))
    }

    @Test(.requires(.tool("rpmbuild")))
    func rpmDebuginfoPackageIsReadThroughLibarchive() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let release = "4.18.0-513.5.1.el8_9.x86_64"
        let vmlinux = try FakeKernel.compile(in: dir, release: release, variant: 2)
        let spec = dir.file("kernel-debuginfo.spec")
        try """
        Name: kernel-debuginfo
        Version: 4.18.0
        Release: 513.5.1.el8_9
        Summary: Debug information for package kernel
        License: GPLv2
        BuildArch: x86_64
        %global __os_install_post %{nil}
        %global debug_package %{nil}
        %description
        Fake kernel-debuginfo for btfgen tests.
        %install
        mkdir -p %{buildroot}/usr/lib/debug/lib/modules/\(release)
        cp \(vmlinux) %{buildroot}/usr/lib/debug/lib/modules/\(release)/vmlinux
        %files
        /usr/lib/debug/lib/modules/\(release)/vmlinux

        """.write(toFile: spec, atomically: true, encoding: .utf8)
        let r = try runProcess(
            "rpmbuild",
            [
                "-bb", "--define", "_topdir \(dir.path)/rpmbuild",
                "--define", "_binary_payload w9.xzdio", spec,
            ])
        try #require(r.status == 0, "rpmbuild: \(r.stderr.suffix(800))")
        let rpm = dir.file("rpmbuild/RPMS/x86_64/kernel-debuginfo-4.18.0-513.5.1.el8_9.x86_64.rpm")
        let catalog = dir.file("kernels")
        let b = try btfgen(["build", rpm, "--catalog", catalog])
        try #require(b.status == 0, "\(b.stderr)")
        let e = try indexEntries(catalog)[0]
        let identity = try #require(e["identity"] as? [String: Any])
        #expect(identity["release"] as? String == release)
        #expect(identity["distro"] as? String == "rhel")
        #expect(identity["distroVersion"] as? String == "8")
        #expect(identity["buildID"] as? String == (try FakeKernel.readelfBuildID(vmlinux)))
    }

    @Test func distroOptionsOverrideInference() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let vmlinux = try FakeKernel.compile(in: dir, release: "5.15.0-custom")
        let catalog = dir.file("kernels")
        let r = try btfgen(["build", vmlinux, "--distro", "ubuntu", "--distro-version", "22.04", "--catalog", catalog])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(try indexEntries(catalog)[0]["path"] as? String == "ubuntu/22.04/x86_64/5.15.0-custom.btf")
        let bad = try btfgen(["build", vmlinux, "--distro-version", "22.04", "--catalog", catalog])
        #expect(bad.status != 0)
    }

    @Test func severalInputsBuildInParallel() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let inputs = try (0..<4).map {
            try FakeKernel.compile(in: dir, name: "vmlinux-\($0)", release: "5.4.0-\($0)-generic", variant: $0)
        }
        let catalog = dir.file("kernels")
        let r = try btfgen(["build", "--jobs", "3", "--json", "--catalog", catalog] + inputs)
        try #require(r.status == 0, "\(r.stderr)")
        let summaries = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(summaries.count == 4)
        #expect(Set(summaries.compactMap { $0["outcome"] as? String }) == ["added"])
        let releases = Set(
            try indexEntries(catalog).compactMap { ($0["identity"] as? [String: Any])?["release"] as? String })
        #expect(releases == Set((0..<4).map { "5.4.0-\($0)-generic" }))
    }

    @Test func oneBadInputDoesNotStopTheOthers() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let good = try FakeKernel.compile(in: dir)
        let bad = dir.file("notes.txt")
        try Data("not a kernel\n".utf8).write(to: URL(fileURLWithPath: bad))
        let catalog = dir.file("kernels")
        let r = try btfgen(["build", bad, good, "--catalog", catalog])
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1)
        #expect(r.stderr.contains("notes.txt"))
        #expect(try indexEntries(catalog).count == 1)
    }

    @Test func twoProcessesBuildingIntoOneCatalogLoseNothing() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let a = try (0..<3).map { try FakeKernel.compile(in: dir, name: "a\($0)", release: "6.1.\($0)-a", variant: $0) }
        let b = try (0..<3).map {
            try FakeKernel.compile(in: dir, name: "b\($0)", release: "6.1.\($0)-b", variant: $0 + 3)
        }
        let catalog = dir.file("kernels")
        nonisolated(unsafe) var results: [ProcessResult?] = [nil, nil]
        let group = DispatchGroup()
        for (i, inputs) in [a, b].enumerated() {
            group.enter()
            DispatchQueue.global().async {
                results[i] = try? btfgen(["build", "--jobs", "3", "--catalog", catalog] + inputs)
                group.leave()
            }
        }
        group.wait()
        for r in results { #expect(r?.status == 0, "\(r?.stderr ?? "did not run")") }
        let releases = Set(
            try indexEntries(catalog).compactMap { ($0["identity"] as? [String: Any])?["release"] as? String })
        #expect(releases.count == 6)
        for e in try indexEntries(catalog) {
            let path = catalog + "/" + (e["path"] as! String)
            #expect(e["sha256"] as? String == (try sha256sum(path)))
        }
    }

    /// Kill builds at many moments (pahole slowed down so the kill lands inside every stage):
    /// the index must always parse and every entry must have its file with the recorded hash; a
    /// `.btf` outside the index may exist only as the destination of a killed writer's intent, and
    /// the next build finishes that write and cleans the dead process's scratch.
    @Test func aBuildKilledAtAnyMomentLeavesAConsistentCatalog() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let slowPahole = dir.file("pahole")
        try """
        #!/bin/sh
        sleep 0.2
        exec /usr/bin/pahole "$@"
        """.write(toFile: slowPahole, atomically: true, encoding: .utf8)
        chmod(slowPahole, 0o755)
        let catalog = dir.file("kernels")
        let seed = try FakeKernel.compile(in: dir, name: "seed", release: "5.10.0-seed", variant: 9)
        try #require(try btfgen(["build", seed, "--catalog", catalog]).status == 0)
        for (i, delay) in [0.0, 0.02, 0.05, 0.1, 0.15, 0.25, 0.3, 0.4, 0.5, 0.6].enumerated() {
            let input = try FakeKernel.compile(in: dir, name: "k\(i)", release: "5.10.\(i)-k", variant: i)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Repo.btfgen)
            process.arguments = ["build", input, "--catalog", catalog]
            process.environment = ProcessInfo.processInfo.environment.merging(["BTFGEN_PAHOLE": slowPahole]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // Its tools die with it: nothing may go on writing into the catalog's scratch.
            var survivors = ""
            for _ in 0..<40 {
                survivors = try runProcess("pgrep", ["-f", slowPahole]).stdout
                if survivors.isEmpty { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            #expect(survivors.isEmpty, "after kill at \(delay) s, its tools still run: \(survivors)")

            let entries = try indexEntries(catalog)  // must parse
            var listed = Set<String>()
            for e in entries {
                let path = e["path"] as! String
                listed.insert(path)
                #expect(e["sha256"] as? String == (try sha256sum(catalog + "/" + path)), "after kill at \(delay) s")
            }
            let pending = Set(try pendingDestinations(catalog))
            let outside = Set(try catalogBTFFiles(catalog)).subtracting(listed)
            #expect(outside.isSubset(of: pending), "after kill at \(delay) s: files outside the index and no intent")
        }
        let after = try btfgen(["build", seed, "--force", "--catalog", catalog])
        #expect(after.status == 0)
        let entries = try indexEntries(catalog)
        #expect(Set(try catalogBTFFiles(catalog)) == Set(entries.map { $0["path"] as! String }))
        for e in entries {
            #expect(e["sha256"] as? String == (try sha256sum(catalog + "/" + (e["path"] as! String))))
        }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? []
        #expect(leftovers.isEmpty, "scratch left: \(leftovers)")
    }

    /// What a writer killed after its commit point leaves (its BTF and new index in scratch and an
    /// intent naming them, at each step of the commit), made by hand so every step is covered
    /// without timing: the next build must finish that write, not lose it and not half-apply it. A
    /// torn intent (killed while writing it) must be dropped with its scratch.
    @Test(arguments: ["intent written", "btf placed", "index renamed", "torn intent"])
    func theNextBuildFinishesAWriteKilledAfterItsCommitPoint(_ step: String) throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let catalog = dir.file("kernels"), ahead = dir.file("ahead")
        let k1 = try FakeKernel.compile(in: dir, name: "k1", release: "5.4.0-1-k", variant: 1)
        let k2 = try FakeKernel.compile(in: dir, name: "k2", release: "5.4.0-2-k", variant: 2)
        let k3 = try FakeKernel.compile(in: dir, name: "k3", release: "5.4.0-3-k", variant: 3)
        try #require(try btfgen(["build", k1, "--catalog", catalog]).status == 0)
        // What the killed writer was storing: k2, as a completed build shows it.
        try FileManager.default.copyItem(atPath: catalog, toPath: ahead)
        try #require(try btfgen(["build", k2, "--catalog", ahead]).status == 0)
        let k2Entry = try #require(try indexEntries(ahead).first { $0["source"] as? String == "k2" })
        let k2Path = k2Entry["path"] as! String

        // A pid that is certainly gone.
        let dead = try runProcess("sh", ["-c", "echo $$"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tmp = catalog + "/.tmp/"
        let btf = "\(dead)-aaaaaaaa-raw.btf", index = "\(dead)-bbbbbbbb-index.json"
        let intent = "\(dead)-cccccccc-intent.json"
        try FileManager.default.copyItem(atPath: ahead + "/" + k2Path, toPath: tmp + btf)
        try FileManager.default.copyItem(atPath: ahead + "/index.json", toPath: tmp + index)
        try Data("{\"btf\":\"\(btf)\",\"destination\":\"\(k2Path)\",\"index\":\"\(index)\",\"remove\":[]}".utf8)
            .write(to: URL(fileURLWithPath: tmp + intent))
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: catalog + "/" + k2Path).deletingLastPathComponent().path,
            withIntermediateDirectories: true)
        switch step {
        case "btf placed":
            try FileManager.default.moveItem(atPath: tmp + btf, toPath: catalog + "/" + k2Path)
        case "index renamed":
            try FileManager.default.moveItem(atPath: tmp + btf, toPath: catalog + "/" + k2Path)
            try FileManager.default.removeItem(atPath: catalog + "/index.json")
            try FileManager.default.moveItem(atPath: tmp + index, toPath: catalog + "/index.json")
        case "torn intent":
            try Data("{\"btf\":\"\(btf)\",\"dest".utf8).write(to: URL(fileURLWithPath: tmp + intent))
        default: break
        }
        // Readers before recovery: the index parses and names only files that are there.
        for e in try indexEntries(catalog) {
            #expect(FileManager.default.fileExists(atPath: catalog + "/" + (e["path"] as! String)))
        }

        let next = try btfgen(["build", k3, "--catalog", catalog])
        try #require(next.status == 0, "\(next.stderr)")
        let entries = try indexEntries(catalog)
        let sources = Set(entries.compactMap { $0["source"] as? String })
        #expect(sources == (step == "torn intent" ? ["k1", "k3"] : ["k1", "k2", "k3"]))
        for e in entries {
            #expect(e["sha256"] as? String == (try sha256sum(catalog + "/" + (e["path"] as! String))))
        }
        #expect(Set(try catalogBTFFiles(catalog)) == Set(entries.map { $0["path"] as! String }))
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? []
        #expect(leftovers.isEmpty, "scratch left: \(leftovers)")
    }

    @Test func listShowAndDoctor() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        let emptyList = try btfgen(["list", "--catalog", catalog])
        #expect(emptyList.status == 0)
        let vmlinux = try FakeKernel.compile(in: dir, release: "4.18.0-305.el8.x86_64")
        try #require(try btfgen(["build", vmlinux, "--catalog", catalog]).status == 0)
        let buildID = try FakeKernel.readelfBuildID(vmlinux)

        let table = try btfgen(["list", "--catalog", catalog])
        #expect(table.status == 0)
        #expect(table.stdout.contains("4.18.0-305.el8.x86_64"))
        #expect(table.stdout.contains(String(buildID.prefix(12))))
        let json = try btfgen(["list", "--json", "--catalog", catalog])
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect((listed.first?["identity"] as? [String: Any])?["buildID"] as? String == buildID)

        for query in ["4.18.0-305.el8.x86_64", buildID, String(buildID.prefix(10))] {
            let show = try btfgen(["show", query, "--catalog", catalog])
            #expect(show.status == 0, "show \(query): \(show.stderr)")
            #expect(show.stdout.contains(buildID))
            #expect(show.stdout.contains("rhel/8/x86_64/4.18.0-305.el8.x86_64.btf"))
        }
        let missing = try btfgen(["show", "9.9.9", "--catalog", catalog])
        #expect(missing.status != 0)
        #expect(missing.stderrLines.count == 1)

        // With the catalog in the environment instead of --catalog.
        let env = try btfgen(["list", "--json"], environment: ["BTFGEN_CATALOG": catalog])
        #expect(env.stdout.contains(buildID))

        let doctor = try btfgen(["doctor", "--catalog", catalog])
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
        #expect(doctor.stdout.contains("pahole"))
        let broken = try btfgen(
            ["doctor", "--catalog", catalog], environment: ["BTFGEN_PAHOLE": "/nonexistent/pahole"])
        #expect(broken.status != 0)
        #expect(broken.stdout.contains("apt-get install dwarves"))
    }
}
