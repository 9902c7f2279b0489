// libbpf as the oracle for CO-RE: open a BPF object with a chosen BTF as `btf_custom_path`, let
// libbpf relocate and load it (root and BPF needed), and hand back the instructions it loaded.
// Loading the same object against full and against minimized BTF must give the same program.
import CLibBPF

#if canImport(Glibc)
    import Glibc
#endif

/// Why libbpf could not relocate or load an object.
public struct CoreOracleError: Error, CustomStringConvertible, Equatable {
    public let object: String
    public let btf: String
    public let step: String
    public let errno: Int32
    public var description: String {
        "libbpf could not \(step) \(object) with BTF \(btf): \(String(cString: strerror(errno)))"
    }
}

/// One program's loaded instructions: 8 bytes each, as the kernel received them.
public struct LoadedProgram: Equatable, Sendable {
    public let name: String
    public let section: String
    public let instructions: [UInt64]
}

public enum CoreOracle {
    /// Open `object` with `btf` as the CO-RE target, load it, and return every program's
    /// instructions after libbpf's relocation. The object is closed (programs unloaded) before
    /// returning.
    public static func loadedPrograms(object: String, btf: String) throws -> [LoadedProgram] {
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        let path = strdup(btf)
        defer { free(path) }
        opts.btf_custom_path = UnsafePointer(path)
        errno = 0
        guard let obj = bpf_object__open_file(object, &opts) else {
            throw CoreOracleError(object: object, btf: btf, step: "open", errno: errno == 0 ? EINVAL : errno)
        }
        defer { bpf_object__close(obj) }
        let err = bpf_object__load(obj)
        if err != 0 {
            throw CoreOracleError(object: object, btf: btf, step: "relocate and load", errno: -err)
        }
        var programs: [LoadedProgram] = []
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            let count = Int(bpf_program__insn_cnt(p))
            var words: [UInt64] = []
            if let insns = bpf_program__insns(p) {
                let raw = UnsafeRawPointer(insns)
                words = (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            programs.append(
                LoadedProgram(
                    name: String(cString: bpf_program__name(p)),
                    section: String(cString: bpf_program__section_name(p)),
                    instructions: words))
            prog = bpf_object__next_program(obj, p)
        }
        return programs
    }
}
