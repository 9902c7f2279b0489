// The minimizer: the smallest BTF that still satisfies every CO-RE relocation of a set of objects.
//
// It follows bpftool's `gen min_core_btf` (gen.c, the BTFGen block) so that the kept types and
// members are the same set:
//
//  1. Resolve each relocation against the full target BTF (CoreResolver). The first matching
//     candidate's spec says what the relocation touches in the target.
//  2. Mark what it touches:
//     - field relocations: the root type, then along the spec every struct/union member on the
//       path (the member and its type); arrays are stepped through;
//     - TYPE_ID_TARGET / TYPE_EXISTS / TYPE_SIZE: the type, following pointers, typedefs and
//       modifiers; structs and unions are kept without members;
//     - TYPE_MATCHES: the type with all its members recursively, stopping at composites behind
//       pointers;
//     - ENUMVAL_*: the whole enum.
//     Marking a type also marks what it needs to be well-formed: modifiers/typedefs their target,
//     arrays their element and index types, function prototypes their return and parameter
//     types; pointers are followed only for type relocations.
//  3. Emit the marked types in their original id order: structs and unions with only their
//     marked members (offsets and bitfield sizes unchanged, kind_flag set when a kept member is a
//     bitfield), everything else copied whole. Type ids are renumbered; a reference to an
//     unmarked type becomes 0, so a pointer to an unkept type turns into `void *`.
//
// Relocations that match no candidate mark nothing. Where bpftool gives up on a kind it does not
// expect (FWD, TYPE_TAG on a marked path), we keep FWD as is and step through TYPE_TAG like the
// other modifiers.

/// Collects what a set of objects touches in one target BTF and emits the minimized BTF.
public struct Minimizer<Target: TypeTable> {
    public private(set) var resolver: CoreResolver<Target>
    /// Marked type ids. Sets, not a flag per type: CO-RE marks a few dozen of a kernel's ~100k
    /// types, and two arrays of every id would be zeroed (and faulted in) for each kernel.
    private var marked: Set<UInt32> = []
    /// Types already marked with pointer following (a stronger mark than without).
    private var markedFollowingPointers: Set<UInt32> = []
    private var markedForMatch: Set<UInt64> = []
    /// Kept member indexes per struct/union.
    private var members: [TypeID: Set<Int>] = [:]

    public var target: Target { resolver.target }

    public init(target: Target) {
        resolver = CoreResolver(target: target)
    }

    /// Find candidates for all of `objects` in one pass over the target (optional; speeds up `record`).
    public mutating func prepareCandidates(for objects: [BPFObject]) {
        resolver.prepareCandidates(for: objects)
    }

    /// Resolve and record every CO-RE relocation of `object`; returns the resolutions.
    @discardableResult
    public mutating func record(_ object: BPFObject) throws -> [CoreRelocationResult] {
        let results = try resolver.resolve(object)
        for (r, result) in zip(object.coreRelocations, results) {
            try record(result, section: r.section, index: r.index)
        }
        return results
    }

    /// Record what one resolved relocation touches.
    public mutating func record(_ result: CoreRelocationResult, section: String = "?", index: Int = 0) throws {
        guard let spec = result.targetSpec else { return }
        func fail(_ why: String) -> BTFError { .badRelocation(section: section, index: index, reason: why) }
        switch result.kind {
        case .fieldByteOffset, .fieldByteSize, .fieldExists, .fieldSigned, .fieldLShiftU64, .fieldRShiftU64:
            var id = spec.root
            try mark(id, followPointers: false)
            for i in 1..<max(1, spec.raw.count) {
                guard let skipped = target.skippingModifiersToID(id), let t = target.type(skipped) else {
                    throw fail("target type \(id) on the access path does not resolve")
                }
                id = skipped
                switch t.kind {
                case .structure(let c), .union(let c):
                    let m = spec.raw[i]
                    guard m < c.members.count else { throw fail("member \(m) of \(id) out of range") }
                    members[id, default: []].insert(m)
                    id = c.members[m].type
                    try mark(id, followPointers: false)
                case .array(let element, _, _):
                    id = element
                case .int, .pointer, .enumeration, .forward, .typedef, .volatile, .const, .restrict, .function,
                    .functionProto, .variable, .dataSection, .float, .declTag, .typeTag, .enum64:
                    throw fail("access path reaches \(t.kind.code.name) \(id)")
                }
            }
        case .typeIDLocal:
            return
        case .typeIDTarget, .typeExists, .typeSize:
            try mark(spec.root, followPointers: true)
        case .typeMatches:
            try markForMatch(spec.root, behindPointer: false, depth: 0)
        case .enumValueExists, .enumValueValue:
            try mark(spec.root, followPointers: false)
        }
    }

    /// bpftool's `btfgen_mark_type`.
    private mutating func mark(_ id: TypeID, followPointers: Bool, depth: Int = 0) throws {
        guard !id.isVoid else { return }
        guard let t = target.type(id) else { throw BTFError.internalError("marking missing type \(id)") }
        guard depth < 1024 else { throw BTFError.typeChainTooDeep(id: id.rawValue) }
        let i = id.rawValue
        if markedFollowingPointers.contains(i) || (!followPointers && marked.contains(i)) { return }
        marked.insert(i)
        if followPointers { markedFollowingPointers.insert(i) }
        switch t.kind {
        case .int, .float, .enumeration, .enum64, .structure, .union, .forward:
            break
        case .pointer(let to):
            if followPointers { try mark(to, followPointers: true, depth: depth + 1) }
        case .const(let to), .volatile(let to), .restrict(let to), .typedef(let to), .typeTag(let to, _):
            try mark(to, followPointers: followPointers, depth: depth + 1)
        case .array(let element, let index, _):
            try mark(element, followPointers: followPointers, depth: depth + 1)
            try mark(index, followPointers: followPointers, depth: depth + 1)
        case .functionProto(let returns, let parameters):
            try mark(returns, followPointers: followPointers, depth: depth + 1)
            for p in parameters { try mark(p.type, followPointers: followPointers, depth: depth + 1) }
        case .function, .variable, .dataSection, .declTag:
            throw BTFError.badRelocation(
                section: "?", index: 0,
                reason: "a relocation reaches \(t.kind.code.name) \(id), which CO-RE never targets")
        }
    }

    /// bpftool's `btfgen_mark_type_match`.
    private mutating func markForMatch(_ id: TypeID, behindPointer: Bool, depth: Int) throws {
        guard !id.isVoid else { return }
        guard let t = target.type(id) else { throw BTFError.internalError("marking missing type \(id)") }
        guard depth < 1024 else { throw BTFError.typeChainTooDeep(id: id.rawValue) }
        let key = UInt64(id.rawValue) << 1 | (behindPointer ? 1 : 0)
        guard markedForMatch.insert(key).inserted else { return }
        marked.insert(id.rawValue)
        switch t.kind {
        case .int, .float, .enumeration, .enum64, .forward:
            break
        case .structure(let c), .union(let c):
            guard !behindPointer else { break }
            members[id, default: []].formUnion(c.members.indices)
            for m in c.members { try markForMatch(m.type, behindPointer: false, depth: depth + 1) }
        case .const(let to), .volatile(let to), .restrict(let to), .typedef(let to), .typeTag(let to, _):
            try markForMatch(to, behindPointer: behindPointer, depth: depth + 1)
        case .pointer(let to):
            try markForMatch(to, behindPointer: true, depth: depth + 1)
        case .array(let element, let index, _):
            try markForMatch(element, behindPointer: false, depth: depth + 1)
            try markForMatch(index, behindPointer: false, depth: depth + 1)
        case .functionProto(let returns, let parameters):
            try markForMatch(returns, behindPointer: false, depth: depth + 1)
            for p in parameters { try markForMatch(p.type, behindPointer: false, depth: depth + 1) }
        case .function, .variable, .dataSection, .declTag:
            throw BTFError.badRelocation(
                section: "?", index: 0,
                reason: "a relocation reaches \(t.kind.code.name) \(id), which CO-RE never targets")
        }
    }

    /// The ids of every type marked so far, in order.
    public var markedTypes: [TypeID] {
        marked.sorted().map { TypeID($0) }
    }

    /// The minimized BTF: marked types in original order, renumbered, with a fresh string table.
    /// Always little-endian with a 24-byte header, like libbpf's writer.
    public func minimized() -> BTF {
        var strings = StringTableBuilder()
        var newIDs: [UInt32: UInt32] = [:]
        var out: [BTFType] = []
        let source = target.strings
        for id in markedTypes {
            guard var t = target.type(id) else { continue }
            newIDs[id.rawValue] = UInt32(out.count + 1)
            switch t.kind {
            case .structure(let c), .union(let c):
                let keep = members[id] ?? []
                var bitfield = false
                var kept: [(name: UInt32, type: TypeID, bitOffset: UInt32, bitfieldSize: UInt32)] = []
                for i in c.members.indices where keep.contains(i) {
                    let size = c.bitfieldSize(i)
                    if size != 0 { bitfield = true }
                    kept.append((c.members[i].nameOffset, c.members[i].type, c.bitOffset(i), size))
                }
                let body = Composite(
                    size: c.size, bitfieldMembers: bitfield,
                    members: kept.map {
                        Member(
                            nameOffset: $0.name, type: $0.type,
                            offset: bitfield ? $0.bitfieldSize << 24 | $0.bitOffset : $0.bitOffset)
                    })
                t.kind = t.kind.code == .structure ? .structure(body) : .union(body)
            case .int, .pointer, .array, .enumeration, .forward, .typedef, .volatile, .const, .restrict,
                .function, .functionProto, .variable, .dataSection, .float, .declTag, .typeTag, .enum64:
                break
            }
            out.append(t.renamingStrings { strings.add(source.utf8(at: $0)) })
        }
        let remapped = out.map { t in
            t.remappingTypes { old in
                newIDs[old.rawValue].map { TypeID($0) } ?? .void
            }
        }
        return BTF(byteOrder: .little, headerLength: 24, types: remapped, strings: strings.table)
    }
}

extension TypeTable {
    /// The minimal BTF that satisfies every CO-RE relocation of `objects` against this BTF.
    public func minimized(for objects: [BPFObject]) throws -> BTF {
        var m = Minimizer(target: self)
        m.prepareCandidates(for: objects)
        for o in objects { try m.record(o) }
        return m.minimized()
    }
}
