// `btfgen sync` against a real rpm-md repository on loopback (rpmbuild, createrepo_c, gpg,
// nginx): what is fetched, what the catalog then holds, the exit status and the one line a
// failure prints. Planning, skipping and failure records are apt's; these tests check that an
// rpm-md repository reaches them through a verified chain.
import Foundation
import Sync
import TestSupport
import Testing

/// An rpm-md repository with kernels, served by nginx; stopped and removed at the end.
struct ServedRpmRepository {
    let dir: ScratchDirectory
    let repo: RpmMDRepository
    let nginx: Nginx

    /// RHEL 9's kernel-debuginfo and kernel-rt-debuginfo, with the packages beside them that hold
    /// no vmlinux (kernel-debuginfo-common-x86_64, kernel-tools-debuginfo).
    init(compression: String = "gz") throws {
        dir = try ScratchDirectory("btfgen-rpm-sync")
        repo = try RpmMDRepository(scratch: dir)
        try repo.addKernel(release: "427.13.1.el9_4", variant: 1)
        try repo.addKernel(name: "kernel-rt-debuginfo", release: "427.13.1.el9_4", variant: 2, payload: "w19.zstdio")
        try repo.addOther(name: "kernel-debuginfo-common-x86_64", release: "427.13.1.el9_4")
        try repo.addOther(name: "kernel-tools-debuginfo", release: "427.13.1.el9_4")
        try repo.publish(compression: compression)
        nginx = try Nginx(serving: repo.root, scratch: dir)
    }

    /// The repository's base URL as a user gives it (a trailing slash, as distributions print it).
    var url: String { nginx.url + "/" }

    func sync(_ catalog: String, _ extra: [String] = []) throws -> ProcessResult {
        try btfgen(["sync", url, "--catalog", catalog, "--keyring", repo.keyring] + extra)
    }

    func close() {
        nginx.stop()
        repo.stopAgents()
        dir.remove()
    }

    static let kernel = "kernel-debuginfo-5.14.0-427.13.1.el9_4.x86_64.rpm"
    static let rt = "kernel-rt-debuginfo-5.14.0-427.13.1.el9_4.x86_64.rpm"
}

@Suite(
    .serialized,
    .requires(
        .tool("nginx"), .tool("createrepo_c"), .tool("rpmbuild"), .tool("gpg"), .tool("gpgv"), .tool("gcc"),
        .tool("zstd"), .tool("gzip")))
struct RpmSyncTests {
    @Test func firstSyncBuildsAllThenNothingIsFetchedThenOnlyTheNewPackage() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        let catalog = served.dir.file("kernels")

        let first = try served.sync(catalog)
        try #require(first.status == 0, "sync failed: \(first.stderr)")
        // kernel-debuginfo-common and kernel-tools-debuginfo hold no vmlinux: never fetched.
        #expect(served.nginx.rpmRequests().sorted() == [ServedRpmRepository.kernel, ServedRpmRepository.rt])
        #expect(first.stderrLines.filter { !$0.contains("] fetching ") }.isEmpty, "\(first.stderr)")
        let entries = try catalogEntries(catalog)
        try #require(entries.count == 2)
        for e in entries {
            let package = try #require(e["package"] as? [String: Any], "entry without its package record")
            let name = try #require(package["name"] as? String)
            let file = "\(name)-5.14.0-427.13.1.el9_4.x86_64.rpm"
            let rpm = try #require(served.repo.packages[file])
            #expect(package["sha256"] as? String == (try sha256sum(rpm)))
            #expect(package["version"] as? String == "5.14.0-427.13.1.el9_4")
            #expect(package["architecture"] as? String == "x86_64")
            #expect(package["url"] as? String == served.nginx.url + "/Packages/" + file)
            let identity = try #require(e["identity"] as? [String: Any])
            #expect(identity["release"] as? String == "5.14.0-427.13.1.el9_4.x86_64")
            #expect(identity["distro"] as? String == "rhel")
            #expect(identity["distroVersion"] as? String ?? "9" == "9")
            #expect(e["source"] as? String == file)
            #expect(e["sha256"] as? String == (try sha256sum(catalog + "/" + (e["path"] as! String))))
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) == [])
        #expect(first.stdout.contains("2 built"))

        let before = try catalogIndex(catalog) as NSDictionary
        let second = try served.sync(catalog)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(served.nginx.rpmRequests().count == 2, "the second sync downloaded a package again")
        #expect(try catalogIndex(catalog) as NSDictionary == before, "a sync with nothing new changed the index")
        #expect(second.stdout.contains("2 already in the catalog"))

        // Oracle's UEK beside RHEL's kernels: only it is fetched.
        let uek = try served.repo.addKernel(
            name: "kernel-uek-debuginfo", version: "5.15.0", release: "206.153.7.el9uek", variant: 3)
        try served.repo.publish()
        let third = try served.sync(catalog)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(served.nginx.rpmRequests().count == 3)
        #expect(served.nginx.rpmRequests().last == uek)
        #expect(
            try builtPackages(catalog).keys.sorted() == [
                "kernel-debuginfo", "kernel-rt-debuginfo", "kernel-uek-debuginfo",
            ])
    }

    @Test(arguments: ["gz", "xz", "zst"])
    func thePrimaryIndexIsReadInEachCompression(_ compression: String) throws {
        let served = try ServedRpmRepository(compression: compression)
        defer { served.close() }
        let r = try served.sync(served.dir.file("kernels"), ["--dry-run", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(served.nginx.requests().contains { $0.hasSuffix("-primary.xml.\(compression)") })
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(
            rows.compactMap { ($0["package"] as? [String: Any])?["name"] as? String } == [
                "kernel-debuginfo", "kernel-rt-debuginfo",
            ])
        #expect(rows.map { $0["outcome"] as? String } == ["wouldBuild", "wouldBuild"])
        let sizes = rows.compactMap { ($0["package"] as? [String: Any])?["size"] as? Int }
        let expected = try [ServedRpmRepository.kernel, ServedRpmRepository.rt].map {
            try #require(try FileManager.default.attributesOfItem(atPath: served.repo.packages[$0]!)[.size] as? Int)
        }
        #expect(sizes == expected)
        #expect(served.nginx.rpmRequests().isEmpty)
    }

    @Test func packageBytesThatDoNotMatchThePrimaryIndexAreRefusedRetriedOnceAndRecorded() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let rpm = try #require(served.repo.packages[ServedRpmRepository.kernel])
        var bytes = try Data(contentsOf: URL(fileURLWithPath: rpm))
        bytes[bytes.count - 100] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: rpm))

        let r = try served.sync(catalog)
        #expect(r.status != 0)
        let lines = failureLines(r, "kernel-debuginfo 5.14.0")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.contains("does not match the repository's signed index") == true)
        #expect(served.nginx.rpmRequests().filter { $0 == ServedRpmRepository.kernel }.count == 2, "not retried once")
        #expect(try builtPackages(catalog).keys.sorted() == ["kernel-rt-debuginfo"])
        let failures = try catalogFailures(catalog)
        try #require(failures.count == 1)
        #expect(failures[0]["stage"] as? String == "verify")
        #expect((failures[0]["package"] as? [String: Any])?["name"] as? String == "kernel-debuginfo")
        #expect((failures[0]["reason"] as? String)?.contains("sha256") == true)
        #expect((try FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) == [])
    }

    @Test func aMissingPackageIsRecordedAsADownloadFailureAndAMissingRepositoryIsSaidOnce() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        try FileManager.default.removeItem(atPath: try #require(served.repo.packages[ServedRpmRepository.rt]))
        let r = try served.sync(catalog)
        #expect(r.status != 0)
        let lines = failureLines(r, "kernel-rt-debuginfo")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.contains("HTTP 404") == true)
        #expect(try builtPackages(catalog).keys.sorted() == ["kernel-debuginfo"])
        #expect(try catalogFailures(catalog).map { $0["stage"] as? String } == ["download"])

        let nowhere = try btfgen(["sync", served.nginx.url + "/no/such/repo/", "--catalog", served.dir.file("other")])
        #expect(nowhere.status != 0)
        #expect(nowhere.stderrLines.count == 1, "\(nowhere.stderr)")
        #expect(nowhere.stderr.contains("/no/such/repo/repodata/repomd.xml: HTTP 404"))
    }

    @Test func aTruncatedOrGarbageRepomdOrPrimaryIsRefused() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        let repomd = served.repo.repodata + "/repomd.xml"
        let original = try Data(contentsOf: URL(fileURLWithPath: repomd))
        func refused(_ words: String, _ note: Comment) throws {
            let r = try served.sync(catalog)
            #expect(r.status != 0, note)
            #expect(r.stderrLines.count == 1, "\(note): \(r.stderr)")
            #expect(r.stderr.contains(words), "\(note): \(r.stderr)")
            #expect(served.nginx.rpmRequests().isEmpty, note)
            #expect(try catalogEntries(catalog).isEmpty, note)
        }

        // Truncated after signing: the signature no longer covers it.
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: repomd))
        try refused("BAD signature", "truncated repomd.xml")
        // Truncated and signed so (a broken publisher), or garbage: not XML.
        try served.repo.sign()
        try refused("is not a usable repository index", "truncated, signed repomd.xml")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: repomd))
        try served.repo.sign()
        try refused("is not a usable repository index", "garbage repomd.xml")
        try original.write(to: URL(fileURLWithPath: repomd))
        try served.repo.sign()

        // The primary index truncated on the mirror: it does not match repomd.xml.
        let primary = try served.repo.primaryPath()
        let whole = try Data(contentsOf: URL(fileURLWithPath: primary))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: primary))
        try refused("primary.xml.gz does not match the repository's signed index", "truncated primary")
        #expect(
            served.nginx.requests().filter { $0.hasSuffix("-primary.xml.gz") }.count == 2,
            "the mismatching primary was not fetched once more")

        // Garbage that repomd.xml vouches for: it does not decompress.
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: primary))
        try served.repo.replacePrimary(with: primary)
        try served.repo.sign()
        try refused("is not a usable repository index", "garbage primary")

        // Well-formed, vouched for as stored, but not what repomd.xml's open-checksum says it
        // decompresses to: a package slipped in after the index was made.
        let xml = try runProcess("gzip", ["-dc", "-"], stdin: whole).stdout
        let forged = xml.replacing("<name>kernel-rt-debuginfo</name>", with: "<name>kernel-64k-debuginfo</name>")
        try #require(forged != xml)
        let forgedPath = served.dir.file("forged-primary.xml")
        try forged.write(toFile: forgedPath, atomically: true, encoding: .utf8)
        #expect(try runProcess("gzip", ["-f", "-n", forgedPath]).status == 0)
        try FileManager.default.removeItem(atPath: primary)
        try FileManager.default.moveItem(atPath: forgedPath + ".gz", toPath: primary)
        try served.repo.replacePrimary(with: primary)
        try served.repo.sign()
        try refused("decompressed", "primary not matching its open-checksum")
    }

    @Test func aBadOrMissingSignatureStopsTheSyncBeforeThePrimaryIsFetched() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        func primaryFetched() -> Bool { served.nginx.requests().contains { $0.contains("-primary.xml") } }

        let other = served.dir.file("other-keyring.gpg")
        served.repo.extraHomes.append(served.dir.file("other-gnupg"))
        try AptRepository.makeKey(
            home: served.dir.file("other-gnupg"), name: "someone else <x@btfgen.invalid>", exportTo: other)
        let wrongKey = try btfgen(["sync", served.url, "--catalog", catalog, "--keyring", other])
        #expect(wrongKey.status != 0)
        #expect(wrongKey.stderrLines.count == 1, "\(wrongKey.stderr)")
        #expect(wrongKey.stderr.contains("repodata/repomd.xml does not verify against"))
        #expect(!primaryFetched(), "the primary index was fetched without a valid signature")

        // The right key given on the argument (signed-by), but repomd.xml altered after signing.
        let repomd = served.repo.repodata + "/repomd.xml"
        let text = try String(contentsOfFile: repomd, encoding: .utf8)
        try text.replacing("<revision>", with: "<revision>1").write(toFile: repomd, atomically: true, encoding: .utf8)
        let tampered = try btfgen([
            "sync", "rpm-md [signed-by=\(served.repo.keyring)] \(served.url)", "--catalog", catalog,
        ])
        #expect(tampered.status != 0)
        #expect(tampered.stderrLines.count == 1, "\(tampered.stderr)")
        #expect(tampered.stderr.contains("BAD signature"))
        #expect(!primaryFetched())

        // A keyring, but no repomd.xml.asc: refused, not taken as unsigned.
        try text.write(toFile: repomd, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: served.repo.repodata + "/repomd.xml.asc")
        let unsigned = try served.sync(catalog)
        #expect(unsigned.status != 0)
        #expect(unsigned.stderrLines.count == 1, "\(unsigned.stderr)")
        #expect(unsigned.stderr.contains("has no signature (no repomd.xml.asc)"))
        #expect(!primaryFetched())
        #expect(try catalogEntries(catalog).isEmpty)

        // No keyring at all: said once, and the digests still guard every download.
        let trusted = try btfgen(["sync", served.url, "--catalog", catalog, "--dry-run"])
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(trusted.stderrLines.count == 1, "\(trusted.stderr)")
        #expect(trusted.stderr.contains("no keyring to check its signature with"))
        #expect(trusted.stdout.contains("2 to build"))
    }

    @Test func theArchitectureSelectsPackages() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        let arm = try served.repo.addKernel(release: "427.13.1.el9_4", arch: "aarch64", variant: 4)
        try served.repo.addKernel(name: "kernel-64k-debuginfo", release: "427.13.1.el9_4", arch: "aarch64", variant: 5)
        try served.repo.publish()
        let catalog = served.dir.file("kernels")
        func listed(_ r: ProcessResult) -> [String] {
            r.stdout.split(separator: "\n").filter { $0.hasPrefix("would build ") }.map {
                String($0.dropFirst("would build ".count).split(separator: " (").first!)
            }
        }
        // rpm's name and Debian's name of the same architecture select the same packages.
        for spelling in ["aarch64", "arm64"] {
            let r = try served.sync(catalog, ["--dry-run", "--arch", spelling])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(
                listed(r) == [
                    "kernel-64k-debuginfo 5.14.0-427.13.1.el9_4 aarch64",
                    "kernel-debuginfo 5.14.0-427.13.1.el9_4 aarch64",
                ], "\(spelling): \(r.stdout)")
        }
        let x86 = try served.sync(catalog, ["--dry-run", "--arch", "x86_64"])
        #expect(
            listed(x86) == [
                "kernel-debuginfo 5.14.0-427.13.1.el9_4 x86_64", "kernel-rt-debuginfo 5.14.0-427.13.1.el9_4 x86_64",
            ])
        let both = try btfgen([
            "sync", "rpm-md [arch=x86_64,aarch64] \(served.url)", "--catalog", catalog, "--keyring",
            served.repo.keyring,
            "--dry-run", "--match", "kernel-debuginfo",
        ])
        #expect(
            listed(both) == [
                "kernel-debuginfo 5.14.0-427.13.1.el9_4 aarch64", "kernel-debuginfo 5.14.0-427.13.1.el9_4 x86_64",
            ], "\(both.stdout)")
        #expect(served.nginx.rpmRequests().isEmpty)
        #expect(served.repo.packages[arm] != nil)
    }

    @Test func everyVersionOfOnePackageNameKeepsItsOwnFailureRecord() throws {
        // rpm-md repositories offer each kernel under the one name kernel-debuginfo: two versions
        // that do not build, beside one that does, are two records that the build does not clear.
        let served = try ServedRpmRepository()
        defer { served.close() }
        try served.repo.addOther(name: "kernel-debuginfo", release: "362.8.1.el9_3")
        try served.repo.addOther(name: "kernel-debuginfo", release: "284.11.1.el9_2")
        try served.repo.publish()
        let catalog = served.dir.file("kernels")
        let first = try served.sync(catalog)
        #expect(first.status != 0)
        #expect(failureLines(first, "kernel-debuginfo 5.14.0-").count == 2, "\(first.stderr)")
        let failures = try catalogFailures(catalog)
        #expect(
            Set(failures.compactMap { ($0["package"] as? [String: Any])?["version"] as? String }) == [
                "5.14.0-362.8.1.el9_3", "5.14.0-284.11.1.el9_2",
            ])
        #expect(try builtPackages(catalog).keys.sorted() == ["kernel-debuginfo", "kernel-rt-debuginfo"])
        #expect(served.nginx.rpmRequests().count == 4)

        let second = try served.sync(catalog)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(served.nginx.rpmRequests().count == 4, "a package that failed before was fetched again")
        #expect(second.stdout.contains("2 skipped (failed before)"))
    }

    @Test func shardsSplitTheVersionsOfOnePackageName() throws {
        let served = try ServedRpmRepository()
        defer { served.close() }
        for (n, release) in ["362.8.1.el9_3", "284.11.1.el9_2", "70.13.1.el9_0"].enumerated() {
            try served.repo.addKernel(release: release, variant: 10 + n)
        }
        try served.repo.publish()
        func listed(_ extra: [String]) throws -> Set<String> {
            let r = try served.sync(served.dir.file("kernels"), ["--dry-run"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            return Set(r.stdout.split(separator: "\n").filter { $0.hasPrefix("would build ") }.map(String.init))
        }
        let all = try listed([]), one = try listed(["--shard", "1/2"]), two = try listed(["--shard", "2/2"])
        #expect(all.count == 5)
        #expect(one.filter { $0.contains("kernel-debuginfo ") }.count >= 1, "\(one)")
        #expect(two.filter { $0.contains("kernel-debuginfo ") }.count >= 1, "\(two)")
        #expect(one.isDisjoint(with: two))
        #expect(one.union(two) == all)
    }

    @Test func aRepositoryArgumentThatIsNeitherKindIsRefusedInOneLine() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        for (argument, words) in [
            ("ftp://127.0.0.1/rocky/9/BaseOS/x86_64/debug/tree/", "starts with neither 'deb'"),
            ("rpm-md ftp://127.0.0.1/repo", "not an http:// or https:// URL"),
            ("rpm-md http://127.0.0.1:1/a http://127.0.0.1:1/b", "one URL"),
            ("http://127.0.0.1:1/repo/repodata/repomd.xml", "the directory that holds repodata/"),
            ("rpm-md", "names no repository URL"),
        ] {
            let r = try btfgen(["sync", argument, "--catalog", dir.file("kernels")])
            #expect(r.status != 0)
            #expect(r.stderrLines.count == 1, "\(argument): \(r.stderr)")
            #expect(r.stderr.contains(words), "\(argument): \(r.stderr)")
        }
    }
}

/// The pieces of rpm-md sync that need no repository.
@Suite struct RpmSyncUnitTests {
    @Test func repositoryArgumentsAreToldApartByTheirFirstWord() throws {
        guard
            case .apt(let apt) = try PackageRepository(
                parsing: "deb [arch=amd64] http://deb.debian.org/debian bookworm main")
        else { Issue.record("a deb line is not apt"); return }
        #expect(apt.suite == "bookworm")
        guard
            case .rpmMD(let bare) = try PackageRepository(
                parsing: "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/debug/tree/")
        else { Issue.record("a URL is not rpm-md"); return }
        #expect(bare.baseURL == "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/debug/tree")
        #expect(
            bare.url("repodata/repomd.xml")
                == "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/debug/tree/repodata/repomd.xml")
        guard
            case .rpmMD(let options) = try PackageRepository(
                parsing: "rpm-md [arch=aarch64 signed-by=/k.gpg] http://r/x")
        else { Issue.record("an rpm-md line is not rpm-md"); return }
        #expect(options.architectures == ["aarch64"])
        #expect(options.signedBy == "/k.gpg")
        #expect(throws: SyncError.self) { try PackageRepository(parsing: "deb-src http://r bookworm main") }
        #expect(throws: SyncError.self) { try PackageRepository(parsing: "yum http://r/x") }
        #expect(RpmRepository.rpmArch("amd64") == "x86_64")
        #expect(RpmRepository.rpmArch("arm64") == "aarch64")
        #expect(RpmRepository.rpmArch("aarch64") == "aarch64")
    }

    @Test func onlyPackagesHoldingAVmlinuxAreKernels() {
        for name in [
            "kernel-debuginfo", "kernel-rt-debuginfo", "kernel-debug-debuginfo", "kernel-64k-debuginfo",
            "kernel-64k-debug-debuginfo", "kernel-rt-debug-debuginfo", "kernel-uek-debuginfo",
            "kernel-uek-debug-debuginfo",
            "kernel-zfcpdump-debuginfo",
        ] {
            #expect(RpmPackage.isKernelDebuginfo(name), "\(name)")
        }
        for name in [
            "kernel-debuginfo-common-x86_64", "kernel-debuginfo-common-aarch64", "kernel-rt-debuginfo-common-x86_64",
            "kernel-tools-debuginfo", "kernel-tools-libs-debuginfo", "kernel", "kernel-core", "kernel-devel",
            "kernel--debuginfo", "kernel-debuginfo-debuginfo", "perf-debuginfo", "kernel-uek-debuginfo-common",
        ] {
            #expect(!RpmPackage.isKernelDebuginfo(name), "\(name)")
        }
    }

    @Test func aRepomdWithoutASha256PrimaryIsRefused() throws {
        let sha1 = """
            <?xml version="1.0" encoding="UTF-8"?>
            <repomd xmlns="http://linux.duke.edu/metadata/repo">
              <data type="primary">
                <checksum type="sha">0123456789abcdef0123456789abcdef01234567</checksum>
                <location href="repodata/primary.xml.gz"/>
                <size>10</size>
              </data>
            </repomd>
            """
        #expect(throws: SyncError.badIndex(url: "u", problem: "its primary index is checksummed with sha, not sha256"))
        {
            try RpmRepomd(xml: Array(sha1.utf8), url: "u").primary(url: "u")
        }
        let good = sha1.replacing(
            "type=\"sha\">0123456789abcdef0123456789abcdef01234567",
            with: "type=\"sha256\">" + String(repeating: "ab", count: 32))
        let primary = try RpmRepomd(xml: Array(good.utf8), url: "u").primary(url: "u")
        #expect(primary.location == "repodata/primary.xml.gz")
        #expect(primary.expected == ExpectedFile(size: 10, sha256: String(repeating: "ab", count: 32)))
        #expect(primary.open == nil)
    }
}
