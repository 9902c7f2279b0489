import FoundationEssentials

/// Runs the DWARF → BTF pipeline on a vmlinux the caller may hand over (a private copy is made
/// where a tool would write to it).
public struct BTFPipeline: Sendable {
    public let tools: Toolchain
    public let runner: ToolRunner

    public init(tools: Toolchain, runner: ToolRunner = ToolRunner()) {
        self.tools = tools
        self.runner = runner
    }

    /// Encode `vmlinux`'s DWARF as BTF.
    ///  - detached: writes raw BTF to `output`; `vmlinux` is only read.
    ///  - objcopy: copies `vmlinux` to `scratch` (pahole -J rewrites its input in place), runs
    ///    pahole -J, llvm-objcopy and strip -x, and writes the resulting ELF to `output`.
    /// `vmlinuxIsPrivate` lets the objcopy method work on `vmlinux` itself when the caller made it.
    public func encode(
        vmlinux: String, method: BuildMethod, flags: [String], output: String,
        scratch: String, vmlinuxIsPrivate: Bool = false
    ) throws {
        try tools.require(method)
        switch method {
        case .detached:
            try runner.run(tools.pahole.path, flags + ["--btf_encode_detached=\(output)", vmlinux], name: "pahole")
        case .objcopy:
            var work = vmlinux
            if !vmlinuxIsPrivate {
                work = scratch
                try? FileManager.default.removeItem(atPath: work)
                try FileManager.default.copyItem(atPath: vmlinux, toPath: work)
            }
            defer { if !vmlinuxIsPrivate { try? FileManager.default.removeItem(atPath: work) } }
            try runner.run(tools.pahole.path, flags + ["-J", work], name: "pahole")
            try runner.run(
                tools.llvmObjcopy!.path,
                [
                    "--only-section=.BTF", "--set-section-flags", ".BTF=alloc,readonly", "--strip-all",
                    work, output,
                ], name: "llvm-objcopy")
            try runner.run(tools.strip!.path, ["-x", output], name: "strip")
        }
    }
}
