// The BTF chosen for a kernel, as one value whose case decides how its bytes are read and
// checked. Every consumer — attach, install, resolve, `resolve --extract` — asks the same two
// questions ("the verified bytes", "the path for libbpf") and gets the same checks, so none of
// them can read a bundle blob as a file or use a catalog file that changed since it was written.
import BTF
import Bundle
import Catalog
import ELF
import FoundationEssentials
import Kernel
import LibBPF
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A kernel's minimized BTF inside a bundle (`btfgen bundle`), read only when chosen.
public struct BundleBlob: Sendable, Equatable, Encodable {
    /// The bundle file.
    public var bundle: String
    /// sha256 of the blob, which the reader verifies.
    public var digest: String
    public var kernel: KernelIdentity
    /// sha256 of each BPF object the bundle was minimized for.
    public var objects: [String]
}

/// Where the chosen BTF lives.
public enum ChosenBTF: Sendable, Equatable {
    /// The running kernel's own BTF; libbpf reads it by itself.
    case native(path: String)
    /// `--btf FILE`: raw BTF or an ELF with .BTF, used only if it parses as BTF.
    case file(path: String)
    /// A catalog entry, used only while its file has the sha256 the index records.
    case catalog(CatalogEntry, root: String)
    /// A bundle's minimized BTF, used only if it has the sha256 the manifest records.
    case bundle(BundleBlob)

    /// For messages: a path, or `BUNDLE#sha256:DIGEST`.
    public var location: String {
        switch self {
        case .native(let path), .file(let path): path
        case .catalog(let entry, let root): Catalog(root: URL(fileURLWithPath: root)).url(of: entry).path
        case .bundle(let blob): "\(blob.bundle)#sha256:\(blob.digest)"
        }
    }

    public var entry: CatalogEntry? {
        if case .catalog(let entry, _) = self { return entry }
        return nil
    }

    public var blob: BundleBlob? {
        if case .bundle(let blob) = self { return blob }
        return nil
    }

    /// The build-id of the kernel the BTF was made from, when recorded.
    public var buildID: BuildID? { entry?.identity.buildID ?? blob?.kernel.buildID }

    /// Read and check the bytes: a catalog file against its index digest, a bundle blob against
    /// its manifest digest, a `--btf` file by parsing it. Nothing unverified comes back.
    public func verified() throws(DeployError) -> VerifiedBTF {
        switch self {
        case .native(let path):
            return VerifiedBTF(chosen: self, rawBTF: try ChosenBTF.read(path))
        case .file(let path):
            let bytes = try ChosenBTF.read(path)
            let raw: [UInt8]
            do {
                raw = try bytes.withUnsafeBytes { whole throws(ELFError) in
                    guard let payload = try btfPayload(of: whole) else { return [] }
                    return [UInt8](payload)
                }
            } catch { throw .notBTF(path: path, reason: "\(error)") }
            guard !raw.isEmpty else { throw .notBTF(path: path, reason: "it is an ELF file without a .BTF section") }
            do { _ = try BTFIndex(raw, validate: true) } catch { throw .notBTF(path: path, reason: "\(error)") }
            return VerifiedBTF(chosen: self, rawBTF: raw)
        case .catalog(let entry, let root):
            do {
                return VerifiedBTF(
                    chosen: self, rawBTF: try Catalog(root: URL(fileURLWithPath: root)).verifiedBytes(of: entry))
            } catch { throw .catalog(error) }
        case .bundle(let blob):
            do { return VerifiedBTF(chosen: self, rawBTF: try BundleReader(path: blob.bundle).blob(blob.digest)) } catch
            {
                throw .bundle(error)
            }
        }
    }

    private static func read(_ path: String) throws(DeployError) -> [UInt8] {
        do { return try readWholeFile(path) } catch {
            if case .missing = error { throw .btfFileMissing(path: path) }
            throw .notBTF(path: path, reason: error.description)
        }
    }
}

/// The chosen BTF's bytes after their check.
public struct VerifiedBTF: Sendable {
    public let chosen: ChosenBTF
    /// Raw BTF (an ELF `--btf` file's .BTF section).
    public let rawBTF: [UInt8]

    /// What to give libbpf as `btf_custom_path`: nil for the kernel's own BTF, which libbpf finds
    /// by itself; otherwise a sealed memory file holding exactly the verified bytes, reached
    /// through /proc/self/fd (nothing on disk, and nobody can swap the file after the check).
    public func libbpfPath() throws(DeployError) -> String? {
        if case .native = chosen { return nil }
        let fd = memoryFile()
        guard fd >= 0 else {
            throw .memoryFile(btf: chosen.location, copying: false, errno: errno)
        }
        let failure = writeAll(fd, rawBTF)
        guard failure == 0 else {
            close(fd)
            throw .memoryFile(btf: chosen.location, copying: true, errno: failure)
        }
        // F_ADD_SEALS: F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE.
        _ = fcntl(fd, 1033, Int32(1 | 2 | 4 | 8))
        return "/proc/self/fd/\(fd)"
    }

    /// memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING), which the Glibc module does not export
    /// (it is behind _GNU_SOURCE); an unlinked temporary file on kernels before 3.17.
    private func memoryFile() -> Int32 {
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        if let symbol = dlsym(dlopen(nil, RTLD_NOW), "memfd_create") {
            let fd = unsafeBitCast(symbol, to: MemfdCreate.self)("btfgen-btf", 1 | 2)
            if fd >= 0 { return fd }
        }
        var template = Array("/tmp/btfgen-btf-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 { unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }) }
        return fd
    }

    /// The BTF as a file for another loader: raw, or an ELF holding only `.BTF` (what libbpf's
    /// fallback paths and cilium/ebpf read).
    public func fileBytes(elf: Bool, machine: UInt16) -> [UInt8] {
        elf ? ELFWriter.btfObject(rawBTF, machine: machine) : rawBTF
    }

    /// Refuse objects whose CO-RE relocations this BTF may not answer truthfully. A full kernel
    /// BTF (the kernel's own, or any that describes the kernel's functions) answers every
    /// relocation. A minimized one answers only for the objects it was made for:
    /// objects whose sha256 the bundle lists (whole, or its first 8 bytes) pass at once; any other object must find every
    /// relocation's target in it, since a target minimization dropped is indistinguishable from
    /// one the kernel lacks.
    public func checkCoverage(of objects: [String]) throws(DeployError) {
        if case .native = chosen { return }
        let index: BTFIndex
        do { index = try BTFIndex(rawBTF, validate: false) } catch {
            throw .notBTF(path: chosen.location, reason: "\(error)")
        }
        if index.describesFunctions { return }
        let listed = Set(chosen.blob?.objects ?? [])
        // One resolver for every object: the target's candidate names are scanned once.
        var resolver = CoreResolver(target: index)
        for path in objects {
            let bytes: [UInt8]
            do { bytes = try readWholeFile(path) } catch {
                if case .missing = error { throw .object(.objectMissing(path: path)) }
                throw .object(.openFailed(path: path, errno: EIO, libbpf: [error.description]))
            }
            // Format 4 bundles list the first 8 bytes of each sha256 (16 hex digits), older ones all of it.
            let digest = bytes.withUnsafeBytes { SHA256.hex($0) }
            if listed.contains(where: { $0.count >= 16 && digest.hasPrefix($0) }) { continue }
            let missing: [UncoveredRelocation]
            do { missing = try resolver.uncovered(try BPFObject(bytes: bytes)) } catch {
                throw .object(.openFailed(path: path, errno: EINVAL, libbpf: ["\(error)"]))
            }
            if let first = missing.first {
                throw .uncovered(object: path, btf: chosen.location, missing: first.description, count: missing.count)
            }
        }
    }
}
