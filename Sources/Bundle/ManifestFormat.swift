// How formats 3 and 4 spell a manifest on disk (see Bundle.swift's header for the layout). The
// in-memory `BundleManifest` keeps one record per kernel naming its blob by sha256; on disk the
// fields many kernels share are said once per group, a kernel is a row `[release, build-id,
// blob number]`, and the blobs are one member. Format 3 recorded whole build-ids and object
// sha256s, the blobs member's sha256 and the manifest's own; format 4 records the first 8 bytes of
// each (BuildID.recordedPrefix) and one sha256 over the manifest and the blobs member together.
import Catalog
import FoundationEssentials
import Kernel

/// `manifest.json` as formats 3 and 4 write it, less its trailing `sha256`.
struct DiskManifest: Codable {
    var format: Int
    var btfgen: String
    var compat: String
    var objects: [BundleObject]
    var blobs: Blobs
    var kernels: [Group]

    /// The `blobs` member: the blobs one after another, in `sizes` order.
    struct Blobs: Codable {
        /// Format 3 only: the member's sha256 (format 4's one sum covers it).
        var sha256: String?
        var sizes: [Int]

        /// The member's size the sizes say, nil when they cannot be (negative, or past 1 TiB).
        var total: Int? {
            sizes.allSatisfy { (0...(1 << 40)).contains($0) } && sizes.count < 1 << 20 ? sizes.reduce(0, +) : nil
        }
    }

    /// Kernels sharing distro, version, architecture and pahole.
    struct Group: Codable {
        var distro: String
        var version: String
        var arch: String
        var pahole: String?
        var k: [Row]
    }

    /// `[release, build-id hex or null, blob number]`.
    struct Row: Codable {
        var release: String
        var buildID: BuildID?
        var blob: Int

        init(release: String, buildID: BuildID?, blob: Int) {
            self.release = release
            self.buildID = buildID
            self.blob = blob
        }

        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            release = try c.decode(String.self)
            buildID = try c.decodeIfPresent(BuildID.self)
            blob = try c.decode(Int.self)
            guard c.isAtEnd else {
                throw DecodingError.dataCorruptedError(
                    in: c, debugDescription: "a kernel row has more than release, build-id and blob")
            }
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.unkeyedContainer()
            try c.encode(release)
            if let buildID { try c.encode(buildID) } else { try c.encodeNil() }
            try c.encode(blob)
        }
    }

    /// The member holding every blob.
    static let blobsName = "blobs"
    /// What ends the manifest: its own sha256 (format 3: over every byte before this key; format 4:
    /// over those bytes followed by the blobs member's).
    static let sumKey = Array(#","sha256":""#.utf8)

    /// The on-disk form (format 4) of `manifest` and the `blobs` member's bytes. Blobs are numbered
    /// by (size, bytes), which keeps similar ones together for xz; rows are grouped and sorted so
    /// the text repeats as much as it can. Build-ids and object sha256s must already be the
    /// prefixes format 4 records (`Bundle.write` cuts them).
    static func encode(_ manifest: BundleManifest, blobs: [String: [UInt8]]) throws -> (json: [UInt8], payload: [UInt8])
    {
        let ordered = blobs.sorted { a, b in
            a.value.count != b.value.count
                ? a.value.count < b.value.count : a.value.lexicographicallyPrecedes(b.value)
        }
        var number: [String: Int] = [:]
        var payload: [UInt8] = []
        for (i, (digest, bytes)) in ordered.enumerated() {
            number[digest] = i
            payload += bytes
        }
        var groups: [Group] = []
        let kernels = manifest.kernels.sorted {
            ($0.distro, $0.distroVersion, $0.arch, $0.pahole ?? "", $0.release, $0.buildID?.hex ?? "")
                < ($1.distro, $1.distroVersion, $1.arch, $1.pahole ?? "", $1.release, $1.buildID?.hex ?? "")
        }
        for k in kernels {
            guard let blob = number[k.blob] else {
                throw EncodingError.invalidValue(
                    k.blob, .init(codingPath: [], debugDescription: "kernel \(k.release) names a blob not given"))
            }
            let row = Row(release: k.release, buildID: k.buildID, blob: blob)
            if let last = groups.last,
                (last.distro, last.version, last.arch, last.pahole) == (k.distro, k.distroVersion, k.arch, k.pahole)
            {
                groups[groups.count - 1].k.append(row)
            } else {
                groups.append(
                    Group(distro: k.distro, version: k.distroVersion, arch: k.arch, pahole: k.pahole, k: [row]))
            }
        }
        let disk = DiskManifest(
            format: 4, btfgen: manifest.btfgen, compat: manifest.compat, objects: manifest.objects,
            blobs: Blobs(sha256: nil, sizes: ordered.map(\.value.count)), kernels: groups)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var json = [UInt8](try encoder.encode(disk))
        // `{…}` becomes `{…,"sha256":"<sha256 of `{…` and the blobs>"}`.
        json.removeLast()
        let sum = sha256(json[...], payload)
        json += sumKey + Array(sum.utf8) + Array("\"}\n".utf8)
        return (json, payload)
    }

    /// The sha256 of `head` followed by `tail`, in hex.
    private static func sha256(_ head: ArraySlice<UInt8>, _ tail: [UInt8]) -> String {
        var hash = SHA256()
        head.withUnsafeBytes { hash.update($0) }
        tail.withUnsafeBytes { hash.update($0) }
        return hash.finalizeHex()
    }

    /// A manifest split into what its sum covers and the sum it records.
    struct Sealed {
        let head: ArraySlice<UInt8>
        let recorded: String
        let manifest: DiskManifest
    }

    /// Split off the manifest's sha256 and decode the rest (not yet checked: `check` does that).
    static func open(_ bytes: [UInt8]) -> Result<Sealed, Reason> {
        var end = bytes.count
        if end > 0, bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let tail = sumKey.count + 64 + 2
        guard end >= tail + 1, bytes[end - 2] == UInt8(ascii: "\""), bytes[end - 1] == UInt8(ascii: "}"),
            Array(bytes[(end - tail)..<(end - tail + sumKey.count)]) == sumKey
        else { return .failure(Reason("it does not end with its sha256")) }
        let recorded = String(decoding: bytes[(end - 66)..<(end - 2)], as: UTF8.self)
        let head = bytes[..<(end - tail)]
        do {
            let manifest = try JSONDecoder().decode(DiskManifest.self, from: Data(head + [UInt8(ascii: "}")]))
            return .success(Sealed(head: head, recorded: recorded, manifest: manifest))
        } catch { return .failure(Reason("\(error)")) }
    }

    /// Format 3: the manifest's sum over itself. Format 4: over itself and `payload`.
    static func check(_ sealed: Sealed, payload: [UInt8]) -> (actual: String, matches: Bool) {
        let actual = sha256(sealed.head, sealed.manifest.format >= 4 ? payload : [])
        return (actual, actual == sealed.recorded)
    }

    struct Reason: Error { let text: String; init(_ text: String) { self.text = text } }

    /// The in-memory manifest, given the verified `blobs` member; nil with a reason when the rows
    /// and sizes do not fit it.
    func manifest(payload: [UInt8]) -> Result<(BundleManifest, [String: Range<Int>]), Reason> {
        guard blobs.total == payload.count else {
            return .failure(
                Reason("the blob sizes do not add up to the blobs member's \(payload.count) bytes"))
        }
        if format >= 4 {
            let prefix = 2 * BuildID.recordedPrefixBytes
            if let long = objects.first(where: { $0.sha256.count != prefix }) {
                return .failure(Reason("object \(long.name) records \(long.sha256.count) hex digits, not \(prefix)"))
            }
            for group in kernels {
                if let long = group.k.first(where: { ($0.buildID?.hex.count ?? prefix) != prefix }) {
                    return .failure(Reason("kernel \(long.release)'s build-id is not \(prefix) hex digits"))
                }
            }
        }
        var digests: [String] = []
        var ranges: [String: Range<Int>] = [:]
        var offset = 0
        for size in blobs.sizes {
            let range = offset..<(offset + size)
            let digest = payload[range].withUnsafeBytes { SHA256.hex($0) }
            digests.append(digest)
            ranges[digest] = range
            offset += size
        }
        var records: [BundleKernel] = []
        for group in kernels {
            for row in group.k {
                guard digests.indices.contains(row.blob) else {
                    return .failure(
                        Reason("kernel \(row.release) names blob \(row.blob); the bundle has \(digests.count)"))
                }
                records.append(
                    BundleKernel(
                        release: row.release, arch: group.arch, distro: group.distro, distroVersion: group.version,
                        buildID: row.buildID, blob: digests[row.blob], pahole: group.pahole))
            }
        }
        var manifest = BundleManifest(
            btfgen: btfgen, compat: compat, objects: objects, kernels: records,
            blobs: ranges.mapValues(\.count))
        manifest.format = format
        return .success((manifest, ranges))
    }
}
