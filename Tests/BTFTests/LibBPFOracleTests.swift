import BTF
import Foundation
import LibBPF
import TestSupport
import Testing

/// Load each object with libbpf against full kernel BTF and against our minimized BTF: the
/// relocated programs must be the same, except for map fds (differ per load) and TYPE_ID_TARGET
/// immediates (ids are renumbered by design).
@Suite(.serialized) struct LibBPFOracleTests {
    static var cases: [KernelBTF] { BTFFixtures.kernels }

    @Test(.requires(.bpfObjects, .root), arguments: cases)
    func libbpfRelocatesAlikeWithMinimizedBTF(_ kernel: KernelBTF) throws {
        let full = try BTF(decoding: try BTFFixtures.read(kernel.path))
        let scratch = try ScratchDirectory("btfgen-oracle")
        defer { scratch.remove() }
        for path in BTFFixtures.testObjects {
            let object = try BPFObject(bytes: try BTFFixtures.read(path))
            let small = try full.minimized(for: [object])
            let smallPath = scratch.file("min.btf")
            try Data(small.encoded()).write(to: URL(fileURLWithPath: smallPath))
            let expected: [LoadedProgram]
            do {
                expected = try CoreOracle.loadedPrograms(object: path, btf: kernel.path)
            } catch {
                // The host kernel may refuse a program relocated for a foreign kernel's layout; that
                // says nothing about our BTF. On the host's own BTF it must load.
                if kernel.label == "host" { Issue.record("\(error)") }
                print("oracle: \(kernel) \(path): \(error)")
                continue
            }
            // What `btfgen minimize` writes, and the same types in name order (what bundles carry).
            let orderedPath = scratch.file("min-name-order.btf")
            try Data(small.inNameOrder().encoded()).write(to: URL(fileURLWithPath: orderedPath))
            for btfPath in [smallPath, orderedPath] {
                try compare(expected, try CoreOracle.loadedPrograms(object: path, btf: btfPath), object, path, kernel)
            }
        }
    }

    /// The programs libbpf loaded against full and against minimized BTF, instruction by instruction.
    func compare(
        _ expected: [LoadedProgram], _ actual: [LoadedProgram], _ object: BPFObject, _ path: String,
        _ kernel: KernelBTF
    ) throws {
        try #require(expected.count == actual.count)
        // Instruction indexes whose immediate legitimately differs.
        var typeIDTargets = Set<String>()
        for r in object.coreRelocations where r.relocation.kind == .typeIDTarget {
            typeIDTargets.insert("\(r.section)#\(r.relocation.instructionOffset / 8)")
        }
        for (e, a) in zip(expected, actual) {
            #expect(e.name == a.name)
            try #require(e.instructions.count == a.instructions.count, "\(e.name)")
            var i = 0
            var compared = 0
            while i < e.instructions.count {
                let x = e.instructions[i], y = a.instructions[i]
                let opcode = UInt8(x & 0xff), src = UInt8((x >> 12) & 0xf)
                if opcode == 0x18 {  // ld_imm64: two slots
                    let ignore = src == 1 || src == 2 || typeIDTargets.contains("\(e.section)#\(i)")
                    if !ignore {
                        #expect(
                            x == y && e.instructions[i + 1] == a.instructions[i + 1], "\(path) \(e.name) insn \(i)")
                    }
                    i += 2
                    continue
                }
                if typeIDTargets.contains("\(e.section)#\(i)") {
                    #expect(x & 0xffff_ffff == y & 0xffff_ffff, "\(path) \(e.name) insn \(i) opcode/regs/off")
                } else {
                    #expect(x == y, "\(path) \(e.name) insn \(i) on \(kernel)")
                }
                compared += 1
                i += 1
            }
            #expect(compared > 20)
        }
    }

    /// Our resolver's values are what libbpf patched into the instructions.
    @Test(.requires(.bpfObjects, .root), arguments: cases)
    func ourResolverAgreesWithLibbpf(_ kernel: KernelBTF) throws {
        let full = try BTF(decoding: try BTFFixtures.read(kernel.path))
        for path in BTFFixtures.testObjects {
            let object = try BPFObject(bytes: try BTFFixtures.read(path))
            guard let programs = try? CoreOracle.loadedPrograms(object: path, btf: kernel.path) else {
                if kernel.label == "host" { Issue.record("libbpf could not load \(path) on the host") }
                continue
            }
            var resolver = CoreResolver(target: full)
            let results = try resolver.resolve(object)
            var checked = 0
            for (r, result) in zip(object.coreRelocations, results) {
                guard let program = programs.first(where: { $0.section == r.section }) else { continue }
                let i = Int(r.relocation.instructionOffset / 8)
                try #require(i < program.instructions.count)
                let x = program.instructions[i]
                let code = UInt8(x & 0xff)
                let what = "\(path) relo #\(r.index) \(result.kind.name) insn \(i) on \(kernel)"
                if result.poison {
                    #expect(code == 0x85 && UInt32(x >> 32) == 0xbad2310, "\(what): libbpf did not poison")
                } else if code == 0x18 {
                    let value = (x >> 32) | (program.instructions[i + 1] >> 32) << 32
                    #expect(value == result.targetValue, "\(what)")
                } else if [1, 2, 3].contains(code & 7) {
                    #expect(UInt64(UInt16(truncatingIfNeeded: x >> 16)) == result.targetValue, "\(what)")
                } else {
                    #expect(
                        UInt64(UInt32(truncatingIfNeeded: x >> 32))
                            == UInt64(UInt32(truncatingIfNeeded: result.targetValue)), "\(what)")
                }
                checked += 1
            }
            #expect(checked == object.coreRelocations.count)
        }
    }
}
