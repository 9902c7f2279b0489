// Where a function is first defined in a vmlinux's DWARF, and with what prototype.
//
// pahole 1.24 encodes each function once, from the first compilation unit (in .debug_info order)
// that defines it — but under `-j` each worker thread keeps its own "already encoded" marks, so a
// function defined in several units (a sys_ni.c stub and the real syscall, same-named statics)
// is encoded once per thread that meets it. To keep exactly the definition the single-threaded
// encoder keeps, btfgen asks the DWARF which unit comes first. Only the top level of each unit is
// read (DW_AT_sibling skips bodies where gcc writes it; clang does not, so its bodies are walked).
// The pass runs before the wanted names are known (alongside pahole): it records each top-level
// definition with a hash of its name, and only the definitions of wanted names are decoded later.
// Names come as DW_FORM_strp (gcc), DW_FORM_line_strp, inline strings, or DW_FORM_strx* through
// the unit's DW_AT_str_offsets_base into .debug_str_offsets (clang's DWARF 5).
//
// Signatures use one notation on both sides (DWARF here, BTF in the BTF module):
//   RETURN(NAME:TYPE,NAME:TYPE,...)   with "..." for a variadic tail, and TYPE one of
//   void | base:NAME | *TYPE | cTYPE | vTYPE | rTYPE | t:NAME | s:NAME | u:NAME | e:NAME | fn | []TYPE
// (c/v/r: const/volatile/restrict; s/u/e: struct/union/enum, declared or defined; fn: a function
// type). It names types down to the first named one, which tells the variants apart.

/// A DWARF section could not be read.
public struct DWARFError: Error, Equatable, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { ".debug_info at \(offset): \(reason)" }
}

/// The definitions of chosen functions, in compilation-unit order.
public enum DWARFFunctions {
    /// For each name in `wanted`, the signatures of its non-declaration subprograms whose
    /// parameters are all named (what pahole encodes), in .debug_info order.
    public static func definitions(in elf: ELFFile, named wanted: Set<String>) throws -> [String: [String]] {
        guard !wanted.isEmpty else { return [:] }
        return try DWARFFunctionIndex(elf).definitions(named: wanted)
    }
}

/// Every top-level function definition in an ELF's DWARF, found in one pass over .debug_info
/// before the names that matter are known (the builder reads it while pahole runs), and then
/// asked for the signatures of chosen names. It points into the ELF's bytes: use it only while
/// they stay mapped.
public struct DWARFFunctionIndex: @unchecked Sendable {
    var reader: DWARFReader
    /// Definitions in .debug_info order.
    var records: [DWARFReader.Definition]

    /// Index `elf`'s DWARF; `cancelled` is polled between compilation units and stops the pass
    /// early (the index then holds what was read so far and must not be asked).
    public init(_ elf: ELFFile, cancelled: () -> Bool = { false }) throws {
        guard let info = elf.section(named: ".debug_info"), let abbrev = elf.section(named: ".debug_abbrev") else {
            reader = DWARFReader(
                info: UnsafeRawBufferPointer(start: nil, count: 0),
                abbrev: UnsafeRawBufferPointer(start: nil, count: 0),
                strings: nil, lineStrings: nil, stringOffsets: nil, littleEndian: elf.isLittleEndian)
            records = []
            return
        }
        reader = DWARFReader(
            info: elf.data(of: info), abbrev: elf.data(of: abbrev),
            strings: elf.section(named: ".debug_str").map { elf.data(of: $0) },
            lineStrings: elf.section(named: ".debug_line_str").map { elf.data(of: $0) },
            stringOffsets: elf.section(named: ".debug_str_offsets").map { elf.data(of: $0) },
            littleEndian: elf.isLittleEndian)
        records = try reader.index(cancelled: cancelled)
    }

    /// Function definitions found.
    public var count: Int { records.count }

    /// For each name in `wanted`, the signatures of its definitions whose parameters are all
    /// named (what pahole encodes), in .debug_info order.
    public func definitions(named wanted: Set<String>) throws -> [String: [String]] {
        guard !wanted.isEmpty else { return [:] }
        let hashes = Set(wanted.map { Array($0.utf8).withUnsafeBytes { DWARFReader.nameHash($0) } })
        var found: [String: [String]] = [:]
        for r in records where hashes.contains(r.nameHash) {
            let unit = reader.units[Int(r.unit)]
            guard let e = try reader.entry(at: r.offset, unit), let name = reader.name(e, unit), wanted.contains(name)
            else { continue }
            if let signature = try reader.signature(e, unit) { found[name, default: []].append(signature) }
        }
        return found
    }
}

struct DWARFReader {
    let info: UnsafeRawBufferPointer
    let abbrev: UnsafeRawBufferPointer
    let strings: UnsafeRawBufferPointer?
    let lineStrings: UnsafeRawBufferPointer?
    /// .debug_str_offsets: where DW_FORM_strx names (clang's DWARF 5) point into .debug_str.
    let stringOffsets: UnsafeRawBufferPointer?
    let little: Bool

    struct Attribute {
        var name: UInt64
        var form: UInt64
        var implicitConst: Int64
    }
    struct Abbreviation {
        /// 0: no abbreviation has this code.
        var tag: UInt64 = 0
        var hasChildren = false
        /// Its attributes are `attributes[first..<end]` of its table.
        var first: Int32 = 0
        var end: Int32 = 0
        /// The DIE's size after its code when every form has a fixed size (the common case for
        /// type DIEs), so that the scan can step over it without decoding; -1 when it varies.
        var fixedSize: Int32 = -1
        /// Where DW_AT_sibling's value sits after the code (-1: nowhere known), and its form,
        /// when only fixed-size attributes precede it.
        var siblingAt: Int32 = -1
        var siblingForm: UInt64 = 0
        /// DW_AT_declaration as DW_FORM_flag_present: a declaration, whatever the DIE holds.
        var isDeclaration = false
    }
    /// One unit's abbreviations by code, their attributes in one flat array (one allocation per
    /// table, not per abbreviation: a vmlinux has thousands of tables).
    struct AbbreviationTable {
        var byCode: [Abbreviation] = []
        var attributes: [Attribute] = []
    }
    struct TableKey: Hashable {
        var offset: Int
        var offsetSize: Int
        var addressSize: Int
        var version: Int
    }

    /// Bytes a form's value takes, when that does not depend on the value.
    static func fixedSize(_ form: UInt64, offsetSize: Int, addressSize: Int, version: Int) -> Int? {
        switch form {
        case 0x01: return addressSize
        case 0x05, 0x12, 0x26, 0x2a: return 2
        case 0x06, 0x13, 0x1c, 0x28, 0x2c: return 4
        case 0x07, 0x14, 0x20, 0x24: return 8
        case 0x0b, 0x0c, 0x11, 0x25, 0x29: return 1
        case 0x0e, 0x17, 0x1d, 0x1f, 0x1f20, 0x1f21: return offsetSize
        case 0x10: return version <= 2 ? addressSize : offsetSize
        case 0x19, 0x21: return 0
        case 0x1e: return 16
        case 0x27: return 3
        default: return nil
        }
    }
    struct Unit {
        var start: Int
        var end: Int
        var offsetSize: Int
        var addressSize: Int
        var version: Int
        var abbreviations: AbbreviationTable
        /// DW_AT_str_offsets_base of the unit's root DIE (where its strx indexes start).
        var stringOffsetsBase: Int = 0
    }
    /// A top-level subprogram definition: the FNV-1a hash of its name, its DIE, its unit.
    struct Definition {
        var nameHash: UInt64
        var offset: Int
        var unit: Int32
    }
    /// Abbreviation tables by offset and unit shape: the fixed sizes depend on the shape.
    var tables: [TableKey: AbbreviationTable] = [:]
    var units: [Unit] = []
    var firstDIE: [Int] = []

    init(
        info: UnsafeRawBufferPointer, abbrev: UnsafeRawBufferPointer, strings: UnsafeRawBufferPointer?,
        lineStrings: UnsafeRawBufferPointer?, stringOffsets: UnsafeRawBufferPointer?, littleEndian: Bool
    ) {
        self.info = info
        self.abbrev = abbrev
        self.strings = strings
        self.lineStrings = lineStrings
        self.stringOffsets = stringOffsets
        little = littleEndian
    }

    func fail(_ at: Int, _ why: String) -> DWARFError { DWARFError(offset: at, reason: why) }

    /// FNV-1a over a name's bytes.
    static func nameHash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    @inline(__always) func u8(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(b[at]) }
    @inline(__always) func fixed(_ b: UnsafeRawBufferPointer, _ at: Int, _ size: Int) -> UInt64 {
        if size == 4 {
            let v = b.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            return UInt64(little ? UInt32(littleEndian: v) : UInt32(bigEndian: v))
        }
        var v: UInt64 = 0
        for i in 0..<size {
            let byte = UInt64(b[at + i])
            v |= little ? byte << (8 * UInt64(i)) : byte << (8 * UInt64(size - 1 - i))
        }
        return v
    }
    @inline(__always) func uleb(_ b: UnsafeRawBufferPointer, _ at: inout Int) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = b[at]
            at += 1
            if shift < 64 { result |= UInt64(byte & 0x7f) << shift }
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }
    @inline(__always) func sleb(_ b: UnsafeRawBufferPointer, _ at: inout Int) -> Int64 {
        var result: Int64 = 0
        var shift: Int64 = 0
        var byte: UInt8
        repeat {
            byte = b[at]
            at += 1
            if shift < 64 { result |= Int64(byte & 0x7f) << shift }
            shift += 7
        } while byte & 0x80 != 0
        if shift < 64 && byte & 0x40 != 0 { result |= -(Int64(1) << shift) }
        return result
    }

    mutating func table(_ key: TableKey) throws -> AbbreviationTable {
        if let t = tables[key] { return t }
        var t = AbbreviationTable()
        t.attributes.reserveCapacity(1024)
        var at = key.offset
        while at < abbrev.count {
            let code = Int(uleb(abbrev, &at))
            if code == 0 { break }
            var a = Abbreviation()
            a.tag = uleb(abbrev, &at)
            a.hasChildren = abbrev[at] != 0
            at += 1
            a.first = Int32(t.attributes.count)
            var size = 0
            while true {
                let name = uleb(abbrev, &at), form = uleb(abbrev, &at)
                if name == 0 && form == 0 { break }
                let implicit = form == 0x21 ? sleb(abbrev, &at) : 0
                t.attributes.append(Attribute(name: name, form: form, implicitConst: implicit))
                if name == 0x01, size >= 0 {
                    a.siblingAt = Int32(size)
                    a.siblingForm = form
                }
                if name == 0x3c && form == 0x19 { a.isDeclaration = true }
                if size >= 0 {
                    if let f = Self.fixedSize(
                        form, offsetSize: key.offsetSize, addressSize: key.addressSize, version: key.version)
                    {
                        size += f
                    } else {
                        size = -1
                    }
                }
            }
            a.end = Int32(t.attributes.count)
            a.fixedSize = Int32(size)
            guard code < 1 << 20 else { throw fail(key.offset, "abbreviation code \(code) is implausible") }
            if t.byCode.count <= code {
                t.byCode += [Abbreviation](repeating: Abbreviation(), count: code + 1 - t.byCode.count)
            }
            t.byCode[code] = a
        }
        tables[key] = t
        return t
    }

    /// Every unit header, in order, with its abbreviations.
    mutating func readUnits() throws {
        var at = 0
        while at + 11 <= info.count {
            let start = at
            var length = Int(fixed(info, at, 4))
            var offsetSize = 4
            at += 4
            if length == 0xffff_ffff {
                length = Int(fixed(info, at, 8))
                offsetSize = 8
                at += 8
            }
            let end = at + length
            guard end <= info.count else { throw fail(start, "unit runs past the section") }
            let version = Int(fixed(info, at, 2))
            at += 2
            var addressSize = 8
            var abbrevOffset = 0
            var unitType: UInt64 = 1
            if version >= 5 {
                unitType = u8(info, at)
                addressSize = Int(u8(info, at + 1))
                abbrevOffset = Int(fixed(info, at + 2, offsetSize))
                at += 2 + offsetSize
                if unitType == 2 || unitType == 6 { at += 8 + offsetSize }  // type units
                if unitType == 4 || unitType == 5 { at += 8 }  // skeleton and split units
            } else if version >= 2 {
                abbrevOffset = Int(fixed(info, at, offsetSize))
                addressSize = Int(u8(info, at + offsetSize))
                at += offsetSize + 1
            } else {
                throw fail(start, "DWARF version \(version) is not supported")
            }
            let abbreviations = try table(
                TableKey(offset: abbrevOffset, offsetSize: offsetSize, addressSize: addressSize, version: version))
            units.append(
                Unit(
                    start: start, end: end, offsetSize: offsetSize, addressSize: addressSize, version: version,
                    abbreviations: abbreviations))
            firstDIE.append(at)
            at = end
        }
    }

    /// Skip one attribute value, or read it when it is a constant, reference or string offset.
    @inline(__always)
    func value(_ form: UInt64, _ implicit: Int64, _ unit: Unit, _ at: inout Int) throws -> UInt64 {
        let b = info
        switch form {
        case 0x01: defer { at += unit.addressSize }; return fixed(b, at, unit.addressSize)
        case 0x03: let n = Int(fixed(b, at, 2)); at += 2 + n; return 0
        case 0x04: let n = Int(fixed(b, at, 4)); at += 4 + n; return 0
        case 0x05, 0x12, 0x26, 0x2a: defer { at += 2 }; return fixed(b, at, 2)
        case 0x06, 0x13, 0x1c, 0x28, 0x2c: defer { at += 4 }; return fixed(b, at, 4)
        case 0x07, 0x14, 0x20, 0x24: defer { at += 8 }; return fixed(b, at, 8)
        case 0x08: while b[at] != 0 { at += 1 }; at += 1; return 0
        case 0x09, 0x18: let n = Int(uleb(b, &at)); at += n; return 0
        case 0x0a: let n = Int(b[at]); at += 1 + n; return 0
        case 0x0b, 0x0c, 0x11, 0x25, 0x29: defer { at += 1 }; return UInt64(b[at])
        case 0x0d: return UInt64(bitPattern: sleb(b, &at))
        case 0x0f, 0x15, 0x1a, 0x1b, 0x22, 0x23, 0x1f01, 0x1f02: return uleb(b, &at)
        case 0x0e, 0x17, 0x1d, 0x1f, 0x1f20, 0x1f21:
            defer { at += unit.offsetSize }; return fixed(b, at, unit.offsetSize)
        case 0x10:
            let size = unit.version <= 2 ? unit.addressSize : unit.offsetSize
            defer { at += size }
            return fixed(b, at, size)
        case 0x16:
            let actual = uleb(b, &at)
            return try value(actual, implicit, unit, &at)
        case 0x19: return 1
        case 0x1e: at += 16; return 0
        case 0x21: return UInt64(bitPattern: implicit)
        case 0x27: defer { at += 3 }; return fixed(b, at, 3)
        default: throw fail(at, "unknown attribute form 0x\(String(form, radix: 16))")
        }
    }

    /// What one DIE says that matters here.
    struct Entry {
        var tag: UInt64 = 0
        var hasChildren = false
        /// Name: a .debug_str offset (nameForm 0x0e), a .debug_line_str one (0x1f), the info
        /// offset of an inline string (0x08), or an index into the unit's string offsets (strx
        /// forms 0x1a, 0x25…0x28, GNU 0x1f02).
        var name: UInt64 = 0
        var nameForm: UInt64 = 0
        var type: Int? = nil
        var sibling: Int? = nil
        var declaration = false
        /// DW_AT_str_offsets_base (on a unit's root DIE).
        var stringOffsetsBase: Int = 0
        var end = 0
    }

    /// Read the DIE at `at` (nil for a null entry).
    func entry(at start: Int, _ unit: Unit) throws -> Entry? {
        var at = start
        let code = Int(uleb(info, &at))
        if code == 0 { return nil }
        let table = unit.abbreviations
        guard code < table.byCode.count, table.byCode[code].tag != 0 else {
            throw fail(start, "abbreviation \(code) is not defined")
        }
        let a = table.byCode[code]
        var e = Entry(tag: a.tag, hasChildren: a.hasChildren)
        for k in Int(a.first)..<Int(a.end) {
            let attribute = table.attributes[k]
            let valueAt = at
            let v = try value(attribute.form, attribute.implicitConst, unit, &at)
            switch attribute.name {
            case 0x03:
                e.nameForm = attribute.form
                e.name = attribute.form == 0x08 ? UInt64(valueAt) : v
            case 0x49: e.type = reference(attribute.form, v, unit)
            case 0x01: e.sibling = reference(attribute.form, v, unit)
            case 0x3c: e.declaration = v != 0
            case 0x72: e.stringOffsetsBase = Int(truncatingIfNeeded: v)
            default: break
            }
        }
        e.end = at
        return e
    }

    /// The .debug_info offset a reference points at.
    func reference(_ form: UInt64, _ v: UInt64, _ unit: Unit) -> Int? {
        switch form {
        case 0x11, 0x12, 0x13, 0x14, 0x15: return unit.start + Int(v)
        case 0x10: return Int(v)
        default: return nil
        }
    }

    func nameBytes(_ e: Entry, _ unit: Unit) -> UnsafeRawBufferPointer? {
        let section: UnsafeRawBufferPointer?
        var offset = Int(truncatingIfNeeded: e.name)
        switch e.nameForm {
        case 0x0e: section = strings
        case 0x1f: section = lineStrings
        case 0x08: section = info
        case 0x1a, 0x25, 0x26, 0x27, 0x28, 0x1f02:
            guard let table = stringOffsets, offset >= 0 else { return nil }
            let slot = unit.stringOffsetsBase + offset * unit.offsetSize
            guard slot >= 0, slot + unit.offsetSize <= table.count else { return nil }
            offset = Int(truncatingIfNeeded: fixed(table, slot, unit.offsetSize))
            section = strings
        default: return nil
        }
        guard let s = section, offset >= 0, offset < s.count else { return nil }
        var end = offset
        while end < s.count && s[end] != 0 { end += 1 }
        return UnsafeRawBufferPointer(rebasing: s[offset..<end])
    }

    func name(_ e: Entry, _ unit: Unit) -> String? {
        nameBytes(e, unit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Skip past the DIE `e` (which started at `start`) and all its children.
    func skip(_ e: Entry, _ unit: Unit) throws -> Int {
        guard e.hasChildren else { return e.end }
        if let s = e.sibling, s > e.end, s <= unit.end { return s }
        var at = e.end
        while at < unit.end {
            guard let child = try entry(at: at, unit) else { return at + 1 }
            at = try skip(child, unit)
        }
        return at
    }

    func unit(containing offset: Int) -> Unit? {
        var lo = 0, hi = units.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if units[mid].end <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo < units.count && units[lo].start <= offset ? units[lo] : nil
    }

    /// The signature notation of the type at `offset` (see the top of this file).
    func shape(_ offset: Int?, depth: Int = 0) throws -> String {
        guard let offset else { return "void" }
        guard depth < 16, let unit = unit(containing: offset), let e = try entry(at: offset, unit) else { return "?" }
        let named = name(e, unit) ?? ""
        switch e.tag {
        case 0x24: return "base:" + named
        case 0x0f: return "*" + (try shape(e.type, depth: depth + 1))
        case 0x26: return "c" + (try shape(e.type, depth: depth + 1))
        case 0x35: return "v" + (try shape(e.type, depth: depth + 1))
        case 0x37: return "r" + (try shape(e.type, depth: depth + 1))
        case 0x16: return "t:" + named
        case 0x13, 0x02: return "s:" + named
        case 0x17: return "u:" + named
        case 0x04: return "e:" + named
        case 0x15: return "fn"
        case 0x01: return "[]" + (try shape(e.type, depth: depth + 1))
        case 0x3b: return "void"  // DW_TAG_unspecified_type (assembly units): pahole encodes void
        default: return "?\(e.tag)"
        }
    }

    /// The signature of subprogram `e`, or nil when a parameter has no name.
    func signature(_ e: Entry, _ unit: Unit) throws -> String? {
        var parameters: [String] = []
        if e.hasChildren {
            var at = e.end
            while at < unit.end {
                guard let child = try entry(at: at, unit) else { break }
                if child.tag == 0x05 {
                    guard let n = name(child, unit), !n.isEmpty else { return nil }
                    parameters.append(n + ":" + (try shape(child.type)))
                } else if child.tag == 0x18 {
                    parameters.append("...")
                }
                at = try skip(child, unit)
            }
        }
        return (try shape(e.type)) + "(" + parameters.joined(separator: ",") + ")"
    }

    /// Every top-level subprogram definition with a name, in .debug_info order.
    mutating func index(cancelled: () -> Bool) throws -> [Definition] {
        try readUnits()
        var found: [Definition] = []
        found.reserveCapacity(units.count * 64)
        for index in units.indices {
            if cancelled() { break }
            var at = firstDIE[index]
            guard let root = try entry(at: at, units[index]) else { continue }
            units[index].stringOffsetsBase = root.stringOffsetsBase
            let unit = units[index]
            guard root.hasChildren else { continue }
            at = root.end
            let table = unit.abbreviations
            while at < unit.end {
                // Fast path: step over DIEs that are not subprograms without decoding them.
                var body = at
                let code = Int(uleb(info, &body))
                if code == 0 { break }
                guard code < table.byCode.count, table.byCode[code].tag != 0 else {
                    throw fail(at, "abbreviation \(code) is not defined")
                }
                let a = table.byCode[code]
                if a.tag != 0x2e || a.isDeclaration {
                    if !a.hasChildren, a.fixedSize >= 0 {
                        at = body + Int(a.fixedSize)
                        continue
                    }
                    if a.hasChildren, a.siblingAt >= 0 {
                        var p = body + Int(a.siblingAt)
                        let form = a.siblingForm
                        if let target = reference(form, try value(form, 0, unit, &p), unit), target > at,
                            target <= unit.end
                        {
                            at = target
                            continue
                        }
                    }
                }
                guard let e = try entry(at: at, unit) else { break }
                if e.tag == 0x2e, !e.declaration, let name = nameBytes(e, unit) {
                    found.append(Definition(nameHash: Self.nameHash(name), offset: at, unit: Int32(index)))
                }
                at = try skip(e, unit)
            }
        }
        return found
    }
}
