// A whole BTF blob: header, type table and string table, decoded and re-encoded.
//
// Wire layout (all fields in the blob's byte order, detected from the magic):
//
//   +0  u16 magic 0xEB9F | u8 version 1 | u8 flags 0
//   +4  u32 hdr_len (24 today; a longer header's extra bytes must be 0)
//   +8  u32 type_off | u32 type_len | u32 str_off | u32 str_len   (relative to hdr_len)
//   hdr_len + type_off: type records; hdr_len + str_off: NUL-separated strings, "" first.
//
// Each type record is `btf_type` followed by kind-specific data:
//
//   u32 name_off
//   u32 info:  31: kind_flag | 29-30: 0 | 24-28: kind | 16-23: 0 | 0-15: vlen
//   u32 size | type
import ELF

/// The string section, kept as raw bytes so that encoding reproduces it exactly. It may be a
/// window into a larger buffer (the whole file), so that indexing a kernel BTF copies nothing.
public struct StringTable: Sendable, Hashable {
    private var storage: [UInt8]
    /// When set, the strings live in this mapped blob (at `base`) and `storage` is empty.
    private var blob: Blob?
    private var base: Int
    /// Size of the section in bytes.
    public private(set) var count: Int

    public init(bytes: [UInt8] = [0]) {
        storage = bytes
        blob = nil
        base = 0
        count = bytes.count
    }

    /// The strings at `range` of `storage`, without copying.
    public init(storage: [UInt8], range: Range<Int>) {
        self.storage = storage
        blob = nil
        base = range.lowerBound
        count = range.count
    }

    /// The strings at `range` of a blob, without copying.
    init(blob: Blob, range: Range<Int>) {
        storage = []
        self.blob = blob
        base = range.lowerBound
        count = range.count
    }

    /// Run `body` on the section's bytes.
    @inline(__always)
    public func withUnsafeBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let blob {
            return try withExtendedLifetime(blob) {
                try body(
                    UnsafeBufferPointer(
                        start: blob.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + base, count: count))
            }
        }
        return try storage.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[base..<base + count])) }
    }

    /// The section's bytes.
    public var bytes: ArraySlice<UInt8> {
        if blob != nil { return withUnsafeBytes { ArraySlice($0) } }
        return storage[base..<base + count]
    }

    public static func == (a: StringTable, b: StringTable) -> Bool { a.bytes.elementsEqual(b.bytes) }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for b in bytes { hasher.combine(b) }
    }

    /// Append `text` (and its NUL), returning its offset.
    public mutating func append(_ text: String) -> UInt32 {
        if blob != nil || base != 0 || storage.count != count {
            storage = Array(bytes)
            blob = nil
            base = 0
        }
        let offset = UInt32(count)
        storage.append(contentsOf: Array(text.utf8))
        storage.append(0)
        count = storage.count
        return offset
    }

    /// The string at `offset` ("" when out of range).
    public func string(at offset: UInt32) -> String {
        String(decoding: utf8(at: offset), as: UTF8.self)
    }

    /// Does the string at `offset` equal `text` (given as UTF-8)?
    public func equals(_ offset: UInt32, _ text: [UInt8]) -> Bool {
        let o = Int(offset)
        guard o + text.count < count else { return false }
        return withUnsafeBytes { s in
            for i in 0..<text.count where s[o + i] != text[i] { return false }
            return s[o + text.count] == 0
        }
    }

    /// Is the string at `offset` empty (or out of range)? Same as `utf8(at:).isEmpty`, without a copy.
    public func isEmpty(at offset: UInt32) -> Bool {
        let o = Int(offset)
        guard o < count else { return true }
        return withUnsafeBytes { $0[o] == 0 }
    }

    /// Same as `utf8(at: offset).elementsEqual(text)`, without a copy.
    public func equals<C: Collection>(_ offset: UInt32, bytes text: C) -> Bool where C.Element == UInt8 {
        let o = Int(offset)
        guard o < count else { return text.isEmpty }
        return withUnsafeBytes { s in
            var i = o
            for b in text {
                guard i < s.count, s[i] != 0, s[i] == b else { return false }
                i += 1
            }
            return i == s.count || s[i] == 0
        }
    }

    /// The bytes of the string at `offset`, without its NUL.
    public func utf8(at offset: UInt32) -> ArraySlice<UInt8> {
        let o = Int(offset)
        guard o < count else { return [] }
        if blob != nil {
            return withUnsafeBytes { s in
                var end = o
                while end < s.count && s[end] != 0 { end += 1 }
                return ArraySlice(UnsafeBufferPointer(rebasing: s[o..<end]))
            }
        }
        let start = base + o, limit = base + count
        var end = start
        while end < limit && storage[end] != 0 { end += 1 }
        return storage[start..<end]
    }
}

/// Bytes that outlive any one call: a read-only file mapping (or a copy), shared by an index and
/// its string table.
final class Blob: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let release: (UnsafeRawBufferPointer) -> Void

    init(bytes: UnsafeRawBufferPointer, release: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.bytes = bytes
        self.release = release
    }

    /// A private copy of `array`.
    convenience init(copying array: [UInt8]) {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(array.count, 1), alignment: 16)
        array.withUnsafeBytes { p.copyMemory(from: $0) }
        self.init(bytes: UnsafeRawBufferPointer(rebasing: p[0..<array.count])) { _ in p.deallocate() }
    }

    deinit { release(bytes) }
}

/// Builds a string section, storing each distinct string once.
public struct StringTableBuilder {
    public private(set) var bytes: [UInt8] = [0]
    private var offsets: [ArraySlice<UInt8>: UInt32] = [[]: 0]

    public init() {}

    /// The offset of `text`, appending it on first use.
    public mutating func add<C: Collection>(_ text: C) -> UInt32 where C.Element == UInt8 {
        let key = ArraySlice(text)
        if let existing = offsets[key] { return existing }
        let offset = UInt32(bytes.count)
        bytes.append(contentsOf: text)
        bytes.append(0)
        offsets[key] = offset
        return offset
    }

    public mutating func add(_ text: String) -> UInt32 { add(Array(text.utf8)) }

    public var table: StringTable { StringTable(bytes: bytes) }
}

/// A decoded BTF blob. Type id `n` is `types[n - 1]`; id 0 is void.
public struct BTF: Sendable, Hashable {
    public var byteOrder: ByteOrder
    /// The header length to write (≥ 24; bytes past 24 are written as zeros).
    public var headerLength: UInt32
    public var types: [BTFType]
    public var strings: StringTable

    public static let magic: UInt16 = 0xEB9F
    public static let minimumHeaderLength = 24

    public init(
        byteOrder: ByteOrder = .little, headerLength: UInt32 = 24, types: [BTFType] = [],
        strings: StringTable = StringTable()
    ) {
        self.byteOrder = byteOrder
        self.headerLength = headerLength
        self.types = types
        self.strings = strings
    }

    /// Number of ids including void: valid ids are `0..<idCount`.
    public var idCount: Int { types.count + 1 }

    /// The type with this id; nil for void or an id out of range.
    @inline(__always)
    public func type(_ id: TypeID) -> BTFType? {
        let i = Int(id.rawValue)
        return i >= 1 && i <= types.count ? types[i - 1] : nil
    }

    /// The type with this id; the id must exist.
    public subscript(id: TypeID) -> BTFType {
        get { types[Int(id.rawValue) - 1] }
        set { types[Int(id.rawValue) - 1] = newValue }
    }

    /// The name of a type ("" for void and anonymous types).
    public func name(of id: TypeID) -> String {
        guard let t = type(id) else { return "" }
        return strings.string(at: t.nameOffset)
    }

    /// Every type id, in order.
    public var ids: [TypeID] { (0..<types.count).map { TypeID(UInt32($0 + 1)) } }

    /// Add a type, returning its id.
    @discardableResult
    public mutating func append(_ type: BTFType) -> TypeID {
        types.append(type)
        return TypeID(UInt32(types.count))
    }
}

// MARK: Decoding

extension BTF {
    /// Decode and validate BTF from raw bytes (a raw .BTF file or section).
    public init(decoding bytes: UnsafeRawBufferPointer) throws {
        let header = try BTFHeader(bytes)
        let reader = ByteReader(bytes: bytes, littleEndian: header.byteOrder == .little)
        let stringBytes = Array(bytes[header.stringStart..<header.stringEnd])
        try StringTable.validate(stringBytes)
        var decoder = TypeDecoder(
            reader: reader, start: header.typeStart, end: header.typeEnd,
            stringSize: UInt32(stringBytes.count))
        let types = try decoder.decodeAll()
        self.init(
            byteOrder: header.byteOrder, headerLength: header.headerLength, types: types,
            strings: StringTable(bytes: stringBytes))
        if decoder.maxReference >= UInt32(types.count + 1) {
            try validateReferences()
        }
    }

    /// Decode BTF from a byte array.
    public init(decoding bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try BTF(decoding: $0) }
    }

    /// Check every type reference and name offset; throws the first problem with its byte offset.
    public func validateReferences() throws {
        var offset = Int(headerLength)
        let count = idCount
        for (i, t) in types.enumerated() {
            let id = UInt32(i + 1)
            try t.forEachReference { ref in
                if Int(ref.rawValue) >= count {
                    throw BTFError.danglingTypeID(id: id, offset: offset, target: ref.rawValue, typeCount: count)
                }
            }
            if Int(t.nameOffset) >= strings.count {
                throw BTFError.badStringOffset(
                    id: id, offset: offset, stringOffset: t.nameOffset,
                    tableSize: strings.count)
            }
            offset += t.encodedSize
        }
    }
}

extension StringTable {
    /// libbpf's rule: a non-empty section that starts with "" and ends with a NUL.
    static func validate<C: BidirectionalCollection>(_ bytes: C) throws where C.Element == UInt8 {
        guard let first = bytes.first, let last = bytes.last else {
            throw BTFError.malformedStringTable("it is empty; it must hold at least the empty string")
        }
        guard first == 0 else { throw BTFError.malformedStringTable("the first string is not empty") }
        guard last == 0 else { throw BTFError.malformedStringTable("the last string is not NUL-terminated") }
    }
}

/// The fixed header, checked in the order libbpf checks it.
struct BTFHeader {
    var byteOrder: ByteOrder
    var headerLength: UInt32
    var typeStart: Int, typeEnd: Int, stringStart: Int, stringEnd: Int

    init(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count >= BTF.minimumHeaderLength else { throw BTFError.truncatedHeader(available: bytes.count) }
        if bytes[0] == 0x9F && bytes[1] == 0xEB {
            byteOrder = .little
        } else if bytes[0] == 0xEB && bytes[1] == 0x9F {
            byteOrder = .big
        } else {
            throw BTFError.badMagic(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        }
        guard bytes[2] == 1 else { throw BTFError.unsupportedVersion(bytes[2]) }
        guard bytes[3] == 0 else { throw BTFError.unsupportedFlags(bytes[3]) }
        let r = ByteReader(bytes: bytes, littleEndian: byteOrder == .little)
        headerLength = r.u32(4)
        guard headerLength >= 24, Int(headerLength) <= bytes.count else {
            throw BTFError.badHeaderLength(headerLength, available: bytes.count)
        }
        for i in 24..<Int(headerLength) where bytes[i] != 0 { throw BTFError.nonZeroHeaderTail(offset: i) }
        let typeOff = Int(r.u32(8)), typeLen = Int(r.u32(12)), strOff = Int(r.u32(16)), strLen = Int(r.u32(20))
        let data = bytes.count - Int(headerLength)
        guard typeOff == 0 else {
            throw BTFError.badSectionLayout("type_off is \(typeOff); the type section must come first (type_off 0)")
        }
        guard typeLen % 4 == 0 else {
            throw BTFError.badSectionLayout("type_len \(typeLen) is not a multiple of 4")
        }
        guard strOff == typeLen else {
            throw BTFError.badSectionLayout("str_off \(strOff) must directly follow the type section (\(typeLen))")
        }
        guard typeLen <= data, strLen <= data - typeLen else {
            throw BTFError.badSectionLayout(
                "type_len \(typeLen) + str_len \(strLen) exceed the \(data) bytes after the header")
        }
        guard typeLen + strLen == data else {
            throw BTFError.badSectionLayout("\(data - typeLen - strLen) unaccounted bytes follow the string section")
        }
        typeStart = Int(headerLength)
        typeEnd = typeStart + typeLen
        stringStart = typeEnd
        stringEnd = stringStart + strLen
    }
}

/// Walks the type section record by record.
struct TypeDecoder {
    let reader: ByteReader
    let start: Int
    let end: Int
    let stringSize: UInt32
    var maxReference: UInt32 = 0

    init(reader: ByteReader, start: Int, end: Int, stringSize: UInt32) {
        self.reader = reader
        self.start = start
        self.end = end
        self.stringSize = stringSize
    }

    @inline(__always) mutating func ref(_ raw: UInt32) -> TypeID {
        if raw > maxReference { maxReference = raw }
        return TypeID(raw)
    }

    @inline(__always) func name(_ raw: UInt32, id: UInt32, at: Int) throws -> UInt32 {
        guard raw < stringSize else {
            throw BTFError.badStringOffset(id: id, offset: at, stringOffset: raw, tableSize: Int(stringSize))
        }
        return raw
    }

    mutating func decodeAll() throws -> [BTFType] {
        var types: [BTFType] = []
        // Average record is ~36 bytes in vmlinux BTF; over-reserving costs little.
        types.reserveCapacity((end - start) / 32)
        var at = start
        var id: UInt32 = 1
        while at < end {
            let (t, size) = try decode(id: id, at: at)
            types.append(t)
            at += size
            id &+= 1
        }
        return types
    }

    /// The checks every record passes before its body is read.
    struct RecordHeader {
        var nameOffset: UInt32
        var sizeOrType: UInt32
        var code: KindCode
        var vlen: UInt16
        var kindFlag: Bool
        var size: Int
    }

    @inline(__always)
    func header(id: UInt32, at: Int) throws -> RecordHeader {
        let r = reader
        guard end - at >= 12 else {
            throw BTFError.truncatedType(id: id, offset: at, needed: 12, available: end - at)
        }
        let nameOff = try name(r.u32(at), id: id, at: at)
        let info = r.u32(at + 4)
        let sizeOrType = r.u32(at + 8)
        guard info & 0x60ff_0000 == 0 else { throw BTFError.reservedInfoBits(id: id, offset: at, info: info) }
        let rawKind = UInt8((info >> 24) & 0x1f)
        guard let code = KindCode(rawValue: rawKind) else {
            throw BTFError.unknownKind(id: id, offset: at, kind: rawKind)
        }
        let vlen = UInt16(info & 0xffff)
        let kflag = info >> 31 != 0
        let size = code.recordSize(vlen: Int(vlen))
        guard end - at >= size else {
            throw BTFError.truncatedType(id: id, offset: at, needed: size, available: end - at)
        }
        // Kinds without trailing records must not claim any; kind_flag only where it means something.
        if code.entrySize == 0 && code != .function && vlen != 0 {
            throw BTFError.unexpectedVlen(id: id, offset: at, kind: code, vlen: vlen)
        }
        switch code {
        case .structure, .union, .enumeration, .enum64, .forward, .declTag, .typeTag: break
        case .int, .pointer, .array, .typedef, .volatile, .const, .restrict, .function, .functionProto,
            .variable, .dataSection, .float:
            if kflag { throw BTFError.unexpectedKindFlag(id: id, offset: at, kind: code) }
        }
        switch code {
        case .int:
            let data = r.u32(at + 12)
            guard data & 0xf000_ff00 == 0 else { throw BTFError.invalidInt(id: id, offset: at, data: data) }
        case .array:
            guard sizeOrType == 0 else {
                throw BTFError.nonZeroField(id: id, offset: at, field: "ARRAY size", value: sizeOrType)
            }
        case .forward:
            guard sizeOrType == 0 else {
                throw BTFError.nonZeroField(id: id, offset: at, field: "FWD type", value: sizeOrType)
            }
        case .pointer, .structure, .union, .enumeration, .typedef, .volatile, .const, .restrict, .function,
            .functionProto, .variable, .dataSection, .float, .declTag, .typeTag, .enum64:
            break
        }
        return RecordHeader(
            nameOffset: nameOff, sizeOrType: sizeOrType, code: code, vlen: vlen, kindFlag: kflag,
            size: size)
    }

    /// Validate the record at `at` without building it: names in range, references noted in
    /// `maxReference`. Returns the header (with the record size).
    mutating func scan(id: UInt32, at: Int) throws -> RecordHeader {
        let h = try header(id: id, at: at)
        let r = reader
        let body = at + 12
        switch h.code {
        case .int, .forward, .float: break
        case .pointer, .typedef, .volatile, .const, .restrict, .function, .variable, .declTag, .typeTag:
            _ = ref(h.sizeOrType)
        case .array:
            _ = ref(r.u32(body))
            _ = ref(r.u32(body + 4))
        case .structure, .union:
            var m = body
            for _ in 0..<Int(h.vlen) {
                _ = try name(r.u32(m), id: id, at: at)
                _ = ref(r.u32(m + 4))
                m += 12
            }
        case .enumeration, .enum64:
            let step = h.code == .enumeration ? 8 : 12
            var m = body
            for _ in 0..<Int(h.vlen) {
                _ = try name(r.u32(m), id: id, at: at)
                m += step
            }
        case .functionProto:
            _ = ref(h.sizeOrType)
            var m = body
            for _ in 0..<Int(h.vlen) {
                _ = try name(r.u32(m), id: id, at: at)
                _ = ref(r.u32(m + 4))
                m += 8
            }
        case .dataSection:
            var m = body
            for _ in 0..<Int(h.vlen) {
                _ = ref(r.u32(m))
                m += 12
            }
        }
        return h
    }

    /// Decode the record at `at`, returning it and its size.
    mutating func decode(id: UInt32, at: Int) throws -> (BTFType, Int) {
        let h = try header(id: id, at: at)
        let r = reader
        let nameOff = h.nameOffset, sizeOrType = h.sizeOrType, code = h.code, vlen = h.vlen, kflag = h.kindFlag
        let size = h.size
        let body = at + 12
        let kind: Kind
        switch code {
        case .int:
            let data = r.u32(body)
            kind = .int(
                size: sizeOrType, encoding: UInt8(data >> 24), bitOffset: UInt8((data >> 16) & 0xff),
                bits: UInt8(data & 0xff))
        case .pointer: kind = .pointer(ref(sizeOrType))
        case .array:
            kind = .array(element: ref(r.u32(body)), index: ref(r.u32(body + 4)), count: r.u32(body + 8))
        case .structure, .union:
            var members: [Member] = []
            members.reserveCapacity(Int(vlen))
            var m = body
            for _ in 0..<Int(vlen) {
                members.append(
                    Member(
                        nameOffset: try name(r.u32(m), id: id, at: at), type: ref(r.u32(m + 4)),
                        offset: r.u32(m + 8)))
                m += 12
            }
            let c = Composite(size: sizeOrType, bitfieldMembers: kflag, members: members)
            kind = code == .structure ? .structure(c) : .union(c)
        case .enumeration:
            var values: [Enumerator] = []
            values.reserveCapacity(Int(vlen))
            var m = body
            for _ in 0..<Int(vlen) {
                values.append(Enumerator(nameOffset: try name(r.u32(m), id: id, at: at), value: UInt64(r.u32(m + 4))))
                m += 8
            }
            kind = .enumeration(Enumeration(size: sizeOrType, isSigned: kflag, values: values))
        case .enum64:
            var values: [Enumerator] = []
            values.reserveCapacity(Int(vlen))
            var m = body
            for _ in 0..<Int(vlen) {
                let value = UInt64(r.u32(m + 4)) | UInt64(r.u32(m + 8)) << 32
                values.append(Enumerator(nameOffset: try name(r.u32(m), id: id, at: at), value: value))
                m += 12
            }
            kind = .enum64(Enumeration(size: sizeOrType, isSigned: kflag, values: values))
        case .forward:
            kind = .forward(isUnion: kflag)
        case .typedef: kind = .typedef(ref(sizeOrType))
        case .volatile: kind = .volatile(ref(sizeOrType))
        case .const: kind = .const(ref(sizeOrType))
        case .restrict: kind = .restrict(ref(sizeOrType))
        case .function: kind = .function(proto: ref(sizeOrType), linkage: vlen)
        case .functionProto:
            var parameters: [Parameter] = []
            parameters.reserveCapacity(Int(vlen))
            var m = body
            for _ in 0..<Int(vlen) {
                parameters.append(Parameter(nameOffset: try name(r.u32(m), id: id, at: at), type: ref(r.u32(m + 4))))
                m += 8
            }
            kind = .functionProto(returns: ref(sizeOrType), parameters: parameters)
        case .variable: kind = .variable(type: ref(sizeOrType), linkage: r.u32(body))
        case .dataSection:
            var variables: [SectionVariable] = []
            variables.reserveCapacity(Int(vlen))
            var m = body
            for _ in 0..<Int(vlen) {
                variables.append(SectionVariable(type: ref(r.u32(m)), offset: r.u32(m + 4), size: r.u32(m + 8)))
                m += 12
            }
            kind = .dataSection(size: sizeOrType, variables: variables)
        case .float: kind = .float(size: sizeOrType)
        case .declTag:
            kind = .declTag(type: ref(sizeOrType), componentIndex: Int32(bitPattern: r.u32(body)), isAttribute: kflag)
        case .typeTag: kind = .typeTag(ref(sizeOrType), isAttribute: kflag)
        }
        return (BTFType(nameOffset: nameOff, kind: kind), size)
    }
}

// MARK: Encoding

/// Writes fixed-width integers in a chosen byte order.
struct ByteWriter {
    var bytes: [UInt8]
    let little: Bool

    init(capacity: Int, order: ByteOrder) {
        bytes = []
        bytes.reserveCapacity(capacity)
        little = order == .little
    }

    @inline(__always) mutating func u32(_ v: UInt32) {
        let x = little ? v.littleEndian : v.bigEndian
        withUnsafeBytes(of: x) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func u16(_ v: UInt16) {
        let x = little ? v.littleEndian : v.bigEndian
        withUnsafeBytes(of: x) { bytes.append(contentsOf: $0) }
    }
}

extension BTF {
    /// Size in bytes of the type section.
    public var typeSectionSize: Int { types.reduce(0) { $0 + $1.encodedSize } }

    /// The wire bytes: header, types, strings, in `byteOrder`.
    public func encoded() -> [UInt8] {
        let typeLen = typeSectionSize
        let hdr = Int(max(headerLength, 24))
        var w = ByteWriter(capacity: hdr + typeLen + strings.count, order: byteOrder)
        w.u16(BTF.magic)
        w.bytes.append(1)
        w.bytes.append(0)
        w.u32(UInt32(hdr))
        w.u32(0)
        w.u32(UInt32(typeLen))
        w.u32(UInt32(typeLen))
        w.u32(UInt32(strings.count))
        w.bytes.append(contentsOf: repeatElement(0, count: hdr - 24))
        for t in types { encode(t, into: &w) }
        w.bytes.append(contentsOf: strings.bytes)
        return w.bytes
    }

    private func encode(_ t: BTFType, into w: inout ByteWriter) {
        func head(_ code: KindCode, vlen: Int, kflag: Bool, _ sizeOrType: UInt32) {
            w.u32(t.nameOffset)
            w.u32((kflag ? 1 << 31 : 0) | UInt32(code.rawValue) << 24 | UInt32(vlen & 0xffff))
            w.u32(sizeOrType)
        }
        switch t.kind {
        case .int(let size, let encoding, let bitOffset, let bits):
            head(.int, vlen: 0, kflag: false, size)
            w.u32(UInt32(encoding) << 24 | UInt32(bitOffset) << 16 | UInt32(bits))
        case .pointer(let to): head(.pointer, vlen: 0, kflag: false, to.rawValue)
        case .array(let element, let index, let count):
            head(.array, vlen: 0, kflag: false, 0)
            w.u32(element.rawValue)
            w.u32(index.rawValue)
            w.u32(count)
        case .structure(let c), .union(let c):
            head(t.kind.code, vlen: c.members.count, kflag: c.bitfieldMembers, c.size)
            for m in c.members {
                w.u32(m.nameOffset)
                w.u32(m.type.rawValue)
                w.u32(m.offset)
            }
        case .enumeration(let e):
            head(.enumeration, vlen: e.values.count, kflag: e.isSigned, e.size)
            for v in e.values {
                w.u32(v.nameOffset)
                w.u32(UInt32(truncatingIfNeeded: v.value))
            }
        case .enum64(let e):
            head(.enum64, vlen: e.values.count, kflag: e.isSigned, e.size)
            for v in e.values {
                w.u32(v.nameOffset)
                w.u32(UInt32(truncatingIfNeeded: v.value))
                w.u32(UInt32(truncatingIfNeeded: v.value >> 32))
            }
        case .forward(let isUnion): head(.forward, vlen: 0, kflag: isUnion, 0)
        case .typedef(let to): head(.typedef, vlen: 0, kflag: false, to.rawValue)
        case .volatile(let to): head(.volatile, vlen: 0, kflag: false, to.rawValue)
        case .const(let to): head(.const, vlen: 0, kflag: false, to.rawValue)
        case .restrict(let to): head(.restrict, vlen: 0, kflag: false, to.rawValue)
        case .function(let proto, let linkage): head(.function, vlen: Int(linkage), kflag: false, proto.rawValue)
        case .functionProto(let returns, let parameters):
            head(.functionProto, vlen: parameters.count, kflag: false, returns.rawValue)
            for p in parameters {
                w.u32(p.nameOffset)
                w.u32(p.type.rawValue)
            }
        case .variable(let type, let linkage):
            head(.variable, vlen: 0, kflag: false, type.rawValue)
            w.u32(linkage)
        case .dataSection(let size, let variables):
            head(.dataSection, vlen: variables.count, kflag: false, size)
            for v in variables {
                w.u32(v.type.rawValue)
                w.u32(v.offset)
                w.u32(v.size)
            }
        case .float(let size): head(.float, vlen: 0, kflag: false, size)
        case .declTag(let type, let index, let isAttribute):
            head(.declTag, vlen: 0, kflag: isAttribute, type.rawValue)
            w.u32(UInt32(bitPattern: index))
        case .typeTag(let to, let isAttribute): head(.typeTag, vlen: 0, kflag: isAttribute, to.rawValue)
        }
    }
}
