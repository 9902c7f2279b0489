import BTF
import Testing

/// Builds a BTF type by type with names.
struct Builder {
    var strings = StringTableBuilder()
    var btf = BTF()
    mutating func add(_ name: String, _ kind: Kind) -> TypeID {
        btf.append(BTFType(nameOffset: name.isEmpty ? 0 : strings.add(name), kind: kind))
    }
    mutating func member(_ name: String, _ type: TypeID, _ bitOffset: UInt32) -> Member {
        Member(nameOffset: name.isEmpty ? 0 : strings.add(name), type: type, offset: bitOffset)
    }
    mutating func relocation(_ type: TypeID, _ access: String, _ kind: CoreRelocationKind) -> CoreRelocation {
        CoreRelocation(instructionOffset: 0, type: type, accessStringOffset: strings.add(access), kind: kind)
    }
    mutating func done() -> BTF {
        var b = btf
        b.strings = strings.table
        return b
    }
}

@Suite struct CoreTests {
    /// local: struct foo___v2 { int a; long b; }; target: struct foo { char pad[8]; union { struct { long b; int a; }; }; }
    func pair(targetHasA: Bool = true) -> (BTF, BTF, TypeID, Builder) {
        var l = Builder()
        let lint = l.add("int", .int(size: 4, encoding: 1, bitOffset: 0, bits: 32))
        let llong = l.add("long", .int(size: 8, encoding: 1, bitOffset: 0, bits: 64))
        let ma = l.member("a", lint, 0), mb = l.member("b", llong, 64)
        let foo = l.add("foo___v2", .structure(Composite(size: 16, bitfieldMembers: false, members: [ma, mb])))

        var t = Builder()
        let tint = t.add("int", .int(size: 4, encoding: 1, bitOffset: 0, bits: 32))
        let tlong = t.add("long", .int(size: 8, encoding: 1, bitOffset: 0, bits: 64))
        let tchar = t.add("char", .int(size: 1, encoding: 2, bitOffset: 0, bits: 8))
        let arr = t.add("", .array(element: tchar, index: tint, count: 8))
        var inner = [t.member("b", tlong, 0)]
        if targetHasA { inner.append(t.member("a", tint, 64)) }
        let anonStruct = t.add("", .structure(Composite(size: 16, bitfieldMembers: false, members: inner)))
        let anonUnion = t.add(
            "", .union(Composite(size: 16, bitfieldMembers: false, members: [t.member("", anonStruct, 0)])))
        _ = t.add(
            "foo",
            .structure(
                Composite(
                    size: 24, bitfieldMembers: false,
                    members: [
                        t.member("pad", arr, 0), t.member("", anonUnion, 64),
                    ])))
        return (l.btf, t.done(), foo, l)
    }

    @Test func fieldOffsetThroughAnonymousMembersAndFlavor() throws {
        var (_, target, foo, l) = pair()
        let r = l.relocation(foo, "0:0", .fieldByteOffset)  // foo->a
        let local = l.done()
        var resolver = CoreResolver(target: target)
        let result = try resolver.resolve(r, in: local)
        #expect(result.localValue == 0)
        #expect(result.targetValue == 16)  // 8 (pad) + 8 (after b)
        #expect(result.targetSpec?.raw == [0, 1, 0, 1])
    }

    @Test func missingFieldExistsIsZeroAndOffsetPoisons() throws {
        var (_, target, foo, l) = pair(targetHasA: false)
        let exists = l.relocation(foo, "0:0", .fieldExists)
        let offset = l.relocation(foo, "0:0", .fieldByteOffset)
        let local = l.done()
        var resolver = CoreResolver(target: target)
        #expect(try resolver.resolve(exists, in: local).targetValue == 0)
        #expect(try resolver.resolve(offset, in: local).poison)
    }

    @Test func typeMatches() throws {
        var (_, target, foo, l) = pair()
        let r = l.relocation(foo, "0", .typeMatches)
        let local = l.done()
        var resolver = CoreResolver(target: target)
        // local member a/b must exist by name at the top level of the target: they are nested → no match
        #expect(try resolver.resolve(r, in: local).targetValue == 0)

        var t = Builder()
        let tint = t.add("int", .int(size: 4, encoding: 1, bitOffset: 0, bits: 32))
        let tlong = t.add("long", .int(size: 8, encoding: 1, bitOffset: 0, bits: 64))
        _ = t.add(
            "foo",
            .structure(
                Composite(
                    size: 24, bitfieldMembers: false,
                    members: [
                        t.member("b", tlong, 0), t.member("a", tint, 64), t.member("c", tint, 96),
                    ])))
        let flat = t.done()
        var r2 = CoreResolver(target: flat)
        let result = try r2.resolve(r, in: local)
        #expect(result.targetValue == 1)
        var m = Minimizer(target: flat)
        try m.record(result)
        #expect(m.minimized().types.count == 3)  // foo with all members, int, long
    }

    @Test func enumValueAgainstEnum64() throws {
        var l = Builder()
        let x = l.strings.add("X___old")
        let e = l.add(
            "e", .enumeration(Enumeration(size: 8, isSigned: false, values: [Enumerator(nameOffset: x, value: 1)])))
        let r = l.relocation(e, "0", .enumValueValue)
        let local = l.done()
        var t = Builder()
        let tx = t.strings.add("X")
        _ = t.add(
            "e", .enum64(Enumeration(size: 8, isSigned: false, values: [Enumerator(nameOffset: tx, value: 1 << 40)])))
        var resolver = CoreResolver(target: t.done())
        #expect(try resolver.resolve(r, in: local).targetValue == 1 << 40)
    }

    @Test func ambiguousCandidatesAreRejected() throws {
        var l = Builder()
        let lint = l.add("int", .int(size: 4, encoding: 1, bitOffset: 0, bits: 32))
        let foo = l.add(
            "foo", .structure(Composite(size: 4, bitfieldMembers: false, members: [l.member("a", lint, 0)])))
        let r = l.relocation(foo, "0:0", .fieldByteOffset)
        let local = l.done()
        var t = Builder()
        let tint = t.add("int", .int(size: 4, encoding: 1, bitOffset: 0, bits: 32))
        _ = t.add("foo", .structure(Composite(size: 8, bitfieldMembers: false, members: [t.member("a", tint, 0)])))
        _ = t.add("foo___x", .structure(Composite(size: 8, bitfieldMembers: false, members: [t.member("a", tint, 32)])))
        var resolver = CoreResolver(target: t.done())
        #expect(throws: BTFError.self) { try resolver.resolve(r, in: local) }
    }

    @Test func badAccessStringIsAnError() throws {
        var (_, target, foo, l) = pair()
        let r = l.relocation(foo, "0:9", .fieldByteOffset)
        let local = l.done()
        var resolver = CoreResolver(target: target)
        #expect(throws: BTFError.self) { try resolver.resolve(r, in: local) }
    }

    @Test func compatRewritesNewKinds() throws {
        var t = Builder()
        let f = t.add("double", .float(size: 8))
        let tag = t.add("user", .typeTag(f, isAttribute: false))
        _ = t.add("tag", .declTag(type: tag, componentIndex: -1, isAttribute: false))
        let small = t.strings.add("S"), big = t.strings.add("B")
        _ = t.add(
            "e32", .enum64(Enumeration(size: 8, isSigned: false, values: [Enumerator(nameOffset: small, value: 5)])))
        _ = t.add(
            "e64", .enum64(Enumeration(size: 8, isSigned: false, values: [Enumerator(nameOffset: big, value: 1 << 40)]))
        )
        _ = t.add("signed", .enumeration(Enumeration(size: 4, isSigned: true, values: [])))
        let btf = t.done()
        let old = btf.compatible(with: .libbpf0)
        let kinds = Set(old.types.map(\.kind.code))
        #expect(kinds.isDisjoint(with: [.float, .declTag, .typeTag, .enum64]))
        #expect(
            old[TypeID(4)].kind
                == .enumeration(
                    Enumeration(size: 8, isSigned: false, values: [Enumerator(nameOffset: small, value: 5)])))
        if case .union(let c) = old[TypeID(5)].kind {
            #expect(c.members.count == 1)
        } else {
            Issue.record("e64 not a union")
        }
        if case .enumeration(let e) = old[TypeID(6)].kind { #expect(!e.isSigned) } else { Issue.record("enum lost") }
        #expect(try BTF(decoding: old.encoded()) == old)
        #expect(btf.compatible(with: .current) == btf)
    }
}
