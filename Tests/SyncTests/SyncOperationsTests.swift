// The operational side of `btfgen sync` against the loopback repository: what a terminal shows
// while it runs (under a real pseudo-terminal) and what a log gets, a catalog on a filesystem that
// fills up during the download or the build, and a signed Release whose Valid-Until has passed.
import Foundation
import Sync
import Synchronization
import TestSupport
import Testing

/// A tmpfs of `size` (mount's syntax, e.g. "3m") mounted at `path` until `body` returns.
func withSmallFilesystem<T>(at path: String, size: String, _ body: () throws -> T) throws -> T {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    let m = try runProcess("mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
    try #require(m.status == 0, "mount tmpfs: \(m.stderr)")
    defer { _ = try? runProcess("umount", [path]) }
    return try body()
}

/// Grow the tmpfs at `path` (its files stay).
func grow(_ path: String, to size: String) throws {
    let m = try runProcess("mount", ["-o", "remount,size=\(size)", path])
    try #require(m.status == 0, "remount tmpfs: \(m.stderr)")
}

/// The catalog as a reader finds it: a parseable index whose every entry's file has its sha256,
/// no BTF file the index does not name, and nothing left in scratch.
func expectConsistent(_ catalog: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let entries = try catalogEntries(catalog)
    let named = Set(entries.compactMap { $0["path"] as? String })
    for e in entries {
        let path = catalog + "/" + (e["path"] as! String)
        #expect(e["sha256"] as? String == (try? sha256sum(path)), "\(path)", sourceLocation: sourceLocation)
    }
    let files = (FileManager.default.enumerator(atPath: catalog)?.allObjects as? [String] ?? []).filter {
        $0.hasSuffix(".btf") && !$0.hasPrefix(".tmp/")
    }
    #expect(Set(files) == named, "BTF files the index does not name", sourceLocation: sourceLocation)
    let scratch = (try? FileManager.default.contentsOfDirectory(atPath: catalog + "/.tmp")) ?? []
    #expect(scratch == [], "left in scratch", sourceLocation: sourceLocation)
}

@Suite(
    .serialized,
    .requires(
        .tool("nginx"), .tool("apt-ftparchive"), .tool("dpkg-deb"), .tool("gpg"), .tool("gpgv"), .tool("gcc"),
        .tool("xz"), .tool("python3")))
struct SyncOperationsTests {
    // MARK: Progress

    @Test func aTerminalGetsOneStatusLineRedrawnInPlaceALogGetsPlainLines() throws {
        let served = try ServedRepository(kernels: SyncTests.two)
        defer { served.close() }
        let captured = served.dir.file("terminal.out")
        let columns = 160
        let r = try runProcess(
            "python3",
            [
                Repo.root.appendingPathComponent("Tests/SyncTests/Fixtures/pty_run.py").path, captured,
                String(columns), Repo.btfgen, "sync", served.line, "--catalog", served.dir.file("kernels"),
                "--keyring", served.repo.keyring,
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let stream = String(decoding: try Data(contentsOf: URL(fileURLWithPath: captured)), as: UTF8.self)
        // Each redraw is a carriage return, the status, and erase-to-end-of-line.
        let draws = stream.components(separatedBy: "\r").compactMap { piece -> String? in
            guard let end = piece.range(of: "\u{1b}[K") else { return nil }
            return String(piece[..<end.lowerBound])
        }.filter { !$0.isEmpty }
        #expect(draws.contains { $0.hasPrefix("kernels 0/2 done, 2 left") }, "\(draws)")
        #expect(draws.contains { $0.hasPrefix("kernels 1/2 done, 1 left") && $0.contains("ETA") })
        #expect(draws.contains { $0.hasPrefix("kernels 2/2 done, 0 left") })
        #expect(draws.contains { $0.contains("fetching linux-image-6.1.0-90-amd64-dbg") })
        #expect(draws.contains { $0.contains("building linux-image-6.1.0-91-cloud") }, "\(draws)")
        let total = try served.repo.packages.values.reduce(0) { $0 + (try fileSize($1)) }
        // Only the packages count (not the indexes), up to all of them.
        #expect(draws.last?.contains("| \(byteCount(total)) of \(byteCount(total))") == true, "\(draws)")
        #expect(draws.allSatisfy { $0.count < columns }, "a status line wider than the terminal: \(draws)")
        // No status line scrolls by: nothing but the summary and the outcomes ends a line.
        let lines = stream.components(separatedBy: "\r\n").map { $0.components(separatedBy: "\r").last! }
        #expect(!lines.contains { $0.contains("kernels ") }, "a status line was left in the scrollback")
        // Erased before the outcomes are printed.
        let erase = try #require(stream.range(of: "\r\u{1b}[K", options: .backwards))
        let summary = try #require(stream.range(of: "2 packages: 2 built"))
        #expect(erase.upperBound <= summary.lowerBound)
        #expect(stream.contains("built       linux-image-6.1.0-90-amd64-dbg"))

        // A narrow terminal: each line is cut to its width, never wrapped onto a second row.
        let narrow = served.dir.file("narrow.out")
        let n = try runProcess(
            "python3",
            [
                Repo.root.appendingPathComponent("Tests/SyncTests/Fixtures/pty_run.py").path, narrow, "40",
                Repo.btfgen, "sync", served.line, "--catalog", served.dir.file("narrow"), "--keyring",
                served.repo.keyring,
            ])
        #expect(n.status == 0)
        let narrowDraws = String(decoding: try Data(contentsOf: URL(fileURLWithPath: narrow)), as: UTF8.self)
            .components(separatedBy: "\r").compactMap { piece in
                piece.range(of: "\u{1b}[K").map { piece[..<$0.lowerBound] }
            }
            .filter { !$0.isEmpty }
        #expect(narrowDraws.count >= 3 && narrowDraws.allSatisfy { $0.count <= 39 }, "\(narrowDraws)")
        #expect(narrowDraws.contains { $0.hasPrefix("kernels 1/2 done, 1 left") && $0.hasSuffix("…") })

        // A pipe (a CI log) gets one plain line per package and no control character.
        let log = try served.sync(served.dir.file("other"))
        #expect(log.status == 0, "\(log.stderr)")
        for text in [log.stderr, log.stdout] {
            #expect(!text.contains("\r") && !text.contains("\u{1b}"), "\(text.debugDescription)")
        }
        #expect(log.stderrLines.count == 2, "\(log.stderr)")
        #expect(log.stderr.contains("btfgen: [1/2] fetching linux-image-6.1.0-90-amd64-dbg 6.1.999-1"))
        #expect(log.stderr.contains("btfgen: [2/2] fetching linux-image-6.1.0-91-cloud-amd64-dbg 6.1.999-1"))

        // --json on a terminal: JSON alone on stdout, no status line.
        let jsonOut = served.dir.file("json.out")
        let j = try runProcess(
            "python3",
            [
                Repo.root.appendingPathComponent("Tests/SyncTests/Fixtures/pty_run.py").path, jsonOut, "80",
                Repo.btfgen, "sync", served.line, "--catalog", served.dir.file("third"), "--keyring",
                served.repo.keyring, "--json",
            ])
        #expect(j.status == 0)
        let json = String(decoding: try Data(contentsOf: URL(fileURLWithPath: jsonOut)), as: UTF8.self)
        #expect(!json.contains("\u{1b}") && !json.contains("kernels "), "\(json.debugDescription)")
        #expect(json.contains("\"outcome\" : \"built\""))
    }

    // MARK: A full disk

    @Test(.requires(.root))  // mounting a small tmpfs
    func aDiskThatFillsDuringTheDownloadStopsTheSyncAndALaterSyncOnABiggerDiskCompletes() throws {
        let served = try ServedRepository(kernels: [])
        defer { served.close() }
        // 4 MiB that no compression shrinks, on a 2 MiB filesystem; a small one after it.
        try served.repo.addKernel(release: "6.1.0-90-amd64", variant: 1, randomBytes: 4 << 20)
        try served.repo.addKernel(release: "6.1.0-91-cloud-amd64", variant: 2)
        try served.repo.publish()
        let mount = served.dir.file("small")
        try withSmallFilesystem(at: mount, size: "2m") {
            let catalog = mount + "/kernels"
            let r = try served.sync(catalog)
            #expect(r.status != 0)
            #expect(r.stderrLines.filter { !$0.contains("] fetching ") }.count == 1, "\(r.stderr)")
            let line = try #require(r.stderrLines.first { $0.contains("no space left") }, "\(r.stderr)")
            #expect(line.contains("linux-image-6.1.0-90-amd64-dbg"))
            #expect(line.contains("no space left on \(mount) (tmpfs) while downloading it"), "\(line)")
            // The package and what it unpacks to (its Installed-Size).
            #expect(line.contains("(the package is 4.0 MiB, up to 4.0 MiB unpacked): it needs about 8."), "\(line)")
            #expect(line.contains(", 2.0 MiB free"), "\(line)")
            #expect(!line.contains("/.tmp/"), "the line names scratch, not the filesystem: \(line)")
            // Not fetched a second time into the same full disk, and the next package not started.
            #expect(served.nginx.debRequests() == ["linux-image-6.1.0-90-amd64-dbg_6.1.999-1_amd64.deb"])
            #expect(r.stdout.contains("not tried   linux-image-6.1.0-91-cloud-amd64-dbg"), "\(r.stdout)")
            #expect(r.stdout.contains("1 not tried (disk full)"))
            // Nothing half-stored, and no record that would call a good package broken.
            #expect(try catalogEntries(catalog).isEmpty)
            #expect(try catalogFailures(catalog).isEmpty)
            try expectConsistent(catalog)

            try grow(mount, to: "64m")
            let again = try served.sync(catalog)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(
                try builtPackages(catalog).keys.sorted() == [
                    "linux-image-6.1.0-90-amd64-dbg", "linux-image-6.1.0-91-cloud-amd64-dbg",
                ])
            try expectConsistent(catalog)
        }
    }

    @Test(.requires(.root))  // mounting a small tmpfs
    func aDiskThatFillsWhileThePackageUnpacksIsNotRecordedAsABuildFailure() throws {
        let served = try ServedRepository(kernels: [])
        defer { served.close() }
        // A package of a few KiB whose vmlinux unpacks to 8 MiB, on a 4 MB filesystem.
        try served.repo.addKernel(release: "6.1.0-90-amd64", variant: 1, vmlinuxZeros: 8 << 20)
        try served.repo.publish()
        let mount = served.dir.file("small")
        try withSmallFilesystem(at: mount, size: "4m") {
            let catalog = mount + "/kernels"
            let r = try served.sync(catalog)
            #expect(r.status != 0)
            let failures = failureLines(r, "linux-image-6.1.0-90-amd64-dbg")
            #expect(failures.count == 1, "\(r.stderr)")
            let line = try #require(failures.first)
            #expect(line.contains("no space left on \(mount) (tmpfs) while building it"), "\(line)")
            #expect(line.contains("up to 8.0 MiB unpacked"), "\(line)")
            #expect(try catalogFailures(catalog).isEmpty, "a full disk was recorded as the package's failure")
            #expect(try catalogEntries(catalog).isEmpty)
            try expectConsistent(catalog)

            // The same disk, grown: the package builds (a build-stage record would skip it).
            try grow(mount, to: "64m")
            let again = try served.sync(catalog)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
            try expectConsistent(catalog)
        }
    }

    /// The disk fills after the package is unpacked: `freePages` 4 KiB pages are left for what
    /// follows: 0, pahole cannot write its BTF; 1, pahole's BTF fits but not btfgen's canonical
    /// copy; 2, both fit but not the catalog's new index (each seen failing there, with a trace).
    @Test(.requires(.root, .tool("dpkg-deb")), arguments: [0, 1, 2])
    func aDiskThatFillsAfterUnpackingIsNotRecordedAndALaterSyncCompletes(freePages: Int) throws {
        let served = try ServedRepository(kernels: [])
        defer { served.close() }
        let name = try served.repo.addKernel(release: "6.1.0-90-amd64", variant: 1)
        try served.repo.publish()
        let deb = try #require(served.repo.packages[name])
        let listing = try runProcess("dpkg-deb", ["-c", deb])
        let member = try #require(listing.stdout.split(separator: "\n").first { $0.contains("/vmlinux-") })
        let vmlinux = try #require(Int(member.split(separator: " ", omittingEmptySubsequences: true)[2]))
        let pages = { (bytes: Int) in (bytes + 4095) / 4096 }
        let mount = served.dir.file("small")
        try withSmallFilesystem(at: mount, size: "4m") {
            // Fill it so that the package and its vmlinux leave exactly `freePages` pages.
            var vfs = statvfs()
            try #require(statvfs(mount, &vfs) == 0)
            let free = Int(vfs.f_bavail)
            let filler = free - pages(try fileSize(deb)) - pages(vmlinux) - freePages
            try Data(count: filler * 4096).write(to: URL(fileURLWithPath: mount + "/filler"))
            let catalog = mount + "/kernels"
            let r = try served.sync(catalog)
            #expect(r.status != 0)
            let failures = failureLines(r, name)
            #expect(failures.count == 1, "\(r.stderr)")
            #expect(
                failures.first?.contains("no space left on \(mount) (tmpfs) while building it") == true, "\(r.stderr)")
            #expect(try catalogFailures(catalog).isEmpty, "a full disk was recorded as the package's failure")
            #expect(try catalogEntries(catalog).isEmpty)
            try expectConsistent(catalog)

            try grow(mount, to: "64m")
            let again = try served.sync(catalog)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try builtPackages(catalog).keys.sorted() == [name])
            try expectConsistent(catalog)
        }
    }

    // MARK: --keep-packages

    @Test func keptPackagesAreUsedOnlyWhenTheyMatchTheSignedIndex() throws {
        let served = try ServedRepository(kernels: SyncTests.two)
        defer { served.close() }
        let kept = served.dir.file("packages")
        let first = try served.sync(served.dir.file("one"), ["--keep-packages", kept])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(served.nginx.debRequests().count == 2)
        for (_, deb) in served.repo.packages {
            let copy = kept + "/" + URL(fileURLWithPath: deb).lastPathComponent
            #expect(try sha256sum(copy) == (try sha256sum(deb)), "\(copy) is not the package")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: kept).count == 2, "temporary files left")

        // A new catalog, the same packages: nothing is downloaded, the entries are the same.
        let second = try served.sync(served.dir.file("two"), ["--keep-packages", kept, "--json"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(served.nginx.debRequests().count == 2, "a kept package was downloaded again")
        #expect(try builtPackages(served.dir.file("two")) == (try builtPackages(served.dir.file("one"))))
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["bytes"] as? Int } == [0, 0])

        // A kept file that is not what the index says now (damaged, or an older build under the
        // same name) is not used: it is fetched again and replaced.
        let name = "linux-image-6.1.0-90-amd64-dbg_6.1.999-1_amd64.deb"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: kept + "/" + name))
        bytes[bytes.count / 2] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: kept + "/" + name))
        let third = try served.sync(served.dir.file("three"), ["--keep-packages", kept])
        #expect(third.status == 0, "\(third.stderr)")
        #expect(served.nginx.debRequests().count == 3)
        #expect(served.nginx.debRequests().last == name)
        #expect(
            try sha256sum(kept + "/" + name) == (try sha256sum(served.repo.packages["linux-image-6.1.0-90-amd64-dbg"]!))
        )
    }

    @Test func twoSyncsSharingACatalogAndAKeepDirectoryLoseNothingAndKeepWholePackages() throws {
        let kernels = (0..<4).map { ("6.1.0-\(60 + $0)-amd64", 50 + $0) }
        let served = try ServedRepository(kernels: kernels)
        defer { served.close() }
        let catalog = served.dir.file("kernels"), kept = served.dir.file("packages")
        let results = Mutex([ProcessResult?](repeating: nil, count: 2))
        let arguments = [
            "sync", served.line, "--catalog", catalog, "--keyring", served.repo.keyring, "--keep-packages", kept,
            "--jobs", "2",
        ]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? btfgen(arguments)
            results.withLock { $0[i] = r }
        }
        for r in results.withLock({ $0 }) {
            let r = try #require(r)
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try catalogEntries(catalog).count == 4, "lost or duplicated entries")
        #expect(Set(try builtPackages(catalog).keys) == Set(kernels.map { "linux-image-\($0.0)-dbg" }))
        #expect(try catalogFailures(catalog).isEmpty)
        try expectConsistent(catalog)
        let files = try FileManager.default.contentsOfDirectory(atPath: kept).sorted()
        #expect(files == served.repo.packages.values.map { URL(fileURLWithPath: $0).lastPathComponent }.sorted())
        for deb in served.repo.packages.values {
            #expect(try sha256sum(kept + "/" + URL(fileURLWithPath: deb).lastPathComponent) == (try sha256sum(deb)))
        }
    }

    // MARK: Valid-Until

    @Test func aReleaseWhoseValidUntilHasPassedIsRefusedUnlessTheLineSaysCheckValidUntilNo() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let catalog = served.dir.file("kernels")
        try resign(served, validUntil: "Sat, 01 Jan 2022 00:00:00 UTC")
        let stale = try served.sync(catalog)
        #expect(stale.status != 0)
        #expect(stale.stderrLines.count == 1, "\(stale.stderr)")
        #expect(stale.stderr.contains("InRelease expired on Sat, 01 Jan 2022 00:00:00 UTC"), "\(stale.stderr)")
        #expect(!served.nginx.requests().contains { $0.contains("Packages") }, "an expired index was used")
        #expect(try catalogEntries(catalog).isEmpty)

        // An archive snapshot is old on purpose: apt's own option says so on the line.
        let line = "deb [arch=amd64 check-valid-until=no] \(served.nginx.url) bookworm main"
        let snapshot = try btfgen(["sync", line, "--catalog", catalog, "--keyring", served.repo.keyring])
        #expect(snapshot.status == 0, "\(snapshot.stderr)")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])

        // Still valid, with a numeric zone: accepted.
        try resign(served, validUntil: "Fri, 01 Jan 2100 01:00:00 +0100")
        let fresh = try served.sync(served.dir.file("other"))
        #expect(fresh.status == 0, "\(fresh.stderr)")

        // A date that is not one is refused as a broken index, not ignored.
        try resign(served, validUntil: "tomorrow")
        let broken = try served.sync(served.dir.file("third"))
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("its Valid-Until 'tomorrow' is not a date"), "\(broken.stderr)")
    }

    /// Give the Release file a Valid-Until line (as a signing archive does) and sign it again.
    func resign(_ served: ServedRepository, validUntil: String) throws {
        try served.repo.sign()
        let dists = served.repo.distsDir
        let release = try String(contentsOfFile: dists + "/Release", encoding: .utf8)
        var lines = release.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let date = try #require(lines.firstIndex { $0.hasPrefix("Date:") })
        lines.insert("Valid-Until: \(validUntil)", at: date + 1)
        try lines.joined(separator: "\n").write(toFile: dists + "/Release", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: dists + "/InRelease")
        let signed = try runProcess(
            "gpg", ["--batch", "--yes", "--clearsign", "--output", dists + "/InRelease", dists + "/Release"],
            environment: ["GNUPGHOME": served.repo.gnupgHome])
        try #require(signed.status == 0, "gpg --clearsign: \(signed.stderr)")
    }
}

func fileSize(_ path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
}
