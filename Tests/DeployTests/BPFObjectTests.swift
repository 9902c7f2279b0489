// The compiled programs in bpf/ keep to what a 4.18-class kernel accepts, checked on the objects
// themselves (our ELF reader and libbpf's view of the maps), not by loading them on this host's
// much newer kernel, which would accept far more.
import CLibBPF
import ELF
import Foundation
import Kernel
import TestSupport
import Testing

@Suite struct BPFObjectTests {
    static let names = ["exec", "task_rename", "unlinkat"]

    /// Helpers of Linux 4.18 end at get_current_cgroup_id (80); 112–115 are the
    /// probe_read_{user,kernel}{,_str} helpers of 5.5, which libbpf rewrites to probe_read{,_str}
    /// when the kernel lacks them.
    static let helperLimit418: Int32 = 80
    static let rewrittenByLibbpf: Set<Int32> = [112, 113, 114, 115]

    @Test(arguments: names)
    func noGlobalDataNoLoopsFewInstructionsOldHelpers(_ name: String) throws {
        let path = try bpfObjects() + "/\(name).bpf.o"
        let file = try MappedFile(path: path)
        let elf = try ELFFile(bytes: file.bytes)
        #expect(elf.machine == ELFFile.machineBPF)
        let names = elf.sections.map(\.name)
        for data in [".data", ".bss", ".rodata"] {
            #expect(!names.contains { $0 == data || $0.hasPrefix(data + ".") }, "\(name): \(data) needs Linux 5.2")
        }
        #expect(names.contains(".BTF.ext"), "\(name): no .BTF.ext, so no CO-RE relocations")
        let programs = elf.sections.filter { $0.name.hasPrefix("raw_tp/") }
        try #require(programs.count == 1, "\(name): one raw_tp program per object")
        for section in programs {
            let code = elf.data(of: section)
            #expect(code.count / 8 <= 4096, "\(name): \(code.count / 8) instructions; before 5.2 the limit is 4096")
            var at = 0
            while at + 8 <= code.count {
                let opcode = code[at]
                let cls = opcode & 0x07
                let op = opcode & 0xf0
                let offset = Int16(littleEndian: code.loadUnaligned(fromByteOffset: at + 2, as: Int16.self))
                let imm = Int32(littleEndian: code.loadUnaligned(fromByteOffset: at + 4, as: Int32.self))
                if cls == 0x05 || cls == 0x06 {
                    if op == 0x80 {
                        let src = code[at + 1] >> 4
                        if src == 0 {  // a helper call (src 1 is a BPF-to-BPF call)
                            #expect(
                                imm <= Self.helperLimit418 || Self.rewrittenByLibbpf.contains(imm),
                                "\(name): helper \(imm) is newer than 4.18")
                        }
                    } else if op != 0x90 {
                        #expect(offset >= 0, "\(name): backward jump at insn \(at / 8): loops need Linux 5.3")
                    }
                }
                at += opcode == 0x18 ? 16 : 8  // ld_imm64 takes two slots
            }
        }
    }

    @Test(arguments: names)
    func eventsGoThroughAPerfEventArray(_ name: String) throws {
        let path = try bpfObjects() + "/\(name).bpf.o"
        let object = try #require(bpf_object__open_file(path, nil), "libbpf cannot open \(path)")
        defer { bpf_object__close(object) }
        var maps: [(String, bpf_map_type)] = []
        var map: OpaquePointer? = nil
        while let next = bpf_object__next_map(object, map) {
            map = next
            maps.append((String(cString: bpf_map__name(next)), bpf_map__type(next)))
        }
        #expect(maps.count == 1)
        #expect(maps.first?.0 == "events")
        #expect(maps.first?.1 == BPF_MAP_TYPE_PERF_EVENT_ARRAY, "the ring buffer needs Linux 5.8")
    }
}
