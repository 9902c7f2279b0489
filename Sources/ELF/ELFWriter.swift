// The smallest ELF that every libbpf reads as kernel BTF: a 64-bit little-endian relocatable
// file with three sections (null, .BTF, .shstrtab) — the shape BTFHub's objcopy'd files have.
// libbpf's btf__parse_elf, the only parser of libbpf releases before btf__parse read raw BTF,
// accepts it, so a file written where libbpf looks for vmlinux BTF works with any libbpf.
//
//   0x00  ELF header (64 bytes)
//   0x40  .BTF data, then .shstrtab ("\0.BTF\0.shstrtab\0"), padded to 8
//   ....  section headers: [0] null, [1] .BTF (PROGBITS, ALLOC), [2] .shstrtab (STRTAB)

public enum ELFWriter {
    /// Wrap raw BTF in an ELF holding only a `.BTF` section.
    public static func btfObject(_ btf: [UInt8], machine: UInt16 = ELFFile.machineX86_64) -> [UInt8] {
        var out = [UInt8]()
        func u8(_ v: UInt8) { out.append(v) }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func pad(to alignment: Int) { while out.count % alignment != 0 { out.append(0) } }

        let names: [UInt8] = Array("\0.BTF\0.shstrtab\0".utf8)
        let btfOffset = 64
        let namesOffset = btfOffset + btf.count
        var shoff = namesOffset + names.count
        shoff += (8 - shoff % 8) % 8

        // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, System V ABI, padding.
        out += [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        u16(1)                     // e_type: ET_REL
        u16(machine)               // e_machine
        u32(1)                     // e_version
        u64(0)                     // e_entry
        u64(0)                     // e_phoff
        u64(UInt64(shoff))         // e_shoff
        u32(0)                     // e_flags
        u16(64)                    // e_ehsize
        u16(0)                     // e_phentsize
        u16(0)                     // e_phnum
        u16(64)                    // e_shentsize
        u16(3)                     // e_shnum
        u16(2)                     // e_shstrndx
        out += btf
        out += names
        pad(to: 8)

        func section(name: UInt32, type: UInt32, flags: UInt64, offset: Int, size: Int, align: UInt64) {
            u32(name); u32(type); u64(flags); u64(0); u64(UInt64(offset)); u64(UInt64(size))
            u32(0); u32(0); u64(align); u64(0)
        }
        section(name: 0, type: 0, flags: 0, offset: 0, size: 0, align: 0)
        section(name: 1, type: 1, flags: 2, offset: btfOffset, size: btf.count, align: 4)   // PROGBITS, SHF_ALLOC
        section(name: 6, type: 3, flags: 0, offset: namesOffset, size: names.count, align: 1)  // STRTAB
        return out
    }
}
