// A BTF bundle: one file in a deployment image that covers every kernel of a fleet for a set of
// BPF objects. It is a reproducible tar.xz:
//
//   manifest.json                 first member, so a reader can choose before reading any blob
//   blobs/sha256/<hex>            minimized BTF, content-addressed: identical ones stored once
//
// The manifest maps each kernel identity (release, distro, version, arch, build-id) to its blob
// and records the blob's sha256, the objects' sha256, the btfgen and pahole versions and the
// libbpf compatibility level. Readers stream it (no unpacking to disk) and verify the blob.
//
// Format 2 records each object's architecture (`x86_64`, `arm64`, or `any` for an object that
// reads nothing architecture-specific): one bundle can serve x86_64 and arm64 fleets, and each
// kernel's blob is minimized for the objects of its own architecture and the neutral ones only.
// Format 1 (no object architectures) is still read: its every blob was minimized for every
// listed object, so each of its objects applies to every kernel in it, exactly as before.
import Catalog
import FoundationEssentials
import Ingest
import Kernel

#if canImport(Glibc)
    import Glibc
#endif

/// Why a bundle could not be written or used.
public enum BundleError: Error, Equatable {
    case unreadable(path: String, reason: String)
    case noManifest(path: String)
    case badManifest(path: String, reason: String)
    case missingBlob(path: String, digest: String)
    case corruptBlob(path: String, digest: String, actual: String)
    case write(ArchiveWriteError)
    case exists(path: String)
}

extension BundleError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path) is not a readable bundle (\(reason)); make it again with `btfgen bundle`"
        case .noManifest(let path):
            return
                "\(path) has no manifest.json as its first member, so it is not a btfgen bundle; make one with `btfgen bundle`"
        case .badManifest(let path, let reason):
            return "\(path): manifest.json is damaged (\(reason)); make the bundle again with `btfgen bundle`"
        case .missingBlob(let path, let digest):
            return "\(path) lacks the blob sha256:\(digest) its manifest names; the bundle is incomplete, make it again"
        case .corruptBlob(let path, let digest, let actual):
            return
                "\(path): blob sha256:\(digest.prefix(16))… has sha256 \(actual.prefix(16))…; the bundle is corrupted, make it again (nothing was loaded)"
        case .write(let e): return e.description
        case .exists(let path):
            return "\(path) already exists; remove it or pass --force"
        }
    }
}

/// One kernel in a bundle.
public struct BundleKernel: Codable, Hashable, Sendable {
    public var release: String
    public var arch: String
    public var distro: String
    public var distroVersion: String
    public var buildID: BuildID?
    /// sha256 of the minimized BTF (the blob's name).
    public var blob: String
    /// pahole version that made the full BTF, when btfgen built it.
    public var pahole: String?

    public init(entry: CatalogEntry, blob: String) {
        release = entry.identity.release
        arch = entry.identity.arch
        distro = entry.identity.distro
        distroVersion = entry.identity.distroVersion
        buildID = entry.identity.buildID
        self.blob = blob
        pahole = entry.build?.pahole
    }

    /// The identity as the catalog and loader model it.
    public var identity: KernelIdentity {
        KernelIdentity(
            release: release, arch: arch, buildID: buildID, distro: distro, distroVersion: distroVersion,
            compiler: nil, banner: nil)
    }
}

/// A BPF object the bundle was minimized for.
public struct BundleObject: Codable, Hashable, Sendable {
    public var name: String
    public var sha256: String
    /// The kernels' architecture it applies to, `any` for all; nil in a format 1 manifest (which
    /// minimized every blob for every object, so it applies to all as well).
    public var arch: String?

    /// The architecture value of an object that applies to every kernel.
    public static let anyArch = "any"

    public init(name: String, sha256: String, arch: String? = BundleObject.anyArch) {
        self.name = name
        self.sha256 = sha256
        self.arch = arch
    }

    /// Whether a kernel of `kernelArch` uses this object (its blob was minimized for it).
    public func applies(to kernelArch: String) -> Bool {
        arch == nil || arch == BundleObject.anyArch || arch == kernelArch
    }
}

/// `manifest.json`.
public struct BundleManifest: Codable, Equatable, Sendable {
    public static let currentFormat = 2
    /// Every format this btfgen reads.
    public static let readableFormats = 1...2
    public var format: Int
    public var btfgen: String
    /// Oldest libbpf the blobs parse with (`libbpf-1.x`, `libbpf-0.x`, …).
    public var compat: String
    public var objects: [BundleObject]
    public var kernels: [BundleKernel]
    /// Blob digest → size in bytes.
    public var blobs: [String: Int]

    public init(btfgen: String, compat: String, objects: [BundleObject], kernels: [BundleKernel], blobs: [String: Int])
    {
        format = BundleManifest.currentFormat
        self.btfgen = btfgen
        self.compat = compat
        self.objects = objects.sorted {
            ($0.name, $0.arch ?? "", $0.sha256) < ($1.name, $1.arch ?? "", $1.sha256)
        }
        self.kernels = kernels.sorted {
            ($0.distro, $0.distroVersion, $0.arch, $0.release, $0.buildID?.hex ?? "")
                < ($1.distro, $1.distroVersion, $1.arch, $1.release, $1.buildID?.hex ?? "")
        }
        self.blobs = blobs
    }

    static func blobPath(_ digest: String) -> String { "blobs/sha256/\(digest)" }

    /// The objects a kernel of `arch` was minimized for.
    public func objects(for arch: String) -> [BundleObject] { objects.filter { $0.applies(to: arch) } }

    /// The distinct kernel architectures, sorted.
    public var kernelArchitectures: [String] { Array(Set(kernels.map(\.arch))).sorted() }
}

public enum Bundle {
    public static let manifestName = "manifest.json"
    /// Where `--format oci` puts the bundle inside the image.
    public static let imagePath = "usr/share/btfgen/bundle.tar.xz"

    /// Write a bundle: `kernels` pairs each catalog entry with its minimized BTF. Identical BTFs
    /// are stored once. The file appears at `path` only when complete (temp file + rename).
    public static func write(
        to path: String, kernels: [(CatalogEntry, [UInt8])], objects: [BundleObject],
        compat: String, btfgenVersion: String
    ) throws(BundleError) -> BundleManifest {
        var blobs: [String: [UInt8]] = [:]
        var records: [BundleKernel] = []
        for (entry, btf) in kernels {
            let digest = btf.withUnsafeBytes { SHA256.hex($0) }
            blobs[digest] = btf
            records.append(BundleKernel(entry: entry, blob: digest))
        }
        let manifest = BundleManifest(
            btfgen: btfgenVersion, compat: compat, objects: objects, kernels: records,
            blobs: blobs.mapValues(\.count))
        // Compact JSON: the bundle is meant to be small; `tar -xOJf B manifest.json | jq` reads it.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do { json = try encoder.encode(manifest) + Data("\n".utf8) } catch {
            throw .badManifest(path: path, reason: "\(error)")
        }
        let temp = temporarySibling(of: path)
        do {
            let writer = try ArchiveWriter(path: temp, compression: .xz)
            try writer.addFile(manifestName, contents: [UInt8](json))
            try writer.addDirectory("blobs")
            try writer.addDirectory("blobs/sha256")
            for digest in blobs.keys.sorted() {
                try writer.addFile(BundleManifest.blobPath(digest), contents: blobs[digest]!)
            }
            try writer.finish()
        } catch {
            unlink(temp)
            throw .write(error)
        }
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw .write(ArchiveWriteError(path: path, reason: String(cString: strerror(code)), errno: code))
        }
        return manifest
    }
}

/// Reads a bundle by streaming it: the manifest, then the one blob asked for.
public struct BundleReader: Sendable {
    public let path: String
    public let manifest: BundleManifest

    /// Read and check the manifest (the first member).
    public init(path: String) throws(BundleError) {
        self.path = path
        let reader: ArchiveReader
        do { reader = try ArchiveReader(path: path, format: .tar) } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        let first: ArchiveMember?
        do { first = try reader.next() } catch { throw .unreadable(path: path, reason: "\(error)") }
        guard let first, first.name == Bundle.manifestName, first.isRegular else { throw .noManifest(path: path) }
        let bytes: [UInt8]
        do { bytes = try reader.readCurrent(limit: 64 << 20) } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        do { manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(bytes)) } catch {
            throw .badManifest(path: path, reason: "\(error)")
        }
        guard BundleManifest.readableFormats.contains(manifest.format) else {
            let formats = BundleManifest.readableFormats
            throw .badManifest(
                path: path,
                reason:
                    "format \(manifest.format); this btfgen reads formats \(formats.lowerBound) to \(formats.upperBound)"
            )
        }
        for k in manifest.kernels where manifest.blobs[k.blob] == nil {
            throw .badManifest(
                path: path,
                reason: "kernel \(k.release) names blob \(k.blob.prefix(16))… that the manifest does not list")
        }
    }

    /// The blob's bytes, verified against its digest. Nothing unverified is ever returned.
    public func blob(_ digest: String) throws(BundleError) -> [UInt8] {
        let reader: ArchiveReader
        do { reader = try ArchiveReader(path: path, format: .tar) } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        let wanted = BundleManifest.blobPath(digest)
        let limit = (manifest.blobs[digest] ?? 0) + 1
        do {
            while let member = try reader.next() {
                guard member.name == wanted else { continue }
                guard member.isRegular else {
                    throw BundleError.corruptBlob(path: path, digest: digest, actual: "not a regular file")
                }
                let bytes = try reader.readCurrent(limit: limit)
                let actual = bytes.withUnsafeBytes { SHA256.hex($0) }
                guard actual == digest else {
                    throw BundleError.corruptBlob(path: path, digest: digest, actual: actual)
                }
                return bytes
            }
        } catch let e as BundleError { throw e } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        throw .missingBlob(path: path, digest: digest)
    }
}
