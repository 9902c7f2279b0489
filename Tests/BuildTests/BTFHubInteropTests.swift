// `btfgen catalog import|export`: BTFHub's archive layout in and out, reproducibly, and hostile
// or broken archives refused one by one.
import Foundation
import LibBPF
import TestSupport
import Testing

@Suite struct BTFHubInteropTests {
    /// A catalog with two fake kernels (one RHEL 8, one Ubuntu 18.04).
    func seededCatalog(_ dir: ScratchDirectory) throws -> String {
        let catalog = dir.file("kernels")
        let a = try FakeKernel.compile(in: dir, name: "a", release: "4.18.0-305.el8.x86_64", variant: 1)
        let b = try FakeKernel.compile(in: dir, name: "b", release: "4.15.0-213-generic", variant: 2)
        try #require(try btfgen(["build", a, "--catalog", catalog]).status == 0)
        try #require(
            try btfgen(["build", b, "--distro", "ubuntu", "--distro-version", "18.04", "--catalog", catalog]).status
                == 0)
        return catalog
    }

    @Test func exportThenImportRoundTrips() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let catalog = try seededCatalog(dir)
        let tree = dir.file("btfhub")
        let ex = try btfgen(["catalog", "export", "--layout", "btfhub", tree, "--catalog", catalog])
        try #require(ex.status == 0, "\(ex.stderr)")
        let listing = try runProcess("find", [tree, "-type", "f", "-printf", "%P\n"]).stdout.split(separator: "\n")
            .sorted()
        #expect(
            listing == [
                "rhel/8/x86_64/4.18.0-305.el8.x86_64.btf.tar.xz",
                "ubuntu/18.04/x86_64/4.15.0-213-generic.btf.tar.xz",
            ])
        // BTFHub's tarballs hold exactly <release>.btf; GNU tar is the oracle.
        let members = try runProcess("tar", ["-tJf", tree + "/rhel/8/x86_64/4.18.0-305.el8.x86_64.btf.tar.xz"])
        #expect(members.stdout == "4.18.0-305.el8.x86_64.btf\n")

        // Reproducible: exporting again gives the same bytes.
        let again = dir.file("btfhub2")
        try #require(try btfgen(["catalog", "export", again, "--catalog", catalog]).status == 0)
        for f in listing { #expect(try sha256sum(tree + "/" + f) == (try sha256sum(again + "/" + f))) }

        let imported = dir.file("imported")
        let im = try btfgen(["catalog", "import", tree, "--catalog", imported])
        try #require(im.status == 0, "\(im.stderr)")
        #expect(im.stdout.contains("2 imported"))
        let original = Dictionary(uniqueKeysWithValues: try indexEntries(catalog).map { ($0["path"] as! String, $0) })
        for e in try indexEntries(imported) {
            let path = e["path"] as! String
            let o = try #require(original[path], "\(path) not in the original catalog")
            #expect(e["sha256"] as? String == o["sha256"] as? String)
            #expect(e["typeCount"] as? Int == o["typeCount"] as? Int)
            #expect((e["identity"] as? [String: Any])?["buildID"] == nil, "BTFHub records no build-id")
            #expect(try sha256sum(imported + "/" + path) == (e["sha256"] as? String))
        }
        // Importing the same tree again changes nothing.
        let twice = try btfgen(["catalog", "import", tree, "--catalog", imported])
        #expect(twice.status == 0)
        #expect(twice.stdout.contains("0 imported, 2 already present"))
    }

    @Test func btfhubsELFStyleFilesAreImportedAsRawBTF() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        // The seed-004 pipeline's output: a small ELF holding only .BTF (what BTFHub ships).
        let vmlinux = try FakeKernel.compile(in: dir, release: "4.14.336-257.562.amzn2.x86_64")
        let objcopy = dir.file("objcopy-cat")
        try #require(try btfgen(["build", vmlinux, "--method", "objcopy", "--catalog", objcopy]).status == 0)
        try runProcess("cp", [vmlinux, dir.file("work")])
        try #require(try runProcess("pahole", ["-J", dir.file("work")]).status == 0)
        let tree = dir.file("tree/amzn/2/x86_64")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        let elf = dir.file("4.14.336-257.562.amzn2.x86_64.btf")
        try #require(
            try runProcess(
                "llvm-objcopy",
                [
                    "--only-section=.BTF", "--set-section-flags", ".BTF=alloc,readonly",
                    "--strip-all", dir.file("work"), elf,
                ]
            ).status == 0)
        try #require(
            try runProcess(
                "tar",
                [
                    "-cJf", tree + "/4.14.336-257.562.amzn2.x86_64.btf.tar.xz",
                    "-C", dir.path, "4.14.336-257.562.amzn2.x86_64.btf",
                ]
            ).status == 0)
        let catalog = dir.file("kernels")
        let r = try btfgen(["catalog", "import", dir.file("tree"), "--catalog", catalog])
        try #require(r.status == 0, "\(r.stderr)")
        let e = try #require(try indexEntries(catalog).first)
        #expect(e["path"] as? String == "amzn/2/x86_64/4.14.336-257.562.amzn2.x86_64.btf")
        // Stored raw (not ELF), and identical to what btfgen itself builds from that vmlinux.
        #expect(e["sha256"] as? String == (try indexEntries(objcopy).first?["sha256"] as? String))
        let stored = try Data(contentsOf: URL(fileURLWithPath: catalog + "/" + (e["path"] as! String)))
        #expect(Array(stored.prefix(2)) == [0x9f, 0xeb])

        // The same x86_64 ELF filed under arm64: its ELF header contradicts the directory.
        let wrong = dir.file("wrong/amzn/2/arm64")
        try FileManager.default.createDirectory(atPath: wrong, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: tree + "/4.14.336-257.562.amzn2.x86_64.btf.tar.xz",
            toPath: wrong + "/4.14.336-257.562.amzn2.x86_64.btf.tar.xz")
        let refused = try btfgen(["catalog", "import", dir.file("wrong"), "--catalog", dir.file("wrong-cat")])
        #expect(refused.stderr.contains("its ELF header says x86_64, its directory arm64"), "\(refused.stderr)")
        #expect(((try? indexEntries(dir.file("wrong-cat"))) ?? []).isEmpty)
    }

    /// A tree that spells arm64 as `uname -m` does (`aarch64`) or x86_64 as Debian does (`amd64`)
    /// lands under BTFHub's names, where the target's running kernel is matched; an
    /// architecture nobody knows is refused, not filed under a name nothing will ever match.
    @Test func importFilesArchitecturesUnderBTFHubsNames() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let catalog = try seededCatalog(dir)
        let tree = dir.file("btfhub")
        try #require(try btfgen(["catalog", "export", tree, "--catalog", catalog]).status == 0)
        let fm = FileManager.default
        try fm.moveItem(atPath: tree + "/rhel/8/x86_64", toPath: tree + "/rhel/8/aarch64")
        try fm.moveItem(atPath: tree + "/ubuntu/18.04/x86_64", toPath: tree + "/ubuntu/18.04/amd64")
        try fm.createDirectory(atPath: tree + "/rhel/9/sparc9", withIntermediateDirectories: true)
        try fm.copyItem(
            atPath: tree + "/rhel/8/aarch64/4.18.0-305.el8.x86_64.btf.tar.xz",
            toPath: tree + "/rhel/9/sparc9/5.14.0-1.el9.btf.tar.xz")
        let imported = dir.file("imported")
        let r = try btfgen(["catalog", "import", tree, "--catalog", imported])
        #expect(r.stderr.contains("rhel/9/sparc9/5.14.0-1.el9.btf.tar.xz"), "\(r.stderr)")
        #expect(r.stderr.contains("'sparc9' is no architecture btfgen knows"), "\(r.stderr)")
        let entries = try indexEntries(imported)
        #expect(
            entries.map { $0["path"] as? String }.sorted { ($0 ?? "") < ($1 ?? "") } == [
                "rhel/8/arm64/4.18.0-305.el8.x86_64.btf", "ubuntu/18.04/x86_64/4.15.0-213-generic.btf",
            ])
        #expect(
            entries.compactMap { ($0["identity"] as? [String: Any])?["arch"] as? String }.sorted() == [
                "arm64", "x86_64",
            ])
    }

    @Test func hostileAndBrokenArchivesAreRefusedOneByOne() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let catalog = try seededCatalog(dir)
        let tree = dir.file("btfhub")
        try #require(try btfgen(["catalog", "export", tree, "--catalog", catalog]).status == 0)
        let good = try Data(
            contentsOf: URL(
                fileURLWithPath: try #require(
                    try indexEntries(catalog).first.map { catalog + "/" + ($0["path"] as! String) })))
        try good.write(to: URL(fileURLWithPath: dir.file("good.btf")))
        let bad = tree + "/evil/1/x86_64"
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        // Python's tarfile writes headers GNU tar would refuse to create.
        let script = """
            import io, sys, tarfile
            out, good = sys.argv[1], open(sys.argv[2], 'rb').read()
            def make(name, *infos):
                with tarfile.open(f'{out}/{name}.btf.tar.xz', 'w:xz') as t:
                    for info, data in infos:
                        t.addfile(info, io.BytesIO(data) if data is not None else None)
            def reg(n, data):
                i = tarfile.TarInfo(n); i.size = len(data); return (i, data)
            def special(n, kind, target=''):
                i = tarfile.TarInfo(n); i.type = kind; i.linkname = target; return (i, None)
            make('absolute', reg('/etc/absolute.btf', good))
            make('dotdot', reg('../../dotdot.btf', good))
            make('symlink', special('symlink.btf', tarfile.SYMTYPE, '/etc/shadow'))
            make('hardlink', special('hardlink.btf', tarfile.LNKTYPE, 'other'))
            make('device', special('device.btf', tarfile.CHRTYPE))
            make('garbage', reg('garbage.btf', b'\\x9f\\xeb' + b'\\x01' * 64))
            make('two', reg('a.btf', good), reg('b.btf', good))
            """
        let py = try runProcess("python3", ["-c", script, bad, dir.file("good.btf")])
        try #require(py.status == 0, "\(py.stderr)")
        try FileManager.default.createSymbolicLink(
            atPath: bad + "/linked.btf.tar.xz", withDestinationPath: "/etc/passwd")
        try Data("x".utf8).write(to: URL(fileURLWithPath: bad + "/truncated.btf.tar.xz"))

        let imported = dir.file("imported")
        let r = try btfgen(["catalog", "import", tree, "--catalog", imported])
        #expect(r.status != 0)
        let refused = r.stderrLines.filter { $0.contains("refused") }
        #expect(refused.count == 9, "\(r.stderr)")
        for (name, phrase) in [
            ("absolute", "absolute path"), ("dotdot", "`..`"), ("symlink", "a link"),
            ("hardlink", "a link"), ("device", "device"), ("garbage", "cannot parse"),
            ("two", "exactly one"), ("linked", "symbolic link"), ("truncated", "cannot be unpacked"),
        ] {
            #expect(
                refused.contains { $0.contains("evil/1/x86_64/\(name).btf.tar.xz") && $0.contains(phrase) },
                "\(name): \(r.stderr)")
        }
        // The good ones still came in, and nothing escaped the catalog.
        #expect(r.stdout.contains("2 imported"))
        #expect(try indexEntries(imported).count == 2)
        #expect(!FileManager.default.fileExists(atPath: dir.file("dotdot.btf")))
        let files = try runProcess("find", [imported, "-name", "*.btf"]).stdout.split(separator: "\n")
        #expect(files.count == 2)
    }
}
