// Which architecture a BPF object or a kernel BTF belongs to. A BPF ELF says EM_BPF on every
// architecture, so the answer comes from the types: the saved user registers (`struct pt_regs`,
// arm64's uapi `struct user_pt_regs`) are the one structure CO-RE programs routinely read whose
// members differ by architecture. libbpf's bpf_tracing.h reads syscall arguments as
//
//   x86_64   pt_regs.di, .si, .dx, .r10, .r8, .r9      (PT_REGS_PARM*_CORE_SYSCALL)
//   arm64    pt_regs.orig_x0, user_pt_regs.regs[1..]
//
// so an object is of architecture A when
//   1. a CO-RE relocation touches a member only A's registers have (the relocations are what
//      libbpf will look up in the kernel's BTF: the strongest evidence), else
//   2. its own BTF defines one of those structures with such a member (a kprobe reading
//      PT_REGS_PARM1(ctx) at a fixed offset leaves no relocation, only the definition);
// and it is arch-neutral (applies to every kernel) when neither says anything. Evidence for two
// architectures is a contradiction the object cannot run with anywhere, and is refused.
//
// A kernel's BTF always defines its own pt_regs, so the same table names a kernel BTF's
// architecture; a minimized BTF has one only when its objects read registers.
//
// The architecture names are BTFHub's, as Kernel's `KernelArch` records them (a test checks that
// every name here is one of its rows).

/// An architecture and what showed it (`reads pt_regs.orig_x0`).
public struct ArchitectureEvidence: Sendable, Hashable, CustomStringConvertible {
    /// BTFHub's name: `x86_64`, `arm64`, ….
    public let arch: String
    /// What in the BTF said so, for messages.
    public let reason: String

    public init(arch: String, reason: String) {
        self.arch = arch
        self.reason = reason
    }

    public var description: String { "\(arch) (\(reason))" }
}

/// An object whose types speak for two architectures.
public struct ArchitectureConflict: Error, Equatable, CustomStringConvertible {
    public let first: ArchitectureEvidence
    public let second: ArchitectureEvidence

    public var description: String {
        "it is both \(first.arch) (\(first.reason)) and \(second.arch) (\(second.reason)); rebuild it for one architecture, or name it with FILE@ARCH"
    }
}

/// Architecture inference from BTF.
public enum Architectures {
    /// Per architecture, the register structures and the members only that architecture has.
    /// Members two architectures share (`sp`, `regs` would be ambiguous if another row had it)
    /// are left out: they prove nothing.
    public static let registerMembers: [(arch: String, structures: [String: Set<String>])] = [
        (
            "x86_64",
            [
                "pt_regs": [
                    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
                    "orig_ax", "ip", "cs", "flags", "ss",
                ]
            ]
        ),
        (
            "arm64",
            [
                "pt_regs": ["regs", "pc", "pstate", "orig_x0", "syscallno", "user_regs", "stackframe"],
                "user_pt_regs": ["regs", "pc", "pstate"],
            ]
        ),
        (
            "riscv64",
            [
                "pt_regs": [
                    "epc", "ra", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6",
                    "a7", "orig_a0", "badaddr", "cause",
                ]
            ]
        ),
        ("s390x", ["pt_regs": ["psw", "gprs", "orig_gpr2"]]),
        ("ppc64le", ["pt_regs": ["gpr", "nip", "msr", "orig_gpr3", "ctr", "link", "xer", "ccr"]]),
    ]

    /// The architecture a BPF object's CO-RE relocations (else its own BTF definitions) require;
    /// nil when it reads nothing architecture-specific.
    public static func of(_ object: BPFObject) throws(ArchitectureConflict) -> ArchitectureEvidence? {
        var found: [ArchitectureEvidence] = []
        let parser = CoreSpecParser(btf: object.btf)
        for r in object.coreRelocations {
            let relocation = r.relocation
            // A type relocation on a register structure only arm64's uapi has (`user_pt_regs`) counts too.
            if relocation.kind.isTypeBased, let root = structureName(relocation.type, in: object.btf),
                let e = evidenceForStructure(root)
            {
                found.append(e)
                continue
            }
            guard relocation.kind.isFieldBased, let spec = try? parser.parse(relocation) else { continue }
            for accessor in spec.accessors {
                guard let nameOffset = accessor.nameOffset, let holder = structureName(accessor.type, in: object.btf)
                else { continue }
                let member = String(decoding: object.btf.strings.utf8(at: nameOffset), as: UTF8.self)
                if let e = evidence(holder, member, verb: "reads") { found.append(e) }
            }
        }
        if found.isEmpty { found = definitions(in: object.btf, verb: "its BTF defines") }
        return try agreeing(found)
    }

    /// The architecture a kernel BTF (full or minimized) describes, from its register structures;
    /// nil when it has none (a minimized BTF whose objects read no registers) or they disagree.
    public static func ofKernel(_ btf: some TypeTable) -> ArchitectureEvidence? {
        try? agreeing(definitions(in: btf, verb: "it defines"))
    }

    /// One architecture, or none, from a list of evidence.
    static func agreeing(_ found: [ArchitectureEvidence]) throws(ArchitectureConflict) -> ArchitectureEvidence? {
        guard let first = found.first else { return nil }
        if let other = found.first(where: { $0.arch != first.arch }) {
            throw ArchitectureConflict(first: first, second: other)
        }
        return first
    }

    /// Evidence from every register structure a BTF defines with members (FWDs say nothing).
    static func definitions(in btf: some TypeTable, verb: String) -> [ArchitectureEvidence] {
        let wanted = Set(registerMembers.flatMap { $0.structures.keys })
        var ids: [TypeID] = []
        btf.forEachTypeHeader { id, nameOffset, kind in
            guard kind == .structure else { return }
            let name = btf.strings.utf8(at: nameOffset)
            guard !name.isEmpty, wanted.contains(essential(name)) else { return }
            ids.append(id)
        }
        var found: [ArchitectureEvidence] = []
        for id in ids {
            guard let holder = structureName(id, in: btf) else { continue }
            for member in memberNames(of: id, in: btf, depth: 0) {
                if let e = evidence(holder, member, verb: verb) {
                    found.append(e)
                    break
                }
            }
        }
        return found
    }

    /// Member names of a struct or union, stepping into anonymous members as CO-RE does.
    static func memberNames(of id: TypeID, in btf: some TypeTable, depth: Int) -> [String] {
        guard depth < 8, let t = btf.type(id), let c = t.kind.composite else { return [] }
        var names: [String] = []
        for m in c.members {
            let name = btf.strings.utf8(at: m.nameOffset)
            if name.isEmpty {
                if let (inner, _) = btf.skippingModifiers(m.type) {
                    names += memberNames(of: inner, in: btf, depth: depth + 1)
                }
            } else {
                names.append(String(decoding: name, as: UTF8.self))
            }
        }
        return names
    }

    /// The essential name (no `___flavor`) of the struct or union `id` resolves to.
    static func structureName(_ id: TypeID, in btf: some TypeTable) -> String? {
        guard let (_, t) = btf.skippingModifiers(id), t.kind.composite != nil else { return nil }
        let name = btf.strings.utf8(at: t.nameOffset)
        return name.isEmpty ? nil : essential(name)
    }

    static func essential(_ name: ArraySlice<UInt8>) -> String {
        let bytes = Array(name)
        return String(decoding: bytes.prefix(essentialNameLength(bytes)), as: UTF8.self)
    }

    static func evidence(_ structure: String, _ member: String, verb: String) -> ArchitectureEvidence? {
        registerMembers.first { $0.structures[structure]?.contains(member) ?? false }.map {
            ArchitectureEvidence(arch: $0.arch, reason: "\(verb) \(structure).\(member)")
        }
    }

    /// A structure only one architecture has at all.
    static func evidenceForStructure(_ structure: String) -> ArchitectureEvidence? {
        let owners = registerMembers.filter { $0.structures[structure] != nil }
        guard owners.count == 1 else { return nil }
        return ArchitectureEvidence(arch: owners[0].arch, reason: "relocates struct \(structure)")
    }
}
