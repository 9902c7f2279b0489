// .BTF.ext: per-instruction side tables clang writes next to .BTF in a BPF object.
//
//   +0  u16 magic 0xEB9F | u8 version 1 | u8 flags 0 | u32 hdr_len
//   +8  u32 func_info_off | u32 func_info_len | u32 line_info_off | u32 line_info_len
//   +24 u32 core_relo_off | u32 core_relo_len            (only when hdr_len >= 32)
//
// Each subsection (offsets relative to hdr_len): u32 rec_size, then blocks of
//   u32 sec_name_off (into .BTF strings) | u32 num_info | num_info records of rec_size bytes.
// Records may grow in later versions: we read the fields we know and skip the rest.
import ELF

/// `bpf_func_info`: which BTF FUNC starts at an instruction.
public struct FuncInfo: Hashable, Sendable {
    public var instructionOffset: UInt32
    public var type: TypeID
}

/// `bpf_line_info`: source position of an instruction.
public struct LineInfo: Hashable, Sendable {
    public var instructionOffset: UInt32
    public var fileNameOffset: UInt32
    public var lineOffset: UInt32
    /// `line << 10 | column`.
    public var lineColumn: UInt32
    public var line: UInt32 { lineColumn >> 10 }
    public var column: UInt32 { lineColumn & 0x3ff }
}

/// The 13 CO-RE relocation kinds (`enum bpf_core_relo_kind`).
public enum CoreRelocationKind: UInt32, CaseIterable, Sendable, Hashable {
    case fieldByteOffset = 0
    case fieldByteSize = 1
    case fieldExists = 2
    case fieldSigned = 3
    case fieldLShiftU64 = 4
    case fieldRShiftU64 = 5
    case typeIDLocal = 6
    case typeIDTarget = 7
    case typeExists = 8
    case typeSize = 9
    case enumValueExists = 10
    case enumValueValue = 11
    case typeMatches = 12

    /// libbpf's short name, as its debug log prints it.
    public var name: String {
        switch self {
        case .fieldByteOffset: "byte_off"
        case .fieldByteSize: "byte_sz"
        case .fieldExists: "field_exists"
        case .fieldSigned: "signed"
        case .fieldLShiftU64: "lshift_u64"
        case .fieldRShiftU64: "rshift_u64"
        case .typeIDLocal: "local_type_id"
        case .typeIDTarget: "target_type_id"
        case .typeExists: "type_exists"
        case .typeSize: "type_size"
        case .enumValueExists: "enumval_exists"
        case .enumValueValue: "enumval_value"
        case .typeMatches: "type_matches"
        }
    }

    public var isFieldBased: Bool {
        switch self {
        case .fieldByteOffset, .fieldByteSize, .fieldExists, .fieldSigned, .fieldLShiftU64, .fieldRShiftU64: true
        case .typeIDLocal, .typeIDTarget, .typeExists, .typeSize, .enumValueExists, .enumValueValue, .typeMatches:
            false
        }
    }

    public var isTypeBased: Bool {
        switch self {
        case .typeIDLocal, .typeIDTarget, .typeExists, .typeSize, .typeMatches: true
        case .fieldByteOffset, .fieldByteSize, .fieldExists, .fieldSigned, .fieldLShiftU64, .fieldRShiftU64,
            .enumValueExists, .enumValueValue:
            false
        }
    }

    public var isEnumValueBased: Bool {
        switch self {
        case .enumValueExists, .enumValueValue: true
        case .fieldByteOffset, .fieldByteSize, .fieldExists, .fieldSigned, .fieldLShiftU64, .fieldRShiftU64,
            .typeIDLocal, .typeIDTarget, .typeExists, .typeSize, .typeMatches:
            false
        }
    }
}

/// `bpf_core_relo`: one relocation as the compiler recorded it.
public struct CoreRelocation: Hashable, Sendable {
    /// Byte offset of the instruction within its section.
    public var instructionOffset: UInt32
    /// The local root type in the object's BTF.
    public var type: TypeID
    /// Offset of the access string ("0:1:2") in the object's BTF strings.
    public var accessStringOffset: UInt32
    public var kind: CoreRelocationKind

    public init(instructionOffset: UInt32, type: TypeID, accessStringOffset: UInt32, kind: CoreRelocationKind) {
        self.instructionOffset = instructionOffset
        self.type = type
        self.accessStringOffset = accessStringOffset
        self.kind = kind
    }
}

/// The records of one ELF section in one .BTF.ext subsection.
public struct ExtSection<Record: Sendable & Hashable>: Sendable, Hashable {
    /// Offset of the section name in the object's BTF strings.
    public var nameOffset: UInt32
    public var records: [Record]
}

/// A decoded .BTF.ext.
public struct BTFExt: Sendable, Hashable {
    public var funcInfo: [ExtSection<FuncInfo>]
    public var lineInfo: [ExtSection<LineInfo>]
    public var coreRelocations: [ExtSection<CoreRelocation>]

    /// Decode .BTF.ext bytes.
    public init(decoding bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count >= 8 else {
            throw BTFError.extTruncated(what: "header", offset: 0, needed: 8, available: bytes.count)
        }
        let little: Bool
        if bytes[0] == 0x9F && bytes[1] == 0xEB {
            little = true
        } else if bytes[0] == 0xEB && bytes[1] == 0x9F {
            little = false
        } else {
            throw BTFError.extMalformed(offset: 0, reason: "magic is not 0xeb9f")
        }
        guard bytes[2] == 1 else { throw BTFError.extMalformed(offset: 2, reason: "version \(bytes[2]), expected 1") }
        guard bytes[3] == 0 else { throw BTFError.extMalformed(offset: 3, reason: "flags \(bytes[3]), expected 0") }
        let r = ByteReader(bytes: bytes, littleEndian: little)
        let hdrLen = Int(r.u32(4))
        guard hdrLen >= 24 else { throw BTFError.extMalformed(offset: 4, reason: "hdr_len \(hdrLen) < 24") }
        guard hdrLen <= bytes.count else {
            throw BTFError.extTruncated(what: "header", offset: 0, needed: hdrLen, available: bytes.count)
        }
        func subsection(_ at: Int) -> (Int, Int) { (Int(r.u32(at)), Int(r.u32(at + 4))) }
        let (fOff, fLen) = subsection(8)
        let (lOff, lLen) = subsection(16)
        let (cOff, cLen) = hdrLen >= 32 ? subsection(24) : (0, 0)

        funcInfo = try BTFExt.parse(
            r, hdrLen: hdrLen, offset: fOff, length: fLen, name: "func_info",
            minimumRecord: 8
        ) { r, at in
            FuncInfo(instructionOffset: r.u32(at), type: TypeID(r.u32(at + 4)))
        }
        lineInfo = try BTFExt.parse(
            r, hdrLen: hdrLen, offset: lOff, length: lLen, name: "line_info",
            minimumRecord: 16
        ) { r, at in
            LineInfo(
                instructionOffset: r.u32(at), fileNameOffset: r.u32(at + 4), lineOffset: r.u32(at + 8),
                lineColumn: r.u32(at + 12))
        }
        coreRelocations = try BTFExt.parse(
            r, hdrLen: hdrLen, offset: cOff, length: cLen, name: "core_relo",
            minimumRecord: 16
        ) { r, at in
            let raw = r.u32(at + 12)
            guard let kind = CoreRelocationKind(rawValue: raw) else {
                throw BTFError.extMalformed(
                    offset: at + 12, reason: "unknown CO-RE relocation kind \(raw) (known: 0-12)")
            }
            return CoreRelocation(
                instructionOffset: r.u32(at), type: TypeID(r.u32(at + 4)),
                accessStringOffset: r.u32(at + 8), kind: kind)
        }
    }

    public init(decoding bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try BTFExt(decoding: $0) }
    }

    static func parse<R>(
        _ r: ByteReader, hdrLen: Int, offset: Int, length: Int, name: String, minimumRecord: Int,
        _ record: (ByteReader, Int) throws -> R
    ) throws -> [ExtSection<R>] {
        guard length > 0 else { return [] }
        let start = hdrLen + offset
        let available = r.bytes.count
        guard offset % 4 == 0 else {
            throw BTFError.extMalformed(offset: start, reason: "\(name) offset \(offset) is not 4-byte aligned")
        }
        guard start <= available, length <= available - start else {
            throw BTFError.extTruncated(what: name, offset: start, needed: length, available: max(0, available - start))
        }
        let end = start + length
        guard length >= 4 else {
            throw BTFError.extTruncated(what: "\(name) record size", offset: start, needed: 4, available: length)
        }
        let recordSize = Int(r.u32(start))
        guard recordSize >= minimumRecord, recordSize % 4 == 0, recordSize <= length else {
            throw BTFError.extMalformed(
                offset: start, reason: "\(name) record size \(recordSize) (needs ≥ \(minimumRecord), a multiple of 4)")
        }
        var sections: [ExtSection<R>] = []
        var at = start + 4
        while at < end {
            guard end - at >= 8 else {
                throw BTFError.extTruncated(what: "\(name) section header", offset: at, needed: 8, available: end - at)
            }
            let nameOffset = r.u32(at)
            let count = Int(r.u32(at + 4))
            guard count > 0 else {
                throw BTFError.extMalformed(offset: at + 4, reason: "\(name) section with no records")
            }
            at += 8
            guard count <= (end - at) / recordSize else {
                throw BTFError.extTruncated(
                    what: "\(count) \(name) records", offset: at,
                    needed: count * recordSize, available: end - at)
            }
            var records: [R] = []
            records.reserveCapacity(count)
            for _ in 0..<count {
                records.append(try record(r, at))
                at += recordSize
            }
            sections.append(ExtSection(nameOffset: nameOffset, records: records))
        }
        return sections
    }
}

/// A BPF object file (ELF, `e_machine` EM_BPF): its BTF, its .BTF.ext and section names.
public struct BPFObject: Sendable {
    public let btf: BTF
    public let ext: BTFExt?
    /// Names of the ELF sections, by index.
    public let sectionNames: [String]
    /// Every CO-RE relocation with the name of the section it patches, read once: resolving one
    /// object against a fleet's kernels asks for them several times per kernel.
    public let coreRelocations: [(section: String, index: Int, relocation: CoreRelocation)]
    /// The essential names of the relocations' root types and the target kinds their candidates
    /// may have (what a resolver scans a kernel for), read once as well.
    let coreCandidates: (names: Set<[UInt8]>, kinds: UInt32)

    /// Read the object in `bytes` (the whole file).
    public init(bytes: UnsafeRawBufferPointer) throws {
        let elf = try openELF(bytes)
        guard let btfSection = elf.section(named: ".BTF") else {
            throw BTFError.notABPFObject("it has no .BTF section")
        }
        btf = try BTF(decoding: elf.data(of: btfSection))
        if let extSection = elf.section(named: ".BTF.ext") {
            ext = try BTFExt(decoding: elf.data(of: extSection))
        } else {
            ext = nil
        }
        sectionNames = elf.sections.map(\.name)
        coreRelocations = Self.relocations(btf, ext)
        var names = Set<[UInt8]>()
        var kinds: UInt32 = 0
        for r in coreRelocations {
            if let n = CoreResolver<BTF>.essentialName(of: r.relocation, in: btf), let t = btf.type(r.relocation.type) {
                names.insert(n)
                kinds |= CoreResolver<BTF>.candidateKinds(for: t.kind.code)
            }
        }
        coreCandidates = (names, kinds)
    }

    public init(bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try BPFObject(bytes: $0) }
    }

    private static func relocations(_ btf: BTF, _ ext: BTFExt?) -> [(
        section: String, index: Int, relocation: CoreRelocation
    )] {
        guard let ext else { return [] }
        var all: [(String, Int, CoreRelocation)] = []
        for s in ext.coreRelocations {
            let name = btf.strings.string(at: s.nameOffset)
            for (i, r) in s.records.enumerated() { all.append((name, i, r)) }
        }
        return all
    }
}

/// Load BTF from raw BTF bytes or from an ELF file's .BTF section.
public func loadBTF(from bytes: UnsafeRawBufferPointer) throws -> BTF { try BTF(loading: bytes) }

extension BTF {
    /// Load BTF from raw BTF bytes or from an ELF file's .BTF section (vmlinux, BPF object).
    public init(loading bytes: UnsafeRawBufferPointer) throws {
        self = try BTF.load(bytes)
    }
}

extension BTF {
    fileprivate static func load(_ bytes: UnsafeRawBufferPointer) throws -> BTF {
        try BTF(decoding: try btfSection(of: bytes))
    }
}

/// Raw BTF as is, or an ELF file's .BTF section; errors as BTFError.
func btfSection(of bytes: UnsafeRawBufferPointer) throws(BTFError) -> UnsafeRawBufferPointer {
    let payload: UnsafeRawBufferPointer?
    do { payload = try btfPayload(of: bytes) } catch { throw .elf(error) }
    guard let payload else { throw .notABPFObject("the ELF file has no .BTF section") }
    return payload
}

/// Parse an ELF container, wrapping its error.
func openELF(_ bytes: UnsafeRawBufferPointer) throws(BTFError) -> ELFFile {
    do { return try ELFFile(bytes: bytes) } catch { throw .elf(error) }
}
