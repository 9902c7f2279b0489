// The BTF type model: value types addressed by `TypeID` (an index into the type table; 0 is
// void). One enum case per kind. Names are string-table offsets so that decoding and encoding
// reproduce the input byte for byte; `BTF.name(of:)` turns them into text.

/// A type's index in its BTF (1-based in file order; 0 is `void`).
public struct TypeID: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { rawValue = value }
    public init(integerLiteral value: UInt32) { rawValue = value }
    public static let void = TypeID(0)
    public var isVoid: Bool { rawValue == 0 }
    public static func < (a: TypeID, b: TypeID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "[\(rawValue)]" }
}

/// The kind numbers of the wire format (`BTF_KIND_*`), with the kernel release that added each.
public enum KindCode: UInt8, CaseIterable, Sendable, Comparable {
    case int = 1  // 4.18
    case pointer = 2  // 4.18
    case array = 3  // 4.18
    case structure = 4  // 4.18
    case union = 5  // 4.18
    case enumeration = 6  // 4.18
    case forward = 7  // 4.18
    case typedef = 8  // 4.18
    case volatile = 9  // 4.18
    case const = 10  // 4.18
    case restrict = 11  // 4.18
    case function = 12  // 5.0
    case functionProto = 13  // 5.0
    case variable = 14  // 5.2
    case dataSection = 15  // 5.2
    case float = 16  // 5.13
    case declTag = 17  // 5.16
    case typeTag = 18  // 5.17
    case enum64 = 19  // 6.0

    /// The kernel's spelling, as `bpftool btf dump` prints it.
    public var name: String {
        switch self {
        case .int: "INT"
        case .pointer: "PTR"
        case .array: "ARRAY"
        case .structure: "STRUCT"
        case .union: "UNION"
        case .enumeration: "ENUM"
        case .forward: "FWD"
        case .typedef: "TYPEDEF"
        case .volatile: "VOLATILE"
        case .const: "CONST"
        case .restrict: "RESTRICT"
        case .function: "FUNC"
        case .functionProto: "FUNC_PROTO"
        case .variable: "VAR"
        case .dataSection: "DATASEC"
        case .float: "FLOAT"
        case .declTag: "DECL_TAG"
        case .typeTag: "TYPE_TAG"
        case .enum64: "ENUM64"
        }
    }

    public static func < (a: KindCode, b: KindCode) -> Bool { a.rawValue < b.rawValue }

    // The one table of record sizes. Every record is a 12-byte `btf_type`, then a fixed trailer
    // of its kind, then vlen entries of its kind's stride:
    //
    //   +--------------------+------------------+-----------+-----------+----
    //   | name_off info size | fixed trailer    | entry 0   | entry 1   | …
    //   +--------------------+------------------+-----------+-----------+----
    //        12 bytes         0, 4 or 12 bytes   0, 8 or 12 bytes each (× vlen)

    /// Bytes every record of this kind carries after the 12-byte header.
    public var fixedTrailerSize: Int {
        switch self {
        case .int, .variable, .declTag: 4  // encoding word; linkage; component index
        case .array: 12  // btf_array
        case .pointer, .structure, .union, .enumeration, .forward, .typedef, .volatile, .const, .restrict,
            .function, .functionProto, .dataSection, .float, .typeTag, .enum64:
            0
        }
    }

    /// Bytes of each of the vlen entries after the trailer (0: the kind has no entries, and a FUNC's
    /// vlen is its linkage).
    public var entrySize: Int {
        switch self {
        case .structure, .union, .dataSection, .enum64: 12  // btf_member, btf_var_secinfo, btf_enum64
        case .enumeration, .functionProto: 8  // btf_enum, btf_param
        case .int, .pointer, .array, .forward, .typedef, .volatile, .const, .restrict, .function, .variable,
            .float, .declTag, .typeTag:
            0
        }
    }

    /// Wire size of a record of this kind with `vlen` entries.
    public func recordSize(vlen: Int) -> Int { 12 + fixedTrailerSize + entrySize * vlen }
}

/// A struct or union member. `offset` is the raw wire word: with the parent's `bitfieldMembers`
/// flag set it is `bitfield_size << 24 | bit_offset`, otherwise the plain bit offset.
public struct Member: Hashable, Sendable {
    public var nameOffset: UInt32
    public var type: TypeID
    public var offset: UInt32

    public init(nameOffset: UInt32, type: TypeID, offset: UInt32) {
        self.nameOffset = nameOffset
        self.type = type
        self.offset = offset
    }
}

/// A struct or union body.
public struct Composite: Hashable, Sendable {
    public var size: UInt32
    /// The kind_flag: member offsets carry a bitfield size in their top 8 bits.
    public var bitfieldMembers: Bool
    public var members: [Member]

    public init(size: UInt32, bitfieldMembers: Bool, members: [Member]) {
        self.size = size
        self.bitfieldMembers = bitfieldMembers
        self.members = members
    }

    /// Bit offset of member `i` within the composite.
    public func bitOffset(_ i: Int) -> UInt32 {
        bitfieldMembers ? members[i].offset & 0xff_ffff : members[i].offset
    }

    /// Bitfield width of member `i` (0 when it is not a bitfield).
    public func bitfieldSize(_ i: Int) -> UInt32 {
        bitfieldMembers ? members[i].offset >> 24 : 0
    }
}

/// One enumerator of an ENUM or ENUM64; `value` holds the 32 or 64 raw bits.
public struct Enumerator: Hashable, Sendable {
    public var nameOffset: UInt32
    public var value: UInt64

    public init(nameOffset: UInt32, value: UInt64) {
        self.nameOffset = nameOffset
        self.value = value
    }
}

/// An ENUM (4.18) or ENUM64 (6.0) body.
public struct Enumeration: Hashable, Sendable {
    public var size: UInt32
    /// The kind_flag: values are signed.
    public var isSigned: Bool
    public var values: [Enumerator]

    public init(size: UInt32, isSigned: Bool, values: [Enumerator]) {
        self.size = size
        self.isSigned = isSigned
        self.values = values
    }
}

/// A function parameter (`btf_param`).
public struct Parameter: Hashable, Sendable {
    public var nameOffset: UInt32
    public var type: TypeID

    public init(nameOffset: UInt32, type: TypeID) {
        self.nameOffset = nameOffset
        self.type = type
    }
}

/// A variable's place in a DATASEC (`btf_var_secinfo`).
public struct SectionVariable: Hashable, Sendable {
    public var type: TypeID
    public var offset: UInt32
    public var size: UInt32

    public init(type: TypeID, offset: UInt32, size: UInt32) {
        self.type = type
        self.offset = offset
        self.size = size
    }
}

/// The body of a type, one case per kind.
public enum Kind: Hashable, Sendable {
    /// INT: `encoding` bits are 1 signed, 2 char, 4 bool; `bitOffset`/`bits` from the trailing u32.
    case int(size: UInt32, encoding: UInt8, bitOffset: UInt8, bits: UInt8)
    case pointer(TypeID)
    case array(element: TypeID, index: TypeID, count: UInt32)
    case structure(Composite)
    case union(Composite)
    case enumeration(Enumeration)
    case forward(isUnion: Bool)
    case typedef(TypeID)
    case volatile(TypeID)
    case const(TypeID)
    case restrict(TypeID)
    /// FUNC: `linkage` is the vlen field (0 static, 1 global, 2 extern).
    case function(proto: TypeID, linkage: UInt16)
    case functionProto(returns: TypeID, parameters: [Parameter])
    case variable(type: TypeID, linkage: UInt32)
    case dataSection(size: UInt32, variables: [SectionVariable])
    case float(size: UInt32)
    /// DECL_TAG: `componentIndex` -1 tags the type itself, else a member or parameter.
    case declTag(type: TypeID, componentIndex: Int32, isAttribute: Bool)
    case typeTag(TypeID, isAttribute: Bool)
    case enum64(Enumeration)

    /// The wire kind number.
    public var code: KindCode {
        switch self {
        case .int: .int
        case .pointer: .pointer
        case .array: .array
        case .structure: .structure
        case .union: .union
        case .enumeration: .enumeration
        case .forward: .forward
        case .typedef: .typedef
        case .volatile: .volatile
        case .const: .const
        case .restrict: .restrict
        case .function: .function
        case .functionProto: .functionProto
        case .variable: .variable
        case .dataSection: .dataSection
        case .float: .float
        case .declTag: .declTag
        case .typeTag: .typeTag
        case .enum64: .enum64
        }
    }
}

/// One type: its name (a string-table offset, 0 for anonymous) and body.
public struct BTFType: Hashable, Sendable {
    public var nameOffset: UInt32
    public var kind: Kind

    public init(nameOffset: UInt32, kind: Kind) {
        self.nameOffset = nameOffset
        self.kind = kind
    }

    /// Bytes this type occupies on the wire.
    public var encodedSize: Int { kind.code.recordSize(vlen: entryCount) }

    /// How many vlen entries the record carries (members, enumerators, parameters, variables).
    var entryCount: Int {
        switch kind {
        case .structure(let c), .union(let c): c.members.count
        case .enumeration(let e), .enum64(let e): e.values.count
        case .functionProto(_, let p): p.count
        case .dataSection(_, let v): v.count
        case .int, .pointer, .array, .forward, .typedef, .volatile, .const, .restrict, .function, .variable,
            .float, .declTag, .typeTag:
            0
        }
    }

    /// Every type id this type refers to, in wire order (what `btf_type_visit_type_ids` visits).
    public var referencedTypes: [TypeID] {
        var ids: [TypeID] = []
        forEachReference { ids.append($0) }
        return ids
    }

    /// Call `body` with every type id this type refers to, in wire order.
    @inline(__always)
    public func forEachReference(_ body: (TypeID) throws -> Void) rethrows {
        switch kind {
        case .int, .forward, .float, .enumeration, .enum64: break
        case .pointer(let t), .typedef(let t), .volatile(let t), .const(let t), .restrict(let t):
            try body(t)
        case .typeTag(let t, _): try body(t)
        case .array(let element, let index, _):
            try body(element)
            try body(index)
        case .structure(let c), .union(let c):
            for m in c.members { try body(m.type) }
        case .function(let proto, _): try body(proto)
        case .functionProto(let returns, let parameters):
            try body(returns)
            for p in parameters { try body(p.type) }
        case .variable(let type, _): try body(type)
        case .dataSection(_, let variables):
            for v in variables { try body(v.type) }
        case .declTag(let type, _, _): try body(type)
        }
    }

    /// A copy with every type id passed through `map` (libbpf's `btf_type_visit_type_ids`).
    public func remappingTypes(_ map: (TypeID) -> TypeID) -> BTFType {
        var copy = self
        switch kind {
        case .int, .forward, .float, .enumeration, .enum64: break
        case .pointer(let t): copy.kind = .pointer(map(t))
        case .typedef(let t): copy.kind = .typedef(map(t))
        case .volatile(let t): copy.kind = .volatile(map(t))
        case .const(let t): copy.kind = .const(map(t))
        case .restrict(let t): copy.kind = .restrict(map(t))
        case .typeTag(let t, let a): copy.kind = .typeTag(map(t), isAttribute: a)
        case .array(let element, let index, let count):
            copy.kind = .array(element: map(element), index: map(index), count: count)
        case .structure(var c):
            for i in c.members.indices { c.members[i].type = map(c.members[i].type) }
            copy.kind = .structure(c)
        case .union(var c):
            for i in c.members.indices { c.members[i].type = map(c.members[i].type) }
            copy.kind = .union(c)
        case .function(let proto, let linkage): copy.kind = .function(proto: map(proto), linkage: linkage)
        case .functionProto(let returns, var parameters):
            for i in parameters.indices { parameters[i].type = map(parameters[i].type) }
            copy.kind = .functionProto(returns: map(returns), parameters: parameters)
        case .variable(let type, let linkage): copy.kind = .variable(type: map(type), linkage: linkage)
        case .dataSection(let size, var variables):
            for i in variables.indices { variables[i].type = map(variables[i].type) }
            copy.kind = .dataSection(size: size, variables: variables)
        case .declTag(let type, let index, let a):
            copy.kind = .declTag(type: map(type), componentIndex: index, isAttribute: a)
        }
        return copy
    }
}

extension BTFType {
    /// A copy with every string offset (the type's name, then member, enumerator and parameter
    /// names in wire order) passed through `map`: the string-side twin of `remappingTypes`, used
    /// wherever BTF is rewritten with a new string table.
    public func renamingStrings(_ map: (UInt32) -> UInt32) -> BTFType {
        var copy = self
        copy.nameOffset = map(nameOffset)
        switch kind {
        case .structure(var c):
            for i in c.members.indices { c.members[i].nameOffset = map(c.members[i].nameOffset) }
            copy.kind = .structure(c)
        case .union(var c):
            for i in c.members.indices { c.members[i].nameOffset = map(c.members[i].nameOffset) }
            copy.kind = .union(c)
        case .enumeration(var e):
            for i in e.values.indices { e.values[i].nameOffset = map(e.values[i].nameOffset) }
            copy.kind = .enumeration(e)
        case .enum64(var e):
            for i in e.values.indices { e.values[i].nameOffset = map(e.values[i].nameOffset) }
            copy.kind = .enum64(e)
        case .functionProto(let returns, var parameters):
            for i in parameters.indices { parameters[i].nameOffset = map(parameters[i].nameOffset) }
            copy.kind = .functionProto(returns: returns, parameters: parameters)
        case .int, .pointer, .array, .forward, .typedef, .volatile, .const, .restrict, .function, .variable,
            .dataSection, .float, .declTag, .typeTag:
            break
        }
        return copy
    }
}

/// Byte order of a BTF blob, detected from its magic.
public enum ByteOrder: Sendable, Hashable {
    case little, big
    /// The byte order of the machine running btfgen.
    public static var host: ByteOrder { UInt16(1).littleEndian == 1 ? .little : .big }
}
