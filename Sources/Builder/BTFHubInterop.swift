// BTFHub's archive (github.com/aquasecurity/btfhub-archive) keeps one tarball per kernel:
//   <distro>/<distro-version>/<arch>/<release>.btf.tar.xz   holding   <release>.btf
// Import takes such a tree into the catalog; export writes the catalog back out that way, so
// tools that read BTFHub (Tracee, Inspektor Gadget, …) can read a btfgen catalog.
// BTFHub records no build-id: imported entries have none, and the loader falls back to
// release + distro for them, with its warning.
import BTF
import Catalog
import ELF
import FoundationEssentials
import Ingest
import Kernel
import LibBPF
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// One archive that was not imported, and why.
public struct ImportRefusal: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// What an import did.
public struct ImportReport: Sendable {
    public var imported: [CatalogEntry] = []
    public var unchanged: [CatalogEntry] = []
    public var refused: [ImportRefusal] = []
}

public enum BTFHubInterop {
    /// Import every `<distro>/<version>/<arch>/<release>.btf.tar.xz` (or `.btf`) under `tree`.
    /// Symlinks are never followed; unsafe archive members, BTF that libbpf cannot parse and files
    /// outside the layout are refused one by one, and the rest still imported.
    public static func importTree(
        _ tree: String, into catalog: Catalog, force: Bool
    ) throws -> ImportReport {
        var st = stat()
        guard stat(tree, &st) == 0 else {
            throw BuildError.importTree(path: tree, problem: errno == ENOENT ? "no such directory" : errnoReason(errno))
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BuildError.importTree(path: tree, problem: "not a directory")
        }
        try catalog.prepare()
        var report = ImportReport()
        for candidate in try walk(tree) {
            switch candidate {
            case .refused(let r): report.refused.append(r)
            case .file(let relative):
                do {
                    let outcome = try importOne(root: tree, relative: relative, catalog: catalog, force: force)
                    switch outcome {
                    case .added(let e), .replaced(let e): report.imported.append(e)
                    case .unchanged(let e): report.unchanged.append(e)
                    }
                } catch let r as ImportRefusal {
                    report.refused.append(r)
                }
            }
        }
        return report
    }

    enum Candidate { case file(String), refused(ImportRefusal) }

    /// Files under `root` by lstat, never following links. Links are refused where found.
    static func walk(_ root: String) throws -> [Candidate] {
        var out: [Candidate] = []
        func visit(_ relative: String) throws {
            let full = relative.isEmpty ? root : root + "/" + relative
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: full).sorted() } catch {
                let reason = posixCode(of: error).map(errnoReason) ?? "unreadable"
                guard !relative.isEmpty else { throw BuildError.importTree(path: root, problem: reason) }
                let why = "cannot be listed (\(reason)); nothing under it was imported"
                out.append(.refused(ImportRefusal(path: relative, reason: why)))
                return
            }
            for name in names where !name.hasPrefix(".") {
                let rel = relative.isEmpty ? name : relative + "/" + name
                var st = stat()
                guard lstat(root + "/" + rel, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: try visit(rel)
                case S_IFREG:
                    if rel.hasSuffix(".btf.tar.xz") || rel.hasSuffix(".btf") { out.append(.file(rel)) }
                case S_IFLNK:
                    if rel.hasSuffix(".btf.tar.xz") || rel.hasSuffix(".btf") || !rel.contains(".") {
                        out.append(
                            .refused(
                                ImportRefusal(
                                    path: rel,
                                    reason: "is a symbolic link; btfgen imports only regular files inside the tree")))
                    }
                default:
                    // A device or fifo has no place in a BTF tree (opening one could block or
                    // read forever): say so rather than skip it unseen.
                    let kind = FileAccessError.specialKind(st.st_mode) ?? "special file"
                    out.append(
                        .refused(
                            ImportRefusal(
                                path: rel, reason: "is a \(kind); btfgen imports only regular files inside the tree")))
                }
            }
        }
        try visit("")
        return out
    }

    static func importOne(root: String, relative: String, catalog: Catalog, force: Bool) throws -> Catalog.InsertOutcome
    {
        let parts = relative.split(separator: "/").map(String.init)
        guard parts.count == 4 else {
            throw ImportRefusal(path: relative, reason: "not at <distro>/<version>/<arch>/<release>.btf.tar.xz")
        }
        // BTFHub spells arm64 `arm64`; a tree that says `aarch64` (uname -m) means the same kernels,
        // and must land in the same catalog directory the running arm64 kernel is matched against.
        guard let arch = KernelArch.canonical(parts[2]) else {
            throw ImportRefusal(
                path: relative,
                reason:
                    "'\(parts[2])' is no architecture btfgen knows (\(KernelArch.all.map(\.name).joined(separator: ", ")))"
            )
        }
        let file = parts[3]
        let release =
            file.hasSuffix(".btf.tar.xz")
            ? String(file.dropLast(".btf.tar.xz".count)) : String(file.dropLast(".btf".count))
        guard !release.isEmpty else { throw ImportRefusal(path: relative, reason: "no release in the file name") }
        let full = root + "/" + relative
        var bytes: [UInt8]
        if file.hasSuffix(".tar.xz") {
            let members: [(name: String, bytes: [UInt8])]
            do { members = try SafeArchive.regularFiles(path: full, limit: 64 << 20) } catch {
                throw ImportRefusal(path: relative, reason: "\(error)")
            }
            guard members.count == 1, let only = members.first, only.name.hasSuffix(".btf") else {
                throw ImportRefusal(
                    path: relative, reason: "expected exactly one <release>.btf inside, found \(members.map(\.name))")
            }
            bytes = only.bytes
        } else {
            guard let data = FileManager.default.contents(atPath: full) else {
                throw ImportRefusal(path: relative, reason: "unreadable")
            }
            bytes = [UInt8](data)
        }
        // BTFHub's files are small ELFs holding only .BTF (what `llvm-objcopy --only-section=.BTF`
        // leaves of a `pahole -J` vmlinux); the catalog keeps raw BTF.
        do {
            bytes = try bytes.withUnsafeBytes { raw in
                // An ELF .btf keeps its vmlinux's e_machine: a file filed under the wrong
                // architecture would be chosen for kernels it does not describe.
                if ELFFile.hasMagic(raw), case let machine = try ELFFile(bytes: raw).machine, machine != 0,
                    case let said = KernelArch.name(elfMachine: machine), said != arch
                {
                    throw ImportRefusal(
                        path: relative,
                        reason:
                            "its ELF header says \(said), its directory \(parts[2]); "
                            + "move it under <distro>/<version>/\(said)/")
                }
                guard let btf = try btfPayload(of: raw), !btf.isEmpty else {
                    throw ImportRefusal(path: relative, reason: "an ELF without a .BTF section")
                }
                return [UInt8](btf)
            }
        } catch let r as ImportRefusal { throw r } catch {
            throw ImportRefusal(path: relative, reason: "a damaged ELF (\(error))")
        }
        let scratch = catalog.scratchFile("import.btf")
        try writeFileDurably(Data(bytes), to: scratch)
        let btf: LibBPFBTF
        do { btf = try LibBPFBTF(path: scratch.path) } catch {
            unlink(scratch.path)
            throw ImportRefusal(path: relative, reason: "libbpf cannot parse its BTF (\(error)); not imported")
        }
        // Stored in canonical order like btfgen's own builds, so that the same kernel's BTF has one
        // sha256 whether it was built or imported. What only libbpf accepts is kept as it came.
        var typeCount = btf.typeCount
        var canonical: Bool? = nil
        if let c = try? BTF(decoding: bytes).canonicalized() {
            bytes = c.btf.encoded()
            typeCount = c.btf.types.count
            canonical = true
            do { try writeFileDurably(Data(bytes), to: scratch) } catch {
                unlink(scratch.path)
                throw error
            }
        }
        let identity = KernelIdentity(
            release: release, arch: arch, buildID: nil, distro: parts[0],
            distroVersion: parts[1], compiler: nil, banner: nil)
        let digest = bytes.withUnsafeBytes { SHA256.hex($0) }
        let entry = CatalogEntry(
            identity: identity, path: "", sha256: digest, size: bytes.count,
            typeCount: typeCount, build: nil, source: relative,
            builtAt: utcTimestamp(), canonical: canonical)
        if !force,
            let same = try catalog.entries().first(where: {
                $0.identity.buildID == nil && $0.identity.release == release && $0.identity.distro == parts[0]
                    && $0.identity.distroVersion == parts[1] && $0.identity.arch == arch && $0.sha256 == digest
            })
        {
            unlink(scratch.path)
            return .unchanged(same)
        }
        return try catalog.insert(btfFile: scratch, entry: entry, force: true)
    }

    /// Write every catalog entry as `<distro>/<version>/<arch>/<release>.btf.tar.xz` under `tree`.
    /// Each tarball is reproducible and written to a temporary name first, then renamed.
    @discardableResult
    public static func exportTree(_ catalog: Catalog, to tree: String) throws -> [String] {
        var written: [String] = []
        for entry in try catalog.entries().sorted(by: { $0.path < $1.path }) {
            let relative = String(entry.path.dropLast(".btf".count)) + ".btf.tar.xz"
            let destination = tree + "/" + relative
            let directory = deletingLastPathComponent(destination)
            try makeDirectories(directory)
            let data = try Data(contentsOf: catalog.url(of: entry))
            let digest = data.withUnsafeBytes { SHA256.hex($0) }
            guard digest == entry.sha256 else {
                throw CatalogError.unreadableIndex(
                    path: catalog.url(of: entry).path,
                    reason:
                        "its sha256 is \(digest), the index says \(entry.sha256); rebuild it with `btfgen build --force`"
                )
            }
            let temp = temporarySibling(of: destination)
            do {
                let writer = try ArchiveWriter(path: temp, compression: .xz)
                try data.withUnsafeBytes { raw in
                    try writer.addFile(URL(fileURLWithPath: entry.path).lastPathComponent, bytes: raw)
                }
                try writer.finish()
                guard rename(temp, destination) == 0 else {
                    throw CatalogError.ioFailure(path: destination, operation: "renaming into", errno: errno)
                }
            } catch {
                unlink(temp)
                throw error
            }
            written.append(relative)
        }
        return written
    }
}

extension ImportRefusal: Error {}

/// strerror text, lower-cased as it reads inside a sentence.
func errnoReason(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    return text.prefix(1).lowercased() + text.dropFirst()
}
