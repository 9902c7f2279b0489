import ArgumentParser
import Catalog
import FoundationEssentials
import Kernel
import SystemSupport

/// `--catalog`, shared by every command that reads or writes the catalog.
public struct CatalogOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Catalog directory (default: $BTFGEN_CATALOG, else ./kernels).", valueName: "dir"))
    public var catalog: String?

    public init() {}

    public var resolved: Catalog { Catalog(root: Catalog.resolveRoot(catalog)) }
}

/// `--host-root`, shared by the commands that read the running kernel's identity or write where
/// the host's libbpf looks (resolve, attach, install, uninstall).
public struct HostOptions: ParsableArguments {
    @Option(
        name: .customLong("host-root"),
        help: ArgumentHelp(
            "The host's / when btfgen runs in a container (default: $BTFGEN_HOST_ROOT, else /proc/1/root when pid 1 has another root, else /). Its os-release names the distro and install writes below it; uname and /sys are read as mounted here (a container's /sys is the host kernel's).",
            valueName: "dir"))
    public var hostRoot: String?

    public init() {}

    /// The host root, or one line on stderr and exit status 1.
    func resolved() throws -> HostRoot {
        try reporting { () throws(HostRootError) in try HostRoot.find(option: hostRoot) }
    }

    /// The running kernel, its distro read from the host root.
    func runningKernel() throws -> RunningKernel {
        RunningKernel.read(KernelProbe(hostRoot: try resolved()))
    }
}

/// Print one line to stderr.
func warn(_ message: String) {
    writeStandardError("btfgen: \(message)\n")
}

/// Run `body`; any error becomes one line on stderr and exit status 1.
func reporting<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch {
        warn(describe(error))
        throw ExitCode.failure
    }
}

/// Human-readable byte counts.
func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20 { return "\(fixed(Double(n) / Double(1 << 20), digits: 1)) MiB" }
    if n >= 1 << 10 { return "\(fixed(Double(n) / Double(1 << 10), digits: 1)) KiB" }
    return "\(n) B"
}

/// Pretty, key-sorted JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
