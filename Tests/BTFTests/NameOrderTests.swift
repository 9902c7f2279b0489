import BTF
import Foundation
import TestSupport
import Testing

/// Name order, what bundles carry: a minimized BTF's own types, sorted by kind and name, the same
/// bytes whatever order the kernel's BTF listed them in. (LibBPFOracleTests loads programs
/// against it: libbpf relocates them exactly as against the full kernel BTF.)
@Suite struct NameOrderTests {
    @Test(.requires(.bpfObjects), arguments: BTFFixtures.kernels)
    func theSameTypesInAnyOrderGiveTheSameBytes(_ kernel: KernelBTF) throws {
        let full = try BTF(decoding: try BTFFixtures.read(kernel.path))
        let objects = try BTFFixtures.testObjects.map { try BPFObject(bytes: try BTFFixtures.read($0)) }
        let small = try full.minimized(for: objects)
        try #require(small.types.count > 8, "\(kernel): the objects reach task_struct, pt_regs and more")
        let ordered = small.inNameOrder()
        let bytes = ordered.encoded()
        // Valid BTF (decoding checks every reference), the same types, sorted.
        let decoded = try BTF(decoding: bytes)
        #expect(decoded.types.count == small.types.count)
        #expect(shapes(decoded) == shapes(small), "\(kernel): the same types, names and references")
        let keys = decoded.types.map { ($0.kind.code.rawValue, decoded.strings.string(at: $0.nameOffset)) }
        for (a, b) in zip(keys, keys.dropFirst()) {
            #expect(a.0 < b.0 || (a.0 == b.0 && a.1 <= b.1), "\(kernel): \(a) before \(b)")
        }
        #expect(decoded.inNameOrder().encoded() == bytes, "name order of name order changes nothing")
        // The kernel's BTF listing the same types reversed, or rotated: the same bytes.
        let n = small.types.count
        for order in [Array((0..<n).reversed()), Array(n / 2..<n) + Array(0..<n / 2)] {
            let shuffled = permuted(small, order)
            #expect(shuffled.encoded() != small.encoded())
            #expect(shuffled.inNameOrder().encoded() == bytes, "\(kernel): order \(order.prefix(4))…")
        }
    }

    /// `btf` with its types in `order` (old index at each new position), references renumbered.
    func permuted(_ btf: BTF, _ order: [Int]) -> BTF {
        var newID = [TypeID](repeating: TypeID(0), count: btf.types.count + 1)
        for (position, old) in order.enumerated() { newID[old + 1] = TypeID(UInt32(position + 1)) }
        return BTF(
            byteOrder: btf.byteOrder, headerLength: btf.headerLength,
            types: order.map { btf.types[$0].remappingTypes { newID[Int($0.rawValue)] } }, strings: btf.strings)
    }

    /// Each type as it reads without ids or string offsets: its body with every string offset
    /// replaced by a hash of the string and every reference by a hash of the kind and name of what
    /// it refers to, after its own name; sorted.
    func shapes(_ btf: BTF) -> [String] {
        func fnv<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
            UInt32(
                truncatingIfNeeded: bytes.reduce(UInt64(14_695_981_039_346_656_037)) {
                    ($0 ^ UInt64($1)) &* 1_099_511_628_211
                })
        }
        func target(_ id: TypeID) -> TypeID {
            guard let t = btf.type(id) else { return TypeID(0) }
            return TypeID(fnv([t.kind.code.rawValue] + btf.strings.utf8(at: t.nameOffset)))
        }
        return btf.types.map { t in
            let body = t.remappingTypes(target).renamingStrings { fnv(btf.strings.utf8(at: $0)) }
            return "\(btf.strings.string(at: t.nameOffset)) \(body.kind)"
        }.sorted()
    }
}
