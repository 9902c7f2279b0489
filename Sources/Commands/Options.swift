import ArgumentParser
import Catalog
import Deploy
import FoundationEssentials
import Kernel
import Minimize
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

    @Option(
        name: .customLong("arch"),
        help: ArgumentHelp(
            "The architecture of the machine the BTF is for when it is not this one (x86_64, arm64, aarch64, …): resolve and install then need --kernel BUILD-ID. Default: an image tree's own (the ELF machine of the host root's /bin/sh), else this machine's (uname -m).",
            valueName: "arch"))
    public var arch: String?

    public init() {}

    public func validate() throws {
        if let arch, KernelArch.canonical(arch) == nil {
            throw ValidationError(
                "--arch \(arch) is no architecture btfgen knows; use one of \(KernelArch.all.map(\.name).joined(separator: ", "))"
            )
        }
    }

    /// The architecture of the machine the BTF is for, when declared: --arch, else the machine
    /// type of a host root that is not this process's own `/` (nil when it cannot be read).
    func targetArch(_ host: HostRoot) -> String? {
        if let arch { return KernelArch.canonical(arch) }
        return host.source == .own ? nil : TreeArchitecture.of(root: host.path)
    }

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

/// `--object FILE[@ARCH]`: a BPF object, optionally with the architecture of the kernels it is for
/// (any spelling KernelArch knows, or `any` for every kernel), which replaces what its BTF shows.
/// A suffix that names no architecture is part of the file name.
struct ObjectArgument: Equatable {
    let path: String
    /// nil: inferred from the object; `.some(nil)`: every kernel; `.some(name)`: that architecture.
    let declaredArch: String??

    init(_ argument: String) {
        if let at = argument.lastIndex(of: "@"), at != argument.startIndex {
            let suffix = String(argument[argument.index(after: at)...])
            if suffix == "any" {
                path = String(argument[..<at])
                declaredArch = .some(nil)
                return
            }
            if let arch = KernelArch.canonical(suffix) {
                path = String(argument[..<at])
                declaredArch = .some(arch)
                return
            }
        }
        path = argument
        declaredArch = nil
    }
}

extension TargetObject {
    /// Read `--object FILE[@ARCH]`.
    init(argument: String) {
        let a = ObjectArgument(argument)
        self.init(path: a.path, declaredArch: a.declaredArch)
    }
}

extension BPFObjectFile {
    /// Read `--object FILE[@ARCH]`.
    init(argument: String) throws {
        let a = ObjectArgument(argument)
        try self.init(path: a.path, declaredArch: a.declaredArch)
    }
}
