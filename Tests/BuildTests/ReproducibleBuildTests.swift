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

    @Test(arguments: FixtureKernel.all)
    func sameKernelSameBytesSameTypesAsPahole(_ kernel: FixtureKernel) throws {
        guard let vmlinux = kernel.vmlinux else {
            if Fixture.required { Issue.record("fixture \(kernel.variable) missing: run scripts/test.sh") }
            return
        }
        let dir = try ScratchDirectory("btfgen-repro")
        defer { dir.remove() }

        // Two independent catalogs (two workers of a sharded sync) and a third run: one sha256.
        let first = try build(vmlinux, catalog: dir.file("a"))
        let second = try build(vmlinux, catalog: dir.file("b"))
        let third = try build(vmlinux, catalog: dir.file("c"))
        let digest = try #require(first.entry["sha256"] as? String)
        #expect(second.entry["sha256"] as? String == digest)
        #expect(third.entry["sha256"] as? String == digest)
        #expect(try sha256sum(first.path) == digest)
        #expect(first.entry["canonical"] as? Bool == true)

        // A forced rebuild yields the same bytes: reported as identical, the entry untouched.
        let index = try Data(contentsOf: URL(fileURLWithPath: dir.file("a") + "/index.json"))
        let forced = try build(vmlinux, catalog: dir.file("a"), ["--force"])
        #expect(forced.summary["outcome"] as? String == "identical")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("a") + "/index.json")) == index)

        // The same types as pahole's own output with the flags the entry records.
        let build = try #require(first.entry["build"] as? [String: Any])
        let flags = try #require(build["paholeFlags"] as? [String])
        let raw = dir.file("pahole.btf")
        let p = try runProcess("pahole", flags + ["--btf_encode_detached=\(raw)", vmlinux])
        try #require(p.status == 0, "pahole: \(p.stderr)")
        let pahole = try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw))))
        let ours = try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: first.path))))
        #expect(typeSet(of: ours) == typeSet(of: pahole), "\(kernel): canonical BTF lost or changed types")
        #expect(ours.types.count == pahole.types.count, "pahole's single-threaded output holds no exact duplicates")
        #expect(ours.encoded() != pahole.encoded(), "the entry is pahole's bytes, not the canonical rewrite")
    }

    /// pahole 1.24's `-j` encodes a function defined in several compilation units once per worker
    /// thread that meets it, so its output holds extra FUNC (and FUNC_PROTO) records whose number
    /// varies from run to run. Canonical order takes away everything else: this pins down that
    /// `--parallel` differs from the default only there, which is why it is not the default.
    @Test(arguments: FixtureKernel.all)
    func parallelDiffersOnlyInDuplicateFunctions(_ kernel: FixtureKernel) throws {
        guard let vmlinux = kernel.vmlinux else {
            if Fixture.required { Issue.record("fixture \(kernel.variable) missing: run scripts/test.sh") }
            return
        }
        let dir = try ScratchDirectory("btfgen-repro-j")
        defer { dir.remove() }
        let single = try BTF(
            decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: try build(vmlinux, catalog: dir.file("s")).path))))
        let parallel = try build(vmlinux, catalog: dir.file("j"), ["--parallel"])
        let build = try #require(parallel.entry["build"] as? [String: Any])
        #expect((build["paholeFlags"] as? [String])?.contains("-j") == true)
        let jobs = try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: parallel.path))))
        let s = typeSet(of: single), j = typeSet(of: jobs)
        #expect(s.isSubset(of: j), "\(kernel): -j lost types: \(s.subtracting(j).sorted().prefix(3))")
        let extra = j.subtracting(s).filter { !$0.hasPrefix("FUNC ") && !$0.hasPrefix("FUNC_PROTO ") }
        #expect(extra.isEmpty, "\(kernel): -j adds more than functions: \(extra.sorted().prefix(3))")
        func functionNames(_ btf: BTF) -> Set<String> {
            Set(btf.types.filter { $0.kind.code == .function }.map { btf.strings.string(at: $0.nameOffset) })
        }
        #expect(functionNames(jobs) == functionNames(single))
    }
}
