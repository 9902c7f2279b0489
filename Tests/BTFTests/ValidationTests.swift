import BTF
import Testing

/// A small BTF built by hand: [1] int, [2] struct s { int a; int *p; }, [3] ptr -> 1, [4] enum e.
func sampleBTF() -> BTF {
    var strings = StringTableBuilder()
    let int = strings.add("int"), s = strings.add("s"), a = strings.add("a"), p = strings.add("p")
    let e = strings.add("e"), x = strings.add("X")
    var btf = BTF(strings: strings.table)
    btf.append(BTFType(nameOffset: int, kind: .int(size: 4, encoding: 1, bitOffset: 0, bits: 32)))
    btf.append(
        BTFType(
            nameOffset: s,
            kind: .structure(
                Composite(
                    size: 16, bitfieldMembers: false,
                    members: [
                        Member(nameOffset: a, type: 1, offset: 0), Member(nameOffset: p, type: 3, offset: 64),
                    ]))))
    btf.append(BTFType(nameOffset: 0, kind: .pointer(1)))
    btf.append(
        BTFType(
            nameOffset: e,
            kind: .enumeration(
                Enumeration(
                    size: 4, isSigned: false,
                    values: [
                        Enumerator(nameOffset: x, value: 7)
                    ]))))
    return btf
}

/// Little-endian u32 store into a byte array.
func poke(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
    for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
}

@Suite struct ValidationTests {
    // Offsets in the sample: header 24; [1] at 24 (16 B); [2] at 40 (12 + 24); [3] at 76; [4] at 88.
    @Test func sampleRoundTrips() throws {
        let bytes = sampleBTF().encoded()
        #expect(try BTF(decoding: bytes) == sampleBTF())
        #expect(try BTF(decoding: bytes).encoded() == bytes)
    }

    @Test func indexReportsTheSameErrorsAsDecoding() {
        var mutants: [[UInt8]] = []
        var b = sampleBTF().encoded()
        poke(&b, 76 + 8, 99)
        mutants.append(b)
        b = sampleBTF().encoded()
        poke(&b, 40 + 12, 5000)
        mutants.append(b)
        b = sampleBTF().encoded()
        poke(&b, 88 + 4, 6 << 24 | 200)
        mutants.append(b)
        for m in mutants {
            var decodeError: BTFError? = nil, indexError: BTFError? = nil
            do { _ = try BTF(decoding: m) } catch { decodeError = error as? BTFError }
            do { _ = try BTFIndex(m) } catch { indexError = error as? BTFError }
            #expect(decodeError != nil && decodeError == indexError)
        }
    }

    @Test func truncatedHeader() {
        let bytes = Array(sampleBTF().encoded().prefix(10))
        #expect(throws: BTFError.truncatedHeader(available: 10)) { try BTF(decoding: bytes) }
    }

    @Test func badMagic() {
        var bytes = sampleBTF().encoded()
        bytes[0] = 0x12
        #expect(throws: BTFError.badMagic(0xEB12)) { try BTF(decoding: bytes) }
    }

    @Test func danglingTypeID() {
        var bytes = sampleBTF().encoded()
        poke(&bytes, 76 + 8, 99)  // the pointer's target
        #expect(throws: BTFError.danglingTypeID(id: 3, offset: 76, target: 99, typeCount: 5)) {
            try BTF(decoding: bytes)
        }
    }

    @Test func badStringOffset() {
        var bytes = sampleBTF().encoded()
        let size = sampleBTF().strings.bytes.count
        poke(&bytes, 40 + 12, 5000)  // first member's name
        #expect(throws: BTFError.badStringOffset(id: 2, offset: 40, stringOffset: 5000, tableSize: size)) {
            try BTF(decoding: bytes)
        }
    }

    @Test func vlenOverrunsTheTypeSection() {
        var bytes = sampleBTF().encoded()
        poke(&bytes, 88 + 4, 6 << 24 | 200)  // enum claims 200 values
        #expect(throws: BTFError.truncatedType(id: 4, offset: 88, needed: 12 + 8 * 200, available: 20)) {
            try BTF(decoding: bytes)
        }
    }

    @Test func unknownKind() {
        var bytes = sampleBTF().encoded()
        poke(&bytes, 76 + 4, 25 << 24)
        #expect(throws: BTFError.unknownKind(id: 3, offset: 76, kind: 25)) { try BTF(decoding: bytes) }
    }

    @Test func kindFlagWhereNoneExists() {
        var bytes = sampleBTF().encoded()
        poke(&bytes, 76 + 4, 1 << 31 | 2 << 24)
        #expect(throws: BTFError.unexpectedKindFlag(id: 3, offset: 76, kind: .pointer)) { try BTF(decoding: bytes) }
    }

    @Test func headerLayoutErrors() {
        var bytes = sampleBTF().encoded()
        poke(&bytes, 4, 8)
        #expect(throws: BTFError.badHeaderLength(8, available: bytes.count)) { try BTF(decoding: bytes) }
        bytes = sampleBTF().encoded()
        poke(&bytes, 20, 1 << 20)  // str_len far too long
        #expect(throws: BTFError.self) { try BTF(decoding: bytes) }
        bytes = sampleBTF().encoded()
        bytes.append(0)  // trailing garbage
        #expect(throws: BTFError.badSectionLayout("1 unaccounted bytes follow the string section")) {
            try BTF(decoding: bytes)
        }
    }

    @Test func longerHeaderIsAcceptedAndKept() throws {
        var btf = sampleBTF()
        btf.headerLength = 32
        let bytes = btf.encoded()
        let again = try BTF(decoding: bytes)
        #expect(again.headerLength == 32)
        #expect(again.encoded() == bytes)
        var dirty = bytes
        dirty[28] = 1
        #expect(throws: BTFError.nonZeroHeaderTail(offset: 28)) { try BTF(decoding: dirty) }
    }

    @Test(.requires(.hostBTF)) func everyPrefixOfRealBTFIsRejectedWithoutCrashing() throws {
        let host = try #require(BTFFixtures.host)
        let bytes = try BTFFixtures.read(host.path)
        var cut = 0
        while cut < bytes.count {
            #expect(throws: BTFError.self) { try BTF(decoding: Array(bytes[0..<cut])) }
            cut += 4099
        }
    }

    @Test func extErrors() {
        #expect(throws: BTFError.extTruncated(what: "header", offset: 0, needed: 8, available: 3)) {
            try BTFExt(decoding: [0x9f, 0xeb, 1])
        }
        // header claiming a core_relo subsection past the end
        var ext: [UInt8] = [0x9f, 0xeb, 1, 0] + [UInt8](repeating: 0, count: 28)
        poke(&ext, 4, 32)
        poke(&ext, 24, 0)
        poke(&ext, 28, 64)
        #expect(throws: BTFError.extTruncated(what: "core_relo", offset: 32, needed: 64, available: 0)) {
            try BTFExt(decoding: ext)
        }
    }

    @Test func objectWithoutBTF() {
        #expect(throws: BTFError.self) { try BPFObject(bytes: [0x7f, 0x45, 0x4c, 0x46]) }
    }
}

@Suite struct ObjectTests {
    /// Found by scripts/fuzz.sh: an ELF whose empty section-name table lies past the end of the file.
    @Test func emptySectionNameTablePastTheEndIsAnErrorNotATrap() {
        var elf = [UInt8](repeating: 0, count: 64 + 2 * 64)
        elf[0] = 0x7f; elf[1] = 0x45; elf[2] = 0x4c; elf[3] = 0x46
        elf[4] = 2; elf[5] = 1; elf[6] = 1
        elf[18] = 247  // EM_BPF
        poke(&elf, 0x28, 64)  // e_shoff
        elf[0x3a] = 64  // e_shentsize
        elf[0x3c] = 2  // e_shnum
        elf[0x3e] = 1  // e_shstrndx
        let s1 = 64 + 64
        poke(&elf, s1 + 4, 3)  // SHT_STRTAB
        for i in 0..<8 { elf[s1 + 24 + i] = 0xff }  // sh_offset = 2^64 - 1, sh_size = 0
        #expect(throws: BTFError.self) { try BPFObject(bytes: elf) }
    }

    @Test(.requires(.bpfObjects)) func realObjectsCarryCoreRelocations() throws {
        for path in BTFFixtures.testObjects {
            let o = try BPFObject(bytes: try BTFFixtures.read(path))
            let ext = try #require(o.ext, "\(path) has no .BTF.ext")
            #expect(!ext.funcInfo.isEmpty && !ext.lineInfo.isEmpty)
            #expect(!o.coreRelocations.isEmpty)
            #expect(o.coreRelocations.allSatisfy { o.btf.type($0.relocation.type) != nil })
        }
    }

    @Test(.requires(.bpfObjects)) func indexAndLoadReadTheBTFOfAnELF() throws {
        for path in BTFFixtures.testObjects {
            let bytes = try BTFFixtures.read(path)
            let object = try BPFObject(bytes: bytes)
            let index = try bytes.withUnsafeBytes { try BTFIndex(loading: $0) }
            #expect(index.typeCount == object.btf.types.count)
            #expect(try bytes.withUnsafeBytes { try BTF(loading: $0) } == object.btf)
            #expect(object.sectionNames.contains(".BTF.ext"))
        }
    }

    @Test(.requires(.bpfObjects)) func testObjectsCoverEveryKindClang14Emits() throws {
        var kinds = Set<CoreRelocationKind>()
        for path in BTFFixtures.testObjects {
            kinds.formUnion(try BPFObject(bytes: try BTFFixtures.read(path)).coreRelocations.map(\.relocation.kind))
        }
        // TYPE_MATCHES needs clang >= 15; CoreTests.typeMatches covers it with synthetic BTF.
        #expect(kinds == Set(CoreRelocationKind.allCases).subtracting([.typeMatches]))
    }
}
