// A real rpm-md repository for `btfgen sync` tests: packages made by rpmbuild around small DWARF
// "kernels" (Tests/BuildTests/Fixtures/fake_kernel.c) at /usr/lib/debug/lib/modules/<release>/vmlinux,
// as RHEL's kernel-debuginfo holds them, indexed by createrepo_c, repomd.xml signed (detached,
// armored: repomd.xml.asc) by a throwaway gpg key, and served by nginx like the apt repository.
import Foundation
import TestSupport
import Testing

/// A repository directory tree (`Packages/`, `repodata/`) and the key that signs it.
final class RpmMDRepository {
    let scratch: ScratchDirectory
    let root: String
    let gnupgHome: String
    /// The public half of the signing key, as a keyring gpgv reads.
    let keyring: String
    /// rpm file name → its path.
    private(set) var packages: [String: String] = [:]

    init(scratch: ScratchDirectory) throws {
        self.scratch = scratch
        root = scratch.file("rpm-repo")
        gnupgHome = scratch.file("rpm-gnupg")
        keyring = scratch.file("rpm-keyring.gpg")
        try FileManager.default.createDirectory(atPath: root + "/Packages", withIntermediateDirectories: true)
        try AptRepository.makeKey(home: gnupgHome, name: "btfgen rpm-md test <rpm@btfgen.invalid>", exportTo: keyring)
    }

    var repodata: String { root + "/repodata" }

    /// Add `name` (`kernel-debuginfo`, `kernel-rt-debuginfo`, …) `version-release.arch` holding a
    /// fake vmlinux for the kernel release `version-release.arch`, its payload compressed with
    /// `payload` (rpm's `_binary_payload`: RHEL 9 uses xz, Fedora zstd). Returns the rpm's file name.
    @discardableResult
    func addKernel(
        name: String = "kernel-debuginfo", version: String = "5.14.0", release: String, arch: String = "x86_64",
        variant: Int, payload: String = "w2.xzdio"
    ) throws -> String {
        let kernelRelease = "\(version)-\(release).\(arch)"
        let vmlinux = scratch.file("vmlinux-\(name)-\(kernelRelease)")
        let source = Repo.root.appendingPathComponent("Tests/BuildTests/Fixtures/fake_kernel.c").path
        let cc = try runProcess(
            "gcc",
            [
                "-O0", "-g", "-Wl,--build-id=sha1", "-DRELEASE=\"\(kernelRelease)\"", "-DVARIANT=\(variant)",
                "-DUTS_VERSION=\"#1 SMP PREEMPT_DYNAMIC Thu Nov 1 00:00:00 UTC 2026\"", "-o", vmlinux, source,
            ])
        try #require(cc.status == 0, "gcc: \(cc.stderr)")
        return try build(
            name: name, version: version, release: release, arch: arch, payload: payload,
            files: [("/usr/lib/debug/lib/modules/\(kernelRelease)/vmlinux", vmlinux)])
    }

    /// Add a package that holds no vmlinux (`kernel-debuginfo-common-x86_64`, `kernel-tools-debuginfo`).
    @discardableResult
    func addOther(name: String, version: String = "5.14.0", release: String, arch: String = "x86_64") throws -> String {
        let readme = scratch.file("README-\(name)")
        try Data("no kernel here\n".utf8).write(to: URL(fileURLWithPath: readme))
        return try build(
            name: name, version: version, release: release, arch: arch, payload: "w2.xzdio",
            files: [("/usr/src/debug/\(name)-\(version)-\(release)/README", readme)])
    }

    /// rpmbuild a binary package of prebuilt `files` (path in the package, file on disk) into Packages/.
    private func build(
        name: String, version: String, release: String, arch: String, payload: String, files: [(String, String)]
    ) throws -> String {
        let top = scratch.file("rpmbuild-\(name)-\(version)-\(release)-\(arch)")
        try FileManager.default.createDirectory(atPath: top + "/tmp", withIntermediateDirectories: true)
        let install = files.map { (path, source) in
            "mkdir -p %{buildroot}\(URL(fileURLWithPath: path).deletingLastPathComponent().path)\ncp \(source) %{buildroot}\(path)"
        }.joined(separator: "\n")
        // No debuginfo extraction, stripping or build-id links: the package is the test's bytes.
        try """
        %define debug_package %{nil}
        %define __os_install_post %{nil}
        %global _build_id_links none
        Name: \(name)
        Version: \(version)
        Release: \(release)
        Summary: btfgen sync test package
        License: GPL-2.0-only
        %description
        A fake kernel debuginfo package for btfgen's sync tests.
        %install
        \(install)
        %files
        \(files.map(\.0).joined(separator: "\n"))

        """.write(toFile: top + "/package.spec", atomically: true, encoding: .utf8)
        let r = try runProcess(
            "rpmbuild",
            [
                "--define", "_topdir \(top)", "--define", "_tmppath \(top)/tmp", "--define", "_rpmdir \(top)/out",
                "--define", "_binary_payload \(payload)", "--target", arch, "--nodeps", "--quiet", "-bb",
                top + "/package.spec",
            ])
        try #require(r.status == 0, "rpmbuild: \(r.stderr)")
        let file = "\(name)-\(version)-\(release).\(arch).rpm"
        let path = root + "/Packages/" + file
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: "\(top)/out/\(arch)/\(file)", toPath: path)
        packages[file] = path
        return file
    }

    /// Regenerate repodata/ with createrepo_c, the primary index compressed as `compression`
    /// (`gz`, `xz`, or `zst`: Debian's createrepo_c has no zstd, so its gz primary is recompressed
    /// with zstd and repomd.xml rewritten as Fedora's createrepo_c would write it), and sign it.
    func publish(compression: String = "gz") throws {
        try? FileManager.default.removeItem(atPath: repodata)
        let r = try runProcess(
            "createrepo_c",
            ["--no-database", "--general-compress-type", compression == "zst" ? "gz" : compression, root])
        try #require(r.status == 0, "createrepo_c: \(r.stderr)")
        if compression == "zst" {
            let gz = try primaryPath()
            let xml = try runProcess("gzip", ["-dc", gz]).stdout
            let plain = repodata + "/primary.xml"
            try xml.write(toFile: plain, atomically: true, encoding: .utf8)
            try #require(try runProcess("zstd", ["-q", "-f", "--rm", plain]).status == 0)
            let digest = try sha256sum(plain + ".zst")
            let named = repodata + "/\(digest)-primary.xml.zst"
            try FileManager.default.moveItem(atPath: plain + ".zst", toPath: named)
            try replacePrimary(with: named)
            try FileManager.default.removeItem(atPath: gz)
        }
        try sign()
    }

    /// The primary index file repomd.xml names now.
    func primaryPath() throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: repodata)
        return repodata + "/" + (try #require(names.first { $0.contains("-primary.xml") }, "no primary in \(names)"))
    }

    /// Point repomd.xml's primary record at `file` (in repodata/): its location, size and
    /// sha256, leaving the open-checksum and open-size as they were. Unsigned until `sign()`.
    func replacePrimary(with file: String) throws {
        let repomd = repodata + "/repomd.xml"
        let text = try String(contentsOfFile: repomd, encoding: .utf8)
        let start = try #require(text.range(of: "<data type=\"primary\">"))
        let end = try #require(text.range(of: "</data>", range: start.upperBound..<text.endIndex))
        var record = String(text[start.lowerBound..<end.upperBound])
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        record = record.replacing(
            /<checksum type="sha256">[0-9a-f]{64}<\/checksum>/,
            with: "<checksum type=\"sha256\">\(try sha256sum(file))</checksum>")
        record = record.replacing(
            /<location href="[^"]*"\/>/,
            with: "<location href=\"repodata/\(URL(fileURLWithPath: file).lastPathComponent)\"/>")
        record = record.replacing(/<size>[0-9]+<\/size>/, with: "<size>\(size)</size>")
        try (text.replacingCharacters(in: start.lowerBound..<end.upperBound, with: record)).write(
            toFile: repomd, atomically: true, encoding: .utf8)
    }

    /// Sign repomd.xml as it is now: repomd.xml.asc, detached and armored, as dnf reads it.
    func sign() throws {
        let asc = repodata + "/repomd.xml.asc"
        try? FileManager.default.removeItem(atPath: asc)
        let r = try runProcess(
            "gpg", ["--batch", "--yes", "--armor", "--detach-sign", "--output", asc, repodata + "/repomd.xml"],
            environment: ["GNUPGHOME": gnupgHome])
        try #require(r.status == 0, "gpg --detach-sign: \(r.stderr)")
    }

    /// Other GNUPGHOMEs a test made keys in.
    var extraHomes: [String] = []

    /// gpg leaves an agent running per GNUPGHOME: end ours.
    func stopAgents() {
        for home in [gnupgHome] + extraHomes {
            _ = try? runProcess("gpgconf", ["--kill", "gpg-agent"], environment: ["GNUPGHOME": home])
        }
    }
}

extension Nginx {
    /// The .rpm files requested so far, by file name.
    func rpmRequests() -> [String] {
        requests().filter { $0.hasSuffix(".rpm") }.map { String($0.split(separator: "/").last!) }
    }
}
