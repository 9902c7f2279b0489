// The Minimize library as `btfgen minimize` and `btfgen bundle` use it, on the host's own kernel
// BTF and the BPF objects from `make bpf`: the same bytes as the BTF engine's minimizer, output
// names that cannot collide, and a damaged record named by type id and byte offset.
import BTF
import Foundation
import Minimize
import TestSupport
import Testing

private let hostBTF = "/sys/kernel/btf/vmlinux"

/// bpf/*.bpf.o, parsed; a missing `make bpf` fails the test with the step to take.
private func objects() throws -> [BPFObjectFile] {
    let dir = Repo.root.appendingPathComponent("bpf").path
    let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".bpf.o") }.sorted()
    try #require(!names.isEmpty, "no bpf/*.bpf.o: run `make bpf` before the tests")
    return try names.map { try BPFObjectFile(path: dir + "/" + $0) }
}

@Suite(.requires(.hostBTF))
struct MinimizeLibraryTests {
    @Test func aKernelIsMinimizedToTheEnginesBytesFromSysfsAndFromAFile() throws {
        let objects = try objects().map(\.object)
        let bytes = [UInt8](try #require(FileManager.default.contents(atPath: hostBTF)))
        let expected = try BTF(decoding: bytes).minimized(for: objects).encoded()
        // sysfs refuses mmap (read whole); a copy on disk is mapped in place.
        let scratch = try ScratchDirectory("btfgen-minlib")
        defer { scratch.remove() }
        try Data(bytes).write(to: URL(fileURLWithPath: scratch.file("vmlinux.btf")))
        for input in [hostBTF, scratch.file("vmlinux.btf")] {
            let m = try KernelMinimizer.minimize(input, objects: objects, compat: .current)
            #expect(m.bytes == expected, "\(input)")
            #expect(m.inputBytes == bytes.count)
            #expect(m.types == (try BTF(decoding: m.bytes)).types.count)
            #expect(m.relocations == objects.map(\.coreRelocations.count).reduce(0, +))
            #expect(m.unresolved == 0, "the host's own BTF has every type its objects use")
        }
    }

    @Test func jobsWriteWhatTheyReportAndFileNamesCannotCollide() throws {
        let objects = try objects().map(\.object)
        let scratch = try ScratchDirectory("btfgen-minlib")
        defer { scratch.remove() }
        let out = scratch.file("out")
        #expect(throws: MinimizeError.outputCollision(name: "vmlinux")) {
            try MinimizeJob.forFiles([hostBTF, "/elsewhere/vmlinux.btf"], outputRoot: out)
        }
        let jobs = try MinimizeJob.forFiles([hostBTF, "/x/other.btf", "/x/.btf"], outputRoot: out)
        #expect(jobs.map(\.output) == [out + "/vmlinux.btf", out + "/other.btf", out + "/btf.btf"])
        let results = try KernelMinimizer.run([jobs[0]], objects: objects, compat: .libbpf0)
        let r = try #require(results.first)
        #expect(r.kernel == hostBTF && r.output == out + "/vmlinux.btf")
        let written = [UInt8](try #require(FileManager.default.contents(atPath: r.output)))
        #expect(written.count == r.outputBytes)
        #expect(try BTF(decoding: written).types.count == r.types)
    }

    /// A record that locates fine but does not decode (a member name past the string section):
    /// the unvalidated index used to hand CO-RE nil for it, so the kernel's task_struct silently
    /// "matched nothing" (or the minimizer reported an internal error).
    @Test func aDamagedRecordIsReportedByTypeIDAndByteOffset() throws {
        let objects = try objects().map(\.object)
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: hostBTF)))
        let btf = try BTF(decoding: bytes)
        let index = try #require(
            btf.types.firstIndex {
                if case .structure = $0.kind { return btf.strings.string(at: $0.nameOffset) == "task_struct" }
                return false
            })
        let id = index + 1
        let task = btf.types[index]
        guard case .structure(let composite) = task.kind else {
            Issue.record("task_struct is not a struct: \(task.kind)")
            return
        }
        // Its record: name offset, then info with kind STRUCT (4) and vlen = its member count.
        let u32 = { (at: Int) in
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        let headerLength = Int(u32(4)), typeStart = headerLength + Int(u32(8)), typeEnd = typeStart + Int(u32(12))
        let info = UInt32(4) << 24 | UInt32(composite.members.count)
        let record = try #require(
            stride(from: typeStart, to: typeEnd - 8, by: 4).first {
                u32($0) == task.nameOffset && u32($0 + 4) & 0x1f00_ffff == info
            })
        // The first member's name offset, far past the string section.
        for (i, b) in [UInt8(0xf0), 0xff, 0xff, 0x7f].enumerated() { bytes[record + 12 + i] = b }
        let scratch = try ScratchDirectory("btfgen-minlib")
        defer { scratch.remove() }
        let damaged = scratch.file("damaged.btf")
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        do {
            let m = try KernelMinimizer.minimize(damaged, objects: objects, compat: .current)
            Issue.record("minimized a kernel whose task_struct is damaged: \(m.unresolved) unresolved")
        } catch {
            let text = "\(error)"
            #expect(text.contains("BTF type \(id) at byte offset \(record)"), "\(text)")
            #expect(text.hasPrefix(damaged), "\(text)")
            #expect(!text.contains("internal error"), "\(text)")
        }
    }
}
