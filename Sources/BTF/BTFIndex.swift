// A BTF read in place: the header is checked, every record is located (and, when asked,
// validated like `BTF(decoding:)` does), but a type's body is only built when someone asks for it.
// This is what makes minimizing a whole catalog cheap: CO-RE touches a few dozen of a kernel's
// ~100,000 types.
import ELF
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Types already decoded from an index: CO-RE asks for the same few structs again and again.
final class DecodedTypes: Sendable {
    private let entries = Mutex<[UInt32: BTFType]>([:])
    /// The first record that failed to decode (an unvalidated index checks records only then).
    let failure = Mutex<BTFError?>(nil)

    func get(_ id: UInt32) -> BTFType? { entries.withLock { $0[id] } }
    func put(_ id: UInt32, _ type: BTFType) { entries.withLock { $0[id] = type } }
}

/// Byte offsets of a BTF's records, id 1 first: located in memory, or read in place from a
/// mapped type index file (little-endian u32s; `owner` keeps them alive).
struct RecordOffsets: @unchecked Sendable {
    private let base: UnsafeRawPointer?
    let count: Int
    private let owner: AnyObject

    init(_ storage: OffsetStorage, count: Int) {
        base = UnsafeRawPointer(storage.buffer.baseAddress)
        self.count = count
        owner = storage
    }

    init(in bytes: UnsafeRawBufferPointer, at offset: Int, count: Int, owner: AnyObject) {
        base = bytes.baseAddress.map { $0 + offset }
        self.count = count
        self.owner = owner
    }

    @inline(__always)
    subscript(_ i: Int) -> UInt32 {
        UInt32(littleEndian: base.unsafelyUnwrapped.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
    }

    var first: UInt32? { count > 0 ? self[0] : nil }
    var last: UInt32? { count > 0 ? self[count - 1] : nil }
}

/// Room for the offsets a scan finds; pages past the final count are never touched.
final class OffsetStorage {
    let buffer: UnsafeMutableBufferPointer<UInt32>
    init(capacity: Int) { buffer = .allocate(capacity: max(capacity, 1)) }
    deinit { buffer.deallocate() }
}

/// A lazily decoding view of one BTF blob.
public struct BTFIndex: TypeTable, Sendable {
    /// The whole blob (header, types, strings).
    private let data: Blob
    /// Byte offset of type `id`'s record in `data`, at `offsets[id - 1]`.
    let offsets: RecordOffsets
    /// The types that passed `prefilter` while indexing, with their name offsets and kinds.
    let prefilter: NamePrefilter?
    let prefiltered: (ids: [UInt32], names: [UInt32], kinds: [UInt8])
    /// Whether the records came from a type index file rather than a scan.
    public let locatedByFile: Bool
    public let strings: StringTable
    public let byteOrder: ByteOrder
    public let headerLength: UInt32
    private let typeEnd: Int
    private let cache = DecodedTypes()

    /// Index raw BTF. With `validate`, every record's names and type references are checked as
    /// `BTF(decoding:)` checks them; without, only what locating records needs (kinds, vlen
    /// bounds) and the rest is checked as types are decoded.
    public init(_ bytes: [UInt8], validate: Bool = true, prefilter: NamePrefilter? = nil) throws {
        try self.init(blob: Blob(copying: bytes), validate: validate, prefilter: prefilter)
    }

    init(blob: Blob, validate: Bool, prefilter: NamePrefilter? = nil) throws {
        let raw = blob.bytes
        let header = try BTFHeader(raw)
        let stringCount = header.stringEnd - header.stringStart
        try StringTable.validate(UnsafeRawBufferPointer(rebasing: raw[header.stringStart..<header.stringEnd]))
        var maxReference: UInt32 = 0
        let reader = ByteReader(bytes: raw, littleEndian: header.byteOrder == .little)
        var decoder = TypeDecoder(
            reader: reader, start: header.typeStart, end: header.typeEnd,
            stringSize: UInt32(stringCount))
        // Every record is at least 12 bytes: that bounds the count. Plain buffers, filled once.
        let capacity = (header.typeEnd - header.typeStart) / 12 + 1
        // Filled in place: pages past the final count are never touched.
        var hits = Prefiltered()
        let storage = OffsetStorage(capacity: capacity)
        let count = try Self.locate(
            header: header, raw: raw, reader: reader, decoder: &decoder, validate: validate,
            offsets: storage.buffer, prefilter: prefilter, hits: &hits)
        let offsets = RecordOffsets(storage, count: count)
        maxReference = decoder.maxReference
        self.offsets = offsets
        self.prefilter = prefilter
        self.prefiltered = (hits.ids, hits.names, hits.kinds)
        locatedByFile = false
        data = blob
        self.strings = StringTable(blob: blob, range: header.stringStart..<header.stringEnd)
        byteOrder = header.byteOrder
        headerLength = header.headerLength
        typeEnd = header.typeEnd
        if validate && Int(maxReference) >= offsets.count + 1 {
            // Rare: find the first culprit with its offset.
            try BTF(decoding: raw).validateReferences()
        }
    }

    /// An index whose records were located before (`TypeIndexFile`): nothing is scanned.
    private init(
        blob: Blob, header: BTFHeader, offsets: RecordOffsets, prefilter: NamePrefilter,
        prefiltered: (ids: [UInt32], names: [UInt32], kinds: [UInt8])
    ) throws {
        let raw = blob.bytes
        try StringTable.validate(UnsafeRawBufferPointer(rebasing: raw[header.stringStart..<header.stringEnd]))
        self.offsets = offsets
        self.prefilter = prefilter
        self.prefiltered = prefiltered
        locatedByFile = true
        data = blob
        strings = StringTable(blob: blob, range: header.stringStart..<header.stringEnd)
        byteOrder = header.byteOrder
        headerLength = header.headerLength
        typeEnd = header.typeEnd
    }

    struct Prefiltered {
        var ids: [UInt32] = []
        var names: [UInt32] = []
        var kinds: [UInt8] = []
    }

    /// Find every record: fills `offsets`, returns the count. Types that pass `prefilter` are
    /// collected in `hits` on the way (one pass over the records).
    private static func locate(
        header: BTFHeader, raw: UnsafeRawBufferPointer, reader: ByteReader, decoder: inout TypeDecoder,
        validate: Bool, offsets offsetBuffer: UnsafeMutableBufferPointer<UInt32>, prefilter: NamePrefilter?,
        hits: inout Prefiltered
    ) throws -> Int {
        var count = 0
        let strings = UnsafeRawBufferPointer(rebasing: raw[header.stringStart..<header.stringEnd])
        let stringCount = strings.count
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: 64 + 256) { table in
            // Bytes of a record with vlen 0 (0..<32) and per vlen entry (32..<64), by kind; then
            // whether a name starting with byte b passes the prefilter (64 + b).
            for k in 0..<32 {
                let code = KindCode(rawValue: UInt8(k))
                table[k] = code?.recordSize(vlen: 0) ?? 0  // 0 for an unknown kind: refused below
                table[32 + k] = code?.entrySize ?? 0
            }
            for b in 0..<256 { table[64 + b] = prefilter?.firstBytes.contains(UInt8(b)) == true ? 1 : 0 }
            let kindMask = prefilter?.kinds ?? 0
            var at = header.typeStart
            let end = header.typeEnd
            while at < end {
                let id = UInt32(count + 1)
                offsetBuffer[count] = UInt32(truncatingIfNeeded: at)
                let name: UInt32, kind: Int
                if validate {
                    let h = try decoder.scan(id: id, at: at)
                    name = h.nameOffset
                    kind = Int(h.code.rawValue)
                    at += h.size
                } else {
                    // Fast path: just enough to find the next record; bodies are checked on decode.
                    guard end - at >= 12 else {
                        _ = try decoder.header(id: id, at: at)
                        throw BTFError.internalError("record \(id) rejected without a reason")
                    }
                    let info = reader.u32(at + 4)
                    kind = Int((info >> 24) & 0x1f)
                    let size = table[kind] &+ table[32 + kind] &* Int(info & 0xffff)
                    guard size >= 12, end - at >= size else {
                        _ = try decoder.header(id: id, at: at)  // throws the precise error
                        throw BTFError.internalError("record \(id) rejected without a reason")
                    }
                    name = reader.u32(at)
                    at += size
                }
                if kindMask & (1 << UInt32(kind)) != 0 && name != 0 && Int(name) < stringCount
                    && table[64 + Int(strings[Int(name)])] != 0
                {
                    hits.ids.append(id)
                    hits.names.append(name)
                    hits.kinds.append(UInt8(truncatingIfNeeded: kind))
                }
                count += 1
            }
        }
        return count
    }

    /// Index the .BTF of an ELF file, or raw BTF.
    public init(loading bytes: UnsafeRawBufferPointer, validate: Bool = true) throws {
        try self.init(Array(try btfSection(of: bytes)), validate: validate)
    }

    /// Index the file at `path` (raw BTF, or ELF with a .BTF section) in place: the file is
    /// mapped, not copied. Returns nil when the file cannot be mapped (sysfs, pipes); the caller
    /// then reads it whole. `fileSize` is the file's size.
    /// With `located` (the file's `TypeIndexFile`, when it covers `prefilter`), nothing is scanned:
    /// only the pages CO-RE reads are ever touched.
    public static func mapping(
        _ path: String, validate: Bool = true, prefilter: NamePrefilter? = nil, located: TypeIndexFile? = nil
    ) throws -> (index: BTFIndex, fileSize: Int)? {
        let located = prefilter.flatMap { p in located?.covers(p) == true && !validate ? located : nil }
        // O_NONBLOCK: a fifo must not block the open; the caller refuses what is not a file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 else { return nil }
        let size = Int(st.st_size)
        // Raw BTF is read nearly whole: map it all at once. An ELF file (a vmlinux, hundreds of
        // MB) is only read at its headers and .BTF: map it lazily.
        var magic: UInt32 = 0
        let isELF = pread(fd, &magic, 4, 0) == 4 && magic == UInt32(littleEndian: 0x464c_457f)
        let flags = isELF || located != nil ? MAP_PRIVATE : MAP_PRIVATE | MAP_POPULATE
        guard let p = mmap(nil, size, PROT_READ, flags, fd, 0), p != MAP_FAILED else {
            return nil
        }
        // Through a type index only the few records CO-RE reads are touched, scattered: no
        // read-ahead around them.
        if located != nil { _ = madvise(p, size, MADV_RANDOM) }
        let file = UnsafeRawBufferPointer(start: p, count: size)
        let mapping = Blob(bytes: file) { munmap(UnsafeMutableRawPointer(mutating: $0.baseAddress!), $0.count) }
        if ELFFile.hasMagic(file) {
            let section = try btfSection(of: file)
            // The section shares the mapping's lifetime.
            let blob = Blob(bytes: section) { _ in withExtendedLifetime(mapping) {} }
            return (try BTFIndex(blob: blob, validate: validate, prefilter: prefilter, located: located), size)
        }
        return (try BTFIndex(blob: mapping, validate: validate, prefilter: prefilter, located: located), size)
    }

    /// From a type index file when there is one and it fits this BTF, else by locating every
    /// record; a file that does not fit is passed over for a scan that collects all it would list
    /// (`TypeIndexFile.fullPrefilter`, which covers what it was asked for), so it can be written anew.
    private init(blob: Blob, validate: Bool, prefilter: NamePrefilter?, located: TypeIndexFile?) throws {
        guard let located, let prefilter else {
            try self.init(blob: blob, validate: validate, prefilter: prefilter)
            return
        }
        let header = try BTFHeader(blob.bytes)
        if let (offsets, hits) = located.records(for: prefilter, header: header) {
            try self.init(blob: blob, header: header, offsets: offsets, prefilter: prefilter, prefiltered: hits)
        } else {
            try self.init(blob: blob, validate: validate, prefilter: TypeIndexFile.fullPrefilter)
        }
    }

    public var idCount: Int { offsets.count + 1 }

    /// Number of types, not counting void.
    public var typeCount: Int { offsets.count }

    public func type(_ id: TypeID) -> BTFType? {
        let i = Int(id.rawValue)
        guard i >= 1 && i <= offsets.count else { return nil }
        if let hit = cache.get(id.rawValue) { return hit }
        let decoded: BTFType? = withExtendedLifetime(data) {
            let raw = data.bytes
            var decoder = TypeDecoder(
                reader: ByteReader(bytes: raw, littleEndian: byteOrder == .little),
                start: Int(headerLength), end: typeEnd, stringSize: UInt32(strings.count))
            do { return try decoder.decode(id: UInt32(i), at: Int(offsets[i - 1])).0 } catch {
                // Callers see nil (no such type); what was wrong, with the type id and byte
                // offset, waits in `decodingFailure` for the caller to report.
                let failure =
                    error as? BTFError
                    ?? .internalError("type \(i) at byte offset \(offsets[i - 1]): \(error)")
                cache.failure.withLock { if $0 == nil { $0 = failure } }
                return nil
            }
        }
        if let decoded { cache.put(id.rawValue, decoded) }
        return decoded
    }

    /// The first type record that failed to decode, with its type id and byte offset. An index
    /// built without `validate` checks a record only when `type(_:)` decodes it, and reports a
    /// damaged one as absent: callers that got nil from `type(_:)` ask here why.
    public var decodingFailure: BTFError? { cache.failure.withLock { $0 } }

    /// Name offset and kind number of type `index + 1`, read from its record (checked when indexing).
    @inline(__always)
    private func header(_ raw: UnsafeRawBufferPointer, _ index: Int) -> (name: UInt32, kind: UInt8) {
        let reader = ByteReader(bytes: raw, littleEndian: byteOrder == .little)
        let at = Int(offsets[index])
        return (reader.u32(at), UInt8(truncatingIfNeeded: (reader.u32(at + 4) >> 24) & 0x1f))
    }

    public func forEachTypeHeader(_ body: (TypeID, UInt32, KindCode) -> Void) {
        withExtendedLifetime(data) {
            let raw = data.bytes
            for i in 0..<offsets.count {
                let h = header(raw, i)
                // Kinds were checked when indexing.
                body(TypeID(UInt32(i + 1)), h.name, KindCode(rawValue: h.kind) ?? .int)
            }
        }
    }

    /// Name offsets of all types, in id order (id 1 first).
    public var nameOffsets: [UInt32] {
        withExtendedLifetime(data) { (0..<offsets.count).map { header(data.bytes, $0).name } }
    }

    /// Kind numbers of all types, in id order (id 1 first).
    public var kindNumbers: [UInt8] {
        withExtendedLifetime(data) { (0..<offsets.count).map { header(data.bytes, $0).kind } }
    }

    /// The types collected while indexing, when `prefilter` covers `wanted`.
    public func prefilteredTypes(for wanted: NamePrefilter) -> (ids: [UInt32], names: [UInt32], kinds: [UInt8])? {
        guard let prefilter, prefilter.covers(wanted) else { return nil }
        return prefiltered
    }
}

/// Which types an index collects while locating records: those of `kinds` (bit n for kind number n)
/// whose name starts with one of `firstBytes`. CO-RE candidate lookup then looks only at these.
public struct NamePrefilter: Sendable, Hashable {
    public var kinds: UInt32
    public var firstBytes: Set<UInt8>
    /// The essential names wanted, when known: a type index file then answers by name instead of
    /// by first byte. Nil: any name with one of `firstBytes`.
    public var names: Set<[UInt8]>?

    public init(kinds: UInt32, firstBytes: Set<UInt8>, names: Set<[UInt8]>? = nil) {
        self.kinds = kinds
        self.firstBytes = firstBytes
        self.names = names
    }

    /// Does everything `other` would collect pass this filter too?
    public func covers(_ other: NamePrefilter) -> Bool {
        guard other.kinds & ~kinds == 0 && other.firstBytes.isSubset(of: firstBytes) else { return false }
        guard let names else { return true }
        return other.names?.isSubset(of: names) ?? false
    }
}
