// `btfgen build --timings` and the timings in --json: where a build's time went, per step, with
// btfgen's own share and the CPU view that bench/build.sh checks the 5% goal with.
import Foundation
import TestSupport
import Testing

@Suite struct BuildTimingsTests {
    @Test(.requires(.tool("gcc"), .tool("pahole")))
    func timingsReportEachStepAndTheCPUView() throws {
        let dir = try ScratchDirectory("btfgen-timings")
        defer { dir.remove() }
        let vmlinux = try FakeKernel.compile(in: dir)

        let r = try btfgen(["build", vmlinux, "--timings", "--catalog", dir.file("a")])
        try #require(r.status == 0, "build: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let steps = [
            "read and identify the input", "pahole (external)", "canonical order", "first definitions (DWARF)",
            "libbpf check", "native .BTF comparison", "sha256 and catalog insert",
        ]
        var shares: [String: Double] = [:]
        for step in steps + ["btfgen's own work"] {
            let line = try #require(lines.first { $0.hasPrefix("  " + step) }, "no line for \(step) in:\n\(r.stdout)")
            let percent = try #require(line.split(separator: " ").first { $0.hasSuffix("%") }, "\(line)")
            shares[step] = try #require(Double(percent.dropLast()), "\(line)")
        }
        // Every step is counted once: the tools' share and btfgen's add up to the whole build.
        let own = steps.filter { $0 != "pahole (external)" }.reduce(0) { $0 + shares[$1]! }
        #expect(abs(own - shares["btfgen's own work"]!) < 0.5)
        #expect(abs(shares["pahole (external)"]! + shares["btfgen's own work"]! - 100) < 0.2)
        let cpu = try #require(lines.first { $0.hasPrefix("  CPU: btfgen ") }, "\(r.stdout)")
        #expect(cpu.contains("tools") && cpu.hasSuffix("%"))

        // The same figures in --json, CPU seconds included; a catalogued build-id costs nothing.
        let j = try btfgen(["build", vmlinux, "--json", "--force", "--catalog", dir.file("a")])
        try #require(j.status == 0, "build: \(j.stderr)")
        let summary = try #require(
            (try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [[String: Any]])?.first)
        let timings = try #require(summary["timings"] as? [String: Double])
        #expect(timings["encode"]! > 0)
        #expect(timings["toolsCPU"]! > 0, "pahole's CPU seconds are counted")
        #expect(timings["ownCPU"]! > 0)
        #expect(timings["alongside"]! > 0, "the DWARF index was read alongside pahole -j")
        #expect(timings["alongsideCPU"]! <= timings["ownCPU"]!)
        let again = try btfgen(["build", vmlinux, "--timings", "--catalog", dir.file("a")])
        #expect(again.status == 0)
        #expect(!again.stdout.contains("pahole (external)"), "nothing was built, so there is nothing to report")
    }
}
