// Type-set equality, independent of the canonical order it checks: every type described by what
// libbpf users see of it, with references described by the referenced type's kind and name (one
// level), so that two BTFs compare equal whatever their ids and however many copies they hold.
import BTF

/// One line per distinct type: kind, name, layout, members (name, offset word, target kind and
/// name), enumerators, parameters; ids never appear.
public func typeSet(of btf: BTF) -> Set<String> {
    func ref(_ id: TypeID) -> String {
        guard let t = btf.type(id) else { return "void" }
        return "\(t.kind.code.name) '\(btf.strings.string(at: t.nameOffset))'"
    }
    func name(_ offset: UInt32) -> String { btf.strings.string(at: offset) }
    var set = Set<String>()
    for t in btf.types {
        var line = "\(t.kind.code.name) '\(name(t.nameOffset))'"
        switch t.kind {
        case .int(let size, let encoding, let bitOffset, let bits):
            line += " size=\(size) enc=\(encoding) off=\(bitOffset) bits=\(bits)"
        case .pointer(let to), .typedef(let to), .volatile(let to), .const(let to), .restrict(let to):
            line += " -> \(ref(to))"
        case .typeTag(let to, let a): line += " attr=\(a) -> \(ref(to))"
        case .array(let element, let index, let count): line += " [\(count)] of \(ref(element)) by \(ref(index))"
        case .structure(let c), .union(let c):
            line += " size=\(c.size) kflag=\(c.bitfieldMembers)"
            for m in c.members { line += " {\(name(m.nameOffset))@\(m.offset): \(ref(m.type))}" }
        case .enumeration(let e), .enum64(let e):
            line += " size=\(e.size) signed=\(e.isSigned)"
            for v in e.values { line += " \(name(v.nameOffset))=\(v.value)" }
        case .forward(let isUnion): line += " union=\(isUnion)"
        case .function(let proto, let linkage): line += " linkage=\(linkage) proto=\(ref(proto))"
        case .functionProto(let returns, let parameters):
            line += " returns \(ref(returns))"
            for p in parameters { line += " (\(name(p.nameOffset)): \(ref(p.type)))" }
        case .variable(let type, let linkage): line += " linkage=\(linkage) \(ref(type))"
        case .dataSection(let size, let variables):
            line += " size=\(size)"
            for v in variables { line += " {\(ref(v.type))@\(v.offset)+\(v.size)}" }
        case .float(let size): line += " size=\(size)"
        case .declTag(let type, let index, let a): line += " attr=\(a) component=\(index) of \(ref(type))"
        }
        set.insert(line)
    }
    return set
}
