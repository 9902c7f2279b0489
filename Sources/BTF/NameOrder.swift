// Name order: the same BTF with its types sorted by kind and name, for packing many kernels'
// minimized BTFs side by side. A minimized BTF keeps the order of the kernel BTF it was cut from,
// which is canonical (Canonical.swift) and so sorted by a hash of each type's whole content: two
// kernels whose task_struct differs in one offset list their types in different orders, and the
// same few types, permuted, are a different byte string to xz each time. Sorted by name instead,
// the blobs of a fleet's kernels line up record for record and string table for string table, and
// differ only where the kernels do: in sizes and offsets.
//
// Ids are the only thing that changes; CO-RE matches types by name and shape, never by id, so the
// reordered BTF serves every relocation exactly as the original does. Strings are laid out anew in
// order of first use along the types (a type's name, then its member, enumerator and parameter
// names), each once, "" at offset 0.

extension BTF {
    /// This BTF with its types sorted by (kind, name, the names it reaches), ties kept in their
    /// present order, and its string table laid out in that order.
    public func inNameOrder() -> BTF {
        let count = types.count
        func name(_ i: Int) -> ArraySlice<UInt8> { strings.utf8(at: types[i].nameOffset) }
        // What an anonymous type (a pointer, an array, an unnamed struct) is told apart by: the
        // names it reaches, a few levels down (cycles only pass through named structs, which stop).
        func reach(_ id: TypeID, depth: Int, into label: inout [UInt8]) {
            let i = Int(id.rawValue) - 1
            guard i >= 0, i < count else {
                label.append(0)
                return
            }
            label.append(types[i].kind.code.rawValue)
            label.append(contentsOf: name(i))
            label.append(0)
            guard depth > 0, name(i).isEmpty else { return }
            if case .array(_, _, let elements) = types[i].kind {
                withUnsafeBytes(of: elements.bigEndian) { label.append(contentsOf: $0) }
            }
            types[i].forEachReference { reach($0, depth: depth - 1, into: &label) }
        }
        let labels: [[UInt8]] = (0..<count).map { i in
            var label: [UInt8] = []
            reach(TypeID(UInt32(i + 1)), depth: 4, into: &label)
            return label
        }
        let order = (0..<count).sorted { a, b in
            let (ka, kb) = (types[a].kind.code, types[b].kind.code)
            if ka != kb { return ka < kb }
            if labels[a] != labels[b] { return labels[a].lexicographicallyPrecedes(labels[b]) }
            return a < b
        }
        var newID = [TypeID](repeating: TypeID(0), count: count + 1)
        for (position, old) in order.enumerated() { newID[old + 1] = TypeID(UInt32(position + 1)) }
        var table = StringTableBuilder()
        let reordered = order.map { old in
            types[old].remappingTypes { newID[Int($0.rawValue)] }.renamingStrings { table.add(strings.utf8(at: $0)) }
        }
        return BTF(byteOrder: byteOrder, headerLength: headerLength, types: reordered, strings: table.table)
    }
}
