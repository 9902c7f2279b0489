/// The BTF a file carries, as libbpf's btf__parse reads it: the whole file when it is raw BTF,
/// an ELF file's `.BTF` section otherwise (a vmlinux, a BPF object, BTFHub's objcopy'd files).
/// Nil for an ELF file without a `.BTF` section. The result points into `bytes`.
public func btfPayload(of bytes: UnsafeRawBufferPointer) throws(ELFError) -> UnsafeRawBufferPointer? {
    guard ELFFile.hasMagic(bytes) else { return bytes }
    return try ELFFile(bytes: bytes).btfData
}
