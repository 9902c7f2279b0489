// A BTF read in place: the header is checked, every record is located (and, when asked,
// validated like `BTF(decoding:)` does), but a type's body is only built when someone asks for it.
// This is what makes minimizing a whole catalog cheap: CO-RE touches a few dozen of a kernel's
// ~100,000 types.
import ELF

/// A lazily decoding view of one BTF blob.
public struct BTFIndex: TypeTable, Sendable {
    /// The whole blob (header, types, strings).
    private let data: [UInt8]
    /// Byte offset of type `id`'s record in `data`, at `offsets[id - 1]`.
    private let offsets: [UInt32]
    public let strings: StringTable
    public let byteOrder: ByteOrder
    public let headerLength: UInt32
    private let typeEnd: Int

    /// Index raw BTF. With `validate`, every record's names and type references are checked as
    /// `BTF(decoding:)` checks them; without, only what locating records needs (kinds, vlen
    /// bounds) and the rest is checked as types are decoded.
    public init(_ bytes: [UInt8], validate: Bool = true) throws {
        let header = try bytes.withUnsafeBytes { try BTFHeader($0) }
        let strings = Array(bytes[header.stringStart..<header.stringEnd])
        try StringTable.validate(strings)
        var offsets: [UInt32] = []
        offsets.reserveCapacity((header.typeEnd - header.typeStart) / 32)
        var maxReference: UInt32 = 0
        try bytes.withUnsafeBytes { raw in
            var decoder = TypeDecoder(reader: ByteReader(bytes: raw, littleEndian: header.byteOrder == .little),
                                      start: header.typeStart, end: header.typeEnd, stringSize: UInt32(strings.count))
            var at = header.typeStart
            var id: UInt32 = 1
            while at < header.typeEnd {
                offsets.append(UInt32(at))
                let h = validate ? try decoder.scan(id: id, at: at) : try decoder.header(id: id, at: at)
                at += h.size
                id &+= 1
            }
            maxReference = decoder.maxReference
        }
        data = bytes
        self.offsets = offsets
        self.strings = StringTable(bytes: strings)
        byteOrder = header.byteOrder
        headerLength = header.headerLength
        typeEnd = header.typeEnd
        if validate && Int(maxReference) >= offsets.count + 1 {
            // Rare: find the first culprit with its offset.
            try BTF(decoding: bytes).validateReferences()
        }
    }

    /// Index the .BTF of an ELF file, or raw BTF.
    public init(loading bytes: UnsafeRawBufferPointer, validate: Bool = true) throws {
        if ELFFile.hasMagic(bytes) {
            let elf = try openELF(bytes)
            guard let s = elf.section(named: ".BTF") else {
                throw BTFError.notABPFObject("the ELF file has no .BTF section")
            }
            try self.init(Array(elf.data(of: s)), validate: validate)
        } else {
            try self.init(Array(bytes), validate: validate)
        }
    }

    public var idCount: Int { offsets.count + 1 }

    /// Number of types, not counting void.
    public var typeCount: Int { offsets.count }

    public func type(_ id: TypeID) -> BTFType? {
        let i = Int(id.rawValue)
        guard i >= 1 && i <= offsets.count else { return nil }
        return data.withUnsafeBytes { raw in
            var decoder = TypeDecoder(reader: ByteReader(bytes: raw, littleEndian: byteOrder == .little),
                                      start: Int(headerLength), end: typeEnd, stringSize: UInt32(strings.bytes.count))
            return try? decoder.decode(id: UInt32(i), at: Int(offsets[i - 1])).0
        }
    }

    public func forEachTypeHeader(_ body: (TypeID, UInt32, KindCode) -> Void) {
        data.withUnsafeBytes { raw in
            let r = ByteReader(bytes: raw, littleEndian: byteOrder == .little)
            for (i, at) in offsets.enumerated() {
                let info = r.u32(Int(at) + 4)
                // Kinds were checked when indexing.
                body(TypeID(UInt32(i + 1)), r.u32(Int(at)), KindCode(rawValue: UInt8((info >> 24) & 0x1f)) ?? .int)
            }
        }
    }

    /// Decode every type (what `BTF(decoding:)` returns).
    public func decoded() throws -> BTF {
        try BTF(decoding: data)
    }
}
