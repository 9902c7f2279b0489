// libbpf as an independent oracle for BTF files: if libbpf's own parser accepts a file and finds
// the types we expect, consumers that use libbpf will too.
import CLibBPF
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A member of a struct or union as libbpf reports it.
public struct LibBPFMember: Equatable, Sendable {
    public let name: String
    public let bitOffset: UInt32
    public let bitfieldSize: UInt32
}

/// A struct as libbpf reports it.
public struct LibBPFStruct: Equatable, Sendable {
    public let name: String
    public let size: UInt32
    public let members: [LibBPFMember]
}

/// Why libbpf refused a BTF file.
public struct LibBPFError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let errno: Int32
    public var description: String {
        "libbpf cannot parse BTF in \(path): \(String(cString: strerror(errno)))"
    }
}

/// A BTF file opened with libbpf's `btf__parse` (raw BTF or an ELF with a .BTF section).
public final class LibBPFBTF {
    private let btf: OpaquePointer

    public init(path: String) throws {
        // libbpf prints its complaints to stderr; a failed parse here becomes our own one-line
        // error, so silence it for the call (under a lock: the print hook is process-global).
        let (handle, code) = LibBPFBTF.quiet.withLock { _ in
            let previous = libbpf_set_print(nil)
            errno = 0
            let handle = btf__parse(path, nil)
            let code = errno
            libbpf_set_print(previous)
            return (handle, code)
        }
        guard let handle else { throw LibBPFError(path: path, errno: code == 0 ? EINVAL : code) }
        btf = handle
    }

    private static let quiet = Mutex(())

    deinit { btf__free(btf) }

    /// Number of types, not counting void (type 0).
    public var typeCount: Int { Int(btf__type_cnt(btf)) - 1 }

    /// The first struct called `name`, with its members.
    public func structNamed(_ name: String) -> LibBPFStruct? {
        let id = btf__find_by_name_kind(btf, name, UInt32(BTF_KIND_STRUCT))
        guard id > 0, let t = btf__type_by_id(btf, UInt32(id)) else { return nil }
        let vlen = Int(t.pointee.info & 0xffff)
        let kindFlag = (t.pointee.info >> 31) != 0
        // Members follow the btf_type record directly.
        let first = UnsafeRawPointer(t).advanced(by: MemoryLayout<btf_type>.size)
            .assumingMemoryBound(to: btf_member.self)
        var members: [LibBPFMember] = []
        members.reserveCapacity(vlen)
        for i in 0..<vlen {
            let m = first[i]
            let name = btf__name_by_offset(btf, m.name_off).map { String(cString: $0) } ?? ""
            members.append(
                LibBPFMember(
                    name: name,
                    bitOffset: kindFlag ? m.offset & 0xffffff : m.offset,
                    bitfieldSize: kindFlag ? m.offset >> 24 : 0))
        }
        return LibBPFStruct(name: name, size: t.pointee.size, members: members)
    }
}
