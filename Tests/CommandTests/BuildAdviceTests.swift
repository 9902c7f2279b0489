// What `btfgen build` decides before running pahole: how many builds fit this machine, and
// advice that names only options `build` really has.
import Builder
import Foundation
import Kernel
import Testing

@testable import Commands

@Suite struct BuildAdviceTests {
    @Test func jobsAreOnePerCoreWithinAvailableMemory() {
        let gib: UInt64 = 1 << 30
        #expect(BuildConcurrency.jobs(cores: 8, availableBytes: 64 * gib) == 8)
        #expect(BuildConcurrency.jobs(cores: 8, availableBytes: BuildConcurrency.bytesPerBuild * 3 + 1) == 3)
        // Too little memory for even one is still one build (it may swap, but it runs).
        #expect(BuildConcurrency.jobs(cores: 8, availableBytes: 100 << 20) == 1)
        #expect(BuildConcurrency.jobs(cores: 1, availableBytes: 64 * gib) == 1)
    }

    @Test func memAvailableIsReadFromMeminfo() throws {
        let text =
            "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   12000000 kB\nBuffers: 1 kB\n"
        #expect(BuildConcurrency.memAvailable(meminfo: text) == 12_000_000 * 1024)
        #expect(BuildConcurrency.memAvailable(meminfo: "MemTotal: 1 kB\n") == nil)
        // This machine's own /proc/meminfo: present on Linux, and no more than its memory.
        let available = try #require(BuildConcurrency.availableMemory())
        #expect(available > 0 && available <= ProcessInfo.processInfo.physicalMemory)
        #expect(BuildConcurrency.defaultJobs() >= 1)
        #expect(BuildConcurrency.defaultJobs() <= ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Every `--option` a kernel image refusal suggests is one `btfgen build` accepts (the
    /// no-banner refusal once told users to "give --release", which build never had).
    @Test func imageRefusalsSuggestOnlyOptionsBuildHas() throws {
        let help = BTFGen.Build.helpMessage(columns: 1000)
        let refusals: [KernelImageError] = [
            .empty(path: "v"), .compressedBootImage(path: "v"), .notELF(path: "v"),
            .badELF(path: "v", reason: "r"), .noDWARF(path: "v"), .noBanner(path: "v"),
        ]
        for refusal in refusals {
            let text = refusal.description
            var rest = Substring(text)
            while let dash = rest.range(of: "--") {
                let option = rest[dash.lowerBound...].prefix { $0 == "-" || $0.isLetter || $0.isNumber }
                #expect(help.contains(option), "\(refusal): suggests \(option), which `btfgen build` lacks")
                rest = rest[dash.upperBound...]
            }
        }
    }
}
