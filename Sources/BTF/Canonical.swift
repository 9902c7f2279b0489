// Canonical BTF: the same set of types always gives the same bytes, whatever order (and however
// many duplicate copies) the encoder emitted them in. pahole's parallel encoder (`-j`) emits types
// in an order that changes from run to run; rewriting its output canonically makes parallel builds
// reproducible and lets two builds of one kernel be compared by sha256.
//
// The types form a directed graph with ordered, labelled out-edges (a struct's i-th member points
// at its type, a FUNC_PROTO's return and parameters, …) and cycles (struct → ptr → struct). Ids are
// the only thing that depends on emission order, so the canonical form is built from everything
// but ids:
//
//  1. Local signature. Each type gets a 64-bit hash of what it says without ids: kind, name bytes,
//     size or encoding, kind_flag, member names and offset words, enumerator names and values,
//     parameter names, linkage, component index, section offsets and sizes. The number of edges
//     follows from these.
//  2. Refinement (Moore's DFA minimisation, Weisfeiler–Lehman style). Round k+1 hashes each type's
//     round-k hash with the round-k hashes of its references in wire order (void is a constant).
//     Round k's hash is then a function of the type's unfolding k levels deep, so it does not
//     depend on ids. The rounds stop when the number of distinct hashes stops growing: that count
//     is the number of distinct depth-k unfoldings, and once it stays put between two rounds the
//     partition is stable and never splits again. The stopping round is itself a function of the
//     set of unfoldings, hence of the types alone.
//  3. Check. Two types with one final hash must have equal local signatures (compared exactly,
//     names by their bytes) and references into the same classes, position by position. A
//     partition that passes this check is a bisimulation, so every class holds types whose
//     infinite unfoldings are equal: they are the same type, written twice. Conversely equal
//     unfoldings always hash alike. So, unless the check fails (a 64-bit collision; reported, never
//     papered over), classes are exactly the structurally distinct types.
//  4. Output. One type per class (any member: the check made them byte-for-byte equal once ids are
//     classes and names are bytes), sorted by (kind, final hash). Distinct classes have distinct
//     hashes, so the order is total, and each hash depends only on the type's structure: two
//     inputs holding the same set of distinct types give the same sequence, and the same
//     references by position, so the same bytes. Ids are positions in that order; void stays 0.
//     Strings are laid out in order of first use along the output (a type's name, then its
//     member, enumerator and parameter names), each once, "" at offset 0.
//
// Merging a class into one type changes nothing a consumer can tell apart: the copies were equal
// all the way down. Kinds sort by their wire number, so INT comes first, then PTR, ARRAY, STRUCT….
// Swift's Hasher is seeded per process and must never touch this: every hash here is spelled out.

/// The result of rewriting a BTF in canonical order.
public struct Canonicalization: Sendable {
    /// The canonical BTF.
    public let btf: BTF
    /// Types in the input.
    public let inputTypes: Int
    /// Refinement rounds until the partition was stable.
    public let rounds: Int
    /// Types dropped because an identical copy was kept.
    public var mergedDuplicates: Int { inputTypes - btf.types.count }
}

extension BTF {
    /// This BTF with its types in canonical order, exact duplicates merged and a canonical string
    /// table: the bytes depend only on the set of distinct types, not on their ids.
    ///
    /// `concurrently(k, body)` must run `body(0)`…`body(k - 1)` and return when all are done,
    /// at once on several threads if it likes (the caller's choice: this module starts none); each
    /// refinement round is cut into `slices` such runs. The result is the same either way.
    public func canonicalized(
        slices: Int = 1,
        concurrently: (Int, @Sendable (Int) -> Void) -> Void = { k, body in for i in 0..<k { body(i) } }
    ) throws -> Canonicalization {
        try validateReferences()  // the refinement indexes by reference
        var c = CanonicalOrder(self, slices: slices)
        return try c.run(concurrently: concurrently)
    }
}

/// The fixed, unseeded 64-bit hashing the canonical order is built on.
enum StructuralHash {
    static let void: UInt64 = 0x5650_4F49_445F_4254  // an arbitrary constant, the same forever
    static let seed: UInt64 = 0x4254_465F_4341_4E4F

    /// Fold `value` into `hash`: SplitMix64's finalizer over `hash + value·φ`, so the fold is
    /// order-sensitive and every input bit reaches every output bit.
    @inline(__always)
    static func mix(_ hash: UInt64, _ value: UInt64) -> UInt64 {
        var z = hash &+ value &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a over the bytes, finalised with their count.
    @inline(__always)
    static func bytes(_ s: UnsafeBufferPointer<UInt8>, from start: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var i = start
        while i < s.count {
            let b = s[i]
            if b == 0 { break }
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3
            i += 1
        }
        return mix(h, UInt64(i - start))
    }
}

/// A buffer handed to the threads of one `concurrentPerform`, each touching its own indices.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A string table laid out in order of first use, each string once, "" at offset 0 (what
/// `StringTableBuilder` makes, without a dictionary keyed by copied byte slices: the strings are
/// found by an FNV-1a hash of their bytes in an open-addressing table of their offsets).
struct FirstUseStrings {
    var bytes: [UInt8] = [0]
    /// Offsets into `bytes` of the strings added, 0 for an empty slot ("" is never stored).
    var slots: [UInt32]
    var count = 0

    init(expected: Int) {
        var capacity = 1024
        while capacity < expected * 2 { capacity <<= 1 }
        slots = [UInt32](repeating: 0, count: capacity)
        bytes.reserveCapacity(expected * 16)
    }

    /// The offset of the NUL-terminated string at `start` of `source`, appending it on first use.
    mutating func add(_ source: UnsafeBufferPointer<UInt8>, at start: Int) -> UInt32 {
        var end = start
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        while end < source.count && source[end] != 0 {
            h = (h ^ UInt64(source[end])) &* 0x0000_0100_0000_01B3
            end += 1
        }
        let length = end - start
        if length == 0 { return 0 }
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
        while true {
            let o = Int(slots[i])
            if o == 0 { break }
            if o + length < bytes.count, bytes[o + length] == 0,
                bytes.withUnsafeBufferPointer({ b in
                    var k = 0
                    while k < length && b[o + k] == source[start + k] { k += 1 }
                    return k == length
                })
            {
                return UInt32(o)
            }
            i = (i + 1) & mask
        }
        let offset = UInt32(bytes.count)
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: source[start..<end]))
        bytes.append(0)
        slots[i] = offset
        count += 1
        if count * 2 > slots.count { grow() }
        return offset
    }

    /// Twice the slots, every string placed again.
    mutating func grow() {
        var bigger = [UInt32](repeating: 0, count: slots.count * 2)
        let mask = bigger.count - 1
        bytes.withUnsafeBufferPointer { b in
            for o in slots where o != 0 {
                var h: UInt64 = 0xCBF2_9CE4_8422_2325
                var at = Int(o)
                while b[at] != 0 {
                    h = (h ^ UInt64(b[at])) &* 0x0000_0100_0000_01B3
                    at += 1
                }
                var i = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
                while bigger[i] != 0 { i = (i + 1) & mask }
                bigger[i] = o
            }
        }
        slots = bigger
    }
}

/// The working state of one canonicalization (see the comment at the top of this file).
struct CanonicalOrder {
    let input: BTF
    /// References of type `i` (0-based) are `edges[edgeStart[i]..<edgeStart[i + 1]]`, as raw ids.
    var edgeStart: [Int32] = []
    var edges: [UInt32] = []
    var kinds: [UInt8] = []

    let slices: Int

    init(_ input: BTF, slices: Int = 1) {
        self.input = input
        self.slices = slices
    }

    mutating func run(concurrently: (Int, @Sendable (Int) -> Void) -> Void) throws -> Canonicalization {
        let types = input.types
        let n = types.count
        var hash = localHashes()
        buildEdges()
        var next = [UInt64](repeating: 0, count: n)
        var distinct = Self.distinctCount(hash)
        var rounds = 0
        let slices = n < 20_000 ? 1 : max(1, self.slices)
        while true {
            rounds += 1
            edges.withUnsafeBufferPointer { e in
                edgeStart.withUnsafeBufferPointer { start in
                    hash.withUnsafeBufferPointer { h in
                        next.withUnsafeMutableBufferPointer { out in
                            // Each type's next hash reads only this round's: the slices are
                            // independent, and a kernel's 100,000 types fill the cores.
                            let e = UnsafeSendable(e), start = UnsafeSendable(start), h = UnsafeSendable(h)
                            let out = UnsafeSendable(out)
                            concurrently(slices) { slice in
                                for i in (slice * n / slices)..<((slice + 1) * n / slices) {
                                    var x = h.value[i]
                                    for k in Int(start.value[i])..<Int(start.value[i + 1]) {
                                        let ref = Int(e.value[k])
                                        x = StructuralHash.mix(x, ref == 0 ? StructuralHash.void : h.value[ref - 1])
                                    }
                                    out.value[i] = x
                                }
                            }
                        }
                    }
                }
            }
            swap(&hash, &next)
            let now = Self.distinctCount(hash)
            if now == distinct { break }
            distinct = now
        }

        // Classes in canonical order: by kind, then final hash.
        var order = [(key: UInt64, kind: UInt8, index: UInt32)]()
        order.reserveCapacity(n)
        for i in 0..<n { order.append((hash[i], kinds[i], UInt32(i))) }
        order.sort { ($0.kind, $0.key) < ($1.kind, $1.key) }
        var newID = [UInt32](repeating: 0, count: n)
        var representatives: [Int] = []
        representatives.reserveCapacity(distinct)
        var duplicates: [(copy: Int, of: Int)] = []
        for (position, entry) in order.enumerated() {
            if position > 0, order[position - 1].key == entry.key, order[position - 1].kind == entry.kind {
                newID[Int(entry.index)] = UInt32(representatives.count)
                duplicates.append((Int(entry.index), representatives.last!))
            } else {
                representatives.append(Int(entry.index))
                newID[Int(entry.index)] = UInt32(representatives.count)
            }
        }
        let remap: (TypeID) -> TypeID = { id in id.isVoid ? .void : TypeID(newID[Int(id.rawValue) - 1]) }

        if !duplicates.isEmpty {
            var probe = StringTableBuilder()
            let strings = input.strings
            func exact(_ i: Int) -> BTFType {
                types[i].remappingTypes(remap).renamingStrings { probe.add(strings.utf8(at: $0)) }
            }
            for (copy, of) in duplicates where exact(copy) != exact(of) {
                throw BTFError.internalError(
                    "canonical order: types [\(of + 1)] and [\(copy + 1)] share a structural hash but differ (a 64-bit collision)"
                )
            }
        }

        var out: [BTFType] = []
        out.reserveCapacity(representatives.count)
        let table = input.strings.withUnsafeBytes { source in
            var strings = FirstUseStrings(expected: source.count / 16)
            var renamed = [UInt32](repeating: .max, count: source.count)
            for r in representatives {
                out.append(
                    types[r].remappingTypes(remap).renamingStrings { offset in
                        let o = Int(offset)
                        guard o < renamed.count else { return 0 }  // out of range reads as ""
                        if renamed[o] != .max { return renamed[o] }
                        let new = strings.add(source, at: o)
                        renamed[o] = new
                        return new
                    })
            }
            return StringTable(bytes: strings.bytes)
        }
        let btf = BTF(byteOrder: input.byteOrder, headerLength: 24, types: out, strings: table)
        return Canonicalization(btf: btf, inputTypes: n, rounds: rounds)
    }

    /// Step 1: every type's id-free signature.
    mutating func localHashes() -> [UInt64] {
        let types = input.types
        kinds = types.map { $0.kind.code.rawValue }
        return input.strings.withUnsafeBytes { s in
            @inline(__always) func name(_ offset: UInt32) -> UInt64 {
                Int(offset) < s.count ? StructuralHash.bytes(s, from: Int(offset)) : StructuralHash.void
            }
            return types.map { t in
                typealias H = StructuralHash
                var h = H.mix(H.seed, UInt64(t.kind.code.rawValue))
                h = H.mix(h, name(t.nameOffset))
                switch t.kind {
                case .int(let size, let encoding, let bitOffset, let bits):
                    h = H.mix(h, UInt64(size) << 24 | UInt64(encoding) << 16 | UInt64(bitOffset) << 8 | UInt64(bits))
                case .pointer, .typedef, .volatile, .const, .restrict:
                    break
                case .array(_, _, let count):
                    h = H.mix(h, UInt64(count))
                case .structure(let c), .union(let c):
                    h = H.mix(h, UInt64(c.size) << 33 | (c.bitfieldMembers ? 1 << 32 : 0) | UInt64(c.members.count))
                    for m in c.members { h = H.mix(H.mix(h, name(m.nameOffset)), UInt64(m.offset)) }
                case .enumeration(let e), .enum64(let e):
                    h = H.mix(h, UInt64(e.size) << 33 | (e.isSigned ? 1 << 32 : 0) | UInt64(e.values.count))
                    for v in e.values { h = H.mix(H.mix(h, name(v.nameOffset)), v.value) }
                case .forward(let isUnion):
                    h = H.mix(h, isUnion ? 1 : 0)
                case .function(_, let linkage):
                    h = H.mix(h, UInt64(linkage))
                case .functionProto(_, let parameters):
                    h = H.mix(h, UInt64(parameters.count))
                    for p in parameters { h = H.mix(h, name(p.nameOffset)) }
                case .variable(_, let linkage):
                    h = H.mix(h, UInt64(linkage))
                case .dataSection(let size, let variables):
                    h = H.mix(h, UInt64(size) << 32 | UInt64(variables.count))
                    for v in variables { h = H.mix(h, UInt64(v.offset) << 32 | UInt64(v.size)) }
                case .float(let size):
                    h = H.mix(h, UInt64(size))
                case .declTag(_, let componentIndex, let isAttribute):
                    h = H.mix(h, UInt64(UInt32(bitPattern: componentIndex)) << 1 | (isAttribute ? 1 : 0))
                case .typeTag(_, let isAttribute):
                    h = H.mix(h, isAttribute ? 1 : 0)
                }
                return h
            }
        }
    }

    /// The reference graph in compressed rows, references in wire order.
    mutating func buildEdges() {
        let types = input.types
        edgeStart.reserveCapacity(types.count + 1)
        edges.reserveCapacity(types.count * 3)
        edgeStart.append(0)
        for t in types {
            t.forEachReference { edges.append($0.rawValue) }
            edgeStart.append(Int32(edges.count))
        }
    }

    /// How many different values `values` holds (an open-addressing set; the values are hashes
    /// already, so their low bits index it directly).
    static func distinctCount(_ values: [UInt64]) -> Int {
        var capacity = 16
        while capacity < values.count * 2 { capacity <<= 1 }
        let mask = capacity - 1
        var slots = [UInt64](repeating: 0, count: capacity)
        var count = 0
        var sawZero = false
        slots.withUnsafeMutableBufferPointer { table in
            for v in values {
                if v == 0 {
                    if !sawZero { sawZero = true; count += 1 }
                    continue
                }
                var i = Int(truncatingIfNeeded: v) & mask
                while true {
                    let s = table[i]
                    if s == v { break }
                    if s == 0 {
                        table[i] = v
                        count += 1
                        break
                    }
                    i = (i + 1) & mask
                }
            }
        }
        return count
    }
}
