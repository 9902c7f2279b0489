import ArgumentParser
import SystemSupport

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

    /// ArgumentParser's `AsyncParsableCommand.main()`, with one step more: the command runs on a
    /// thread of Swift's cooperative pool, to which libdispatch gives nice 0 whatever the process
    /// was started with, so the thread first takes the process's own nice (`nice btfgen sync`).
    /// Synchronous commands then run on that thread to the end, and what they start inherits it.
    public static func main() async {
        do {
            var command = try parseAsRoot()
            keepProcessNice()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// btfgen's own version, recorded in catalog entries and bundles.
public enum BTFGenVersion {
    public static let string = "0.1.0"
}
