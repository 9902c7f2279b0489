// `btfgen sync` against Debian's real archive: its real InRelease checked with the real
// debian-archive-keyring, its real Packages index, narrowed with --match to the one cloud -dbg
// package scripts/fetch-debian-dbg.sh has cached. --keep-packages points at that cache, so the
// 280 MB package is verified against the signed index and used, never downloaded again.
import Foundation
import TestSupport
import Testing

@Suite(
    .serialized,
    .requires(
        .fixture("BTFGEN_DEBIAN_DEB"), .fixture("BTFGEN_DEBIAN_VMLINUX"), .tool("gpgv"), .tool("readelf"),
        .tool("dpkg-deb")))
struct DebianSyncTests {
    /// Where Debian publishes the kernels fetch-debian-dbg.sh takes (the security archive carries
    /// each ABI's -dbg package; the point release's main suite the older ones).
    static let lines = [
        "deb [arch=amd64] http://deb.debian.org/debian-security bookworm-security main",
        "deb [arch=amd64] http://deb.debian.org/debian bookworm main",
    ]
    static let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

    @Test func theCachedCloudDbgPackageIsVerifiedUsedAndNeverDownloaded() throws {
        let deb = try #require(Fixture.debianDeb)
        let vmlinux = try #require(Fixture.debianVmlinux)
        try #require(FileManager.default.fileExists(atPath: Self.keyring), "debian-archive-keyring (setup.sh)")
        let name = try #require(try runProcess("dpkg-deb", ["-f", deb, "Package"]).stdout.split(separator: "\n").first)
        let version = try #require(
            try runProcess("dpkg-deb", ["-f", deb, "Version"]).stdout.split(separator: "\n").first)
        let cache = URL(fileURLWithPath: deb).deletingLastPathComponent().path
        let before = try FileManager.default.contentsOfDirectory(atPath: cache).sorted()
        let dir = try ScratchDirectory("btfgen-debian-sync")
        defer { dir.remove() }
        let catalog = dir.file("kernels")
        let arguments =
            ["sync"] + Self.lines + [
                "--catalog", catalog, "--keyring", Self.keyring, "--match", String(name), "--keep-packages", cache,
                "--json",
            ]

        let first = try btfgen(arguments)
        try #require(first.status == 0, "\(first.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [[String: Any]])
        try #require(
            rows.count == 1,
            "Debian's index lists \(rows.count) packages named \(name): refresh the fixture (apt-get update, then scripts/fetch-debian-dbg.sh)"
        )
        let package = try #require(rows[0]["package"] as? [String: Any])
        #expect(package["version"] as? String == String(version), "the archive moved on: refresh the fixture")
        #expect(package["sha256"] as? String == (try sha256sum(deb)))
        #expect(rows[0]["outcome"] as? String == "built", "\(first.stdout)")
        #expect(rows[0]["bytes"] as? Int == 0, "the cached package was downloaded again")
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache).sorted() == before, "the cache changed")

        let entries = try catalogEntries(catalog)
        try #require(entries.count == 1)
        let identity = try #require(entries[0]["identity"] as? [String: Any])
        #expect(identity["buildID"] as? String == (try Self.buildID(vmlinux)))
        #expect(identity["distro"] as? String == "debian")
        #expect((entries[0]["package"] as? [String: Any])?["name"] as? String == String(name))

        let second = try btfgen(arguments)
        #expect(second.status == 0, "\(second.stderr)")
        let again = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [[String: Any]])
        #expect(again.map { $0["outcome"] as? String } == ["present"])
        #expect(again.map { $0["bytes"] as? Int } == [0])
    }

    /// The GNU build-id as binutils reads it from the kernel's notes.
    static func buildID(_ vmlinux: String) throws -> String {
        let r = try runProcess("readelf", ["-n", vmlinux])
        try #require(r.status == 0, "readelf: \(r.stderr)")
        let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("Build ID:") })
        return String(line.split(separator: " ").last!)
    }
}
