// A catalog this user may not read or write is named as a permission problem with its path and
// the next step, never as an I/O error, an empty catalog or a file to rebuild. btfgen runs as
// nobody (setpriv) against a catalog root owns, so the tests need root.
import Foundation
import TestSupport
import Testing

/// `btfgen ARGS` as uid/gid 65534 with no supplementary groups.
private func btfgenAsNobody(_ arguments: [String]) throws -> ProcessResult {
    try runProcess(
        "setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Repo.btfgen] + arguments)
}

private func chown(_ path: String, nobody: Bool, recursive: Bool = false) throws {
    let r = try runProcess("chown", (recursive ? ["-R"] : []) + [nobody ? "65534:65534" : "0:0", path])
    try #require(r.status == 0, "chown: \(r.stderr)")
}

@Suite(.requires(.root, .tool("setpriv")))  // runs btfgen as nobody against root's files
struct CatalogPermissionTests {
    /// A scratch directory nobody can traverse, with one fake kernel built into `kernels` as root.
    private func setup() throws -> (dir: ScratchDirectory, catalog: String, entryPath: String) {
        let dir = try ScratchDirectory("btfgen-perm")
        chmod(dir.path, 0o755)
        let catalog = dir.file("kernels")
        let k1 = try FakeKernel.compile(in: dir, name: "k1", release: "5.4.0-1-perm", variant: 1)
        let built = try btfgen(["build", k1, "--catalog", catalog, "--distro", "permos", "--distro-version", "1"])
        try #require(built.status == 0, "\(built.stderr)")
        let entry = try #require(try indexEntries(catalog).first?["path"] as? String)
        return (dir, catalog, entry)
    }

    @Test func aBuildIntoADirectoryItMayNotWriteNamesThatDirectory() throws {
        let (dir, catalog, _) = try setup()
        defer { dir.remove() }
        // The catalog is nobody's, but its distro directory is root's: the new version's
        // directory cannot be created there.
        try chown(catalog, nobody: true, recursive: true)
        try chown(catalog + "/permos", nobody: false)
        let k2 = try FakeKernel.compile(in: dir, name: "k2", release: "5.4.0-2-perm", variant: 2)
        let before = try indexEntries(catalog).count
        let r = try btfgenAsNobody(["build", k2, "--catalog", catalog, "--distro", "permos", "--distro-version", "2"])
        #expect(r.status == 1)
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("no write permission on \(catalog)/permos"), "\(r.stderr)")
        #expect(r.stderr.contains("uid 65534"), "\(r.stderr)")
        #expect(!r.stderr.contains("Input/output error"), "\(r.stderr)")
        #expect(try indexEntries(catalog).count == before)
        #expect(try catalogBTFFiles(catalog).count == before)
    }

    @Test func anImportIntoADirectoryItMayNotWriteNamesThatDirectory() throws {
        let (dir, catalog, entryPath) = try setup()
        defer { dir.remove() }
        try chown(catalog, nobody: true, recursive: true)
        try chown(catalog + "/permos", nobody: false)
        let tree = dir.file("tree")
        try FileManager.default.createDirectory(atPath: tree + "/permos/2/x86_64", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: catalog + "/" + entryPath, toPath: tree + "/permos/2/x86_64/5.4.0-9.btf")
        try #require(try runProcess("chmod", ["-R", "a+rX", tree]).status == 0)
        let r = try btfgenAsNobody(["catalog", "import", tree, "--catalog", catalog])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no write permission on \(catalog)/permos"), "\(r.stderr)")
        #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Input/output error"), "\(r.stderr)")
    }

    @Test func anUnreadableIndexIsNotAnEmptyCatalog() throws {
        let (dir, catalog, _) = try setup()
        defer { dir.remove() }
        chmod(catalog + "/index.json", 0o600)
        for arguments in [["list"], ["bundle", "--object", "x.bpf.o", "-o", dir.file("b.tar.xz")]] {
            let r = try btfgenAsNobody(arguments + ["--catalog", catalog])
            #expect(r.status == 1, "\(arguments): \(r.stdout)")
            #expect(
                r.stderr.contains("no read permission on catalog file \(catalog)/index.json"),
                "\(arguments): \(r.stderr)")
            #expect(!r.stdout.contains("empty") && !r.stderr.contains("no kernels"), "\(arguments): \(r.stdout)")
        }
    }

    @Test func anUnreadableEntryIsAPermissionProblemNotOneToRebuild() throws {
        let (dir, catalog, entryPath) = try setup()
        defer { dir.remove() }
        chmod(catalog + "/" + entryPath, 0o600)
        let r = try btfgenAsNobody(["doctor", "--catalog", catalog])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no read permission on catalog file \(catalog)/\(entryPath)"), "\(r.stderr)")
        #expect(!r.stderr.contains("rebuild"), "\(r.stderr)")
    }
}
