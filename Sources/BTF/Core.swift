// CO-RE relocation resolution against a target BTF, following libbpf's relo_core.c:
//
//  1. Parse the access string against the local (object) BTF into a spec: the low-level list of
//     indexes ("0:1:2") and the high-level accessors (named fields and array indexes; anonymous
//     struct/union members are stepped through but leave no accessor).
//  2. Candidates: every target type of a compatible kind (ENUM ≡ ENUM64) whose name, cut at a
//     `___flavor` suffix, equals the local name cut the same way; in target id order.
//  3. Match the local spec against each candidate: field names are searched recursively through
//     anonymous members, array indexes must be in bounds (flexible arrays excepted), field types
//     must be compatible; type relocations check type compatibility (or "match" for
//     TYPE_MATCHES); enum relocations look the enumerator up by essential name.
//  4. Compute the relocated value for each matching candidate; all must agree, else the
//     relocation is ambiguous. With no match, EXISTS kinds give 0 and others poison the insn.

/// libbpf's `BPF_CORE_SPEC_MAX_LEN`.
let maximumSpecLength = 64

/// One high-level step of a spec: a named member, an array index, or an enumerator.
public struct CoreAccessor: Hashable, Sendable {
    /// The struct/union holding the member, the array element type, or the enum.
    public var type: TypeID
    public var index: Int
    /// Offset of the member or enumerator name in its BTF's strings; nil for an array index.
    public var nameOffset: UInt32?
}

/// A parsed (local) or matched (target) relocation spec, like libbpf's `bpf_core_spec`.
public struct CoreSpec: Hashable, Sendable {
    public var root: TypeID
    public var kind: CoreRelocationKind
    public var accessors: [CoreAccessor] = []
    /// The access string as indexes, including anonymous-member steps.
    public var raw: [Int] = []
    public var bitOffset: UInt32 = 0
}

/// What a relocation resolves to against one target.
public struct CoreRelocationResult: Hashable, Sendable {
    public var kind: CoreRelocationKind
    /// The value computed against the object's own BTF (libbpf's `orig_val`).
    public var localValue: UInt64
    /// The value computed against the target (`new_val`); meaningless when `poison`.
    public var targetValue: UInt64
    /// No candidate matched and the kind has no "does not exist" value: libbpf poisons the insn.
    public var poison: Bool
    /// The first matching candidate's spec (nil when none matched or for TYPE_ID_LOCAL).
    public var targetSpec: CoreSpec?
}

/// Resolves CO-RE relocations of objects against one target BTF.
public struct CoreResolver<Target: TypeTable> {
    public let target: Target
    /// The target's pointer size (libbpf's `determine_ptr_size`), found with the first candidate scan.
    public private(set) var targetPointerSize: Int = 8
    private var pointerSizeKnown = false
    /// Essential name → candidate ids in id order, filled by `prepareCandidates`.
    private var candidatesByName: [[UInt8]: [TypeID]] = [:]
    /// Which target kinds (bit n for kind number n) each `candidatesByName` list covers.
    private var scannedKinds: [[UInt8]: UInt32] = [:]

    /// Every kind number.
    public static var allKinds: UInt32 { 0xffff_fffe }

    /// The target kinds libbpf accepts as candidates for a local type of kind `code`.
    static func candidateKinds(for code: KindCode) -> UInt32 {
        let enums: UInt32 = 1 << KindCode.enumeration.rawValue | 1 << KindCode.enum64.rawValue
        let own: UInt32 = 1 << code.rawValue
        return own & enums != 0 ? enums : own
    }

    public init(target: Target) {
        self.target = target
    }

    /// The INT names libbpf takes for `long`.
    static var longAliases: [[UInt8]] {
        [
            "long", "long int", "int long", "unsigned long", "long unsigned", "unsigned long int", "unsigned int long",
            "long unsigned int", "long int unsigned", "int unsigned long", "int long unsigned",
        ].map { Array($0.utf8) }
    }

    /// Find `long` among the candidates (one scan shared with candidate lookup).
    private mutating func ensurePointerSize() {
        guard !pointerSizeKnown else { return }
        pointerSizeKnown = true
        prepareCandidates(Set(CoreResolver.longAliases), kinds: 1 << KindCode.int.rawValue)
        var best: (id: TypeID, size: Int)? = nil
        for alias in CoreResolver.longAliases {
            for id in candidatesByName[alias] ?? [] {
                guard case .int(let size, _, _, _)? = target.type(id)?.kind, size == 4 || size == 8,
                    target.strings.equals(target.type(id)!.nameOffset, alias)
                else { continue }
                if best == nil || id < best!.id { best = (id, Int(size)) }
                break
            }
        }
        targetPointerSize = best?.size ?? 8
    }

    /// Find target types named like `names` (essential names) in one pass over the target,
    /// looking only at types whose kind is in `kinds` (bit n for kind number n).
    public mutating func prepareCandidates(_ names: Set<[UInt8]>, kinds: UInt32 = CoreResolver.allKinds) {
        let missing = Array(names.filter { !$0.isEmpty && (scannedKinds[$0] ?? 0) & kinds != kinds })
        guard !missing.isEmpty else { return }
        // Rescanning a name covers what it covered before too.
        var kinds = kinds
        for n in missing { kinds |= scannedKinds[n] ?? 0 }
        let kindMask = kinds
        var hits: [(name: Int, id: UInt32)] = []
        // Only the types the index collected up front, when it did for these names and kinds.
        let prefilter = NamePrefilter(kinds: kindMask, firstBytes: Set(missing.map { $0[0] }), names: Set(missing))
        let nameOffsets: [UInt32], kindNumbers: [UInt8], ids: [UInt32]?
        if let p = target.prefilteredTypes(for: prefilter) {
            (ids, nameOffsets, kindNumbers) = (p.ids, p.names, p.kinds)
        } else {
            (ids, nameOffsets, kindNumbers) = (nil, target.nameOffsets, target.kindNumbers)
        }
        let wanted = WantedNames(missing)
        target.strings.withUnsafeBytes { strings in
            kindNumbers.withUnsafeBufferPointer { kindNumbers in
                nameOffsets.withUnsafeBufferPointer { offsets in
                    for index in 0..<min(offsets.count, kindNumbers.count) {
                        let o = Int(offsets[index])
                        guard o != 0, o < strings.count, kindMask & (1 << UInt32(kindNumbers[index] & 31)) != 0
                        else { continue }
                        wanted.forEachMatch(at: o, in: strings) { hits.append(($0, ids?[index] ?? UInt32(index + 1))) }
                    }
                }
            }
        }
        var found = [[TypeID]](repeating: [], count: missing.count)
        for h in hits { found[h.name].append(TypeID(h.id)) }
        for n in missing { scannedKinds[n] = kindMask }
        for (i, n) in missing.enumerated() { candidatesByName[n] = found[i] }
    }

    /// Prepare candidates for every relocation of `objects` in one pass over the target.
    public mutating func prepareCandidates(for objects: [BPFObject]) {
        let (names, kinds) = CoreResolver.candidateNames(for: objects, pointerSizeKnown: pointerSizeKnown)
        prepareCandidates(names, kinds: kinds)
    }

    /// The essential names whose candidates `objects` need, and the target kinds to look at.
    static func candidateNames(for objects: [BPFObject], pointerSizeKnown: Bool = false) -> (Set<[UInt8]>, UInt32) {
        var names = Set<[UInt8]>(pointerSizeKnown ? [] : CoreResolver.longAliases)
        var kinds: UInt32 = pointerSizeKnown ? 0 : 1 << KindCode.int.rawValue
        for o in objects {
            names.formUnion(o.coreCandidates.names)
            kinds |= o.coreCandidates.kinds
        }
        return (names, kinds)
    }

    /// The essential name of a local relocation's root type, if it has one.
    public static func essentialName(of relocation: CoreRelocation, in local: BTF) -> [UInt8]? {
        guard relocation.kind != .typeIDLocal, let t = local.type(relocation.type) else { return nil }
        let name = local.strings.utf8(at: t.nameOffset)
        guard !name.isEmpty else { return nil }
        return Array(name.prefix(essentialNameLength(name)))
    }

    /// Resolve every CO-RE relocation of `object`.
    public mutating func resolve(_ object: BPFObject) throws -> [CoreRelocationResult] {
        let relocations = object.coreRelocations
        prepareCandidates(for: [object])
        var results: [CoreRelocationResult] = []
        results.reserveCapacity(relocations.count)
        for r in relocations {
            results.append(try resolve(r.relocation, in: object.btf, section: r.section, index: r.index))
        }
        return results
    }

    /// Resolve one relocation whose local types live in `local` (libbpf's `bpf_core_calc_relo_insn`).
    public mutating func resolve(
        _ relocation: CoreRelocation, in local: BTF, section: String = "?",
        index: Int = 0
    ) throws -> CoreRelocationResult {
        func fail(_ why: String) -> BTFError { .badRelocation(section: section, index: index, reason: why) }
        ensurePointerSize()
        guard let localType = local.type(relocation.type) else {
            throw fail("local type id \(relocation.type.rawValue) does not exist in the object's BTF")
        }
        let localSpec: CoreSpec
        do {
            localSpec = try CoreSpecParser(btf: local).parse(relocation)
        } catch let e as SpecFailure {
            throw fail(
                "cannot parse access string \"\(local.strings.string(at: relocation.accessStringOffset))\" "
                    + "of [\(relocation.type.rawValue)] \(local.strings.string(at: localType.nameOffset)): \(e.reason)")
        }
        if relocation.kind == .typeIDLocal {
            let id = UInt64(relocation.type.rawValue)
            return CoreRelocationResult(
                kind: .typeIDLocal, localValue: id, targetValue: id, poison: false,
                targetSpec: nil)
        }
        let localName = local.strings.utf8(at: localType.nameOffset)
        guard !localName.isEmpty else {
            throw fail("\(relocation.kind.name) relocation of an anonymous type (libbpf does not support it)")
        }
        let essential = Array(localName.prefix(essentialNameLength(localName)))
        prepareCandidates([essential], kinds: CoreResolver.candidateKinds(for: localType.kind.code))
        let candidates = (candidatesByName[essential] ?? []).filter {
            target.type($0)?.kind.isCoreCompatible(with: localType.kind) ?? false
        }
        let matcher = CoreMatcher(local: local, target: target, targetPointerSize: targetPointerSize)
        var chosen: (CoreSpec, CoreRelocationResult)? = nil
        for candidate in candidates {
            let spec: CoreSpec?
            do {
                spec = try matcher.match(localSpec, candidate: candidate)
            } catch let e as SpecFailure {
                throw fail("matching candidate \(candidate) failed: \(e.reason)")
            }
            guard let spec else { continue }
            let result = try calculate(relocation, localSpec: localSpec, targetSpec: spec, local: local, fail: fail)
            if let (firstSpec, first) = chosen {
                if spec.bitOffset != firstSpec.bitOffset {
                    throw BTFError.ambiguousRelocation(
                        section: section, index: index,
                        reason: "field offset \(spec.bitOffset) != \(firstSpec.bitOffset)")
                }
                if result.poison != first.poison || result.targetValue != first.targetValue {
                    throw BTFError.ambiguousRelocation(
                        section: section, index: index,
                        reason:
                            "candidates \(candidate) and \(firstSpec.root) give \(result.targetValue) and \(first.targetValue)"
                    )
                }
            } else {
                chosen = (spec, result)
            }
        }
        if let (_, result) = chosen { return result }
        return try calculate(relocation, localSpec: localSpec, targetSpec: nil, local: local, fail: fail)
    }

    /// libbpf's `bpf_core_calc_relo`.
    private func calculate(
        _ relocation: CoreRelocation, localSpec: CoreSpec, targetSpec: CoreSpec?, local: BTF,
        fail: (String) -> BTFError
    ) throws -> CoreRelocationResult {
        let kind = relocation.kind
        var result = CoreRelocationResult(
            kind: kind, localValue: 0, targetValue: 0, poison: false,
            targetSpec: targetSpec)
        let localCalc = ValueCalculator(btf: local, pointerSize: 8)
        let targetCalc = ValueCalculator(btf: target, pointerSize: targetPointerSize)
        do {
            if kind.isFieldBased {
                guard let l = try localCalc.field(kind, localSpec) else {
                    throw fail("the object's own field does not resolve")
                }
                result.localValue = l
                if let t = try targetCalc.field(kind, targetSpec) {
                    result.targetValue = t
                } else {
                    result.poison = true
                }
            } else if kind.isTypeBased {
                result.localValue = try localCalc.type(kind, localSpec)
                result.targetValue = try targetCalc.type(kind, targetSpec)
            } else {
                guard let l = localCalc.enumValue(kind, localSpec) else { throw fail("local enumerator missing") }
                result.localValue = l
                if let t = targetCalc.enumValue(kind, targetSpec) {
                    result.targetValue = t
                } else {
                    result.poison = true
                }
            }
        } catch let e as SpecFailure {
            throw fail(e.reason)
        }
        return result
    }
}

/// A spec that libbpf would reject, with why.
struct SpecFailure: Error {
    let reason: String
}

/// libbpf's `bpf_core_parse_spec`.
struct CoreSpecParser {
    let btf: BTF

    /// libbpf's `bpf_core_parse_spec`: the access string as indexes, then the accessors they name.
    func parse(_ relocation: CoreRelocation) throws -> CoreSpec {
        var spec = CoreSpec(root: relocation.type, kind: relocation.kind)
        let text = btf.strings.utf8(at: relocation.accessStringOffset)
        guard let first = text.first, first != UInt8(ascii: ":") else {
            throw SpecFailure(reason: "empty access string")
        }
        if relocation.kind.isTypeBased {
            guard Array(text) == [UInt8(ascii: "0")] else {
                throw SpecFailure(reason: "type relocations take access string \"0\"")
            }
            return spec
        }
        spec.raw = try indexes(of: text)
        guard let (id, t) = btf.skippingModifiers(relocation.type) else {
            throw SpecFailure(reason: "root type \(relocation.type) does not resolve")
        }
        let rootIndex = spec.raw[0]
        spec.accessors.append(CoreAccessor(type: id, index: rootIndex, nameOffset: nil))
        if relocation.kind.isEnumValueBased {
            guard let e = t.kind.enumeration, spec.raw.count == 1, rootIndex < e.values.count else {
                throw SpecFailure(reason: "enum relocation needs an enum and one in-range enumerator index")
            }
            spec.accessors[0].nameOffset = e.values[rootIndex].nameOffset
            return spec
        }
        guard relocation.kind.isFieldBased else { throw SpecFailure(reason: "unknown relocation kind") }
        guard let size = btf.resolvedSize(id, pointerSize: 8) else {
            throw SpecFailure(reason: "root type \(id) has no size")
        }
        spec.bitOffset = UInt32(truncatingIfNeeded: Int64(rootIndex) &* size &* 8)
        var current = id
        for i in 1..<spec.raw.count { current = try step(&spec, from: current, position: i) }
        return spec
    }

    /// "0:1:2" → [0, 1, 2]: at least one index, at most 64, each within Int32.
    private func indexes(of text: some Collection<UInt8>) throws -> [Int] {
        var raw: [Int] = []
        var value: Int? = nil
        func append(_ v: Int?) throws {
            guard let v else { throw SpecFailure(reason: "empty index") }
            guard raw.count < maximumSpecLength else { throw SpecFailure(reason: "more than 64 indexes") }
            raw.append(v)
        }
        for c in text {
            if c == UInt8(ascii: ":") {
                try append(value)
                value = nil
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                let next = (value ?? 0) * 10 + Int(c - UInt8(ascii: "0"))
                guard next <= Int(Int32.max) else { throw SpecFailure(reason: "index too large") }
                value = next
            } else {
                throw SpecFailure(reason: "unexpected character '\(Character(Unicode.Scalar(c)))'")
            }
        }
        guard value != nil else { throw SpecFailure(reason: "trailing ':'") }
        try append(value)
        return raw
    }

    /// Follow index `position` of the spec from type `id` (a struct/union member or an array
    /// element), adding its bit offset and accessor; returns the type reached.
    private func step(_ spec: inout CoreSpec, from id: TypeID, position i: Int) throws -> TypeID {
        guard let (id, t) = btf.skippingModifiers(id) else {
            throw SpecFailure(reason: "type \(id) does not resolve")
        }
        let index = spec.raw[i]
        if let c = t.kind.composite {
            guard index < c.members.count else {
                throw SpecFailure(reason: "member index \(index) out of range for \(id) (\(c.members.count) members)")
            }
            spec.bitOffset &+= c.bitOffset(index)
            let m = c.members[index]
            if m.nameOffset != 0 {
                spec.accessors.append(CoreAccessor(type: id, index: index, nameOffset: m.nameOffset))
            }
            return m.type
        }
        guard case .array(let element, _, let count) = t.kind else {
            throw SpecFailure(reason: "index \(i) reaches \(t.kind.code.name) \(id), neither struct, union nor array")
        }
        guard let (elementID, _) = btf.skippingModifiers(element) else {
            throw SpecFailure(reason: "array element \(element) does not resolve")
        }
        let flexible = isFlexibleArray(btf, after: spec.accessors.last, count: count)
        guard flexible || index < count else {
            throw SpecFailure(reason: "array index \(index) out of bounds (\(count) elements)")
        }
        spec.accessors.append(CoreAccessor(type: elementID, index: index, nameOffset: nil))
        guard let elementSize = btf.resolvedSize(elementID, pointerSize: 8) else {
            throw SpecFailure(reason: "array element \(elementID) has no size")
        }
        spec.bitOffset &+= UInt32(truncatingIfNeeded: Int64(index) &* elementSize &* 8)
        return elementID
    }
}

/// libbpf's `is_flex_arr`: a zero-length array that is the last member of its struct.
func isFlexibleArray<T: TypeTable>(_ btf: T, after accessor: CoreAccessor?, count: UInt32) -> Bool {
    guard let accessor, accessor.nameOffset != nil, count == 0,
        let c = btf.type(accessor.type)?.kind.composite
    else { return false }
    return accessor.index == c.members.count - 1
}

/// Matching a local spec against one candidate (libbpf's `bpf_core_spec_match` and helpers).
struct CoreMatcher<Target: TypeTable> {
    let local: BTF
    let target: Target
    let targetPointerSize: Int

    /// Skip modifiers and typedefs; the type is nil for void. Dangling ids and loops are errors.
    func skip<T: TypeTable>(_ btf: T, _ id: TypeID) throws -> (id: TypeID, type: BTFType?) {
        guard let r = btf.skippingModifiersToID(id) else {
            throw SpecFailure(reason: "type \(id) does not resolve (dangling id or a loop)")
        }
        return (r, btf.type(r))
    }

    /// The target spec, nil when the candidate does not match.
    func match(_ localSpec: CoreSpec, candidate: TypeID) throws -> CoreSpec? {
        var spec = CoreSpec(root: candidate, kind: localSpec.kind)
        let kind = localSpec.kind
        if kind.isTypeBased {
            let ok =
                kind == .typeMatches
                ? try typesMatch(localSpec.root, candidate, behindPointer: false, level: 32)
                : try typesAreCompatible(localSpec.root, candidate, level: 32)
            return ok ? spec : nil
        }
        if kind.isEnumValueBased {
            guard let (id, t) = target.skippingModifiers(candidate), let e = t.kind.enumeration,
                let localName = localSpec.accessors[0].nameOffset
            else { return nil }
            let wanted = local.strings.utf8(at: localName)
            let essential = wanted.prefix(essentialNameLength(wanted))
            for (i, v) in e.values.enumerated() {
                let name = target.strings.utf8(at: v.nameOffset)
                if essentialNameLength(name) == essential.count && name.prefix(essential.count).elementsEqual(essential)
                {
                    spec.accessors.append(CoreAccessor(type: id, index: i, nameOffset: v.nameOffset))
                    spec.raw.append(i)
                    return spec
                }
            }
            return nil
        }
        var targetID = candidate
        for (i, localAccessor) in localSpec.accessors.enumerated() {
            let (id, t) = try skip(target, targetID)
            targetID = id
            if localAccessor.nameOffset != nil {
                guard let next = try matchMember(localAccessor, in: targetID, spec: &spec) else { return nil }
                targetID = next
            } else {
                if i > 0 {
                    guard case .array(let element, _, let count) = t?.kind else { return nil }
                    let flexible = isFlexibleArray(target, after: spec.accessors.last, count: count)
                    if !flexible && localAccessor.index >= count { return nil }
                    guard let (elementID, _) = target.skippingModifiers(element) else {
                        throw SpecFailure(reason: "array element \(element) does not resolve")
                    }
                    targetID = elementID
                }
                guard spec.raw.count < maximumSpecLength else { throw SpecFailure(reason: "spec nests deeper than 64") }
                spec.accessors.append(CoreAccessor(type: targetID, index: localAccessor.index, nameOffset: nil))
                spec.raw.append(localAccessor.index)
                guard let sz = target.resolvedSize(targetID, pointerSize: targetPointerSize) else {
                    throw SpecFailure(reason: "target type \(targetID) has no size")
                }
                spec.bitOffset &+= UInt32(truncatingIfNeeded: Int64(localAccessor.index) &* sz &* 8)
            }
        }
        return spec
    }

    /// Find the local accessor's member by name in `targetID`, descending into anonymous members.
    /// Returns the member's type id, or nil when no compatible member exists.
    func matchMember(_ accessor: CoreAccessor, in targetID: TypeID, spec: inout CoreSpec) throws -> TypeID? {
        let (id, t) = try skip(target, targetID)
        guard let c = t?.kind.composite else { return nil }
        guard let localComposite = local.type(accessor.type)?.kind.composite,
            accessor.index < localComposite.members.count
        else { throw SpecFailure(reason: "local accessor does not name a member") }
        let localMember = localComposite.members[accessor.index]
        let localName = local.strings.utf8(at: localMember.nameOffset)
        // Once, not per member: each `strings` through the protocol is a retain and a release.
        let names = target.strings
        for (i, m) in c.members.enumerated() {
            guard spec.raw.count < maximumSpecLength else { throw SpecFailure(reason: "spec nests deeper than 64") }
            let bitOffset = c.bitOffset(i)
            spec.bitOffset &+= bitOffset
            spec.raw.append(i)
            if names.isEmpty(at: m.nameOffset) {
                if let found = try matchMember(accessor, in: m.type, spec: &spec) { return found }
            } else if names.equals(m.nameOffset, bytes: localName) {
                guard try fieldsAreCompatible(localMember.type, m.type) else { return nil }
                spec.accessors.append(CoreAccessor(type: id, index: i, nameOffset: m.nameOffset))
                return m.type
            }
            spec.bitOffset &-= bitOffset
            spec.raw.removeLast()
        }
        return nil
    }

    /// libbpf's `bpf_core_fields_are_compat`.
    func fieldsAreCompatible(_ localID: TypeID, _ targetID: TypeID) throws -> Bool {
        var l = localID, r = targetID
        for _ in 0..<maximumResolveDepth {
            guard let lt = try skip(local, l).type, let rt = try skip(target, r).type else { return false }
            if lt.kind.composite != nil && rt.kind.composite != nil { return true }
            guard lt.kind.isCoreCompatible(with: rt.kind) else { return false }
            switch lt.kind {
            case .pointer, .float: return true
            case .forward, .enumeration, .enum64:
                let ln = local.strings.utf8(at: lt.nameOffset), rn = target.strings.utf8(at: rt.nameOffset)
                let ll = essentialNameLength(ln), rl = essentialNameLength(rn)
                return ll == 0 || rl == 0 || (ll == rl && ln.prefix(ll).elementsEqual(rn.prefix(rl)))
            case .int(_, _, let lo, _):
                guard case .int(_, _, let ro, _) = rt.kind else { return false }
                return lo == 0 && ro == 0
            case .array(let le, _, _):
                guard case .array(let re, _, _) = rt.kind else { return false }
                l = le
                r = re
            case .structure, .union, .typedef, .volatile, .const, .restrict, .function, .functionProto, .variable,
                .dataSection, .declTag, .typeTag:
                return false
            }
        }
        throw SpecFailure(reason: "array nesting deeper than 32")
    }

    /// libbpf's `__bpf_core_types_are_compat`.
    func typesAreCompatible(_ localID: TypeID, _ targetID: TypeID, level: Int) throws -> Bool {
        switch (local.type(localID), target.type(targetID)) {
        case (nil, nil): break
        case (let a?, let b?): guard a.kind.isCoreCompatible(with: b.kind) else { return false }
        case (nil, _?), (_?, nil): return false
        }
        var l = localID, r = targetID
        for _ in 0..<maximumResolveDepth {
            let lt = try skip(local, l).type, rt = try skip(target, r).type
            guard let lt, let rt else { return lt == nil && rt == nil }
            guard lt.kind.isCoreCompatible(with: rt.kind) else { return false }
            switch lt.kind {
            case .structure, .union, .enumeration, .enum64, .forward: return true
            case .int(_, _, let lo, _):
                guard case .int(_, _, let ro, _) = rt.kind else { return false }
                return lo == 0 && ro == 0
            case .pointer(let lp):
                guard case .pointer(let rp) = rt.kind else { return false }
                l = lp
                r = rp
            case .array(let le, _, _):
                guard case .array(let re, _, _) = rt.kind else { return false }
                l = le
                r = re
            case .functionProto(let lret, let lparams):
                guard case .functionProto(let rret, let rparams) = rt.kind else { return false }
                guard lparams.count == rparams.count else { return false }
                for (lp, rp) in zip(lparams, rparams) {
                    guard level > 0 else { throw SpecFailure(reason: "function prototypes nest deeper than 32") }
                    guard
                        try typesAreCompatible(
                            try skip(local, lp.type).id, try skip(target, rp.type).id,
                            level: level - 1)
                    else { return false }
                }
                l = try skip(local, lret).id
                r = try skip(target, rret).id
            case .typedef, .volatile, .const, .restrict, .function, .variable, .dataSection, .float, .declTag,
                .typeTag:
                return false
            }
        }
        throw SpecFailure(reason: "type chain deeper than 32")
    }

    /// libbpf's `bpf_core_names_match`.
    func namesMatch(_ localOffset: UInt32, _ targetOffset: UInt32) -> Bool {
        let ln = local.strings.utf8(at: localOffset), rn = target.strings.utf8(at: targetOffset)
        if rn.isEmpty { return ln.isEmpty }
        let ll = essentialNameLength(ln), rl = essentialNameLength(rn)
        return ll == rl && ln.prefix(ll).elementsEqual(rn.prefix(rl))
    }

    /// libbpf's `__bpf_core_types_match` (TYPE_MATCHES).
    func typesMatch(_ localID: TypeID, _ targetID: TypeID, behindPointer: Bool, level: Int) throws -> Bool {
        guard level > 0 else { throw SpecFailure(reason: "types nest deeper than 32") }
        var l = localID, r = targetID, behind = behindPointer
        for _ in 0..<maximumResolveDepth {
            let lt = try skip(local, l).type, rt = try skip(target, r).type
            guard namesMatch(lt?.nameOffset ?? 0, rt?.nameOffset ?? 0) else { return false }
            guard let lt else { return rt == nil }
            guard let rt else { return false }
            switch lt.kind {
            case .forward(let lu):
                if behind {
                    if case .forward(let ru) = rt.kind { return lu == ru }
                    if case .structure = rt.kind { return !lu }
                    if case .union = rt.kind { return lu }
                    return false
                }
                if case .forward(let ru) = rt.kind { return lu == ru }
                return false
            case .enumeration(let le), .enum64(let le):
                guard let re = rt.kind.enumeration else { return false }
                guard le.size == re.size, le.values.count <= re.values.count else { return false }
                for lv in le.values where !re.values.contains(where: { namesMatch(lv.nameOffset, $0.nameOffset) }) {
                    return false
                }
                return true
            case .structure(let lc), .union(let lc):
                if behind {
                    if lt.kind.code == rt.kind.code { return true }
                    guard case .forward(let ru) = rt.kind else { return false }
                    return (lt.kind.code == .union) == ru
                }
                guard lt.kind.code == rt.kind.code, let rc = rt.kind.composite else { return false }
                guard lc.members.count <= rc.members.count else { return false }
                for lm in lc.members {
                    var matched = false
                    for rm in rc.members where namesMatch(lm.nameOffset, rm.nameOffset) {
                        if try typesMatch(lm.type, rm.type, behindPointer: behind, level: level - 1) {
                            matched = true
                            break
                        }
                    }
                    if !matched { return false }
                }
                return true
            case .int(let ls, let lenc, _, _):
                guard case .int(let rs, let renc, _, _) = rt.kind else { return false }
                return ls == rs && (lenc & 1) == (renc & 1)
            case .pointer(let lp):
                guard case .pointer(let rp) = rt.kind else { return false }
                behind = true
                l = lp
                r = rp
            case .array(let le, _, let ln):
                guard case .array(let re, _, let rn) = rt.kind, ln == rn else { return false }
                l = le
                r = re
            case .functionProto(let lret, let lparams):
                guard case .functionProto(let rret, let rparams) = rt.kind, lparams.count == rparams.count else {
                    return false
                }
                for (lp, rp) in zip(lparams, rparams) {
                    guard try typesMatch(lp.type, rp.type, behindPointer: behind, level: level - 1) else {
                        return false
                    }
                }
                l = lret
                r = rret
            case .typedef, .volatile, .const, .restrict, .function, .variable, .dataSection, .float, .declTag,
                .typeTag:
                return false
            }
        }
        throw SpecFailure(reason: "type chain deeper than 32")
    }
}

/// libbpf's `bpf_core_calc_{field,type,enumval}_relo` for one side (local or target).
struct ValueCalculator<Table: TypeTable> {
    let btf: Table
    let pointerSize: Int

    /// nil asks for poisoning (no spec for a kind that needs one).
    func field(_ kind: CoreRelocationKind, _ spec: CoreSpec?) throws -> UInt64? {
        if kind == .fieldExists { return spec == nil ? 0 : 1 }
        guard let spec, let accessor = spec.accessors.last else { return nil }
        if accessor.nameOffset == nil {
            // a[n]: only offset and size make sense
            guard let sz = btf.resolvedSize(accessor.type, pointerSize: pointerSize) else {
                throw SpecFailure(reason: "array element \(accessor.type) has no size")
            }
            switch kind {
            case .fieldByteOffset: return UInt64(spec.bitOffset / 8)
            case .fieldByteSize: return UInt64(sz)
            case .fieldExists, .fieldSigned, .fieldLShiftU64, .fieldRShiftU64, .typeIDLocal, .typeIDTarget,
                .typeExists, .typeSize, .enumValueExists, .enumValueValue, .typeMatches:
                throw SpecFailure(reason: "\(kind.name) cannot apply to an array element access")
            }
        }
        guard let c = btf.type(accessor.type)?.kind.composite, accessor.index < c.members.count else {
            throw SpecFailure(reason: "accessor \(accessor.type) is not a struct member")
        }
        let m = c.members[accessor.index]
        guard let (fieldID, mt) = btf.skippingModifiers(m.type) else {
            throw SpecFailure(reason: "member type \(m.type) does not resolve")
        }
        let bitOff = spec.bitOffset
        var bitSize = c.bitfieldSize(accessor.index)
        var byteSize: UInt32
        var byteOff: UInt32
        if bitSize > 0 {
            guard let s = mt.kind.byteSize, s > 0 else {
                throw SpecFailure(reason: "bitfield member type \(fieldID) has no size")
            }
            byteSize = s
            byteOff = bitOff / 8 / byteSize * byteSize
            while bitOff &+ bitSize &- byteOff &* 8 > byteSize &* 8 {
                guard byteSize < 8 else { throw SpecFailure(reason: "bitfield cannot be read with a 64-bit load") }
                byteSize *= 2
                byteOff = bitOff / 8 / byteSize * byteSize
            }
        } else {
            guard let sz = btf.resolvedSize(fieldID, pointerSize: pointerSize) else {
                throw SpecFailure(reason: "member type \(fieldID) has no size")
            }
            byteSize = UInt32(truncatingIfNeeded: sz)
            byteOff = bitOff / 8
            bitSize = byteSize &* 8
        }
        switch kind {
        case .fieldByteOffset: return UInt64(byteOff)
        case .fieldByteSize: return UInt64(byteSize)
        case .fieldSigned:
            switch mt.kind {
            case .enumeration(let e), .enum64(let e): return e.isSigned ? 1 : 0
            case .int(_, let encoding, _, _): return encoding & 1 != 0 ? 1 : 0
            case .pointer, .array, .structure, .union, .forward, .typedef, .volatile, .const, .restrict, .function,
                .functionProto, .variable, .dataSection, .float, .declTag, .typeTag:
                return 0
            }
        case .fieldLShiftU64:
            if btf.byteOrder == .little {
                return UInt64(64 &- (bitOff &+ bitSize &- byteOff &* 8))
            }
            return UInt64((8 &- byteSize) &* 8 &+ (bitOff &- byteOff &* 8))
        case .fieldRShiftU64: return UInt64(64 &- bitSize)
        case .fieldExists, .typeIDLocal, .typeIDTarget, .typeExists, .typeSize, .enumValueExists, .enumValueValue,
            .typeMatches:
            throw SpecFailure(reason: "\(kind.name) is not a field relocation")
        }
    }

    func type(_ kind: CoreRelocationKind, _ spec: CoreSpec?) throws -> UInt64 {
        guard let spec else { return 0 }
        switch kind {
        case .typeIDTarget, .typeIDLocal: return UInt64(spec.root.rawValue)
        case .typeExists, .typeMatches: return 1
        case .typeSize:
            guard let sz = btf.resolvedSize(spec.root, pointerSize: pointerSize) else {
                throw SpecFailure(reason: "type \(spec.root) has no size")
            }
            return UInt64(sz)
        case .fieldByteOffset, .fieldByteSize, .fieldExists, .fieldSigned, .fieldLShiftU64, .fieldRShiftU64,
            .enumValueExists, .enumValueValue:
            throw SpecFailure(reason: "\(kind.name) is not a type relocation")
        }
    }

    /// nil asks for poisoning.
    func enumValue(_ kind: CoreRelocationKind, _ spec: CoreSpec?) -> UInt64? {
        if kind == .enumValueExists { return spec == nil ? 0 : 1 }
        guard let spec, let a = spec.accessors.first, let t = btf.type(a.type) else { return nil }
        switch t.kind {
        case .enumeration(let e):
            // libbpf reads the 32-bit value into a u64 without sign extension.
            return a.index < e.values.count ? UInt64(UInt32(truncatingIfNeeded: e.values[a.index].value)) : nil
        case .enum64(let e):
            return a.index < e.values.count ? e.values[a.index].value : nil
        case .int, .pointer, .array, .structure, .union, .forward, .typedef, .volatile, .const, .restrict,
            .function, .functionProto, .variable, .dataSection, .float, .declTag, .typeTag:
            return nil
        }
    }
}

extension NamePrefilter {
    /// What an index should collect for CO-RE candidate lookup of `objects` (see
    /// `BTFIndex.mapping(_:validate:prefilter:)`).
    public init(coreCandidatesOf objects: [BPFObject]) {
        let (names, kinds) = CoreResolver<BTF>.candidateNames(for: objects)
        self.init(kinds: kinds, firstBytes: Set(names.compactMap(\.first)), names: names)
    }
}

/// The essential names a candidate scan looks for, laid out flat: by first byte, a range of name
/// numbers; each name's bytes in one buffer. The scan over ~100k target names then does one table
/// lookup for most of them and no reference counting at all.
private struct WantedNames: ~Copyable {
    /// For first byte b, the names `order[firstStart[b]..<firstStart[b + 1]]`.
    private let firstStart: UnsafeMutableBufferPointer<Int>
    private let order: UnsafeMutableBufferPointer<Int>
    /// Name w is `bytes[nameStart[w]..<nameStart[w] + nameLength[w]]`.
    private let nameStart: UnsafeMutableBufferPointer<Int>
    private let nameLength: UnsafeMutableBufferPointer<Int>
    private let bytes: UnsafeMutableBufferPointer<UInt8>

    init(_ names: [[UInt8]]) {
        firstStart = .allocate(capacity: 257)
        order = .allocate(capacity: names.count)
        nameStart = .allocate(capacity: names.count)
        nameLength = .allocate(capacity: names.count)
        bytes = .allocate(capacity: names.reduce(0) { $0 + $1.count })
        var byFirstByte = [[Int]](repeating: [], count: 256)
        for (w, name) in names.enumerated() { byFirstByte[Int(name[0])].append(w) }
        var next = 0
        for b in 0..<256 {
            firstStart[b] = next
            for w in byFirstByte[b] {
                order[next] = w
                next += 1
            }
        }
        firstStart[256] = next
        var at = 0
        for (w, name) in names.enumerated() {
            nameStart[w] = at
            nameLength[w] = name.count
            for byte in name {
                bytes[at] = byte
                at += 1
            }
        }
    }

    deinit {
        for buffer in [firstStart, order, nameStart, nameLength] { buffer.deallocate() }
        bytes.deallocate()
    }

    /// Call `body` with each wanted name that the NUL-terminated string at offset `o` of `strings`
    /// is, exactly or followed by a `___flavor` suffix.
    @inline(__always)
    func forEachMatch(at o: Int, in strings: UnsafeBufferPointer<UInt8>, _ body: (Int) -> Void) {
        let limit = strings.count
        let first = Int(strings[o])
        for j in firstStart[first]..<firstStart[first + 1] {
            let w = order[j]
            let start = nameStart[w], count = nameLength[w]
            // The target name must start with the wanted essential name…
            var k = 1
            while k < count && o + k < limit && strings[o + k] == bytes[start + k] { k += 1 }
            guard k == count, o + k < limit else { continue }
            // …and be exactly it, or it plus a ___flavor suffix.
            if strings[o + k] != 0 {
                var end = o + k
                while end < limit && strings[end] != 0 { end += 1 }
                guard essentialNameLength(strings[o..<end]) == count else { continue }
            }
            body(w)
        }
    }
}
