// Questions CO-RE and the minimizer ask of a BTF, answered the way libbpf answers them
// (btf.c, relo_core.c), with depth limits so that malformed, cyclic input cannot hang us.

/// libbpf's `MAX_RESOLVE_DEPTH`.
let maximumResolveDepth = 32

extension Kind {
    /// CONST, VOLATILE, RESTRICT or TYPE_TAG (libbpf's `btf_is_mod`).
    public var isModifier: Bool {
        switch self {
        case .volatile, .const, .restrict, .typeTag: true
        case .int, .pointer, .array, .structure, .union, .enumeration, .forward, .typedef, .function,
            .functionProto, .variable, .dataSection, .float, .declTag, .enum64:
            false
        }
    }

    /// ENUM or ENUM64.
    public var isAnyEnum: Bool {
        switch self {
        case .enumeration, .enum64: true
        case .int, .pointer, .array, .structure, .union, .forward, .typedef, .volatile, .const, .restrict,
            .function, .functionProto, .variable, .dataSection, .float, .declTag, .typeTag:
            false
        }
    }

    /// STRUCT or UNION body.
    public var composite: Composite? {
        switch self {
        case .structure(let c), .union(let c): c
        case .int, .pointer, .array, .enumeration, .forward, .typedef, .volatile, .const, .restrict,
            .function, .functionProto, .variable, .dataSection, .float, .declTag, .typeTag, .enum64:
            nil
        }
    }

    /// ENUM or ENUM64 body.
    public var enumeration: Enumeration? {
        switch self {
        case .enumeration(let e), .enum64(let e): e
        case .int, .pointer, .array, .structure, .union, .forward, .typedef, .volatile, .const, .restrict,
            .function, .functionProto, .variable, .dataSection, .float, .declTag, .typeTag:
            nil
        }
    }

    /// The type a modifier or typedef wraps.
    var wrapped: TypeID? {
        switch self {
        case .typedef(let t), .volatile(let t), .const(let t), .restrict(let t), .typeTag(let t, _): t
        case .int, .pointer, .array, .structure, .union, .enumeration, .forward, .function, .functionProto,
            .variable, .dataSection, .float, .declTag, .enum64:
            nil
        }
    }

    /// The `size` word for kinds that have one (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT).
    public var byteSize: UInt32? {
        switch self {
        case .int(let size, _, _, _), .float(let size), .dataSection(let size, _): size
        case .structure(let c), .union(let c): c.size
        case .enumeration(let e), .enum64(let e): e.size
        case .pointer, .array, .forward, .typedef, .volatile, .const, .restrict, .function, .functionProto,
            .variable, .declTag, .typeTag:
            nil
        }
    }

    /// libbpf's `btf_kind_core_compat`: the same kind, or ENUM and ENUM64.
    func isCoreCompatible(with other: Kind) -> Bool {
        code == other.code || (isAnyEnum && other.isAnyEnum)
    }
}

/// Read access to a type table: the decoded `BTF` or the lazily decoding `BTFIndex`. CO-RE
/// resolution and the minimizer work on either.
public protocol TypeTable {
    /// The type with this id; nil for void or an id out of range.
    func type(_ id: TypeID) -> BTFType?
    var strings: StringTable { get }
    /// Number of ids including void.
    var idCount: Int { get }
    var byteOrder: ByteOrder { get }
    /// Each type's id, name offset and kind, without decoding its body.
    func forEachTypeHeader(_ body: (TypeID, UInt32, KindCode) -> Void)
    /// Every type's name offset, in id order (id 1 first).
    var nameOffsets: [UInt32] { get }
    /// Every type's kind number, in id order (id 1 first).
    var kindNumbers: [UInt8] { get }
    /// The ids, name offsets and kinds of the types that pass `wanted` (and maybe more), when the
    /// table collected them up front; nil otherwise.
    func prefilteredTypes(for wanted: NamePrefilter) -> (ids: [UInt32], names: [UInt32], kinds: [UInt8])?
}

extension TypeTable {
    public func prefilteredTypes(for wanted: NamePrefilter) -> (ids: [UInt32], names: [UInt32], kinds: [UInt8])? {
        nil
    }
}

extension BTF: TypeTable {
    public var nameOffsets: [UInt32] { types.map(\.nameOffset) }
    public var kindNumbers: [UInt8] { types.map(\.kind.code.rawValue) }

    public func forEachTypeHeader(_ body: (TypeID, UInt32, KindCode) -> Void) {
        for (i, t) in types.enumerated() { body(TypeID(UInt32(i + 1)), t.nameOffset, t.kind.code) }
    }
}

extension TypeTable {
    /// Follow typedefs and modifiers to the underlying type (libbpf's `skip_mods_and_typedefs`).
    /// Returns nil for void, a dangling id, or a chain deeper than 32.
    public func skippingModifiers(_ id: TypeID) -> (id: TypeID, type: BTFType)? {
        var current = id
        for _ in 0..<maximumResolveDepth {
            guard let t = type(current) else { return nil }
            guard let next = t.kind.wrapped, t.kind.isModifier || t.kind.code == .typedef else {
                return (current, t)
            }
            current = next
        }
        return nil
    }

    /// The id `skippingModifiers` reaches, 0 when the chain ends in void; nil for a dangling id or a
    /// chain deeper than 32.
    public func skippingModifiersToID(_ id: TypeID) -> TypeID? {
        var current = id
        for _ in 0..<maximumResolveDepth {
            if current.isVoid { return current }
            guard let t = type(current) else { return nil }
            guard let next = t.kind.wrapped, t.kind.isModifier || t.kind.code == .typedef else { return current }
            current = next
        }
        return nil
    }

    /// libbpf's `btf__resolve_size`: nil where libbpf returns an error.
    public func resolvedSize(_ id: TypeID, pointerSize: Int) -> Int64? {
        var current = id
        var elements: UInt64 = 1
        var size: Int64 = -1
        var depth = 0
        while depth < maximumResolveDepth, let t = type(current) {
            switch t.kind {
            case .int(let s, _, _, _), .float(let s), .dataSection(let s, _):
                size = Int64(s)
            case .structure(let c), .union(let c):
                size = Int64(c.size)
            case .enumeration(let e), .enum64(let e):
                size = Int64(e.size)
            case .pointer:
                size = Int64(pointerSize)
            case .typedef(let next), .volatile(let next), .const(let next), .restrict(let next),
                .typeTag(let next, _), .variable(let next, _), .declTag(let next, _, _):
                current = next
                depth += 1
                continue
            case .array(let element, _, let count):
                if elements != 0 && UInt64(count) > UInt64(UInt32.max) / elements { return nil }
                elements *= UInt64(count)
                current = element
                depth += 1
                continue
            case .forward, .function, .functionProto:
                return nil
            }
            break
        }
        guard size >= 0 else { return nil }
        if elements != 0 && UInt64(size) > UInt64(UInt32.max) / elements { return nil }
        return Int64(elements) * size
    }

    /// libbpf's `determine_ptr_size`: the size of the first INT named like `long`, else 8.
    public var pointerSize: Int {
        let aliases: [[UInt8]] = [
            "long", "long int", "int long", "unsigned long", "long unsigned", "unsigned long int",
            "unsigned int long", "long unsigned int", "long int unsigned", "int unsigned long",
            "int long unsigned",
        ].map { Array($0.utf8) }
        var found: Int? = nil
        forEachTypeHeader { id, name, kind in
            guard found == nil, kind == .int, case .int(let size, _, _, _)? = type(id)?.kind, size == 4 || size == 8
            else { return }
            for a in aliases where strings.equals(name, a) {
                found = Int(size)
                return
            }
        }
        return found ?? 8
    }
}

/// Length of a name without its `___flavor` suffix (libbpf's `bpf_core_essential_name_len`).
public func essentialNameLength<C: RandomAccessCollection>(_ name: C) -> Int where C.Element == UInt8, C.Index == Int {
    let n = name.count
    let base = name.startIndex
    let underscore = UInt8(ascii: "_")
    var i = n - 5
    while i >= 0 {
        let s = base + i
        if name[s] != underscore && name[s + 1] == underscore && name[s + 2] == underscore
            && name[s + 3] == underscore && name[s + 4] != underscore
        {
            return i + 1
        }
        i -= 1
    }
    return n
}
