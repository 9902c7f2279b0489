import BTF
import Foundation
import LibBPF
import TestSupport
import Testing

/// A kernel-independent picture of a type: kind, name, size and kept members, with referenced
/// types described by kind and name instead of by id.
func canonicalTypes(_ btf: BTF) -> Set<String> {
    func ref(_ id: TypeID, depth: Int = 0) -> String {
        guard let t = btf.type(id) else { return "void" }
        let name = btf.strings.string(at: t.nameOffset)
        switch t.kind {
        case .pointer(let to): return depth > 4 ? "ptr" : "ptr(\(ref(to, depth: depth + 1)))"
        case .const(let to): return "const(\(ref(to, depth: depth + 1)))"
        case .volatile(let to): return "volatile(\(ref(to, depth: depth + 1)))"
        case .array(let e, _, let n): return "array[\(n)](\(ref(e, depth: depth + 1)))"
        default: return "\(t.kind.code.name) \(name)"
        }
    }
    var set = Set<String>()
    for id in btf.ids {
        let t = btf[id]
        var s = "\(t.kind.code.name) '\(btf.strings.string(at: t.nameOffset))'"
        switch t.kind {
        case .structure(let c), .union(let c):
            s += " size=\(c.size)"
            for i in c.members.indices {
                let m = c.members[i]
                s += " {\(btf.strings.string(at: m.nameOffset)):\(ref(m.type))@\(c.bitOffset(i))/\(c.bitfieldSize(i))}"
            }
        case .enumeration(let e), .enum64(let e):
            s +=
                " size=\(e.size) "
                + e.values.map { "\(btf.strings.string(at: $0.nameOffset))=\($0.value)" }.joined(separator: ",")
        default:
            s += " " + ref(id)
            for r in t.referencedTypes { s += " -> \(ref(r))" }
        }
        set.insert(s)
    }
    return set
}

@Suite(.serialized) struct MinimizeTests {
    static var cases: [KernelBTF] { BTFFixtures.kernels }

    func objects() throws -> [(String, BPFObject)] {
        try BTFFixtures.objects.map { ($0, try BPFObject(bytes: try BTFFixtures.read($0))) }
    }

    @Test(.requires(.bpfObjects)) func objectsPresent() { #expect(!BTFFixtures.testObjects.isEmpty) }

    @Test(.requires(.bpfObjects), arguments: cases)
    func keepsTheSameTypesAndMembersAsBpftool(_ kernel: KernelBTF) throws {
        try expectMinimizedAsBpftool(kernel.path, objects: try objects())
    }

    /// Each object alone, then all together, minimized by btfgen and by `bpftool gen
    /// min_core_btf` against the kernel BTF at `path`: the same types and members, and the same bytes.
    func expectMinimizedAsBpftool(_ path: String, objects all: [(String, BPFObject)]) throws {
        let full = try BTF(decoding: try BTFFixtures.read(path))
        let scratch = try ScratchDirectory("btfgen-min")
        defer { scratch.remove() }
        for objs in all.map({ [$0] }) + [all] {
            let ours = try full.minimized(for: objs.map(\.1))
            let theirsPath = scratch.file("bpftool.btf")
            let r = try runProcess("bpftool", ["gen", "min_core_btf", path, theirsPath] + objs.map(\.0))
            try #require(r.status == 0, "bpftool failed: \(r.stderr)")
            let theirs = try BTF(decoding: try BTFFixtures.read(theirsPath))
            let a = canonicalTypes(ours), b = canonicalTypes(theirs)
            #expect(a.subtracting(b).sorted() == [], "\(objs.map(\.0)): kept by btfgen only")
            #expect(b.subtracting(a).sorted() == [], "\(objs.map(\.0)): kept by bpftool only")
            #expect(ours.types.count == theirs.types.count)
            // Stronger than the set equality asked for: same type order and string order too.
            #expect(ours.encoded() == (try BTFFixtures.read(theirsPath)), "\(objs.map(\.0)): not bpftool's bytes")
        }
    }

    @Test(.requires(.bpfObjects), arguments: cases)
    func relocationsResolveAlikeAgainstMinimizedAndFullBTF(_ kernel: KernelBTF) throws {
        let full = try BTF(decoding: try BTFFixtures.read(kernel.path))
        for (path, object) in try objects() {
            let small = try full.minimized(for: [object])
            // libbpf must accept what we wrote
            let scratch = try ScratchDirectory("btfgen-min")
            defer { scratch.remove() }
            let file = scratch.file("min.btf")
            try Data(small.encoded()).write(to: URL(fileURLWithPath: file))
            let parsed = try LibBPFBTF(path: file)
            #expect(parsed.typeCount == small.types.count)

            var onFull = CoreResolver(target: full)
            var onSmall = CoreResolver(target: small)
            let a = try onFull.resolve(object), b = try onSmall.resolve(object)
            #expect(a.count == object.coreRelocations.count && a.count > 0, "\(path)")
            for (i, (x, y)) in zip(a, b).enumerated() {
                #expect(x.poison == y.poison, "\(path) relo #\(i) \(x.kind.name)")
                if x.kind == .typeIDTarget {
                    #expect(
                        full.name(of: TypeID(UInt32(x.targetValue))) == small.name(of: TypeID(UInt32(y.targetValue))))
                } else {
                    #expect(x.targetValue == y.targetValue, "\(path) relo #\(i) \(x.kind.name) on \(kernel)")
                }
                #expect(x.localValue == y.localValue)
            }
        }
    }

    @Test(.requires(.bpfObjects), arguments: cases)
    func lazyIndexGivesTheSameResultAsTheDecodedModel(_ kernel: KernelBTF) throws {
        let bytes = try BTFFixtures.read(kernel.path)
        let full = try BTF(decoding: bytes)
        let objs = try objects().map(\.1)
        for validate in [true, false] {
            let index = try BTFIndex(bytes, validate: validate)
            #expect(index.typeCount == full.types.count)
            #expect(try index.minimized(for: objs) == full.minimized(for: objs))
        }
        let index = try BTFIndex(bytes)
        for id in stride(from: 1, to: full.types.count, by: 97) {
            #expect(index.type(TypeID(UInt32(id))) == full.type(TypeID(UInt32(id))))
        }
    }

    @Test(.requires(.bpfObjects), arguments: cases)
    func outputIsDeterministic(_ kernel: KernelBTF) throws {
        let full = try BTF(decoding: try BTFFixtures.read(kernel.path))
        let objs = try objects().map(\.1)
        let one = try full.minimized(for: objs).encoded()
        let two = try full.minimized(for: objs.reversed()).encoded()
        #expect(one == two)
        #expect(one.count < 4096)
    }

    /// arm64: the programs built with -D__TARGET_ARCH_arm64, minimized against Debian's arm64
    /// kernel, byte for byte as bpftool does; what they keep is arm64's registers.
    @Test(.requires(.fixture("BTFGEN_DEBIAN_ARM64_VMLINUX"), .tool("bpftool")))
    func arm64ObjectsOnTheArm64KernelAreMinimizedAsBpftoolDoes() throws {
        let kernel = try #require(BTFFixtures.debianArm64, "the arm64 vmlinux's .BTF could not be read")
        let paths = BTFFixtures.arm64Objects
        try #require(!paths.isEmpty, "no bpf/arm64/*.bpf.o: run `make bpf` before the tests")
        let all = try paths.map { ($0, try BPFObject(bytes: try BTFFixtures.read($0))) }
        try expectMinimizedAsBpftool(kernel.path, objects: all)
        let full = try BTF(decoding: try BTFFixtures.read(kernel.path))

        // unlinkat reads the pathname as PT_REGS_PARM2_CORE_SYSCALL: user_pt_regs.regs[1] on arm64.
        let unlinkat = try #require(all.first { $0.0.hasSuffix("/unlinkat.bpf.o") }?.1)
        let small = try full.minimized(for: [unlinkat])
        let kept = canonicalTypes(small)
        #expect(kept.contains { $0.hasPrefix("STRUCT 'user_pt_regs'") && $0.contains("{regs:array[31]") }, "\(kept)")
        #expect(!kept.contains { $0.contains("{si:") || $0.contains("{di:") }, "no x86 register survives")
        var onFull = CoreResolver(target: full)
        var onSmall = CoreResolver(target: small)
        let a = try onFull.resolve(unlinkat), b = try onSmall.resolve(unlinkat)
        #expect(a.count == unlinkat.coreRelocations.count && !a.isEmpty)
        #expect(a.allSatisfy { !$0.poison }, "every arm64 relocation resolves on the arm64 kernel")
        #expect(zip(a, b).allSatisfy { $0.targetValue == $1.targetValue && $0.poison == $1.poison })

        // The x86_64 build of the same program cannot serve arm64: its pt_regs.si has no target.
        let x86 = Repo.root.appendingPathComponent("bpf/x86_64/unlinkat.bpf.o").path
        if let bytes = try? BTFFixtures.read(x86) {
            var resolver = CoreResolver(target: full)
            #expect(try resolver.resolve(try BPFObject(bytes: bytes)).contains { $0.poison })
        }
    }
}
