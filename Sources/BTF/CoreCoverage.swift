// Does a target BTF cover an object's CO-RE relocations? A minimized BTF keeps only what the
// objects it was made for touch; loaded with another object (or a newer build of the same one)
// a relocation of a dropped field finds nothing, and libbpf then quietly gives
// `bpf_core_field_exists` 0 or poisons the instruction — the same silent garbage as a wrong
// kernel. Against a full kernel BTF a relocation that finds nothing is the truth about that
// kernel; against a minimized one it cannot be told apart from what minimization dropped, so
// callers refuse it.

/// A CO-RE relocation of an object that matches no type of a target BTF.
public struct UncoveredRelocation: Sendable, Equatable, CustomStringConvertible {
    /// The ELF section of the instruction it patches.
    public var section: String
    public var kind: CoreRelocationKind
    /// What it reaches for in the object's own types: `task_struct.pid`, `struct mm_struct`,
    /// `enum pid_type::PIDTYPE_TGID`.
    public var access: String

    public var description: String { "\(access) (\(kind.name) in \(section))" }
}

extension CoreResolver {
    /// The relocations of `object` that find no candidate in the target. TYPE_ID_LOCAL never
    /// looks at the target and is never uncovered.
    public mutating func uncovered(_ object: BPFObject) throws -> [UncoveredRelocation] {
        prepareCandidates(for: [object])
        var missing: [UncoveredRelocation] = []
        for r in object.coreRelocations where r.relocation.kind != .typeIDLocal {
            let result = try resolve(r.relocation, in: object.btf, section: r.section, index: r.index)
            if result.targetSpec == nil {
                missing.append(
                    UncoveredRelocation(
                        section: r.section, kind: r.relocation.kind,
                        access: CoreResolver.describe(r.relocation, in: object.btf)))
            }
        }
        return missing
    }

    /// `task_struct.real_parent.pid`: the root type's name and the member names the access string
    /// walks (array indexes as `[i]`), read from the object's own BTF.
    static func describe(_ relocation: CoreRelocation, in local: BTF) -> String {
        let root = local.type(relocation.type).map { local.strings.string(at: $0.nameOffset) } ?? ""
        let rootName = root.isEmpty ? "type [\(relocation.type.rawValue)]" : root
        guard let spec = try? CoreSpecParser(btf: local).parse(relocation) else { return rootName }
        if relocation.kind.isTypeBased { return rootName }
        if relocation.kind.isEnumValueBased {
            let value = spec.accessors.first?.nameOffset.map { local.strings.string(at: $0) } ?? "?"
            return "\(rootName)::\(value)"
        }
        var text = rootName
        for accessor in spec.accessors.dropFirst() {
            if let name = accessor.nameOffset {
                text += "." + local.strings.string(at: name)
            } else {
                text += "[\(accessor.index)]"
            }
        }
        return text
    }
}

extension TypeTable {
    /// Kernel BTF made by pahole describes the kernel's functions; minimized BTF (btfgen's or
    /// `bpftool gen min_core_btf`'s) never keeps a FUNC, since no CO-RE relocation targets one.
    public var describesFunctions: Bool {
        var found = false
        forEachTypeHeader { _, _, kind in if kind == .function { found = true } }
        return found
    }
}
