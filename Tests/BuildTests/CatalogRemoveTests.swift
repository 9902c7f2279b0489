// `btfgen catalog remove`: entries and their BTF files leave in one journaled write, a query that
// names nothing or more than one entry removes nothing, and a remover killed after its commit
// point is finished by the next writer.
import Foundation
import TestSupport
import Testing

@Suite struct CatalogRemoveTests {
    /// Three fake kernels built into `kernels`, with their index entries by source name.
    private func setup() throws -> (dir: ScratchDirectory, catalog: String, entries: [String: [String: Any]]) {
        let dir = try ScratchDirectory("btfgen-remove")
        let catalog = dir.file("kernels")
        for i in 1...3 {
            let k = try FakeKernel.compile(in: dir, name: "k\(i)", release: "5.4.0-\(i)-rm", variant: i)
            let r = try btfgen(["build", k, "--catalog", catalog])
            try #require(r.status == 0, "\(r.stderr)")
        }
        var entries: [String: [String: Any]] = [:]
        for e in try indexEntries(catalog) { entries[e["source"] as! String] = e }
        return (dir, catalog, entries)
    }

    @Test func removesByReleaseAndByBuildIDPrefixWithTheirFiles() throws {
        let (dir, catalog, entries) = try setup()
        defer { dir.remove() }
        let k1 = try #require(entries["k1"])
        let prefix = String(try FakeKernel.readelfBuildID(dir.file("k3")).prefix(10))
        try #require(prefix.count == 10)
        let r = try btfgen(["catalog", "remove", "--catalog", catalog, "5.4.0-1-rm", prefix])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("removed 5.4.0-1-rm") && r.stdout.contains("removed 5.4.0-3-rm"), "\(r.stdout)")
        let left = try indexEntries(catalog)
        #expect(left.map { $0["source"] as? String } == ["k2"])
        #expect(try catalogBTFFiles(catalog) == [entries["k2"]!["path"] as! String])
        #expect(!FileManager.default.fileExists(atPath: catalog + "/" + (k1["path"] as! String)))
        let scratch = (try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? []
        #expect(scratch.isEmpty, "scratch left: \(scratch)")
        // Gone means gone: the same query now matches nothing.
        let again = try btfgen(["catalog", "remove", "--catalog", catalog, "5.4.0-1-rm"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("no catalog entry matches '5.4.0-1-rm'"), "\(again.stderr)")
    }

    @Test func removingEveryKernelLeavesAnEmptyCatalogAndNoEmptyDirectories() throws {
        let (dir, catalog, _) = try setup()
        defer { dir.remove() }
        let r = try btfgen(["catalog", "remove", "--catalog", catalog, "5.4.0-1-rm", "5.4.0-2-rm", "5.4.0-3-rm"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try indexEntries(catalog).isEmpty)
        let left = try FileManager.default.contentsOfDirectory(atPath: catalog).filter { !$0.hasPrefix(".") }
        #expect(left == ["index.json"], "\(left)")
        let list = try btfgen(["list", "--catalog", catalog])
        #expect(list.status == 0 && list.stdout.contains("is empty"), "\(list.stdout)")
    }

    @Test func anAmbiguousOrUnknownQueryRemovesNothing() throws {
        let (dir, catalog, _) = try setup()
        defer { dir.remove() }
        // A second build of release 5.4.0-1-rm: the release alone no longer names one entry.
        let twin = try FakeKernel.compile(in: dir, name: "k1b", release: "5.4.0-1-rm", variant: 7)
        try #require(try btfgen(["build", twin, "--catalog", catalog]).status == 0)
        let before = try treeSnapshot(catalog)
        let ambiguous = try btfgen(["catalog", "remove", "--catalog", catalog, "5.4.0-1-rm"])
        #expect(ambiguous.status == 1)
        #expect(ambiguous.stderrLines.count == 1, "\(ambiguous.stderr)")
        #expect(
            ambiguous.stderr.contains("matches 2 entries") && ambiguous.stderr.contains("build-id"),
            "\(ambiguous.stderr)")
        // One good query beside a bad one: all or nothing.
        let mixed = try btfgen(["catalog", "remove", "--catalog", catalog, "5.4.0-2-rm", "no-such-release"])
        #expect(mixed.status == 1)
        #expect(mixed.stderr.contains("no-such-release"), "\(mixed.stderr)")
        #expect(try treeSnapshot(catalog).filter { !$0.key.hasPrefix(".") } == before.filter { !$0.key.hasPrefix(".") })
        // A catalog that does not exist is not created by a refused removal.
        let nowhere = dir.file("nowhere")
        let missing = try btfgen(["catalog", "remove", "--catalog", nowhere, "5.4.0-2-rm"])
        #expect(missing.status == 1)
        #expect(!FileManager.default.fileExists(atPath: nowhere))
    }

    /// A remover killed at each point of its write, simulated by the scratch files it leaves: the
    /// new index and the intent (step "committed"), then the index renamed into place but the
    /// file still there ("index renamed"), or an intent torn before its fsync ("torn intent").
    @Test(arguments: ["committed", "index renamed", "torn intent"])
    func theNextWriterFinishesARemovalKilledAfterItsCommitPoint(_ step: String) throws {
        let (dir, catalog, entries) = try setup()
        defer { dir.remove() }
        let k2Path = try #require(entries["k2"]?["path"] as? String)
        // The index the killed remover was writing: the current one without k2.
        let ahead = dir.file("ahead")
        try FileManager.default.copyItem(atPath: catalog, toPath: ahead)
        try #require(try btfgen(["catalog", "remove", "--catalog", ahead, "5.4.0-2-rm"]).status == 0)

        let dead = try runProcess("sh", ["-c", "echo $$"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tmp = catalog + "/.tmp/"
        let index = "\(dead)-bbbbbbbb-index.json", intent = "\(dead)-cccccccc-intent.json"
        try FileManager.default.copyItem(atPath: ahead + "/index.json", toPath: tmp + index)
        try Data("{\"index\":\"\(index)\",\"remove\":[\"\(k2Path)\"]}".utf8).write(
            to: URL(fileURLWithPath: tmp + intent))
        switch step {
        case "index renamed":
            try FileManager.default.removeItem(atPath: catalog + "/index.json")
            try FileManager.default.moveItem(atPath: tmp + index, toPath: catalog + "/index.json")
        case "torn intent":
            try Data("{\"index\":\"\(index)\",\"rem".utf8).write(to: URL(fileURLWithPath: tmp + intent))
        default: break
        }
        // Readers before recovery: the index parses and names only files that are there.
        for e in try indexEntries(catalog) {
            #expect(FileManager.default.fileExists(atPath: catalog + "/" + (e["path"] as! String)))
        }

        let next = try btfgen(["catalog", "remove", "--catalog", catalog, "5.4.0-3-rm"])
        try #require(next.status == 0, "\(next.stderr)")
        let left = try indexEntries(catalog)
        let sources = Set(left.compactMap { $0["source"] as? String })
        #expect(sources == (step == "torn intent" ? ["k1", "k2"] : ["k1"]))
        #expect(Set(try catalogBTFFiles(catalog)) == Set(left.map { $0["path"] as! String }))
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? []
        #expect(leftovers.isEmpty, "scratch left: \(leftovers)")
    }
}
