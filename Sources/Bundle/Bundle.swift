// A BTF bundle: one file in a deployment image that covers every kernel of a fleet for a set of
// BPF objects. It is a reproducible tar.xz of two members (format 4):
//
//   manifest.json   first member, so a reader can choose before using any blob
//   blobs           the distinct minimized BTFs one after another: identical ones stored once
//
// `tar -xOJf B manifest.json | jq` shows it; written with sorted keys, compact:
//
//   {"blobs":{"sizes":[445,445,…]},"btfgen":"0.1.0","compat":"libbpf-1.x","format":4,
//    "kernels":[{"arch":"x86_64","distro":"debian","k":[["5.10.0-30-amd64","aff7348d75d45908",0],…],
//                "pahole":"1.24","version":"11"},…],
//    "objects":[{"arch":"any","name":"exec.bpf.o","sha256":"e2f9a01c5b7d3e48"},…],
//    "sha256":"<sha256 of every byte of manifest.json before `,"sha256":`, then of the blobs member>"}
//
// Blobs are numbered from 0 in `sizes` order (blob n starts after the n before it). Kernels that
// share distro, version, architecture and pahole are one group; each is a row [release, build-id,
// blob number]. A build-id is its first 8 bytes (null when unknown) and an object's sha256 its
// first 8 bytes too (BuildID.recordedPrefix says why that is enough). The one sha256 at the end
// covers the manifest and the blobs: a reader checks it before it believes a field or returns a
// byte, then names each blob by its own sha256 (`BundleManifest` is the same for every format).
// The blobs are minimized BTF with their types in name order (BTF.inNameOrder), so that a fleet's
// blobs line up for xz. What made bundles big, format by format: 64 hex digits per blob and per
// kernel and a member header per blob (format 2), whole build-ids and sums (format 3).
//
// Format 3 (still read) differed in whole build-ids and object sha256s, and in recording the
// blobs member's sha256 in `blobs` and the manifest's own over itself alone. Format 2 (still read)
// had `blobs/sha256/<hex>` members, content-addressed, and a manifest with one record per kernel
// naming its blob's sha256; it records each object's architecture (`x86_64`, `arm64`, or `any`
// for an object that reads nothing architecture-specific): one bundle can serve x86_64 and arm64
// fleets, and each kernel's blob is minimized for the objects of its own architecture and the
// neutral ones only. Format 1 (no object architectures) is still read: its every blob was
// minimized for every listed object, so each of its objects applies to every kernel in it,
// exactly as before. Readers stream formats 1 and 2 and verify the one blob asked for; a format 3
// or 4 bundle is read whole (it is a few KB) and verified before use.
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
    /// Format 4: the manifest and blobs together do not have the sha256 the manifest records.
    case corrupt(path: String, recorded: String, actual: String)
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
        case .corrupt(let path, let recorded, let actual):
            return
                "\(path): its manifest and blobs have sha256 \(actual.prefix(16))…, the manifest records \(recorded.prefix(16))…; the bundle is corrupted, make it again (nothing was loaded)"
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

    public init(
        release: String, arch: String, distro: String, distroVersion: String, buildID: BuildID?, blob: String,
        pahole: String?
    ) {
        self.release = release
        self.arch = arch
        self.distro = distro
        self.distroVersion = distroVersion
        self.buildID = buildID
        self.blob = blob
        self.pahole = pahole
    }

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
    public static let currentFormat = 4
    /// Every format this btfgen reads.
    public static let readableFormats = 1...4
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

    /// Where formats 1 and 2 keep a blob.
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

    /// Write a bundle: `kernels` pairs each catalog entry with its minimized BTF (in name order,
    /// as `btfgen bundle` gives it). Identical BTFs are stored once. Build-ids and object sha256s
    /// are cut to what format 4 records; the manifest returned is what a reader will find. The
    /// file appears at `path` only when complete (temp file + rename).
    public static func write(
        to path: String, kernels: [(CatalogEntry, [UInt8])], objects: [BundleObject],
        compat: String, btfgenVersion: String
    ) throws(BundleError) -> BundleManifest {
        var blobs: [String: [UInt8]] = [:]
        var records: [BundleKernel] = []
        for (entry, btf) in kernels {
            let digest = btf.withUnsafeBytes { SHA256.hex($0) }
            blobs[digest] = btf
            var record = BundleKernel(entry: entry, blob: digest)
            record.buildID = record.buildID?.recordedPrefix
            records.append(record)
        }
        let recordedObjects = objects.map { o in
            var o = o
            o.sha256 = String(o.sha256.prefix(2 * BuildID.recordedPrefixBytes))
            return o
        }
        let manifest = BundleManifest(
            btfgen: btfgenVersion, compat: compat, objects: recordedObjects, kernels: records,
            blobs: blobs.mapValues(\.count))
        let json: [UInt8], payload: [UInt8]
        do { (json, payload) = try DiskManifest.encode(manifest, blobs: blobs) } catch {
            throw .badManifest(path: path, reason: "\(error)")
        }
        let temp = temporarySibling(of: path)
        do {
            let writer = try ArchiveWriter(path: temp, compression: .xzSmallest)
            try writer.addFile(manifestName, contents: json)
            try writer.addFile(DiskManifest.blobsName, contents: payload)
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

/// Reads a bundle: formats 1 and 2 by streaming (the manifest, then the one blob asked for), a
/// format 3 or 4 one whole, each checked before anything in it is used.
public struct BundleReader: Sendable {
    public let path: String
    public let manifest: BundleManifest
    /// A format 3 or 4 bundle's blobs member, verified, and where each blob lies in it.
    private let verified: (payload: [UInt8], ranges: [String: Range<Int>])?

    /// Read and check the manifest (the first member) and, in formats 3 and 4, the blobs.
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
        struct Version: Decodable { var format: Int }
        let format: Int
        do { format = try JSONDecoder().decode(Version.self, from: Data(bytes)).format } catch {
            throw .badManifest(path: path, reason: "\(error)")
        }
        guard BundleManifest.readableFormats.contains(format) else {
            let formats = BundleManifest.readableFormats
            throw .badManifest(
                path: path,
                reason: "format \(format); this btfgen reads formats \(formats.lowerBound) to \(formats.upperBound)")
        }
        if format >= 3 {
            (manifest, verified) = try Self.readWhole(path: path, manifest: bytes, rest: reader)
            return
        }
        do { manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(bytes)) } catch {
            throw .badManifest(path: path, reason: "\(error)")
        }
        verified = nil
        for k in manifest.kernels where manifest.blobs[k.blob] == nil {
            throw .badManifest(
                path: path,
                reason: "kernel \(k.release) names blob \(k.blob.prefix(16))… that the manifest does not list")
        }
    }

    /// A format 3 or 4 manifest and the blobs member, checked against the sha256s the manifest
    /// records (format 3: its own and the blobs member's; format 4: one over both).
    private static func readWhole(path: String, manifest bytes: [UInt8], rest reader: ArchiveReader)
        throws(BundleError) -> (BundleManifest, (payload: [UInt8], ranges: [String: Range<Int>]))
    {
        let sealed: DiskManifest.Sealed
        switch DiskManifest.open(bytes) {
        case .success(let s): sealed = s
        case .failure(let reason): throw .badManifest(path: path, reason: reason.text)
        }
        let disk = sealed.manifest
        let format3 = disk.format == 3
        if format3 {
            let (actual, matches) = DiskManifest.check(sealed, payload: [])
            guard matches else {
                throw .badManifest(
                    path: path,
                    reason: "its content has sha256 \(actual.prefix(16))…, it records \(sealed.recorded.prefix(16))…")
            }
        }
        let digest = disk.blobs.sha256 ?? sealed.recorded
        guard let size = disk.blobs.total, format3 == (disk.blobs.sha256 != nil) else {
            throw .badManifest(path: path, reason: "blobs \(disk.blobs.sizes.prefix(4))… cannot be a bundle's")
        }
        var payload: [UInt8]? = nil
        do {
            while let member = try reader.next() {
                guard member.name == DiskManifest.blobsName else { continue }
                guard member.isRegular else {
                    throw BundleError.corruptBlob(path: path, digest: digest, actual: "not a regular file")
                }
                payload = try reader.readCurrent(limit: format3 ? size + 1 : 1 << 30)
                break
            }
        } catch let e as BundleError { throw e } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        guard let payload else { throw .missingBlob(path: path, digest: digest) }
        if format3 {
            let actual = payload.withUnsafeBytes { SHA256.hex($0) }
            guard actual == digest else { throw .corruptBlob(path: path, digest: digest, actual: actual) }
        } else {
            let (actual, matches) = DiskManifest.check(sealed, payload: payload)
            guard matches else { throw .corrupt(path: path, recorded: sealed.recorded, actual: actual) }
        }
        switch disk.manifest(payload: payload) {
        case .success(let (manifest, ranges)): return (manifest, (payload, ranges))
        case .failure(let reason): throw .badManifest(path: path, reason: reason.text)
        }
    }

    /// The blob's bytes, verified against its digest. Nothing unverified is ever returned.
    public func blob(_ digest: String) throws(BundleError) -> [UInt8] {
        if let verified {
            guard let range = verified.ranges[digest] else { throw .missingBlob(path: path, digest: digest) }
            return Array(verified.payload[range])
        }
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
