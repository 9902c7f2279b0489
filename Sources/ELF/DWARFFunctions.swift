// Where a function is first defined in a vmlinux's DWARF, and with what prototype.
//
// pahole 1.24 encodes each function once, from the first compilation unit (in .debug_info order)
// that defines it — but under `-j` each worker thread keeps its own "already encoded" marks, so a
// function defined in several units (a sys_ni.c stub and the real syscall, same-named statics)
// is encoded once per thread that meets it. To keep exactly the definition the single-threaded
// encoder keeps, btfgen asks the DWARF which unit comes first. Only the top level of each unit is
// read (DW_AT_sibling skips bodies), and only subprograms with a wanted name are looked into.
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
    /// parameters are all named (what pahole encodes), in .debug_info order. With `shards` > 1,
    /// only the `shard`-th of that many equal runs of units is read, so that callers can read the
    /// runs on several threads and concatenate the results in shard order.
    public static func definitions(
        in elf: ELFFile, named wanted: Set<String>, shard: Int = 0, of shards: Int = 1
    ) throws -> [String: [String]] {
        guard !wanted.isEmpty, let info = elf.section(named: ".debug_info"),
            let abbrev = elf.section(named: ".debug_abbrev")
        else { return [:] }
        var reader = DWARFReader(
            info: elf.data(of: info), abbrev: elf.data(of: abbrev),
            strings: elf.section(named: ".debug_str").map { elf.data(of: $0) },
            lineStrings: elf.section(named: ".debug_line_str").map { elf.data(of: $0) },
            littleEndian: elf.isLittleEndian)
        return try reader.definitions(named: wanted, shard: shard, of: max(1, shards))
    }
}

struct DWARFReader {
    let info: UnsafeRawBufferPointer
    let abbrev: UnsafeRawBufferPointer
    let strings: UnsafeRawBufferPointer?
    let lineStrings: UnsafeRawBufferPointer?
    let little: Bool

    struct Attribute {
        var name: UInt64
        var form: UInt64
        var implicitConst: Int64
    }
    struct Abbreviation {
        var tag: UInt64
        var hasChildren: Bool
        var attributes: [Attribute]
        /// The DIE's size after its code when every form has a fixed size (the common case for
        /// type DIEs), so that the scan can step over it without decoding.
        var fixedSize: Int?
        /// Where DW_AT_sibling's value sits after the code, and its form, when only fixed-size
        /// attributes precede it.
        var sibling: (at: Int, form: UInt64)?
        /// DW_AT_declaration as DW_FORM_flag_present: a declaration, whatever the DIE holds.
        var isDeclaration: Bool
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
        var abbreviations: [Abbreviation?]
    }
    /// Abbreviation tables by (offset, offset size, address size, version): the fixed sizes depend on them.
    var tables: [[Int]: [Abbreviation?]] = [:]
    var units: [Unit] = []

    init(
        info: UnsafeRawBufferPointer, abbrev: UnsafeRawBufferPointer, strings: UnsafeRawBufferPointer?,
        lineStrings: UnsafeRawBufferPointer?, littleEndian: Bool
    ) {
        self.info = info
        self.abbrev = abbrev
        self.strings = strings
        self.lineStrings = lineStrings
        little = littleEndian
    }

    func fail(_ at: Int, _ why: String) -> DWARFError { DWARFError(offset: at, reason: why) }

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

    mutating func table(at offset: Int, offsetSize: Int, addressSize: Int, version: Int) throws -> [Abbreviation?] {
        let key = [offset, offsetSize, addressSize, version]
        if let t = tables[key] { return t }
        var t: [Abbreviation?] = []
        var at = offset
        while at < abbrev.count {
            let code = Int(uleb(abbrev, &at))
            if code == 0 { break }
            let tag = uleb(abbrev, &at)
            let children = abbrev[at] != 0
            at += 1
            var attributes: [Attribute] = []
            while true {
                let name = uleb(abbrev, &at), form = uleb(abbrev, &at)
                if name == 0 && form == 0 { break }
                let implicit = form == 0x21 ? sleb(abbrev, &at) : 0
                attributes.append(Attribute(name: name, form: form, implicitConst: implicit))
            }
            var size: Int? = 0
            var sibling: (at: Int, form: UInt64)? = nil
            for a in attributes {
                if a.name == 0x01, let at = size { sibling = (at, a.form) }
                if let s = size,
                    let f = Self.fixedSize(a.form, offsetSize: offsetSize, addressSize: addressSize, version: version)
                {
                    size = s + f
                } else {
                    size = nil
                }
            }
            guard code < 1 << 20 else { throw fail(offset, "abbreviation code \(code) is implausible") }
            if t.count <= code { t += [Abbreviation?](repeating: nil, count: code + 1 - t.count) }
            t[code] = Abbreviation(
                tag: tag, hasChildren: children, attributes: attributes, fixedSize: size, sibling: sibling,
                isDeclaration: attributes.contains { $0.name == 0x3c && $0.form == 0x19 })
        }
        tables[key] = t
        return t
    }

    /// Every unit header, in order.
    mutating func readUnits(shard: Int, of shards: Int) throws {
        var headers:
            [(start: Int, end: Int, offsetSize: Int, addressSize: Int, version: Int, abbrev: Int, first: Int)] = []
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
            headers.append((start, end, offsetSize, addressSize, version, abbrevOffset, at))
            at = end
        }
        // Abbreviations only for this shard's units (others stay empty: a reference into them
        // reads as an unknown type, so a signature through it matches no copy).
        mine = (shard * headers.count / shards)..<((shard + 1) * headers.count / shards)
        for (i, h) in headers.enumerated() {
            let abbreviations =
                mine.contains(i)
                ? try table(at: h.abbrev, offsetSize: h.offsetSize, addressSize: h.addressSize, version: h.version) : []
            units.append(
                Unit(
                    start: h.start, end: h.end, offsetSize: h.offsetSize, addressSize: h.addressSize,
                    version: h.version, abbreviations: abbreviations))
            firstDIE.append(h.first)
        }
    }
    var mine: Range<Int> = 0..<0
    var firstDIE: [Int] = []

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
        /// Name: a .debug_str offset (nameForm 0x0e), a .debug_line_str one (0x1f), or the info
        /// offset of an inline string (0x08).
        var name: UInt64 = 0
        var nameForm: UInt64 = 0
        var type: Int? = nil
        var sibling: Int? = nil
        var declaration = false
        var end = 0
    }

    /// Read the DIE at `at` (nil for a null entry).
    func entry(at start: Int, _ unit: Unit) throws -> Entry? {
        var at = start
        let code = Int(uleb(info, &at))
        if code == 0 { return nil }
        guard code < unit.abbreviations.count, let a = unit.abbreviations[code] else {
            throw fail(start, "abbreviation \(code) is not defined")
        }
        var e = Entry(tag: a.tag, hasChildren: a.hasChildren)
        for attribute in a.attributes {
            let valueAt = at
            let v = try value(attribute.form, attribute.implicitConst, unit, &at)
            switch attribute.name {
            case 0x03:
                e.nameForm = attribute.form
                e.name = attribute.form == 0x08 ? UInt64(valueAt) : v
            case 0x49: e.type = reference(attribute.form, v, unit)
            case 0x01: e.sibling = reference(attribute.form, v, unit)
            case 0x3c: e.declaration = v != 0
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

    func nameBytes(_ e: Entry) -> UnsafeRawBufferPointer? {
        let section: UnsafeRawBufferPointer?
        switch e.nameForm {
        case 0x0e: section = strings
        case 0x1f: section = lineStrings
        case 0x08: section = info
        default: return nil
        }
        guard let s = section, Int(e.name) < s.count else { return nil }
        var end = Int(e.name)
        while end < s.count && s[end] != 0 { end += 1 }
        return UnsafeRawBufferPointer(rebasing: s[Int(e.name)..<end])
    }

    func name(_ e: Entry) -> String? { nameBytes(e).map { String(decoding: $0, as: UTF8.self) } }

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
        guard depth < 16, let unit = unit(containing: offset), !unit.abbreviations.isEmpty,
            let e = try entry(at: offset, unit)
        else { return "?" }
        let named = name(e) ?? ""
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

    /// The signature of subprogram `e` (at `start`), or nil when a parameter has no name.
    func signature(_ e: Entry, _ unit: Unit) throws -> String? {
        var parameters: [String] = []
        if e.hasChildren {
            var at = e.end
            while at < unit.end {
                guard let child = try entry(at: at, unit) else { break }
                if child.tag == 0x05 {
                    guard let n = name(child), !n.isEmpty else { return nil }
                    parameters.append(n + ":" + (try shape(child.type)))
                } else if child.tag == 0x18 {
                    parameters.append("...")
                }
                at = try skip(child, unit)
            }
        }
        return (try shape(e.type)) + "(" + parameters.joined(separator: ",") + ")"
    }

    mutating func definitions(named wanted: Set<String>, shard: Int, of shards: Int) throws -> [String: [String]] {
        try readUnits(shard: shard, of: shards)
        var found: [String: [String]] = [:]
        // Per .debug_str offset: 0 not seen yet, 1 not wanted, 2 wanted.
        var verdicts = [UInt8](repeating: 0, count: strings?.count ?? 0)
        for index in mine {
            let unit = units[index]
            var at = firstDIE[index]
            guard let root = try entry(at: at, unit) else { continue }
            guard root.hasChildren else { continue }
            at = root.end
            let abbreviations = unit.abbreviations
            while at < unit.end {
                // Fast path: step over DIEs that are not subprograms without decoding them.
                var body = at
                let code = Int(uleb(info, &body))
                if code == 0 { break }
                guard code < abbreviations.count, let a = abbreviations[code] else {
                    throw fail(at, "abbreviation \(code) is not defined")
                }
                if a.tag != 0x2e || a.isDeclaration {
                    if !a.hasChildren, let size = a.fixedSize {
                        at = body + size
                        continue
                    }
                    if a.hasChildren, let (offset, form) = a.sibling {
                        var p = body + offset
                        if let target = reference(form, try value(form, 0, unit, &p), unit), target > at,
                            target <= unit.end
                        {
                            at = target
                            continue
                        }
                    }
                }
                guard let e = try entry(at: at, unit) else { break }
                if e.tag == 0x2e, !e.declaration {
                    // Names are compared as text (a merged .debug_str shares tails, so a wanted
                    // name may sit inside a longer string), once per string offset: the same
                    // inline functions are defined again in thousands of units.
                    var match: String? = nil
                    if e.nameForm == 0x0e, Int(e.name) < verdicts.count {
                        switch verdicts[Int(e.name)] {
                        case 1: match = nil
                        case 2: match = name(e)
                        default:
                            let n = name(e)
                            let wantedName = n.map { wanted.contains($0) } ?? false
                            verdicts[Int(e.name)] = wantedName ? 2 : 1
                            match = wantedName ? n : nil
                        }
                    } else if let n = name(e), wanted.contains(n) {
                        match = n
                    }
                    if let match, let signature = try signature(e, unit) {
                        found[match, default: []].append(signature)
                    }
                }
                at = try skip(e, unit)
            }
        }
        return found
    }
}
