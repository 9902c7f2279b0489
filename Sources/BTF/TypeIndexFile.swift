// Where a kernel BTF's records are, kept in a small file beside it, so that minimizing a catalog
// reads only the few dozen types CO-RE touches instead of locating all ~100,000 records of every
// kernel on every run (for a fleet, that scan was most of the work). It holds:
//
//   0   magic "BTFGENX2"
//   8   sha256 of the BTF file it describes (32 bytes): a file for other bytes is never used
//   40  type count (u32)        44  kinds listed below (u32, bit n: kind n)
//   48  named count (u32)       52  bucket count, a power of two (u32)
//   56  each type's record offset in the BTF blob (u32 × type count), id 1 first
//       per bucket, where its named types start (u32 × (buckets + 1)), into the next two
//       named types of those kinds, by bucket then id: kind << 27 | id (u32 × named)
//       their name offsets (u32 × named)
//
// A named type's bucket is the FNV-1a hash of its essential name (the name without a `___flavor`
// suffix, as CO-RE compares names), so the candidates of a name are one bucket away. All
// little-endian. The kinds are those a CO-RE relocation's candidates can have; a question about
// others is answered by locating the records as without the file. The file is derived data: the
// catalog keeps it trusted the way it keeps its BTF files (Catalog's `.verified` record) and
// rebuilds it from the verified BTF whenever it is missing or does not match.

/// A BTF's record offsets and named types, read from or written to a type index file.
/// (Unchecked: its bytes are a read-only mapping that `owner` keeps alive.)
public struct TypeIndexFile: @unchecked Sendable {
    static let magic: [UInt8] = Array("BTFGENX2".utf8)
    static let headerSize = 56
    /// Named types of these kinds are listed: every kind a CO-RE candidate can have.
    public static let kinds: UInt32 = [
        KindCode.int, .structure, .union, .enumeration, .enum64, .typedef, .forward, .float,
    ].reduce(0) { $0 | 1 << UInt32($1.rawValue) }

    private let bytes: UnsafeRawBufferPointer
    /// Keeps `bytes` alive (the file's mapping).
    private let owner: AnyObject & Sendable
    public let typeCount: Int
    private let namedCount: Int
    private let bucketCount: Int
    private let kinds: UInt32

    /// Check a file's bytes for the BTF whose sha256 is `btfSHA256` (raw, 32 bytes). Nil when
    /// they are not a type index file of that BTF: the caller locates the records instead.
    /// `bytes` must stay valid while `owner` lives.
    public init?(bytes: UnsafeRawBufferPointer, owner: AnyObject & Sendable, btfSHA256: [UInt8]) {
        let h = TypeIndexFile.headerSize
        guard bytes.count >= h, bytes[0..<8].elementsEqual(TypeIndexFile.magic),
            bytes[8..<40].elementsEqual(btfSHA256)
        else { return nil }
        self.owner = owner
        func u32(_ at: Int) -> Int { Int(TypeIndexFile.u32(bytes, at)) }
        typeCount = u32(40)
        kinds = UInt32(u32(44))
        namedCount = u32(48)
        bucketCount = u32(52)
        guard typeCount > 0, bucketCount > 0, bucketCount & (bucketCount - 1) == 0,
            bytes.count == h + 4 * typeCount + 4 * (bucketCount + 1) + 8 * namedCount,
            u32(h + 4 * typeCount + 4 * bucketCount) == namedCount
        else { return nil }
        self.bytes = bytes
    }

    /// Whether the file answers what `prefilter` asks: its kinds are listed and its names known.
    public func covers(_ prefilter: NamePrefilter) -> Bool { prefilter.kinds & ~kinds == 0 && prefilter.names != nil }

    /// The record offsets, and the named types whose essential name may be one of `prefilter`'s
    /// (a superset: the caller compares names) in id order; nil when the offsets do not fit the
    /// BTF (`header`) they are said to locate or the name table is damaged.
    func records(for prefilter: NamePrefilter, header: BTFHeader) -> (
        RecordOffsets, (ids: [UInt32], names: [UInt32], kinds: [UInt8])
    )? {
        let h = TypeIndexFile.headerSize
        let offsets = RecordOffsets(in: bytes, at: h, count: typeCount, owner: owner)
        guard offsets.first == UInt32(header.typeStart), offsets.last! + 12 <= UInt32(header.typeEnd) else {
            return nil
        }
        let buckets = h + 4 * typeCount
        let ids = buckets + 4 * (bucketCount + 1), names = ids + 4 * namedCount
        var seen = Set<Int>()
        var hits: [(id: UInt32, name: UInt32, kind: UInt8)] = []
        for name in prefilter.names ?? [] {
            let b = Int(TypeIndexFile.hash(name[...]) & UInt32(bucketCount - 1))
            guard seen.insert(b).inserted else { continue }
            let start = Int(TypeIndexFile.u32(bytes, buckets + 4 * b))
            let end = Int(TypeIndexFile.u32(bytes, buckets + 4 * (b + 1)))
            guard start <= end, end <= namedCount else { return nil }
            for i in start..<end {
                let packed = TypeIndexFile.u32(bytes, ids + 4 * i)
                let kind = UInt8(packed >> 27)
                guard prefilter.kinds & (1 << UInt32(kind)) != 0 else { continue }
                hits.append((packed & 0x07ff_ffff, TypeIndexFile.u32(bytes, names + 4 * i), kind))
            }
        }
        hits.sort { $0.id < $1.id }
        return (offsets, (hits.map(\.id), hits.map(\.name), hits.map(\.kind)))
    }

    /// The type index file of `index`, which must have been built with `fullPrefilter`, for the
    /// BTF whose sha256 is `btfSHA256` (raw, 32 bytes).
    public static func encode(_ index: BTFIndex, btfSHA256: [UInt8]) -> [UInt8]? {
        guard btfSHA256.count == 32, let listed = index.prefilteredTypes(for: fullPrefilter),
            index.offsets.count < 1 << 27
        else { return nil }
        var bucketCount = 1024
        while bucketCount < listed.ids.count / 2 { bucketCount <<= 1 }
        // Named types by bucket, then id (they come in id order).
        var byBucket = [[Int]](repeating: [], count: bucketCount)
        index.strings.withUnsafeBytes { strings in
            for i in listed.ids.indices where Int(listed.names[i]) < strings.count {
                let start = Int(listed.names[i])
                var end = start
                while end < strings.count && strings[end] != 0 { end += 1 }
                let name = strings[start..<end]
                let essential = name.prefix(essentialNameLength(name))
                byBucket[Int(hash(essential) & UInt32(bucketCount - 1))].append(i)
            }
        }
        let order = byBucket.flatMap { $0 }
        var out = magic + btfSHA256
        out.reserveCapacity(headerSize + 4 * (index.offsets.count + bucketCount + 1 + 2 * order.count))
        for v in [UInt32(index.offsets.count), kinds, UInt32(order.count), UInt32(bucketCount)] { append(&out, v) }
        for i in 0..<index.offsets.count { append(&out, index.offsets[i]) }
        var start: UInt32 = 0
        for bucket in byBucket {
            append(&out, start)
            start += UInt32(bucket.count)
        }
        append(&out, start)
        for i in order { append(&out, UInt32(listed.kinds[i]) << 27 | listed.ids[i]) }
        for i in order { append(&out, listed.names[i]) }
        return out
    }

    /// A sha256 in hex as its 32 bytes.
    public static func digestBytes(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    /// What an index must collect to be written out: every named type of the listed kinds.
    public static let fullPrefilter = NamePrefilter(kinds: kinds, firstBytes: Set(1...255))

    /// FNV-1a, 32 bits.
    static func hash<C: Collection>(_ name: C) -> UInt32 where C.Element == UInt8 {
        var h: UInt32 = 0x811c_9dc5
        for b in name { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }

    private static func append(_ out: inout [UInt8], _ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func u32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
}
