// Canonical order: a BTF whose types (and strings) are reordered must canonicalize to the same
// bytes, cycles included; the types must survive unchanged; libbpf must still parse the result.
import BTF
import Foundation
import LibBPF
import TestSupport
import Testing

/// A fixed-seed generator (SplitMix64), so a failing shuffle can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `btf` with its types in a random order (ids renumbered) and a string table laid out in another
/// random order, so that no id and no string offset stays where it was.
func shuffled(_ btf: BTF, seed: UInt64) -> BTF {
    var rng = SplitMix(seed)
    var order = Array(btf.types.indices)
    order.shuffle(using: &rng)
    var newID = [UInt32](repeating: 0, count: btf.types.count)
    for (position, old) in order.enumerated() { newID[old] = UInt32(position + 1) }
    var offsets: [UInt32] = []
    for t in btf.types {
        _ = t.renamingStrings {
            offsets.append($0); return $0
        }
    }
    offsets.shuffle(using: &rng)
    var strings = StringTableBuilder()
    var moved: [UInt32: UInt32] = [:]
    for o in offsets where moved[o] == nil { moved[o] = strings.add(btf.strings.utf8(at: o)) }
    let types = order.map { old in
        btf.types[old]
            .remappingTypes { $0.isVoid ? .void : TypeID(newID[Int($0.rawValue) - 1]) }
            .renamingStrings { moved[$0]! }
    }
    return BTF(byteOrder: btf.byteOrder, headerLength: 24, types: types, strings: strings.table)
}

@Suite struct CanonicalTests {
    /// A small graph with cycles: a self-referencing list node, a two-struct cycle, a pointer to
    /// void, a function, and a second, identical copy of the two-struct cycle.
    static func cyclic() -> BTF {
        var strings = StringTableBuilder()
        var btf = BTF()
        let int = btf.append(
            BTFType(nameOffset: strings.add("int"), kind: .int(size: 4, encoding: 1, bitOffset: 0, bits: 32)))
        // struct node { struct node *next; int v; }
        let node = TypeID(2), nodePtr = TypeID(3)
        btf.append(
            BTFType(
                nameOffset: strings.add("node"),
                kind: .structure(
                    Composite(
                        size: 16, bitfieldMembers: false,
                        members: [
                            Member(nameOffset: strings.add("next"), type: nodePtr, offset: 0),
                            Member(nameOffset: strings.add("v"), type: int, offset: 64),
                        ]))))
        btf.append(BTFType(nameOffset: 0, kind: .pointer(node)))
        // struct a { struct b *b; }  struct b { struct a *a; void *p; }, written twice.
        for _ in 0..<2 {
            let a = TypeID(UInt32(btf.types.count + 1)), aPtr = TypeID(a.rawValue + 1)
            let b = TypeID(a.rawValue + 2), bPtr = TypeID(a.rawValue + 3)
            btf.append(
                BTFType(
                    nameOffset: strings.add("a"),
                    kind: .structure(
                        Composite(
                            size: 8, bitfieldMembers: false,
                            members: [Member(nameOffset: strings.add("b"), type: bPtr, offset: 0)]))))
            btf.append(BTFType(nameOffset: 0, kind: .pointer(a)))
            btf.append(
                BTFType(
                    nameOffset: strings.add("b"),
                    kind: .structure(
                        Composite(
                            size: 16, bitfieldMembers: false,
                            members: [
                                Member(nameOffset: strings.add("a"), type: aPtr, offset: 0),
                                Member(nameOffset: strings.add("p"), type: TypeID(a.rawValue + 4), offset: 64),
                            ]))))
            btf.append(BTFType(nameOffset: 0, kind: .pointer(b)))
            btf.append(BTFType(nameOffset: 0, kind: .pointer(.void)))
        }
        // Two anonymous structs that differ only two pointers away: one must not absorb the other.
        let x = TypeID(UInt32(btf.types.count + 1))
        btf.append(
            BTFType(
                nameOffset: 0,
                kind: .structure(
                    Composite(
                        size: 8, bitfieldMembers: false,
                        members: [Member(nameOffset: strings.add("to"), type: TypeID(x.rawValue + 1), offset: 0)]))))
        btf.append(BTFType(nameOffset: 0, kind: .pointer(node)))
        btf.append(
            BTFType(
                nameOffset: 0,
                kind: .structure(
                    Composite(
                        size: 8, bitfieldMembers: false,
                        members: [Member(nameOffset: strings.add("to"), type: TypeID(x.rawValue + 3), offset: 0)]))))
        btf.append(BTFType(nameOffset: 0, kind: .pointer(TypeID(4))))
        let proto = btf.append(
            BTFType(
                nameOffset: 0,
                kind: .functionProto(returns: int, parameters: [Parameter(nameOffset: strings.add("n"), type: nodePtr)])
            ))
        btf.append(BTFType(nameOffset: strings.add("walk"), kind: .function(proto: proto, linkage: 1)))
        btf.strings = strings.table
        return btf
    }

    @Test func shuffledCyclicGraphGivesTheSameBytes() throws {
        let original = Self.cyclic()
        try original.validateReferences()
        let expected = try original.canonicalized()
        // Duplicates: the second copy of the a/b cycle (a, *a, b, *b, void *) and the anonymous
        // structs' second `struct node *` and `struct a *`.
        #expect(expected.mergedDuplicates == 7)
        #expect(expected.btf.types.count == original.types.count - 7)
        for seed in UInt64(1)...50 {
            let other = try shuffled(original, seed: seed).canonicalized()
            #expect(other.btf.encoded() == expected.btf.encoded(), "seed \(seed)")
        }
        #expect(typeSet(of: expected.btf) == typeSet(of: original))
        // Canonical is a fixed point, and void stays void.
        #expect(try expected.btf.canonicalized().btf.encoded() == expected.btf.encoded())
        #expect(expected.btf.types.contains { $0.kind == .pointer(.void) })
        // The two anonymous look-alikes (one points at node, the other at a) are both kept.
        let anonymous = expected.btf.types.filter {
            if case .structure = $0.kind { return $0.nameOffset == 0 }
            return false
        }
        #expect(anonymous.count == 2)
        // Strings: "" first, each once, in first-use order along the canonical types.
        let table = Array(expected.btf.strings.bytes)
        #expect(table.first == 0)
        let words = table.split(separator: 0, omittingEmptySubsequences: true).map {
            String(decoding: $0, as: UTF8.self)
        }
        #expect(Set(words).count == words.count)
        #expect(words.first == "int")
    }

    @Test func libbpfParsesCanonicalCyclicBTF() throws {
        let canonical = try Self.cyclic().canonicalized().btf
        let dir = try ScratchDirectory("btfgen-canonical")
        defer { dir.remove() }
        let path = dir.file("cyclic.btf")
        try Data(canonical.encoded()).write(to: URL(fileURLWithPath: path))
        let parsed = try LibBPFBTF(path: path)
        #expect(parsed.typeCount == canonical.types.count)
        let node = try #require(parsed.structNamed("node"))
        #expect(node.members.map(\.name) == ["next", "v"])
    }

    @Test(arguments: BTFFixtures.kernels)
    func shuffledKernelBTFGivesTheSameBytes(_ kernel: KernelBTF) throws {
        let original = try BTF(decoding: try BTFFixtures.read(kernel.path))
        let expected = try original.canonicalized()
        let bytes = expected.btf.encoded()
        #expect(typeSet(of: expected.btf) == typeSet(of: original))
        for seed: UInt64 in [7, 1234] {
            let shuffledBTF = shuffled(original, seed: seed)
            #expect(shuffledBTF.encoded() != original.encoded())
            #expect(try shuffledBTF.canonicalized().btf.encoded() == bytes, "\(kernel), seed \(seed)")
        }

        // libbpf reads the canonical bytes, and sees the same task_struct as in the original.
        let dir = try ScratchDirectory("btfgen-canonical")
        defer { dir.remove() }
        let path = dir.file("canonical.btf")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let parsed = try LibBPFBTF(path: path)
        let before = try LibBPFBTF(path: kernel.path)
        #expect(parsed.typeCount == expected.btf.types.count)
        #expect(parsed.typeCount == before.typeCount - expected.mergedDuplicates)
        #expect(parsed.structNamed("task_struct") == before.structNamed("task_struct"))
        #expect(parsed.structNamed("task_struct") != nil)
    }
}
