// A read-only view of an ELF file held in memory: header, section table, notes, symbols.
// Pure Swift with no Foundation so the BTF engine and fuzz targets can use it.

/// Why an ELF image could not be read.
public enum ELFError: Error, Equatable {
    /// The first bytes are not `\x7fELF`.
    case notELF
    /// The file ends before a structure it declares (what, byte offset, bytes needed).
    case truncated(what: String, offset: Int, needed: Int)
    /// A header field holds a value this reader does not accept.
    case malformed(String)
}

extension ELFError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notELF:
            return "not an ELF file (no \\x7fELF magic)"
        case .truncated(let what, let offset, let needed):
            return "truncated ELF: \(what) needs \(needed) bytes at offset \(offset) past the end of the file"
        case .malformed(let why):
            return "malformed ELF: \(why)"
        }
    }
}

/// One entry of the section header table.
public struct ELFSection: Sendable, Equatable {
    public let index: Int
    public let name: String
    public let type: UInt32
    public let flags: UInt64
    public let address: UInt64
    public let offset: UInt64
    public let size: UInt64
    public let link: UInt32
    public let info: UInt32
    public let entrySize: UInt64

    /// `SHT_NOBITS` sections (.bss) occupy no bytes in the file.
    public var hasFileData: Bool { type != ELFSection.typeNoBits }

    public static let typeSymbolTable: UInt32 = 2
    public static let typeStringTable: UInt32 = 3
    public static let typeRela: UInt32 = 4
    public static let typeNote: UInt32 = 7
    public static let typeNoBits: UInt32 = 8
    public static let typeRel: UInt32 = 9
}

/// One ELF note (`Elf_Nhdr` + name + descriptor).
public struct ELFNote: Sendable, Equatable {
    public let name: String
    public let type: UInt32
    public let descriptor: [UInt8]

    /// `NT_GNU_BUILD_ID` under owner "GNU".
    public static let gnuBuildIDType: UInt32 = 3
    public var isGNUBuildID: Bool { name == "GNU" && type == ELFNote.gnuBuildIDType }
}

/// One symbol table entry.
public struct ELFSymbol: Sendable, Equatable {
    public let name: String
    public let value: UInt64
    public let size: UInt64
    public let info: UInt8
    public let sectionIndex: UInt16

    public var binding: UInt8 { info >> 4 }
    public var kind: UInt8 { info & 0xf }
}

/// A parsed ELF file. The bytes it was created from must stay alive and unchanged while it is used.
public struct ELFFile {
    public let bytes: UnsafeRawBufferPointer
    public let is64Bit: Bool
    public let isLittleEndian: Bool
    public let fileType: UInt16
    public let machine: UInt16
    public let sections: [ELFSection]

    public static let machineX86_64: UInt16 = 62
    public static let machineAArch64: UInt16 = 183
    public static let machineBPF: UInt16 = 247

    /// Is `bytes` the start of an ELF file?
    public static func hasMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
    }

    /// Parse the ELF header, the section header table and the section names. Checks run in
    /// file order (identification, header, table, each section's extent, the name table), so
    /// the first problem in the file is the one reported.
    public init(bytes: UnsafeRawBufferPointer) throws(ELFError) {
        (is64Bit, isLittleEndian) = try ELFFile.identification(bytes)
        self.bytes = bytes
        let reader = ByteReader(bytes: bytes, littleEndian: isLittleEndian)
        let header = try ELFFile.header(reader, is64Bit: is64Bit)
        fileType = header.fileType
        machine = header.machine
        let raw = try ELFFile.sectionTable(header, reader: reader, is64Bit: is64Bit)
        let names = try ELFFile.sectionNames(raw, index: header.shstrndx, in: bytes)
        sections = raw.enumerated().map { i, s in
            ELFSection(
                index: i, name: names.map { cString(in: $0, at: Int(s.nameOffset)) } ?? "",
                type: s.type, flags: s.flags, address: s.address, offset: s.offset, size: s.size,
                link: s.link, info: s.info, entrySize: s.entrySize)
        }
    }

    /// `e_ident`: the magic, then the class (32 or 64 bit) and the byte order.
    private static func identification(_ bytes: UnsafeRawBufferPointer) throws(ELFError) -> (
        is64Bit: Bool, isLittleEndian: Bool
    ) {
        guard ELFFile.hasMagic(bytes) else { throw .notELF }
        guard bytes.count >= 16 else { throw .truncated(what: "e_ident", offset: 0, needed: 16) }
        let is64Bit: Bool, isLittleEndian: Bool
        switch bytes[4] {
        case 1: is64Bit = false
        case 2: is64Bit = true
        default: throw .malformed("EI_CLASS \(bytes[4]) is neither ELFCLASS32 nor ELFCLASS64")
        }
        switch bytes[5] {
        case 1: isLittleEndian = true
        case 2: isLittleEndian = false
        default: throw .malformed("EI_DATA \(bytes[5]) is neither little nor big endian")
        }
        return (is64Bit, isLittleEndian)
    }

    /// What the ELF header says about the file and where its section header table is.
    private struct Header {
        var fileType: UInt16, machine: UInt16
        var shoff: UInt64, shentsize: Int, shnum: Int, shstrndx: Int
    }

    private static func header(_ reader: ByteReader, is64Bit: Bool) throws(ELFError) -> Header {
        let headerSize = is64Bit ? 64 : 52
        guard reader.bytes.count >= headerSize else {
            throw .truncated(what: "ELF header", offset: 0, needed: headerSize)
        }
        if is64Bit {
            return Header(
                fileType: reader.u16(16), machine: reader.u16(18), shoff: reader.u64(0x28),
                shentsize: Int(reader.u16(0x3a)), shnum: Int(reader.u16(0x3c)), shstrndx: Int(reader.u16(0x3e)))
        }
        return Header(
            fileType: reader.u16(16), machine: reader.u16(18), shoff: UInt64(reader.u32(0x20)),
            shentsize: Int(reader.u16(0x2e)), shnum: Int(reader.u16(0x30)), shstrndx: Int(reader.u16(0x32)))
    }

    /// The section header table, every section's extent checked against the file before anyone
    /// slices it. No table (shoff or shnum 0) is no sections.
    private static func sectionTable(_ header: Header, reader: ByteReader, is64Bit: Bool) throws(ELFError)
        -> [RawSection]
    {
        let bytes = reader.bytes
        let (shoff, shentsize, shnum) = (header.shoff, header.shentsize, header.shnum)
        let expectedEntry = is64Bit ? 64 : 40
        var raw: [RawSection] = []
        if shoff != 0 && shnum > 0 {
            guard shentsize >= expectedEntry else {
                throw .malformed("section header entry size \(shentsize) < \(expectedEntry)")
            }
            let tableEnd = shoff.addingReportingOverflow(UInt64(shnum * shentsize))
            guard !tableEnd.overflow, tableEnd.partialValue <= UInt64(bytes.count) else {
                throw .truncated(
                    what: "section header table (\(shnum) entries)",
                    offset: Int(clamping: shoff), needed: shnum * shentsize)
            }
            raw.reserveCapacity(shnum)
            for i in 0..<shnum {
                let at = Int(shoff) + i * shentsize
                if is64Bit {
                    raw.append(
                        RawSection(
                            nameOffset: reader.u32(at), type: reader.u32(at + 4), flags: reader.u64(at + 8),
                            address: reader.u64(at + 16), offset: reader.u64(at + 24), size: reader.u64(at + 32),
                            link: reader.u32(at + 40), info: reader.u32(at + 44), entrySize: reader.u64(at + 56)))
                } else {
                    raw.append(
                        RawSection(
                            nameOffset: reader.u32(at), type: reader.u32(at + 4), flags: UInt64(reader.u32(at + 8)),
                            address: UInt64(reader.u32(at + 12)), offset: UInt64(reader.u32(at + 16)),
                            size: UInt64(reader.u32(at + 20)), link: reader.u32(at + 24), info: reader.u32(at + 28),
                            entrySize: UInt64(reader.u32(at + 36))))
                }
            }
        }
        for (i, s) in raw.enumerated() where s.type != ELFSection.typeNoBits && s.size > 0 {
            let end = s.offset.addingReportingOverflow(s.size)
            guard !end.overflow, end.partialValue <= UInt64(bytes.count) else {
                throw .truncated(
                    what: "section \(i) data", offset: Int(clamping: s.offset),
                    needed: Int(clamping: s.size))
            }
        }
        return raw
    }

    /// The section name string table (`e_shstrndx`), nil when the file has none.
    private static func sectionNames(_ raw: [RawSection], index shstrndx: Int, in bytes: UnsafeRawBufferPointer)
        throws(ELFError) -> UnsafeRawBufferPointer?
    {
        guard shstrndx < raw.count, raw[shstrndx].type != ELFSection.typeNoBits else { return nil }
        // The extent check skips empty sections; an empty name table may still point past the
        // end of the file (a fuzz finding), so check it here before slicing.
        let s = raw[shstrndx]
        guard s.offset <= UInt64(bytes.count) else {
            throw .truncated(what: "section name table", offset: Int(clamping: s.offset), needed: 0)
        }
        return UnsafeRawBufferPointer(rebasing: bytes[Int(s.offset)..<Int(s.offset + s.size)])
    }

    /// The first section called `name`.
    public func section(named name: String) -> ELFSection? {
        sections.first { $0.name == name }
    }

    /// The bytes of a section in the file (empty for SHT_NOBITS).
    public func data(of section: ELFSection) -> UnsafeRawBufferPointer {
        guard section.hasFileData, section.size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let start = Int(section.offset)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<start + Int(section.size)])
    }

    /// The bytes of the `.BTF` section, or nil when there is no such section (empty when it has no data).
    public var btfData: UnsafeRawBufferPointer? { section(named: ".BTF").map(data(of:)) }

    /// Every note in every SHT_NOTE section.
    public func notes() throws(ELFError) -> [ELFNote] {
        var result: [ELFNote] = []
        for section in sections where section.type == ELFSection.typeNote {
            result += try ELFFile.parseNotes(
                data(of: section), littleEndian: isLittleEndian,
                baseOffset: Int(section.offset))
        }
        return result
    }

    /// Parse a run of `Elf_Nhdr` records, e.g. a SHT_NOTE section or `/sys/kernel/notes`.
    public static func parseNotes(
        _ data: UnsafeRawBufferPointer, littleEndian: Bool,
        baseOffset: Int = 0
    ) throws(ELFError) -> [ELFNote] {
        let reader = ByteReader(bytes: data, littleEndian: littleEndian)
        var notes: [ELFNote] = []
        var at = 0
        while at + 12 <= data.count {
            let nameSize = Int(reader.u32(at))
            let descSize = Int(reader.u32(at + 4))
            let type = reader.u32(at + 8)
            let nameStart = at + 12
            let descStart = nameStart + align4(nameSize)
            let end = descStart + align4(descSize)
            guard nameSize <= data.count, descSize <= data.count, descStart + descSize <= data.count else {
                throw .truncated(what: "note", offset: baseOffset + at, needed: end - at)
            }
            var name = cString(in: UnsafeRawBufferPointer(rebasing: data[nameStart..<nameStart + nameSize]), at: 0)
            if name.isEmpty && nameSize > 0 { name = "" }
            notes.append(
                ELFNote(
                    name: name, type: type,
                    descriptor: Array(data[descStart..<descStart + descSize])))
            at = min(end, data.count)
        }
        return notes
    }

    /// The GNU build-id, if the file has one.
    public func gnuBuildID() throws(ELFError) -> [UInt8]? {
        try notes().first { $0.isGNUBuildID }?.descriptor
    }

    /// Symbols of the first SHT_SYMTAB section.
    public func symbols() throws(ELFError) -> [ELFSymbol] {
        guard let table = sections.first(where: { $0.type == ELFSection.typeSymbolTable }) else { return [] }
        guard Int(table.link) < sections.count else {
            throw .malformed("symbol table links to section \(table.link) of \(sections.count)")
        }
        let strings = data(of: sections[Int(table.link)])
        let raw = data(of: table)
        let reader = ByteReader(bytes: raw, littleEndian: isLittleEndian)
        let entry = is64Bit ? 24 : 16
        var result: [ELFSymbol] = []
        result.reserveCapacity(raw.count / entry)
        var at = 0
        while at + entry <= raw.count {
            if is64Bit {
                result.append(
                    ELFSymbol(
                        name: cString(in: strings, at: Int(reader.u32(at))),
                        value: reader.u64(at + 8), size: reader.u64(at + 16),
                        info: raw[at + 4], sectionIndex: reader.u16(at + 6)))
            } else {
                result.append(
                    ELFSymbol(
                        name: cString(in: strings, at: Int(reader.u32(at))),
                        value: UInt64(reader.u32(at + 4)), size: UInt64(reader.u32(at + 8)),
                        info: raw[at + 12], sectionIndex: reader.u16(at + 14)))
            }
            at += entry
        }
        return result
    }
}

private struct RawSection {
    var nameOffset: UInt32, type: UInt32, flags: UInt64, address: UInt64, offset: UInt64, size: UInt64
    var link: UInt32, info: UInt32, entrySize: UInt64
}

@inline(__always) func align4(_ n: Int) -> Int { (n + 3) & ~3 }

/// The NUL-terminated string at `offset` (empty when out of range).
public func cString(in table: UnsafeRawBufferPointer, at offset: Int) -> String {
    guard offset >= 0, offset < table.count else { return "" }
    var end = offset
    while end < table.count && table[end] != 0 { end += 1 }
    return String(decoding: UnsafeRawBufferPointer(rebasing: table[offset..<end]), as: UTF8.self)
}
