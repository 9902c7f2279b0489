// `btfgen sync` against a real apt repository on loopback: what is fetched (nginx's access log),
// what the catalog then holds (entries with their package records, failure records), the exit
// status and the one line a failure prints.
import Foundation
import Sync
import Synchronization
import TestSupport
import Testing

/// A repository with kernels, served by nginx; stopped and removed at the end, even on failure.
struct ServedRepository {
    let dir: ScratchDirectory
    let repo: AptRepository
    let nginx: Nginx

    init(kernels: [(String, Int)]) throws {
        dir = try ScratchDirectory("btfgen-sync")
        repo = try AptRepository(scratch: dir)
        for (release, variant) in kernels { try repo.addKernel(release: release, variant: variant) }
        try repo.addOther(name: "linux-image-amd64-dbg")  // Debian's meta package: no vmlinux, not a kernel
        try repo.publish()
        nginx = try Nginx(serving: repo.root, scratch: dir)
    }

    var line: String { repo.sourceLine(nginx.url) }

    func sync(_ catalog: String, _ extra: [String] = []) throws -> ProcessResult {
        try btfgen(["sync", line, "--catalog", catalog, "--keyring", repo.keyring] + extra)
    }

    func close() {
        nginx.stop()
        repo.stopAgents()
        dir.remove()
    }
}

/// The stderr lines about one package other than its progress line.
func failureLines(_ r: ProcessResult, _ package: String) -> [Substring] {
    r.stderrLines.filter { $0.contains(package) && !$0.contains("] fetching ") }
}

/// What the repository tests run: Debian's own tools and a real nginx (scripts/setup.sh installs
/// them).
@Suite(
    .serialized,
    .requires(
        .tool("nginx"), .tool("apt-ftparchive"), .tool("dpkg-deb"), .tool("gpg"), .tool("gpgv"), .tool("gcc"),
        .tool("xz"), .tool("python3")))
struct SyncTests {
    static let two = [("6.1.0-90-amd64", 1), ("6.1.0-91-cloud-amd64", 2)]

    @Test func firstSyncBuildsAllThenNothingIsFetchedThenOnlyTheNewPackage() throws {
        let served = try ServedRepository(kernels: Self.two)
        defer { served.close() }
        let catalog = served.dir.file("kernels")

        let first = try served.sync(catalog)
        try #require(first.status == 0, "sync failed: \(first.stderr)")
        #expect(
            served.nginx.debRequests().sorted() == [
                "linux-image-6.1.0-90-amd64-dbg_6.1.999-1_amd64.deb",
                "linux-image-6.1.0-91-cloud-amd64-dbg_6.1.999-1_amd64.deb",
            ])
        let entries = try catalogEntries(catalog)
        try #require(entries.count == 2)
        for e in entries {
            let package = try #require(e["package"] as? [String: Any], "entry without its package record")
            let name = try #require(package["name"] as? String)
            let deb = try #require(served.repo.packages[name])
            #expect(package["sha256"] as? String == (try sha256sum(deb)))
            #expect(package["version"] as? String == "6.1.999-1")
            #expect(package["architecture"] as? String == "amd64")
            let identity = try #require(e["identity"] as? [String: Any])
            #expect(identity["distro"] as? String == "debian")
            #expect(name == "linux-image-\(identity["release"] as! String)-dbg")
            #expect(e["source"] as? String == URL(fileURLWithPath: deb).lastPathComponent)
            let btf = catalog + "/" + (e["path"] as! String)
            #expect(e["sha256"] as? String == (try sha256sum(btf)))
        }
        // Nothing of the packages is left in scratch.
        #expect((try FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) == [])
        #expect(first.stdout.contains("2 built"))

        let before = try catalogIndex(catalog) as NSDictionary
        let second = try served.sync(catalog)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(served.nginx.debRequests().count == 2, "the second sync downloaded a package again")
        #expect(try catalogIndex(catalog) as NSDictionary == before, "a sync with nothing new changed the index")
        #expect(second.stdout.contains("2 already in the catalog"))

        try served.repo.addKernel(release: "6.1.0-92-rt-amd64", variant: 3)
        try served.repo.publish()
        let third = try served.sync(catalog)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(served.nginx.debRequests().count == 3)
        #expect(served.nginx.debRequests().last == "linux-image-6.1.0-92-rt-amd64-dbg_6.1.999-1_amd64.deb")
        #expect(
            try builtPackages(catalog).keys.sorted() == [
                "linux-image-6.1.0-90-amd64-dbg", "linux-image-6.1.0-91-cloud-amd64-dbg",
                "linux-image-6.1.0-92-rt-amd64-dbg",
            ])
    }

    @Test func packageBytesThatDoNotMatchTheIndexAreRefusedRetriedOnceAndRecorded() throws {
        let served = try ServedRepository(kernels: Self.two)
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        // The mirror now serves other bytes (same length) than the signed index promises.
        let deb = try #require(served.repo.packages["linux-image-6.1.0-90-amd64-dbg"])
        var bytes = try Data(contentsOf: URL(fileURLWithPath: deb))
        bytes[bytes.count - 100] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: deb))

        let r = try served.sync(catalog)
        #expect(r.status != 0)
        let lines = failureLines(r, "linux-image-6.1.0-90-amd64-dbg")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.contains("does not match the repository's signed index") == true)
        #expect(
            served.nginx.debRequests().filter { $0.hasPrefix("linux-image-6.1.0-90-") }.count == 2, "not retried once")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-91-cloud-amd64-dbg"])
        let failures = try catalogFailures(catalog)
        try #require(failures.count == 1)
        #expect(failures[0]["stage"] as? String == "verify")
        #expect((failures[0]["package"] as? [String: Any])?["name"] as? String == "linux-image-6.1.0-90-amd64-dbg")
        #expect((failures[0]["pahole"] as? String)?.hasPrefix("1.") == true)
        #expect((failures[0]["reason"] as? String)?.contains("sha256") == true)
        let listed = try btfgen(["list", "--failed", "--catalog", catalog])
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("linux-image-6.1.0-90-amd64-dbg"))
        #expect(listed.stdout.contains("verify"))
        let plain = try btfgen(["list", "--catalog", catalog])
        #expect(plain.stdout.contains("1 package failed to build; see `btfgen list --failed`"))
        let show = try btfgen(["show", "6.1.0-91-cloud-amd64", "--catalog", catalog])
        #expect(
            show.stdout.contains(
                "package sha256  \(try sha256sum(served.repo.packages["linux-image-6.1.0-91-cloud-amd64-dbg"]!))"))
        // The package never reached the builder: no entry, nothing in scratch.
        #expect((try FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) == [])
    }

    @Test func aMissingPackageIsRecordedAsADownloadFailure() throws {
        let served = try ServedRepository(kernels: Self.two)
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        try FileManager.default.removeItem(
            atPath: try #require(served.repo.packages["linux-image-6.1.0-91-cloud-amd64-dbg"]))
        let r = try served.sync(catalog)
        #expect(r.status != 0)
        let lines = failureLines(r, "linux-image-6.1.0-91-cloud-amd64-dbg")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.contains("HTTP 404") == true)
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
        let failures = try catalogFailures(catalog)
        #expect(failures.map { $0["stage"] as? String } == ["download"])
    }

    @Test func aPackageThatDoesNotBuildIsRecordedAndNotRetriedUntilAsked() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        try served.repo.addKernel(release: "6.1.0-93-amd64", variant: 4, withVmlinux: false)
        try served.repo.publish()
        let r = try served.sync(catalog)
        #expect(r.status != 0)
        let lines = failureLines(r, "linux-image-6.1.0-93-amd64-dbg")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.contains("holds no vmlinux") == true)
        // The user is told the package, not btfgen's scratch copy of it.
        #expect(lines.first?.contains("/.tmp/") == false, "\(r.stderr)")
        #expect(lines.first?.contains("/pool/main/l/linux/linux-image-6.1.0-93-amd64-dbg_6.1.999-1_amd64.deb") == true)
        let failures = try catalogFailures(catalog)
        try #require(failures.count == 1)
        #expect(failures[0]["stage"] as? String == "build")
        #expect(failures[0]["btfgen"] as? String != nil)
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])

        let again = try served.sync(catalog)
        #expect(again.status == 0, "a failure recorded before is skipped, not an error: \(again.stderr)")
        #expect(served.nginx.debRequests().count == 2, "the failed package was fetched again")
        #expect(again.stdout.contains("1 skipped (failed before)"))

        let retried = try served.sync(catalog, ["--retry-failed"])
        #expect(retried.status != 0)
        #expect(served.nginx.debRequests().count == 3)
        #expect(try catalogFailures(catalog).count == 1)

        // A record made by another pahole is stale: the next sync tries the package again.
        let indexPath = catalog + "/index.json"
        let text = try String(contentsOfFile: indexPath, encoding: .utf8)
        let pahole = try #require(try catalogFailures(catalog).first?["pahole"] as? String)
        try text.replacing("\"pahole\" : \"\(pahole)\"", with: "\"pahole\" : \"0.1\"").write(
            toFile: indexPath, atomically: true, encoding: .utf8)
        #expect(try catalogFailures(catalog).first?["pahole"] as? String == "0.1")
        let newTools = try served.sync(catalog)
        #expect(newTools.status != 0)
        #expect(served.nginx.debRequests().count == 4, "a failure recorded by another pahole was not retried")
        #expect(try catalogFailures(catalog).first?["pahole"] as? String == pahole)
    }

    @Test func aKernelBuiltFromTheSamePackageBeforeIsRecordedNotBuiltAgain() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let deb = try #require(served.repo.packages["linux-image-6.1.0-90-amd64-dbg"])
        try #require(try btfgen(["build", deb, "--catalog", catalog]).status == 0)
        let built = try catalogEntries(catalog)
        #expect(built.first?["package"] == nil)
        #expect(try catalogIndex(catalog)["failures"] == nil, "an index without failures must look as before")

        let r = try served.sync(catalog)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("same build-id already in the catalog"))
        let entries = try catalogEntries(catalog)
        try #require(entries.count == 1)
        #expect(entries[0]["sha256"] as? String == built[0]["sha256"] as? String)
        #expect((entries[0]["package"] as? [String: Any])?["sha256"] as? String == (try sha256sum(deb)))
        let again = try served.sync(catalog)
        #expect(again.status == 0)
        #expect(served.nginx.debRequests().count == 1, "the package was fetched again although its entry records it")
    }

    @Test func releaseWithADetachedSignatureAndSignedByOnTheLine() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let dists = served.repo.distsDir
        try FileManager.default.removeItem(atPath: dists + "/InRelease")
        let sign = try runProcess(
            "gpg",
            ["--batch", "--yes", "--armor", "--detach-sign", "--output", dists + "/Release.gpg", dists + "/Release"],
            environment: ["GNUPGHOME": served.repo.gnupgHome])
        try #require(sign.status == 0, "\(sign.stderr)")
        let line = "deb [arch=amd64 signed-by=\(served.repo.keyring)] \(served.nginx.url) bookworm main"
        let catalog = served.dir.file("kernels")
        let r = try btfgen(["sync", line, "--catalog", catalog])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
        #expect(served.nginx.requests().contains("/dists/bookworm/Release.gpg"))

        // The detached signature no longer covers an altered Release.
        try (try String(contentsOfFile: dists + "/Release", encoding: .utf8) + "X-Extra: 1\n").write(
            toFile: dists + "/Release", atomically: true, encoding: .utf8)
        let bad = try btfgen(["sync", line, "--catalog", served.dir.file("other")])
        #expect(bad.status != 0)
        #expect(bad.stderrLines.count == 1, "\(bad.stderr)")
        #expect(bad.stderr.contains("BAD signature"))
    }

    @Test func anArchitectureTheRepositoryLacksIsSaidOnce() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let r = try served.sync(served.dir.file("kernels"), ["--arch", "aarch64", "--dry-run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("main/binary-arm64/Packages"))
        #expect(r.stdout.contains("0 packages"))
    }

    @Test func aTruncatedOrGarbagePackagesIndexIsRefused() throws {
        let served = try ServedRepository(kernels: Self.two)
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let xz = served.repo.binaryDir + "/Packages.xz"
        let whole = try Data(contentsOf: URL(fileURLWithPath: xz))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: xz))
        let truncated = try served.sync(catalog)
        #expect(truncated.status != 0)
        #expect(truncated.stderrLines.count == 1, "\(truncated.stderr)")
        #expect(truncated.stderr.contains("Packages.xz does not match the repository's signed index"))
        #expect(served.nginx.debRequests().isEmpty)
        #expect(try catalogEntries(catalog).isEmpty)

        // Garbage that the Release file vouches for (a broken publisher): it does not decompress.
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: xz))
        try served.repo.sign()
        let garbage = try served.sync(catalog)
        #expect(garbage.status != 0)
        #expect(garbage.stderrLines.count == 1, "\(garbage.stderr)")
        #expect(garbage.stderr.contains("is not a usable repository index"))
        #expect(served.nginx.debRequests().isEmpty)
        #expect(try catalogEntries(catalog).isEmpty)
    }

    @Test func aBadSignatureStopsTheSyncBeforeAnyIndexIsUsed() throws {
        let served = try ServedRepository(kernels: Self.two)
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let other = served.dir.file("other-keyring.gpg")
        served.repo.extraHomes.append(served.dir.file("other-gnupg"))
        try AptRepository.makeKey(
            home: served.dir.file("other-gnupg"), name: "someone else <x@btfgen.invalid>", exportTo: other)
        let wrongKey = try btfgen(["sync", served.line, "--catalog", catalog, "--keyring", other])
        #expect(wrongKey.status != 0)
        #expect(wrongKey.stderrLines.count == 1, "\(wrongKey.stderr)")
        #expect(wrongKey.stderr.contains("does not verify against"))
        #expect(
            !served.nginx.requests().contains { $0.contains("Packages") },
            "an index was fetched without a valid signature")

        // An armored export of the right key is named as such, not taken for "no public key".
        let armored = served.dir.file("repo-keyring.asc")
        let export = try runProcess(
            "gpg", ["--batch", "--armor", "--output", armored, "--export"],
            environment: ["GNUPGHOME": served.repo.gnupgHome])
        try #require(export.status == 0, "\(export.stderr)")
        let asc = try btfgen(["sync", served.line, "--catalog", catalog, "--keyring", armored])
        #expect(asc.status != 0)
        #expect(asc.stderrLines.count == 1, "\(asc.stderr)")
        #expect(asc.stderr.contains("is ASCII-armored"))

        // The right key, but the signed text was altered after signing.
        let inRelease = served.repo.distsDir + "/InRelease"
        let text = try String(contentsOfFile: inRelease, encoding: .utf8)
        try text.replacing("Origin: btfgen-test", with: "Origin: btfgen-tost").write(
            toFile: inRelease, atomically: true, encoding: .utf8)
        let tampered = try served.sync(catalog)
        #expect(tampered.status != 0)
        #expect(tampered.stderrLines.count == 1, "\(tampered.stderr)")
        #expect(tampered.stderr.contains("BAD signature"))
        #expect(served.nginx.debRequests().isEmpty)
        #expect(try catalogEntries(catalog).isEmpty)

        // Without --keyring or signed-by, Debian's installed archive keyring is the one: this
        // repository's key is not in it.
        try served.repo.sign()
        let debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        try #require(
            FileManager.default.fileExists(atPath: debianKeyring), "debian-archive-keyring is not installed (setup.sh)")
        let byDefault = try btfgen(["sync", served.line, "--catalog", catalog])
        #expect(byDefault.status != 0)
        #expect(byDefault.stderrLines.count == 1, "\(byDefault.stderr)")
        #expect(byDefault.stderr.contains("does not verify against \(debianKeyring)"))
        #expect(try catalogEntries(catalog).isEmpty)
    }

    @Test func twoSyncsIntoOneCatalogAtOnceLoseNothing() throws {
        let kernels = (0..<4).map { ("6.1.0-\(70 + $0)-amd64", 30 + $0) }
        let served = try ServedRepository(kernels: kernels)
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let results = Mutex([ProcessResult?](repeating: nil, count: 2))
        let arguments = ["sync", served.line, "--catalog", catalog, "--keyring", served.repo.keyring]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? btfgen(arguments)
            results.withLock { $0[i] = r }
        }
        for r in results.withLock({ $0 }) {
            let r = try #require(r)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let entries = try catalogEntries(catalog)
        #expect(entries.count == 4)
        #expect(Set(try builtPackages(catalog).keys) == Set(kernels.map { "linux-image-\($0.0)-dbg" }))
        for e in entries {
            #expect(e["sha256"] as? String == (try sha256sum(catalog + "/" + (e["path"] as! String))))
        }
        #expect(try catalogFailures(catalog).isEmpty)
    }

    @Test func twoShardsTogetherEqualOneSync() throws {
        let kernels = (0..<6).map { ("6.1.0-\(80 + $0)-amd64", 10 + $0) }
        let served = try ServedRepository(kernels: kernels)
        defer { served.close() }
        let whole = served.dir.file("whole"), first = served.dir.file("shard1"), second = served.dir.file("shard2")
        #expect(try served.sync(whole, ["--jobs", "3"]).status == 0)
        let a = try served.sync(first, ["--shard", "1/2"])
        let b = try served.sync(second, ["--shard", "2/2"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let all = try builtPackages(whole), one = try builtPackages(first), two = try builtPackages(second)
        #expect(all.count == 6)
        #expect(!one.isEmpty && !two.isEmpty, "a shard got nothing: the partition is not spreading")
        #expect(Set(one.keys).isDisjoint(with: two.keys))
        #expect(one.merging(two) { x, _ in x } == all, "the shards' entries differ from the one-process sync")
        // Stable across processes: the same shard again builds the same share.
        let again = served.dir.file("shard1-again")
        #expect(try served.sync(again, ["--shard", "1/2"]).status == 0)
        #expect(try builtPackages(again) == one)

        let bad = try btfgen(["sync", served.line, "--shard", "3/2", "--catalog", whole])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--shard takes K/N"))
    }

    @Test func dryRunListsWhatWouldBeBuiltAndFetchesNoPackage() throws {
        let served = try ServedRepository(kernels: Self.two)
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let r = try served.sync(catalog, ["--dry-run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(served.nginx.debRequests().isEmpty)
        #expect(r.stdout.contains("would build linux-image-6.1.0-90-amd64-dbg 6.1.999-1 amd64"))
        #expect(r.stdout.contains("would build linux-image-6.1.0-91-cloud-amd64-dbg 6.1.999-1 amd64"))
        let bytes = try served.repo.packages.values.reduce(0) {
            $0 + ((try FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
        }
        #expect(r.stdout.contains("2 to build"))
        let json = try served.sync(catalog, ["--dry-run", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(!FileManager.default.fileExists(atPath: catalog), "a dry run created the catalog")
        #expect(rows.map { $0["outcome"] as? String } == ["wouldBuild", "wouldBuild"])
        #expect(rows.reduce(0) { $0 + ((($1["package"] as? [String: Any])?["size"] as? Int) ?? 0) } == bytes)
        #expect(try catalogEntries(catalog).isEmpty)

        // --match narrows by package name.
        let narrowed = try served.sync(catalog, ["--dry-run", "--match", "*-cloud-*"])
        #expect(narrowed.stdout.contains("1 package"))
        #expect(!narrowed.stdout.contains("6.1.0-90-amd64"))
    }

    @Test func ubuntuDbgsymDdebsAreSyncedToo() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        try served.repo.addKernel(release: "5.15.0-91-generic", version: "5.15.0-91.101", variant: 5, ubuntu: true)
        try served.repo.publish()
        let catalog = served.dir.file("kernels")
        let r = try served.sync(catalog)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            served.nginx.debRequests().contains(
                "linux-image-unsigned-5.15.0-91-generic-dbgsym_5.15.0-91.101_amd64.ddeb"))
        let entry = try #require(
            try catalogEntries(catalog).first {
                ($0["package"] as? [String: Any])?["name"] as? String == "linux-image-unsigned-5.15.0-91-generic-dbgsym"
            })
        let identity = try #require(entry["identity"] as? [String: Any])
        #expect(identity["release"] as? String == "5.15.0-91-generic")
        #expect(identity["distro"] as? String == "ubuntu")
        #expect(try catalogEntries(catalog).count == 2)
    }

    @Test func aDroppedDownloadIsResumedWithARangeRequest() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let deb = "linux-image-6.1.0-90-amd64-dbg_6.1.999-1_amd64.deb"
        let portFile = served.dir.file("port"), log = served.dir.file("requests.log")
        let server = try FixtureServer(
            "faulty_server.py", [served.repo.root, portFile, log, "drop", deb], portFile: portFile)
        defer { server.stop() }
        let url = server.url
        let catalog = served.dir.file("kernels")
        let r = try btfgen([
            "sync", served.repo.sourceLine(url), "--catalog", catalog, "--keyring", served.repo.keyring,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
        let size = try #require(
            try FileManager.default.attributesOfItem(atPath: served.repo.packages.values.first!)[.size] as? Int)
        let requests = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter {
            $0.contains(deb)
        }
        #expect(requests.count == 2, "\(requests)")
        #expect(
            requests.last?.hasSuffix("bytes=\(size / 2)-") == true, "the second request did not resume: \(requests)")
        let entry = try #require(try catalogEntries(catalog).first)
        #expect(
            (entry["package"] as? [String: Any])?["sha256"] as? String
                == (try sha256sum(served.repo.packages.values.first!)))
    }

    @Test func aSourceLineThatIsNotAnAptSourceIsRefusedInOneLine() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        for (line, words) in [
            ("deb-src http://127.0.0.1:1/debian bookworm main", "deb-src"),
            ("deb http://127.0.0.1:1/debian bookworm", "component"),
            ("deb ftp://127.0.0.1/debian bookworm main", "http"),
        ] {
            let r = try btfgen(["sync", line, "--catalog", dir.file("kernels")])
            #expect(r.status != 0)
            #expect(r.stderrLines.count == 1, "\(line): \(r.stderr)")
            #expect(r.stderr.contains(words), "\(line): \(r.stderr)")
        }
    }
}

/// The pieces of sync that need no repository.
@Suite struct SyncUnitTests {
    @Test func btfgenStartsWithoutLibcurl() throws {
        // Target machines run attach and install; only sync needs libcurl, loaded when it runs.
        let r = try runProcess("ldd", [Repo.btfgen])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("libcurl"), "btfgen links libcurl: \(r.stdout)")
    }

    @Test func shardingUsesFNV1aOfTheName() {
        // Published FNV-1a 64-bit test vectors (the FNV reference's test suite).
        #expect(Shard.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(Shard.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(Shard.fnv1a("foobar") == 0x8594_4171_f739_67e8)
        let names = (0..<200).map { "linux-image-6.1.0-\($0)-amd64-dbg" }
        for n in [1, 2, 3, 7] {
            let shards = (1...n).map { Shard(parsing: "\($0)/\(n)")! }
            for name in names { #expect(shards.filter { $0.contains(name) }.count == 1) }
        }
        #expect(Shard(parsing: "0/2") == nil)
        #expect(Shard(parsing: "3/2") == nil)
        #expect(Shard(parsing: "1/0") == nil)
        #expect(Shard(parsing: "a/b") == nil)
    }

    @Test func sourceLinesAsAptReadsThem() throws {
        let s = try AptSource(
            parsing: "deb [arch=amd64,arm64 signed-by=/k.gpg] https://deb.debian.org/debian/ bookworm main contrib")
        #expect(s.baseURL == "https://deb.debian.org/debian")
        #expect(s.suite == "bookworm")
        #expect(s.components == ["main", "contrib"])
        #expect(s.architectures == ["amd64", "arm64"])
        #expect(s.signedBy == "/k.gpg")
        #expect(s.distsURL("InRelease") == "https://deb.debian.org/debian/dists/bookworm/InRelease")
        #expect(DebianArch.debian("x86_64") == "amd64")
        #expect(DebianArch.debian("aarch64") == "arm64")
        #expect(DebianArch.debian("arm64") == "arm64")
    }

    @Test func onlyVersionedKernelDebuginfoPackagesAreKernels() {
        for name in [
            "linux-image-6.1.0-26-amd64-dbg", "linux-image-6.1.0-26-cloud-amd64-dbg",
            "linux-image-5.15.0-91-generic-dbgsym", "linux-image-unsigned-5.15.0-91-generic-dbgsym",
            "linux-image-6.12.107+deb12-cloud-amd64-dbg",
        ] {
            #expect(AptPackage.isKernelDebuginfo(name), "\(name)")
        }
        for name in [
            "linux-image-amd64-dbg", "linux-image-cloud-amd64-dbg", "linux-image-6.1.0-26-amd64",
            "linux-headers-6.1.0-26-amd64", "linux-image-unsigned-generic-dbgsym",
            // Debian's backports meta package: as named in bookworm-security (2026-12).
            "linux-image-6.12-cloud-amd64-dbg",
        ] {
            #expect(!AptPackage.isKernelDebuginfo(name), "\(name)")
        }
    }
}
