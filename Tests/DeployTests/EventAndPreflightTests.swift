// The event wire format, the privilege and kernel-version checks, and the default object lookup.
import Deploy
import Foundation
import Kernel
import LibBPF
import TestSupport
import Testing

@Suite struct TraceEventTests {
    /// A 320-byte record laid out as bpf/include/btfgen_event.h says.
    func record(
        kind: UInt32, pid: UInt32, tid: UInt32, hpid: UInt32, htid: UInt32, oom: Int32, nr: Int64,
        comm: String, newComm: String, path: String
    ) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: TraceEvent.size)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, x) in $0.enumerated() { b[at + i] = x } }
        }
        func put(_ s: String, _ at: Int) { for (i, x) in s.utf8.enumerated() { b[at + i] = x } }
        put(kind, 0); put(pid, 4); put(tid, 8); put(hpid, 12); put(htid, 16); put(oom, 20); put(nr, 24)
        put(comm, 32); put(newComm, 48); put(path, 64)
        return b
    }

    @Test func decodesEachKind() throws {
        let rename = try #require(
            record(
                kind: 1, pid: 42, tid: 43, hpid: 42, htid: 43, oom: -17, nr: -1,
                comm: "old", newComm: "btfgen-probe", path: ""
            )
            .withUnsafeBytes { TraceEvent(bytes: $0) })
        #expect(rename.kind == .rename)
        #expect(rename.pid == 42 && rename.tid == 43)
        #expect(rename.oomScoreAdj == -17)
        #expect(rename.newComm == "btfgen-probe")
        #expect(rename.path == nil)
        #expect(rename.line == "rename   pid=42 tid=43 comm=old new=btfgen-probe oom_score_adj=-17")

        let unlink = try #require(
            record(
                kind: 2, pid: 7, tid: 7, hpid: 7, htid: 7, oom: 0, nr: 263,
                comm: "rm", newComm: "", path: "/tmp/a b"
            )
            .withUnsafeBytes { TraceEvent(bytes: $0) })
        #expect(unlink.kind == .unlinkat)
        #expect(unlink.syscall == 263)
        #expect(unlink.path == "/tmp/a b")
        #expect(unlink.line == "unlinkat pid=7 tid=7 comm=rm path=\"/tmp/a b\"")
        #expect(!unlink.coreReadsDisagree)
    }

    @Test func garbagePidsFromAWrongBTFAreCaught() throws {
        let exec = try #require(
            record(
                kind: 3, pid: 4_294_967_295, tid: 9_290_624, hpid: 812, htid: 812, oom: 0,
                nr: -1, comm: "sh", newComm: "", path: "/bin/true"
            )
            .withUnsafeBytes { TraceEvent(bytes: $0) })
        #expect(exec.coreReadsDisagree)
    }

    @Test func shortOrUnknownRecordsAreRejected() {
        #expect([UInt8](repeating: 0, count: 100).withUnsafeBytes { TraceEvent(bytes: $0) } == nil)
        let bad = record(kind: 9, pid: 1, tid: 1, hpid: 1, htid: 1, oom: 0, nr: 0, comm: "", newComm: "", path: "")
        #expect(bad.withUnsafeBytes { TraceEvent(bytes: $0) } == nil)
    }
}

@Suite struct PreflightTests {
    func kernel(_ release: String) -> RunningKernel {
        RunningKernel(
            release: release, arch: "x86_64", distro: "custom", distroVersion: "unknown",
            buildID: nil, buildIDProblem: nil, nativeBTF: nil)
    }

    @Test func kernelsBeforeRawTracepointsAreRefused() {
        #expect(throws: DeployError.kernelTooOld(release: "4.14.0-1-amd64")) {
            try Preflight.check(kernel("4.14.0-1-amd64"))
        }
    }

    @Test(.requires(.root))  // as root every kernel ≥ 4.17 passes
    func rootOnARawTracepointKernelPasses() throws {
        try Preflight.check(kernel("4.18.0-513.el8.x86_64"))
    }

    @Test func objectLookupTakesTheFirstDirectoryWithObjects() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let empty = dir.file("empty"), full = dir.file("full")
        for d in [empty, full] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        for name in ["b.bpf.o", "a.bpf.o", "notes.txt"] {
            FileManager.default.createFile(atPath: full + "/" + name, contents: Data())
        }
        #expect(try DefaultObjects.find(searchPath: [empty, full]) == [full + "/a.bpf.o", full + "/b.bpf.o"])
        #expect(throws: DeployError.noDefaultObjects(searched: [empty])) {
            try DefaultObjects.find(searchPath: [empty])
        }
        let path = DefaultObjects.searchPath(
            environment: ["BTFGEN_BPF_DIR": full], executable: "/opt/btfgen/bin/btfgen")
        #expect(Array(path.prefix(2)) == [full, "/opt/btfgen/share/btfgen/bpf"])
    }
}
