import ArgumentParser

/// The `btfgen` command: its configuration and subcommands only.
public struct BTFGen: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "btfgen",
        abstract: "Make CO-RE BPF programs portable to kernels that ship no BTF.",
        discussion: """
            Build BTF from debuginfo kernels into a per-kernel catalog, minimize it for your BPF \
            objects, and attach programs on the target machine with the BTF that truly matches it.
            """,
        version: BTFGenVersion.string,
        subcommands: [
            Build.self, Sync.self, List.self, Show.self, Doctor.self, CatalogCommand.self, Minimize.self, Inspect.self,
            Attach.self, Resolve.self, BundleCommand.self, Install.self, Uninstall.self,
        ]
    )

    public init() {}
}

/// btfgen's own version, recorded in catalog entries and bundles.
public enum BTFGenVersion {
    public static let string = "0.1.0"
}
