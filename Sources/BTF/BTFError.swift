import ELF

/// Everything that can go wrong in the BTF engine. Byte offsets count from the start of the BTF
/// (or .BTF.ext) data; type ids are the ids `bpftool btf dump` prints.
public enum BTFError: Error, Equatable, Sendable {
    /// Fewer bytes than the fixed 24-byte header.
    case truncatedHeader(available: Int)
    /// The first two bytes are not 0xEB9F in either byte order.
    case badMagic(UInt16)
    case unsupportedVersion(UInt8)
    case unsupportedFlags(UInt8)
    /// `hdr_len` below 24 or beyond the data.
    case badHeaderLength(UInt32, available: Int)
    /// A header longer than this reader knows carries non-zero bytes it would ignore.
    case nonZeroHeaderTail(offset: Int)
    /// The type or string section does not fit, overlaps, leaves a gap, or is misaligned.
    case badSectionLayout(String)
    /// A type record runs past the end of the type section.
    case truncatedType(id: UInt32, offset: Int, needed: Int, available: Int)
    case unknownKind(id: UInt32, offset: Int, kind: UInt8)
    /// Bits of `info` that must be zero are set.
    case reservedInfoBits(id: UInt32, offset: Int, info: UInt32)
    case unexpectedKindFlag(id: UInt32, offset: Int, kind: KindCode)
    case unexpectedVlen(id: UInt32, offset: Int, kind: KindCode, vlen: UInt16)
    /// A field the format fixes at zero is not zero.
    case nonZeroField(id: UInt32, offset: Int, field: String, value: UInt32)
    case invalidInt(id: UInt32, offset: Int, data: UInt32)
    /// A reference to a type id that does not exist.
    case danglingTypeID(id: UInt32, offset: Int, target: UInt32, typeCount: Int)
    /// A name offset outside the string section.
    case badStringOffset(id: UInt32, offset: Int, stringOffset: UInt32, tableSize: Int)
    case malformedStringTable(String)
    /// A chain of typedefs/modifiers/arrays loops or nests deeper than 32.
    case typeChainTooDeep(id: UInt32)

    /// .BTF.ext: a header or record runs past the end.
    case extTruncated(what: String, offset: Int, needed: Int, available: Int)
    /// .BTF.ext: a field holds a value that cannot be right.
    case extMalformed(offset: Int, reason: String)

    /// The ELF container could not be read.
    case elf(ELFError)
    /// A file that should be a BPF object lacks what every one carries.
    case notABPFObject(String)

    /// A CO-RE relocation could not be interpreted (section, index within it, why).
    case badRelocation(section: String, index: Int, reason: String)
    /// Candidates for one relocation disagree, as libbpf would refuse them.
    case ambiguousRelocation(section: String, index: Int, reason: String)
    /// A broken invariant inside the engine: a bug, please report it.
    case internalError(String)
}

extension BTFError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .truncatedHeader(let available):
            return "truncated BTF: the header needs 24 bytes, the data has \(available); is this really BTF?"
        case .badMagic(let magic):
            return "not BTF: magic is 0x\(String(magic, radix: 16)), expected 0xeb9f"
        case .unsupportedVersion(let v):
            return "unsupported BTF version \(v) (only version 1 exists)"
        case .unsupportedFlags(let f):
            return "unsupported BTF header flags 0x\(String(f, radix: 16)) (must be 0)"
        case .badHeaderLength(let len, let available):
            return "bad BTF hdr_len \(len): must be at least 24 and at most the data size \(available)"
        case .nonZeroHeaderTail(let offset):
            return "BTF header has unknown non-zero bytes at byte offset \(offset); produced by a newer encoder?"
        case .badSectionLayout(let why):
            return "bad BTF section layout: \(why)"
        case .truncatedType(let id, let offset, let needed, let available):
            return "truncated BTF type \(id) at byte offset \(offset): its record needs \(needed) bytes, "
                + "\(available) remain in the type section (vlen overruns the section)"
        case .unknownKind(let id, let offset, let kind):
            return "BTF type \(id) at byte offset \(offset) has unknown kind \(kind) (known: 1-19); "
                + "produced by a newer pahole or kernel?"
        case .reservedInfoBits(let id, let offset, let info):
            return "BTF type \(id) at byte offset \(offset) sets reserved info bits (info 0x\(String(info, radix: 16)))"
        case .unexpectedKindFlag(let id, let offset, let kind):
            return "BTF type \(id) at byte offset \(offset): kind_flag is set on \(kind.name), which has none"
        case .unexpectedVlen(let id, let offset, let kind, let vlen):
            return
                "BTF type \(id) at byte offset \(offset): vlen \(vlen) on \(kind.name), which has no trailing records"
        case .nonZeroField(let id, let offset, let field, let value):
            return "BTF type \(id) at byte offset \(offset): \(field) is \(value), must be 0"
        case .invalidInt(let id, let offset, let data):
            return "BTF type \(id) at byte offset \(offset): INT data 0x\(String(data, radix: 16)) sets reserved bits"
        case .danglingTypeID(let id, let offset, let target, let typeCount):
            return
                "BTF type \(id) at byte offset \(offset) refers to type \(target), but the last type is \(typeCount - 1)"
        case .badStringOffset(let id, let offset, let stringOffset, let tableSize):
            return "BTF type \(id) at byte offset \(offset) names string offset \(stringOffset), "
                + "past the \(tableSize)-byte string section"
        case .malformedStringTable(let why):
            return "malformed BTF string section: \(why)"
        case .typeChainTooDeep(let id):
            return "BTF type \(id) starts a typedef/modifier/array chain that loops or nests deeper than 32"
        case .extTruncated(let what, let offset, let needed, let available):
            return "truncated .BTF.ext: \(what) at byte offset \(offset) needs \(needed) bytes, \(available) remain"
        case .extMalformed(let offset, let reason):
            return "malformed .BTF.ext at byte offset \(offset): \(reason)"
        case .elf(let error):
            return "\(error)"
        case .notABPFObject(let why):
            return "not a BPF object: \(why); pass a file built with clang -target bpf -g"
        case .badRelocation(let section, let index, let reason):
            return "CO-RE relocation #\(index) in \(section): \(reason)"
        case .ambiguousRelocation(let section, let index, let reason):
            return "CO-RE relocation #\(index) in \(section) is ambiguous: \(reason)"
        case .internalError(let why):
            return "internal error in the BTF engine: \(why) (a bug: please report it with the input files)"
        }
    }
}
