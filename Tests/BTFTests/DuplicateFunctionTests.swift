// pahole -j's duplicate functions: DWARFFunctions finds each name's definitions in compilation-
// unit order (on a real program gcc compiles here), and keepingFirstDefinitions keeps the copy
// whose signature comes first.
import BTF
import ELF
import Foundation
import TestSupport
import Testing

@Suite struct DuplicateFunctionTests {
    /// int, two prototypes, `f` written twice (once per prototype) and `g` sharing the first.
    static func twice() -> BTF {
        var strings = StringTableBuilder()
        var btf = BTF()
        let int = btf.append(
            BTFType(nameOffset: strings.add("int"), kind: .int(size: 4, encoding: 1, bitOffset: 0, bits: 32)))
        let voidPointer = btf.append(BTFType(nameOffset: 0, kind: .pointer(.void)))
        let byValue = btf.append(
            BTFType(
                nameOffset: 0,
                kind: .functionProto(returns: int, parameters: [Parameter(nameOffset: strings.add("x"), type: int)])))
        let byRegs = btf.append(
            BTFType(
                nameOffset: 0,
                kind: .functionProto(
                    returns: int, parameters: [Parameter(nameOffset: strings.add("regs"), type: voidPointer)])))
        btf.append(BTFType(nameOffset: strings.add("f"), kind: .function(proto: byValue, linkage: 0)))
        btf.append(BTFType(nameOffset: strings.add("f"), kind: .function(proto: byRegs, linkage: 0)))
        btf.append(BTFType(nameOffset: strings.add("g"), kind: .function(proto: byValue, linkage: 1)))
        btf.strings = strings.table
        return btf
    }

    @Test func keepsTheCopyOfTheFirstDefinition() throws {
        let btf = Self.twice()
        #expect(btf.duplicatedFunctionNames == ["f"])
        #expect(btf.signature(ofFunction: 5) == "base:int(x:base:int)")
        #expect(btf.signature(ofFunction: 6) == "base:int(regs:*void)")
        // A definition no copy has (pahole skipped it) comes first; then the `regs` one.
        let kept = btf.keepingFirstDefinitions([
            "f": ["void(y:base:char)", "base:int(regs:*void)", "base:int(x:base:int)"]
        ])
        #expect(kept.unresolved.isEmpty)
        #expect(kept.dropped == 1, "only the FUNC: its prototype is still g's")
        let functions = kept.btf.types.indices.filter {
            if case .function = kept.btf.types[$0].kind { return true }; return false
        }
        #expect(
            functions.map { kept.btf.signature(ofFunction: TypeID(UInt32($0 + 1))) } == [
                "base:int(regs:*void)", "base:int(x:base:int)",
            ])
        try kept.btf.validateReferences()

        // Without g, the dropped copy's prototype goes too.
        var alone = btf
        alone.types.removeLast()
        let lonely = alone.keepingFirstDefinitions(["f": ["base:int(regs:*void)"]])
        #expect(lonely.dropped == 2)
        #expect(lonely.btf.types.count == 4)
        try lonely.btf.validateReferences()

        // No definition matches: every copy stays, and the caller hears of it.
        let unknown = btf.keepingFirstDefinitions([:])
        #expect(unknown.unresolved == ["f"])
        #expect(unknown.btf.types.count == btf.types.count)
    }

    @Test(.requires(.tool("gcc")))
    func dwarfListsDefinitionsInUnitOrder() throws {
        let dir = try ScratchDirectory("btfgen-dwarf")
        defer { dir.remove() }
        let sources = [
            "a.c": "static int helper(int x) { return x + 1; }\nint use_a(int v) { return helper(v); }\n",
            "b.c":
                "static int __attribute__((noinline)) helper(const char *s) { return s[0]; }\nint use_b(const char *s) { return helper(s); }\nextern int declared_only(long n);\n",
            "main.c": "int use_a(int); int use_b(const char *);\nint main(void) { return use_a(1) + use_b(\"x\"); }\n",
        ]
        for (name, text) in sources { try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8) }
        let program = dir.file("program")
        let r = try runProcess(
            "gcc", ["-g", "-O0", "-fno-inline", "-o", program, dir.file("a.c"), dir.file("b.c"), dir.file("main.c")])
        try #require(r.status == 0, "gcc: \(r.stderr)")
        let bytes = try BTFFixtures.read(program)
        let found = try bytes.withUnsafeBytes { raw in
            try DWARFFunctions.definitions(in: ELFFile(bytes: raw), named: ["helper", "main", "declared_only"])
        }
        #expect(found["helper"] == ["base:int(x:base:int)", "base:int(s:*cbase:char)"])
        #expect(found["main"] == ["base:int()"])
        #expect(found["declared_only"] == nil, "a declaration is not a definition")
    }
}
