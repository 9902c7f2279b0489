// The target side's architecture checks on real objects and real ELF files: which default
// objects are this machine's, what an image tree's architecture is, and FILE@ARCH.
import Deploy
import Foundation
import Kernel
import TestSupport
import Testing

@Suite struct TargetArchitectureTests {
    static let x86 = ArchTarget(arch: "x86_64", isThisMachine: true)

    func built(_ path: String) throws -> String {
        let full = Repo.root.appendingPathComponent(path).path
        try #require(FileManager.default.fileExists(atPath: full), "\(path) not built: run `make bpf`")
        return full
    }

    @Test(.requires(.bpfObjects)) func objectsOfAnotherArchitectureAreRefusedUnlessDeclared() throws {
        let arm = try built("bpf/arm64/unlinkat.bpf.o")
        let error = DeployError.objectArchMismatch(
            object: arm, objectArch: "arm64", reason: "reads user_pt_regs.regs", target: Self.x86)
        #expect(throws: error) { try TargetObject(path: arm).checkArchitecture(for: Self.x86) }
        #expect(!error.description.contains("\n"))
        #expect(error.description.contains("is built for arm64 (reads user_pt_regs.regs) but this machine is x86_64"))
        // Its own architecture, neutral objects, and a declaration pass.
        try TargetObject(path: arm).checkArchitecture(for: ArchTarget(arch: "arm64", isThisMachine: false))
        try TargetObject(path: try built("bpf/arm64/exec.bpf.o")).checkArchitecture(for: Self.x86)
        try TargetObject(path: arm, declaredArch: .some(nil)).checkArchitecture(for: Self.x86)
        #expect(throws: DeployError.self) {
            try TargetObject(path: try built("bpf/x86_64/unlinkat.bpf.o"), declaredArch: "arm64")
                .checkArchitecture(for: Self.x86)
        }
    }

    @Test(.requires(.bpfObjects)) func defaultObjectsAreThisArchitecturesSubdirectoryFirst() throws {
        let dir = try ScratchDirectory("btfgen-defaults")
        defer { dir.remove() }
        let share = dir.file("share")
        for arch in ["x86_64", "arm64"] {
            try FileManager.default.createDirectory(atPath: share + "/" + arch, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: try built("bpf/\(arch)/unlinkat.bpf.o"), toPath: share + "/\(arch)/unlinkat.bpf.o")
        }
        try FileManager.default.copyItem(atPath: try built("bpf/unlinkat.bpf.o"), toPath: share + "/unlinkat.bpf.o")
        #expect(try DefaultObjects.find(searchPath: [share], arch: "arm64") == [share + "/arm64/unlinkat.bpf.o"])
        #expect(try DefaultObjects.find(searchPath: [share], arch: "x86_64") == [share + "/x86_64/unlinkat.bpf.o"])
        // No subdirectory for the architecture: the directory's own objects (make install's layout).
        #expect(try DefaultObjects.find(searchPath: [share], arch: "riscv64") == [share + "/unlinkat.bpf.o"])
    }

    @Test(.requires(.bpfObjects)) func anImageTreesArchitectureIsItsShellsFollowingLinksInsideIt() throws {
        let dir = try ScratchDirectory("btfgen-tree")
        defer { dir.remove() }
        let tree = dir.file("tree")
        // usrmerge: /bin → usr/bin; sh → an absolute link that must resolve inside the tree.
        try FileManager.default.createDirectory(atPath: tree + "/usr/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: tree + "/bin", withDestinationPath: "usr/bin")
        try FileManager.default.createSymbolicLink(atPath: tree + "/usr/bin/sh", withDestinationPath: "/usr/bin/dash")
        #expect(TreeArchitecture.of(root: tree) == nil, "a dangling link inside the tree is no shell")
        // A BPF ELF is EM_BPF (247): the tree is then of no architecture KernelArch knows, named as such.
        try FileManager.default.copyItem(atPath: try built("bpf/unlinkat.bpf.o"), toPath: tree + "/usr/bin/dash")
        #expect(TreeArchitecture.of(root: tree) == "em247")
        // This machine's own /bin/sh is ELF of this machine.
        let own = dir.file("own")
        try FileManager.default.createDirectory(atPath: own + "/bin", withIntermediateDirectories: true)
        let sh = URL(fileURLWithPath: "/bin/sh").resolvingSymlinksInPath().path
        try FileManager.default.copyItem(atPath: sh, toPath: own + "/bin/sh")
        var names = utsname()
        _ = uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(TreeArchitecture.of(root: own) == KernelArch.name(unameMachine: machine))
    }

    @Test func elfMachineOfAnUnknownArchitectureIsNoneNotX86() {
        #expect(KernelArch.elfMachine(of: "arm64") == 183)
        #expect(KernelArch.elfMachine(of: "aarch64") == 183)
        #expect(KernelArch.elfMachine(of: "em247") == 247)
        #expect(KernelArch.elfMachine(of: "mips") == 0)
    }
}
