// What architecture a BPF object or a kernel BTF is for, inferred from the registers it reads or
// defines, on the real objects `make bpf` builds per architecture and real kernels.
import BTF
import Foundation
import Kernel
import TestSupport
import Testing

@Suite struct ArchitectureTests {
    func object(_ path: String) throws -> BPFObject {
        let full = Repo.root.appendingPathComponent(path).path
        try #require(FileManager.default.fileExists(atPath: full), "\(path) not built: run `make bpf`")
        return try BPFObject(bytes: try BTFFixtures.read(full))
    }

    @Test(.requires(.bpfObjects))
    func unlinkatIsOfItsBuildsArchitectureAndTheOtherProgramsAreNeutral() throws {
        let x86 = try #require(try Architectures.of(object("bpf/x86_64/unlinkat.bpf.o")))
        #expect(x86 == ArchitectureEvidence(arch: "x86_64", reason: "reads pt_regs.si"))
        let arm = try #require(try Architectures.of(object("bpf/arm64/unlinkat.bpf.o")))
        #expect(arm.arch == "arm64")
        #expect(arm.reason == "reads user_pt_regs.regs", "\(arm)")
        // exec and task_rename read task_struct only: one build serves both (make bpf's two are identical).
        for arch in ["x86_64", "arm64"] {
            for name in ["exec", "task_rename"] {
                #expect(try Architectures.of(object("bpf/\(arch)/\(name).bpf.o")) == nil, "\(arch)/\(name)")
            }
        }
        // The CO-RE engine's own test objects read no registers.
        for name in ["core_kinds", "core_flavors", "core_nested"] {
            #expect(try Architectures.of(object("bpf/tests/\(name).bpf.o")) == nil, "\(name)")
        }
    }

    @Test func theTableUsesKernelArchsNamesAndNoMemberProvesTwoArchitectures() {
        var owner: [String: String] = [:]
        for row in Architectures.registerMembers {
            #expect(KernelArch.canonical(row.arch) == row.arch, "\(row.arch) is not a KernelArch name")
            for (structure, members) in row.structures {
                for m in members {
                    let key = "\(structure).\(m)"
                    #expect(owner[key] == nil, "\(key) listed for \(owner[key] ?? "") and \(row.arch)")
                    owner[key] = row.arch
                }
            }
        }
    }

    /// A BTF defining register structures with the given members (u64 each).
    func registers(_ structures: [(String, [String])]) -> BTF {
        var strings = StringTableBuilder()
        let u64 = strings.add("unsigned long")
        var types = [BTFType(nameOffset: u64, kind: .int(size: 8, encoding: 0, bitOffset: 0, bits: 64))]
        for (name, members) in structures {
            let n = strings.add(name)
            let ms = members.enumerated().map { i, m in
                Member(nameOffset: strings.add(m), type: TypeID(1), offset: UInt32(i * 64))
            }
            types.append(
                BTFType(
                    nameOffset: n,
                    kind: .structure(Composite(size: UInt32(8 * members.count), bitfieldMembers: false, members: ms))))
        }
        var btf = BTF(strings: strings.table)
        for t in types { btf.append(t) }
        return btf
    }

    @Test func aKernelBTFsArchitectureIsWhatItsRegistersSayAndNothingWhenTheyDisagree() {
        #expect(Architectures.ofKernel(registers([("pt_regs", ["sp", "orig_x0"])]))?.arch == "arm64")
        #expect(Architectures.ofKernel(registers([("pt_regs", ["sp"])])) == nil, "sp is every architecture's")
        #expect(Architectures.ofKernel(registers([("pt_regs___x86", ["di"])]))?.arch == "x86_64", "flavors count")
        // Two architectures' registers in one BTF describe no kernel: no architecture, not the first.
        #expect(Architectures.ofKernel(registers([("pt_regs", ["di"]), ("user_pt_regs", ["regs"])])) == nil)
    }

    @Test(.requires(.hostBTF)) func theHostKernelsBTFIsOfThisMachine() throws {
        let index = try BTFIndex(try BTFFixtures.read("/sys/kernel/btf/vmlinux"), validate: false)
        var names = utsname()
        _ = uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(Architectures.ofKernel(index)?.arch == KernelArch.name(unameMachine: machine))
    }

    @Test(.requires(.fixture("BTFGEN_DEBIAN_VMLINUX"), .fixture("BTFGEN_DEBIAN_ARM64_VMLINUX")))
    func debiansKernelsAreOfTheirArchitecture() throws {
        let x86 = try #require(BTFFixtures.debian, "the x86_64 vmlinux's .BTF could not be read")
        let arm = try #require(BTFFixtures.debianArm64, "the arm64 vmlinux's .BTF could not be read")
        let a = Architectures.ofKernel(try BTFIndex(try BTFFixtures.read(x86.path), validate: false))
        let b = Architectures.ofKernel(try BTFIndex(try BTFFixtures.read(arm.path), validate: false))
        #expect(a == ArchitectureEvidence(arch: "x86_64", reason: "it defines pt_regs.r15"))
        #expect(b?.arch == "arm64", "\(String(describing: b))")
        // A minimized BTF keeps the registers its objects read, and with them its architecture.
        let small = try BTF(decoding: try BTFFixtures.read(arm.path)).minimized(for: [
            try object("bpf/arm64/unlinkat.bpf.o")
        ])
        #expect(Architectures.ofKernel(small)?.arch == "arm64")
        let neutral = try BTF(decoding: try BTFFixtures.read(arm.path)).minimized(for: [
            try object("bpf/arm64/task_rename.bpf.o")
        ])
        #expect(Architectures.ofKernel(neutral) == nil, "no registers, no architecture")
    }
}
