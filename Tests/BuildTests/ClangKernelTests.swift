// Kernels built by clang: its DWARF 5 names things through DW_FORM_strx (an index into
// .debug_str_offsets) instead of gcc's DW_FORM_strp, and it writes no DW_AT_sibling. The DWARF
// function index must read both, or every function pahole -j duplicates stays undecided and the
// build falls back to single-threaded pahole. The fake kernel here is Fixtures/fake_kernel.c and
// a few compilation units that each define a static `dup_fn` with their own prototype, compiled
// with clang -g.
import BTF
import Catalog
import ELF
import Foundation
import TestSupport
import Testing
import Toolchain

@testable import Builder

@Suite struct ClangKernelTests {
    static let units = 4

    /// CU `i` defines `dup_fn(int xI)` (even i) or `dup_fn(const char *sI)` (odd i).
    static func unitSource(_ i: Int) -> String {
        let parameter = i % 2 == 0 ? "int x\(i)" : "const char *s\(i)"
        let body = i % 2 == 0 ? "x\(i) + \(i)" : "s\(i) ? s\(i)[0] : \(i)"
        return """
            static int __attribute__((noinline)) dup_fn(\(parameter)) { return \(body); }
            int use_\(i)(void) { return dup_fn(0); }

            """
    }

    /// The fake kernel compiled by clang with `dwarf` (-gdwarf-5 or -gdwarf-4).
    static func compile(in dir: ScratchDirectory, dwarf: String = "-gdwarf-5") throws -> String {
        var sources = [FakeKernel.source]
        for i in 0..<units {
            let path = dir.file("cu\(i).c")
            try unitSource(i).write(toFile: path, atomically: true, encoding: .utf8)
            sources.append(path)
        }
        let out = dir.file("vmlinux")
        let r = try runProcess(
            "clang",
            [dwarf, "-O0", "-Wl,--build-id=sha1", "-DRELEASE=\"6.1.0-clang-test\"", "-o", out] + sources)
        try #require(r.status == 0, "clang: \(r.stderr)")
        return out
    }

    @Test(.requires(.tool("clang")), arguments: ["-gdwarf-5", "-gdwarf-4"])
    func dwarfIndexReadsClangNames(_ dwarf: String) throws {
        let dir = try ScratchDirectory("btfgen-clang-dwarf")
        defer { dir.remove() }
        let vmlinux = try Self.compile(in: dir, dwarf: dwarf)
        let producer = try runProcess("readelf", ["--debug-dump=info", vmlinux])
        #expect(producer.stdout.contains("clang version"), "the object is clang's")
        if dwarf == "-gdwarf-5" {
            #expect(producer.stdout.contains("DW_FORM_strx") || producer.stdout.contains("indexed string"))
        }
        let found = try [UInt8](try Data(contentsOf: URL(fileURLWithPath: vmlinux))).withUnsafeBytes { raw in
            try DWARFFunctions.definitions(in: ELFFile(bytes: raw), named: ["dup_fn", "task_pid", "use_1", "nowhere"])
        }
        #expect(
            found["dup_fn"] == [
                "base:int(x0:base:int)", "base:int(s1:*cbase:char)", "base:int(x2:base:int)",
                "base:int(s3:*cbase:char)",
            ], "every definition, in compilation-unit order")
        #expect(found["task_pid"] == ["base:int(t:*s:task_struct,type:e:pid_type)"])
        #expect(found["use_1"] == ["base:int()"])
        #expect(found["nowhere"] == nil)
    }

    /// pahole's single-threaded BTF of `vmlinux` with more FUNCs appended, as pahole -j writes them
    /// when another thread met another definition: each `(name, parameter)` is a FUNC `name` whose one
    /// parameter is `const char *parameter`.
    static func withCopies(
        of vmlinux: String, _ copies: [(name: String, parameter: String)], in dir: ScratchDirectory
    ) throws -> String {
        let single = dir.file("single.btf")
        let p = try runProcess("pahole", ["--btf_encode_detached=\(single)", vmlinux])
        try #require(p.status == 0, "pahole: \(p.stderr)")
        var btf = try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: single))))
        func named(_ name: String) throws -> TypeID {
            let i = try #require(
                btf.types.indices.first {
                    if case .int = btf.types[$0].kind {
                        return btf.strings.string(at: btf.types[$0].nameOffset) == name
                    }
                    return false
                })
            return TypeID(UInt32(i + 1))
        }
        let int = try named("int"), char = try named("char")
        // `const char *` is there already: pahole encodes every unit's types, CU 1's parameter too.
        func find(_ kind: Kind) throws -> TypeID {
            let i = try #require(btf.types.firstIndex { $0.kind == kind }, "no \(kind) in pahole's BTF")
            return TypeID(UInt32(i + 1))
        }
        let pointer = try find(.pointer(try find(.const(char))))
        for copy in copies {
            let parameterName = btf.strings.append(copy.parameter)
            let proto = btf.append(
                BTFType(
                    nameOffset: 0,
                    kind: .functionProto(
                        returns: int, parameters: [Parameter(nameOffset: parameterName, type: pointer)])))
            let name = btf.strings.append(copy.name)
            btf.append(BTFType(nameOffset: name, kind: .function(proto: proto, linkage: 0)))
        }
        #expect(btf.duplicatedFunctionNames == Set(copies.map(\.name)))
        let raw = dir.file("raw-j.btf")
        try Data(btf.encoded()).write(to: URL(fileURLWithPath: raw))
        return raw
    }

    @Test(.requires(.tool("clang"), .tool("pahole")))
    func defaultBuildOfAClangKernelIsReproducible() throws {
        let dir = try ScratchDirectory("btfgen-clang-build")
        defer { dir.remove() }
        let vmlinux = try Self.compile(in: dir)
        var digests: [String] = []
        var flags: [[String]] = []
        for (i, extra) in [[], [], ["--no-parallel"]].enumerated() {
            let catalog = dir.file("catalog\(i)")
            let r = try btfgen(["build", vmlinux, "--catalog", catalog] + extra)
            try #require(r.status == 0, "build: \(r.stderr)")
            let entry = try #require(try indexEntries(catalog).first)
            digests.append(try #require(entry["sha256"] as? String))
            flags.append((entry["build"] as? [String: Any])?["paholeFlags"] as? [String] ?? [])
        }
        #expect(Set(digests).count == 1, "default and single-threaded builds of a clang kernel differ: \(digests)")
        #expect(flags[0].contains("-j") && !flags[2].contains("-j"))
    }

    /// The step that decides which copy of a duplicated function stays, on a clang kernel: a copy
    /// the DWARF defines is resolved (the first unit's kept, the bytes those of a single-threaded
    /// build), a copy it does not define makes the build fall back to single-threaded pahole.
    @Test(.requires(.tool("clang"), .tool("pahole")))
    func duplicatesOfAClangKernelResolveOrFallBack() throws {
        let dir = try ScratchDirectory("btfgen-clang-fallback")
        defer { dir.remove() }
        let vmlinux = try Self.compile(in: dir)
        let catalog = Catalog(root: URL(fileURLWithPath: dir.file("catalog")))
        try catalog.prepare()
        let builder = KernelBTFBuilder(catalog: catalog, tools: try Toolchain.probe(), options: BuildOptions())
        let single = try btfgen(["build", vmlinux, "--no-parallel", "--catalog", dir.file("single")])
        try #require(single.status == 0, "build: \(single.stderr)")
        let digest = try #require(try indexEntries(dir.file("single")).first?["sha256"] as? String)

        func canonicalize(_ raw: String, mayGiveUp: Bool) throws -> [UInt8]? {
            let alongside = AlongsidePahole(vmlinux: vmlinux, functions: true, readNative: nil)
            defer { alongside.cancel() }
            alongside.paholeFinished()
            var timings = BuildTimings()
            return try canonicalize(raw, alongside, mayGiveUp, &timings)
        }
        func canonicalize(
            _ raw: String, _ alongside: AlongsidePahole, _ mayGiveUp: Bool, _ timings: inout BuildTimings
        ) throws -> [UInt8]? {
            try builder.canonicalize(
                raw, alongside: alongside, to: dir.file("out.btf"), input: vmlinux, mayGiveUp: mayGiveUp,
                timings: &timings)
        }

        // The copy of CU 1's definition: CU 0's comes first and is the one kept.
        let resolvable = try Self.withCopies(of: vmlinux, [("dup_fn", "s1")], in: dir)
        let resolved = try #require(try canonicalize(resolvable, mayGiveUp: true), "the clang DWARF decided nothing")
        #expect(resolved.withUnsafeBytes { SHA256.hex($0) } == digest)
        #expect(try BTF(decoding: resolved).duplicatedFunctionNames.isEmpty)

        // Copies of which none matches a definition in the DWARF: undecidable, so the build runs
        // pahole single-threaded...
        let unknown = try Self.withCopies(
            of: vmlinux, [("dup_fn", "s1"), ("ghost_fn", "a"), ("ghost_fn", "b")], in: dir)
        #expect(try canonicalize(unknown, mayGiveUp: true) == nil)
        // ...and once single-threaded, those copies are kept rather than one guessed (dup_fn's are
        // still resolved).
        let kept = try #require(try canonicalize(unknown, mayGiveUp: false))
        #expect(try BTF(decoding: kept).duplicatedFunctionNames == ["ghost_fn"])
    }
}
