// Rewriting BTF for consumers whose libbpf predates some kinds. libbpf fails the whole parse on a
// kind it does not know: FLOAT needs libbpf 0.4, DECL_TAG 0.6, TYPE_TAG 0.6, ENUM64 1.0. The
// rewrites follow libbpf's own `bpf_object__sanitize_btf`, which does the same for old kernels.

/// Which libbpf the output must load with.
public enum CompatLevel: String, CaseIterable, Sendable {
    /// libbpf ≥ 1.0: every kind, nothing rewritten.
    case current = "libbpf-1.x"
    /// libbpf 0.x (0.0.4 and later): no FLOAT, DECL_TAG, TYPE_TAG, ENUM64, signed-enum flag.
    case libbpf0 = "libbpf-0.x"
}

extension BTF {
    /// A copy that `level`'s libbpf can parse. Type ids are unchanged (a placeholder INT may be
    /// appended for ENUM64 rewrites), so the result stays valid for CO-RE.
    ///
    /// - FLOAT → an anonymous STRUCT of the same size with no members;
    /// - DECL_TAG → a one-byte INT (it is never a CO-RE target);
    /// - TYPE_TAG → an anonymous CONST of the same type (a modifier CO-RE skips anyway);
    /// - ENUM → the kind_flag (signedness, libbpf 1.0) cleared;
    /// - ENUM64 → an ENUM of the same size when every value fits in 32 unsigned bits, so enum
    ///   relocations keep working; otherwise libbpf's UNION of one-byte placeholder members, so
    ///   that the enumerators' names survive but nothing resolves to a truncated value.
    public func compatible(with level: CompatLevel) -> BTF {
        switch level {
        case .current: return self
        case .libbpf0: break
        }
        var out = self
        var placeholder: TypeID? = nil
        for i in out.types.indices {
            let t = out.types[i]
            switch t.kind {
            case .float(let size):
                out.types[i] = BTFType(
                    nameOffset: 0, kind: .structure(Composite(size: size, bitfieldMembers: false, members: [])))
            case .declTag:
                out.types[i] = BTFType(
                    nameOffset: t.nameOffset, kind: .int(size: 1, encoding: 0, bitOffset: 0, bits: 8))
            case .typeTag(let to, _):
                out.types[i] = BTFType(nameOffset: 0, kind: .const(to))
            case .enumeration(var e):
                e.isSigned = false
                out.types[i].kind = .enumeration(e)
            case .enum64(var e):
                if e.values.allSatisfy({ $0.value <= UInt64(UInt32.max) }) {
                    e.isSigned = false
                    out.types[i].kind = .enumeration(e)
                } else {
                    let placeholderID: TypeID
                    if let placeholder {
                        placeholderID = placeholder
                    } else {
                        var strings = StringTableBuilderAppending(out.strings)
                        let name = strings.add("enum64_placeholder")
                        out.strings = strings.table
                        placeholderID = out.append(
                            BTFType(nameOffset: name, kind: .int(size: 1, encoding: 0, bitOffset: 0, bits: 8)))
                        placeholder = placeholderID
                    }
                    let members = e.values.map { Member(nameOffset: $0.nameOffset, type: placeholderID, offset: 0) }
                    out.types[i].kind = .union(Composite(size: e.size, bitfieldMembers: false, members: members))
                }
            case .int, .pointer, .array, .structure, .union, .forward, .typedef, .volatile, .const, .restrict,
                .function, .functionProto, .variable, .dataSection:
                break
            }
        }
        return out
    }
}

/// Appends to an existing string table, reusing a string only when it is already the table's last.
struct StringTableBuilderAppending {
    var table: StringTable
    init(_ table: StringTable) { self.table = table }
    mutating func add(_ text: String) -> UInt32 {
        table.append(text)
    }
}
