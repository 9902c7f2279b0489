// `btfgen catalog merge`: entries of one kernel with one BTF are kept once, a build-id with two
// BTFs is a conflict that overwrites nothing, failure records follow their packages, a source
// whose files are not what its index says is refused, and a merger killed after its commit point
// is finished by the next writer.
import Catalog
import Foundation
import Kernel
import Synchronization
import TestSupport
import Testing

@Suite struct CatalogMergeTests {
    /// A fake kernel whose GNU build-id is `buildID` (ld's --build-id=0xHEX): two variants of one
    /// release with the same build-id are what two different BTFs of "one kernel" look like.
    private func compileWithBuildID(
        _ dir: ScratchDirectory, name: String, release: String, variant: Int, buildID: String
    )
        throws -> String
    {
        let out = dir.file(name)
        let r = try runProcess(
            "gcc",
            [
                "-O0", "-g", "-Wl,--build-id=0x\(buildID)", "-DRELEASE=\"\(release)\"", "-DVARIANT=\(variant)", "-o",
                out, FakeKernel.source,
            ])
        try #require(r.status == 0, "gcc failed: \(r.stderr)")
        try #require(try FakeKernel.readelfBuildID(out) == buildID)
        return out
    }

    private func build(_ inputs: [String], into catalog: String) throws {
        let r = try btfgen(["build"] + inputs + ["--catalog", catalog])
        try #require(r.status == 0, "\(r.stderr)")
    }

    /// sha256 by build-id (or release, for none) of a catalog's entries, every file checked by sha256sum.
    private func digests(_ catalog: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for e in try indexEntries(catalog) {
            let sha = try #require(e["sha256"] as? String)
            #expect(try sha256sum(catalog + "/" + (e["path"] as! String)) == sha)
            let identity = try #require(e["identity"] as? [String: Any])
            result[(identity["buildID"] as? String) ?? (identity["release"] as! String)] = sha
        }
        return result
    }

    @Test func theUnionKeepsEachKernelOnceAndMergingAgainChangesNothing() throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let k = try (1...3).map {
            try FakeKernel.compile(in: dir, name: "k\($0)", release: "5.4.0-\($0)-mg", variant: $0)
        }
        let a = dir.file("a"), b = dir.file("b"), dst = dir.file("dst")
        try build([k[0], k[1]], into: a)
        try build([k[1], k[2]], into: b)
        try build([k[0]], into: dst)
        let sources = (try treeSnapshot(a), try treeSnapshot(b))

        let preview = try btfgen(["catalog", "merge", a, b, "--catalog", dst, "--dry-run"])
        #expect(preview.status == 0, "\(preview.stderr)")
        #expect(preview.stdout.contains("would add 5.4.0-2-mg") && preview.stdout.contains("would add 5.4.0-3-mg"))
        #expect(preview.stdout.contains("2 to add, 1 already present, 0 conflicts, 0 failure records merged"))
        #expect(try indexEntries(dst).count == 1, "a dry run wrote the catalog")

        let r = try btfgen(["catalog", "merge", a, b, "--catalog", dst])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 added, 1 already present, 0 conflicts, 0 failure records merged"), "\(r.stdout)")
        let merged = try digests(dst)
        #expect(merged.count == 3)
        var expected = try digests(a)
        expected.merge(try digests(b)) { x, y in
            #expect(x == y, "one kernel built twice gave two BTFs: the build is not canonical")
            return x
        }
        #expect(merged == expected)
        #expect(Set(try catalogBTFFiles(dst)) == Set(try indexEntries(dst).map { $0["path"] as! String }))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: dst + "/.tmp")) ?? []).isEmpty)
        // The sources are only read.
        #expect(try treeSnapshot(a) == sources.0 && treeSnapshot(b) == sources.1)
        // Each merged-in file is hashed as placed and gets its type index, like a built one.
        let record = (try? String(contentsOfFile: dst + "/.verified", encoding: .utf8)) ?? ""
        for e in try indexEntries(dst) {
            let path = e["path"] as! String
            #expect(FileManager.default.fileExists(atPath: dst + "/.index/\(path).types"), "\(path)")
            #expect(record.contains("v1 \(e["sha256"] as! String) "), "\(path): \(record)")
        }

        let index = try Data(contentsOf: URL(fileURLWithPath: dst + "/index.json"))
        let again = try btfgen(["catalog", "merge", a, b, "--catalog", dst, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        #expect((report["added"] as? [Any])?.count == 0)
        #expect((report["present"] as? [Any])?.count == 3)
        #expect((report["conflicts"] as? [Any])?.count == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dst + "/index.json")) == index, "nothing new, yet rewritten")
        // The merged catalog is one `btfgen` uses like any other.
        let list = try btfgen(["list", "--catalog", dst])
        #expect(list.status == 0 && list.stdout.contains("5.4.0-3-mg"), "\(list.stdout)")
    }

    @Test func oneBuildIDWithTwoBTFsIsAConflictThatOverwritesNothing() throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let id = "5eed" + String(repeating: "c0de", count: 9)
        let v1 = try compileWithBuildID(dir, name: "v1", release: "5.4.0-7-mg", variant: 1, buildID: id)
        let v2 = try compileWithBuildID(dir, name: "v2", release: "5.4.0-7-mg", variant: 2, buildID: id)
        let other = try FakeKernel.compile(in: dir, name: "k3", release: "5.4.0-3-mg", variant: 3)
        let a = dir.file("a"), b = dir.file("b"), dst = dir.file("dst")
        try build([v1], into: a)
        try build([v2, other], into: b)
        let shaA = try #require(try digests(a)[id]), shaB = try #require(try digests(b)[id])
        try #require(shaA != shaB, "two different kernels gave one BTF")

        // The destination holds the kernel: its entry stays, the rest merges, the exit is 1.
        try build([v1], into: dst)
        let before = try treeSnapshot(dst)
        let preview = try btfgen(["catalog", "merge", b, "--catalog", dst, "--dry-run"])
        #expect(preview.status == 1)
        #expect(try treeSnapshot(dst) == before, "a dry run wrote the catalog")
        let r = try btfgen(["catalog", "merge", b, "--catalog", dst])
        #expect(r.status == 1)
        #expect(preview.stderr == r.stderr, "the dry run did not show the conflict the merge met")
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        let line = String(try #require(r.stderrLines.first))
        for part in [id, "5.4.0-7-mg", shaA, shaB, dst, b, "the destination's entry is kept"] {
            #expect(line.contains(part), "conflict line lacks \(part): \(line)")
        }
        #expect(r.stdout.contains("1 added, 0 already present, 1 conflict, 0 failure records merged"), "\(r.stdout)")
        #expect(try digests(dst)[id] == shaA)
        #expect(try digests(dst).count == 2)

        // Only the sources hold it and they disagree: neither is taken.
        let fresh = dir.file("fresh")
        let both = try btfgen(["catalog", "merge", a, b, "--catalog", fresh, "--json"])
        #expect(both.status == 1)
        #expect(both.stderrLines.count == 1 && both.stderr.contains("neither is merged"), "\(both.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(both.stdout.utf8)) as? [String: Any])
        let conflict = try #require((report["conflicts"] as? [[String: Any]])?.first)
        #expect(conflict["buildID"] as? String == id)
        #expect(conflict["sha256"] as? String == shaA && conflict["otherSHA256"] as? String == shaB)
        #expect(conflict["source"] as? String == a && conflict["otherSource"] as? String == b)
        #expect(conflict["resolution"] as? String == "leftOut")
        #expect(try digests(fresh).keys.sorted() == [try FakeKernel.readelfBuildID(other)])
    }

    @Test func failureRecordsMergeOnceAndGoWhereThePackageHasAnEntry() throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let k1 = try FakeKernel.compile(in: dir, name: "k1", release: "5.4.0-1-mg", variant: 1)
        let a = dir.file("a"), b = dir.file("b"), dst = dir.file("dst")
        try build([k1], into: b)
        func package(_ name: String, version: String = "1") -> SourcePackage {
            SourcePackage(
                name: name, version: version, architecture: "amd64", sha256: String(repeating: "a", count: 64), size: 1,
                url: "http://127.0.0.1/\(name).deb")
        }
        func failure(_ name: String, version: String = "1") -> FailureRecord {
            FailureRecord(
                package: package(name, version: version), stage: .build, reason: "holds no vmlinux", pahole: "1.24",
                btfgen: "test",
                failedAt: "2026-12-01T00:00:00Z")
        }
        // What sync records: a (a) failed p1 and p2; (b) built p1 after all; (dst) failed p3, which b built.
        let catA = Catalog(root: URL(fileURLWithPath: a)), catB = Catalog(root: URL(fileURLWithPath: b))
        try catA.recordFailure(failure("p1"))
        try catA.recordFailure(failure("p2"))
        let id = try #require(BuildID(hex: try FakeKernel.readelfBuildID(k1)))
        try catB.recordPackage(package("p1"), buildID: id)
        try Catalog(root: URL(fileURLWithPath: dst)).recordFailure(failure("p3"))
        try catB.recordFailure(failure("p3"))
        // Two versions of one name (every rpm-md kernel is `kernel-debuginfo`): both records stay.
        try catA.recordFailure(failure("p4", version: "1"))
        try catB.recordFailure(failure("p4", version: "2"))

        let r = try btfgen(["catalog", "merge", a, b, a, "--catalog", dst])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("1 added, 0 already present, 0 conflicts, 3 failure records merged"), "\(r.stdout)")
        let index = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dst + "/index.json")))
                as? [String: Any])
        let failed = (index["failures"] as? [[String: Any]] ?? []).compactMap {
            ($0["package"] as? [String: Any])?["name"] as? String
        }
        // p1 has an entry now; p2 once although a was given twice; the destination's p3 stays;
        // p4's two versions are two records.
        #expect(failed.sorted() == ["p2", "p3", "p4", "p4"])
        let entry = try #require((index["entries"] as? [[String: Any]])?.first)
        #expect((entry["package"] as? [String: Any])?["name"] as? String == "p1")

        // The same kernel built from a local file: the merge gives it the package record, so the
        // next sync skips that package without downloading it.
        let local = dir.file("local")
        try build([k1], into: local)
        let recorded = try btfgen(["catalog", "merge", b, "--catalog", local])
        #expect(recorded.status == 0, "\(recorded.stderr)")
        #expect(recorded.stdout.contains("0 added, 1 already present"), "\(recorded.stdout)")
        #expect(recorded.stdout.contains("1 entry given its package record"), "\(recorded.stdout)")
        let localEntry = try #require(try indexEntries(local).first)
        #expect((localEntry["package"] as? [String: Any])?["name"] as? String == "p1")
    }

    @Test func aCorruptMissingOrSelfSourceIsRefusedByNameAndNothingIsWritten() throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let k = try (1...2).map {
            try FakeKernel.compile(in: dir, name: "k\($0)", release: "5.4.0-\($0)-mg", variant: $0)
        }
        let good = dir.file("good"), bad = dir.file("bad"), dst = dir.file("dst")
        try build([k[0]], into: good)
        try build([k[1]], into: bad)
        // One byte of a BTF file changed after btfgen wrote it: still BTF, no longer what was indexed.
        let file = bad + "/" + (try indexEntries(bad)[0]["path"] as! String)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))

        let r = try btfgen(["catalog", "merge", good, bad, "--catalog", dst])
        #expect(r.status == 1)
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("source catalog \(bad) is refused and nothing was merged"), "\(r.stderr)")
        #expect(r.stderr.contains("sha256"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dst), "a refused merge created the destination")

        try build([k[1]], into: dst)
        let before = try treeSnapshot(dst)
        for (sources, words) in [
            ([good, bad], "\(bad) is refused"), ([good, dst], "is the destination"),
            ([good + "/../dst/"], "is the destination"), ([good, dir.file("nowhere")], "does not exist"),
            ([good, file], "\(file) is refused and nothing was merged: it is not a directory"),
        ] {
            let refused = try btfgen(["catalog", "merge"] + sources + ["--catalog", dst])
            #expect(refused.status == 1, "\(sources)")
            #expect(refused.stderrLines.count == 1, "\(sources): \(refused.stderr)")
            #expect(refused.stderr.contains(words), "\(sources): \(refused.stderr)")
            #expect(try treeSnapshot(dst) == before, "\(sources): the destination changed")
        }
        // An index naming a file outside its catalog (one that is there, with that sha256) is not btfgen's.
        let hostile = dir.file("hostile")
        try FileManager.default.copyItem(atPath: good, toPath: hostile)
        let goodPath = try #require(try indexEntries(good).first?["path"] as? String)
        let indexPath = hostile + "/index.json"
        let text = try String(contentsOfFile: indexPath, encoding: .utf8)
        try text.replacing("\"path\" : \"\(goodPath)\"", with: "\"path\" : \"../good/\(goodPath)\"").write(
            toFile: indexPath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: hostile + "/" + goodPath)
        let outside = try btfgen(["catalog", "merge", hostile, "--catalog", dst])
        #expect(outside.status == 1)
        #expect(outside.stderrLines.count == 1, "\(outside.stderr)")
        #expect(outside.stderr.contains("is outside the catalog"), "\(outside.stderr)")
        #expect(try treeSnapshot(dst) == before)

        let none = try btfgen(["catalog", "merge", "--catalog", dst])
        #expect(none.status != 0 && none.stderr.contains("Missing expected argument"), "\(none.stderr)")
    }

    /// A merger killed at each point of its write, simulated by the scratch files it leaves: the
    /// copies, the new index and the intent ("committed"), then the index renamed into place with
    /// the copies still in scratch ("index renamed"), or an intent torn before its fsync ("torn intent").
    @Test(arguments: ["committed", "index renamed", "torn intent"])
    func theNextWriterFinishesAMergeKilledAfterItsCommitPoint(_ step: String) throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let k = try (1...3).map {
            try FakeKernel.compile(in: dir, name: "k\($0)", release: "5.4.0-\($0)-mg", variant: $0)
        }
        let src = dir.file("src"), dst = dir.file("dst")
        try build([k[1], k[2]], into: src)
        try build([k[0]], into: dst)
        // What the killed merger had decided: the merge done on a copy.
        let ahead = dir.file("ahead")
        try FileManager.default.copyItem(atPath: dst, toPath: ahead)
        try #require(try btfgen(["catalog", "merge", src, "--catalog", ahead]).status == 0)
        let added = try indexEntries(ahead).map { $0["path"] as! String }.filter {
            !FileManager.default.fileExists(atPath: dst + "/" + $0)
        }
        try #require(added.count == 2)

        let dead = try runProcess("sh", ["-c", "echo $$"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tmp = dst + "/.tmp/"
        let index = "\(dead)-bbbbbbbb-index.json", intent = "\(dead)-cccccccc-intent.json"
        var place: [String] = []
        for (i, path) in added.enumerated() {
            let copy = "\(dead)-a\(i)aaaaaa-merge.btf"
            try FileManager.default.copyItem(atPath: ahead + "/" + path, toPath: tmp + copy)
            place.append("{\"btf\":\"\(copy)\",\"destination\":\"\(path)\"}")
        }
        try FileManager.default.copyItem(atPath: ahead + "/index.json", toPath: tmp + index)
        let record = "{\"index\":\"\(index)\",\"remove\":[],\"place\":[\(place.joined(separator: ","))]}"
        try Data(record.utf8).write(to: URL(fileURLWithPath: tmp + intent))
        switch step {
        case "index renamed":
            try FileManager.default.removeItem(atPath: dst + "/index.json")
            try FileManager.default.moveItem(atPath: tmp + index, toPath: dst + "/index.json")
        case "torn intent":
            try Data(record.prefix(record.count / 2).utf8).write(to: URL(fileURLWithPath: tmp + intent))
        default: break
        }
        // `btfgen doctor` sees the interrupted write; the next writer (a removal of nothing
        // merged) finishes it or drops it.
        let next = try btfgen(["catalog", "remove", "--catalog", dst, "5.4.0-1-mg"])
        try #require(next.status == 0, "\(next.stderr)")
        let left = try indexEntries(dst)
        let releases = Set(left.compactMap { ($0["identity"] as? [String: Any])?["release"] as? String })
        #expect(releases == (step == "torn intent" ? [] : ["5.4.0-2-mg", "5.4.0-3-mg"]))
        #expect(Set(try catalogBTFFiles(dst)) == Set(left.map { $0["path"] as! String }))
        for e in left { #expect(try sha256sum(dst + "/" + (e["path"] as! String)) == e["sha256"] as? String) }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: dst + "/.tmp")) ?? []
        #expect(leftovers.isEmpty, "scratch left: \(leftovers)")
    }

    @Test func aMergeAndABuildIntoOneCatalogAtOnceLoseNothing() throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let k = try (1...7).map {
            try FakeKernel.compile(in: dir, name: "k\($0)", release: "5.4.0-\($0)-mg", variant: $0)
        }
        let src = dir.file("src"), dst = dir.file("dst")
        try build(Array(k.prefix(6)), into: src)
        let results = Mutex([ProcessResult?](repeating: nil, count: 2))
        let commands = [["catalog", "merge", src, "--catalog", dst], ["build", k[6], "--catalog", dst]]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? btfgen(commands[i])
            results.withLock { $0[i] = r }
        }
        for r in results.withLock({ $0 }) {
            let r = try #require(r)
            #expect(r.status == 0, "\(r.stderr)")
        }
        var want = try digests(src)
        want[try FakeKernel.readelfBuildID(k[6])] = try #require(
            try indexEntries(dst).first { ($0["source"] as? String) == "k7" }?["sha256"] as? String)
        #expect(try digests(dst) == want)
        #expect(Set(try catalogBTFFiles(dst)) == Set(try indexEntries(dst).map { $0["path"] as! String }))
    }

    /// Real kills at growing delays: whenever the merger dies, the index parses and names only
    /// files that are there with their sha256, and the next merge ends with the whole union.
    @Test func aMergerKilledAtAnyMomentLeavesASoundCatalog() throws {
        let dir = try ScratchDirectory("btfgen-merge")
        defer { dir.remove() }
        let k = try (1...6).map {
            try FakeKernel.compile(in: dir, name: "k\($0)", release: "5.4.0-\($0)-mg", variant: $0)
        }
        let src = dir.file("src")
        try build(k, into: src)
        let want = try digests(src)
        for round in 0..<12 {
            let dst = dir.file("dst\(round)")
            let merger = Process()
            merger.executableURL = URL(fileURLWithPath: Repo.btfgen)
            merger.arguments = ["catalog", "merge", src, "--catalog", dst]
            merger.standardOutput = FileHandle.nullDevice
            merger.standardError = FileHandle.nullDevice
            try merger.run()
            // A merge of six entries takes 0.1–0.5 s here, most of it fsync: the kills span it.
            usleep(useconds_t(round * 20_000))
            kill(merger.processIdentifier, SIGKILL)
            merger.waitUntilExit()
            if FileManager.default.fileExists(atPath: dst + "/index.json") {
                for e in try indexEntries(dst) {
                    #expect(try sha256sum(dst + "/" + (e["path"] as! String)) == e["sha256"] as? String)
                }
            }
            let finish = try btfgen(["catalog", "merge", src, "--catalog", dst])
            #expect(finish.status == 0, "round \(round): \(finish.stderr)")
            #expect(try digests(dst) == want, "round \(round)")
            #expect(Set(try catalogBTFFiles(dst)) == Set(try indexEntries(dst).map { $0["path"] as! String }))
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: dst + "/.tmp")) ?? []
            #expect(leftovers.isEmpty, "round \(round): scratch left: \(leftovers)")
        }
    }
}
