// The record btfgen's BPF programs send, decoded by the offsets bpf/include/btfgen_event.h fixes
// (and static-asserts) on the C side:
//
//   0 kind  4 pid  8 tid  12 helper_pid  16 helper_tid  20 oom_score_adj  24 syscall_nr (s64)
//   32 comm[16]  48 new_comm[16]  64 path[256]  — 320 bytes, little-endian like the kernel.
import SystemSupport

/// One event from a btfgen BPF program.
public struct TraceEvent: Sendable, Equatable, Encodable {
    /// Which program sent it.
    public enum Kind: String, Sendable, Encodable {
        case rename, unlinkat, exec
    }

    public static let size = 320

    public var kind: Kind
    /// task->tgid, read through CO-RE: only right when the BTF matches the kernel.
    public var pid: UInt32
    /// task->pid, read through CO-RE.
    public var tid: UInt32
    /// The same facts from bpf_get_current_pid_tgid(), which needs no BTF.
    public var helperPID: UInt32
    public var helperTID: UInt32
    /// task->signal->oom_score_adj (rename only).
    public var oomScoreAdj: Int32?
    /// sys_enter's syscall number (unlinkat only).
    public var syscall: Int64?
    /// task->comm: the old name for a rename.
    public var comm: String
    /// The new name (rename only).
    public var newComm: String?
    /// The unlinked path, or the exec'd file.
    public var path: String?

    /// Decode one perf sample; nil when it is not a btfgen event.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= TraceEvent.size else { return nil }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func string(_ at: Int, _ length: Int) -> String {
            let field = UnsafeRawBufferPointer(rebasing: bytes[at..<at + length])
            return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch u32(0) {
        case 1: kind = .rename
        case 2: kind = .unlinkat
        case 3: kind = .exec
        default: return nil
        }
        pid = u32(4)
        tid = u32(8)
        helperPID = u32(12)
        helperTID = u32(16)
        let oom = Int32(bitPattern: u32(20))
        let nr = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: Int64.self))
        comm = string(32, 16)
        oomScoreAdj = kind == .rename ? oom : nil
        syscall = kind == .unlinkat ? nr : nil
        newComm = kind == .rename ? string(48, 16) : nil
        path = kind == .rename ? nil : string(64, 256)
    }

    /// For events about the current task, the CO-RE pid must equal the helper's: if it does not,
    /// the BTF used for relocation does not describe this kernel.
    public var coreReadsDisagree: Bool {
        switch kind {
        case .unlinkat, .exec: return pid != helperPID || tid != helperTID
        // A rename may be done to another task (writing /proc/PID/comm), so nothing to compare.
        case .rename: return false
        }
    }

    /// One human-readable line.
    public var line: String {
        let kindColumn = kind.rawValue.padded(toLength: 9)
        var text = "\(kindColumn)pid=\(pid) tid=\(tid) comm=\(quoted(comm))"
        switch kind {
        case .rename:
            text += " new=\(quoted(newComm ?? "")) oom_score_adj=\(oomScoreAdj ?? 0)"
        case .unlinkat:
            text += " path=\(quoted(path ?? ""))"
        case .exec:
            text += " file=\(quoted(path ?? ""))"
        }
        return text
    }

    private func quoted(_ s: String) -> String {
        s.isEmpty || s.contains(" ") || s.contains("\"") ? "\"\(s.replacingOccurrences(of: "\"", with: "\\\""))\"" : s
    }

    enum CodingKeys: String, CodingKey {
        case kind, pid, tid, helperPID = "helper_pid", helperTID = "helper_tid"
        case oomScoreAdj = "oom_score_adj", syscall, comm, newComm = "new_comm", path
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
