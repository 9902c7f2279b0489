// `btfgen build` writes canonical BTF: the same kernel gives the same bytes on every run and in
// every catalog, the types are exactly pahole's, and a forced rebuild that changes nothing is
// reported as unchanged and leaves the entry alone. Runs on the BTF-less test kernel and Debian's
// debuginfo kernel (scripts/test.sh exports both; CI fails when one is missing).
import BTF
import Foundation
import TestSupport
import Testing

/// One fixture kernel, with a label for messages.
struct FixtureKernel: Sendable, CustomStringConvertible {
    let label: String
    let vmlinux: String?
    let variable: String
    var description: String { label }

    static var all: [FixtureKernel] {
        [
            FixtureKernel(label: "test-kernel", vmlinux: Fixture.testVmlinux, variable: "BTFGEN_TEST_VMLINUX"),
            FixtureKernel(label: "debian-6.1", vmlinux: Fixture.debianVmlinux, variable: "BTFGEN_DEBIAN_VMLINUX"),
        ]
    }
}

@Suite(.serialized) struct ReproducibleBuildTests {
    /// Build `vmlinux` into `catalog`; returns the index entry, the JSON summary and the BTF path.
    func build(_ vmlinux: String, catalog: String, _ extra: [String] = []) throws -> (
        entry: [String: Any], summary: [String: Any], path: String
    ) {
        let r = try btfgen(["build", vmlinux, "--json", "--catalog", catalog] + extra)
        try #require(r.status == 0, "build failed: \(r.stderr)")
        let summaries = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let entries = try indexEntries(catalog)
        try #require(entries.count == 1)
        return (entries[0], try #require(summaries.first), catalog + "/" + (entries[0]["path"] as! String))
    }

    @Test(
        .requires(.fixture("BTFGEN_TEST_VMLINUX"), .fixture("BTFGEN_DEBIAN_VMLINUX"), .tool("pahole")),
        arguments: FixtureKernel.all)
    func sameKernelSameBytesSameTypesAsPahole(_ kernel: FixtureKernel) throws {
        let vmlinux = try #require(kernel.vmlinux, "\(kernel.variable) is not set")
        let dir = try ScratchDirectory("btfgen-repro")
        defer { dir.remove() }

        // Three default (pahole -j) builds in independent catalogs, as two workers of a sharded
        // sync would make them, and one single-threaded build: one sha256.
        let first = try build(vmlinux, catalog: dir.file("a"))
        let second = try build(vmlinux, catalog: dir.file("b"))
        let third = try build(vmlinux, catalog: dir.file("c"))
        let single = try build(vmlinux, catalog: dir.file("s"), ["--no-parallel"])
        let flags = { (e: [String: Any]) in (e["build"] as? [String: Any])?["paholeFlags"] as? [String] ?? [] }
        #expect(flags(first.entry).contains("-j"))
        #expect(!flags(single.entry).contains("-j"))
        let digest = try #require(first.entry["sha256"] as? String)
        #expect(second.entry["sha256"] as? String == digest)
        #expect(third.entry["sha256"] as? String == digest)
        #expect(single.entry["sha256"] as? String == digest, "\(kernel): -j and single-threaded builds differ")
        #expect(try sha256sum(first.path) == digest)
        #expect(first.entry["canonical"] as? Bool == true)

        // A forced rebuild yields the same bytes: reported as identical, the entry untouched.
        let index = try Data(contentsOf: URL(fileURLWithPath: dir.file("a") + "/index.json"))
        let forced = try build(vmlinux, catalog: dir.file("a"), ["--force"])
        #expect(forced.summary["outcome"] as? String == "identical")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("a") + "/index.json")) == index)

        // The same types as bare single-threaded pahole with the same flags; pahole -j alone
        // writes extra copies of functions, which is what the build takes out again.
        let raw = dir.file("pahole.btf"), rawJ = dir.file("pahole-j.btf")
        let p = try runProcess("pahole", flags(single.entry) + ["--btf_encode_detached=\(raw)", vmlinux])
        try #require(p.status == 0, "pahole: \(p.stderr)")
        let pj = try runProcess("pahole", flags(first.entry) + ["--btf_encode_detached=\(rawJ)", vmlinux])
        try #require(pj.status == 0, "pahole -j: \(pj.stderr)")
        func read(_ path: String) throws -> BTF {
            try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        let pahole = try read(raw), paholeJ = try read(rawJ), ours = try read(first.path)
        #expect(typeSet(of: ours) == typeSet(of: pahole), "\(kernel): the build lost or changed types")
        #expect(ours.types.count == pahole.types.count, "pahole's single-threaded output holds no exact duplicates")
        #expect(ours.encoded() != pahole.encoded(), "the entry is pahole's bytes, not the canonical rewrite")
        #expect(!paholeJ.duplicatedFunctionNames.isEmpty, "pahole -j no longer duplicates functions")
        #expect(paholeJ.types.count > pahole.types.count)
    }
}
