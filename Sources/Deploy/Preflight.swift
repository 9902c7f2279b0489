// Checks made before libbpf is asked to do anything, so the common failures get a sentence that
// says what to do instead of an EPERM from deep inside bpf(2).
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Can this process load and attach raw tracepoint programs on this kernel?
public enum Preflight {
    /// raw_tp (BPF_PROG_TYPE_RAW_TRACEPOINT) arrived in Linux 4.17.
    public static let rawTracepointSince = KernelVersion(major: 4, minor: 17)

    static let capSysAdmin = 21
    static let capPerfmon = 38
    static let capBPF = 39

    /// Throws when the kernel predates raw tracepoints or the process lacks the privileges.
    public static func check(_ kernel: RunningKernel, statusPath: String = "/proc/self/status") throws(DeployError) {
        if let version = kernel.version, version < rawTracepointSince {
            throw .kernelTooOld(release: kernel.release)
        }
        if geteuid() == 0 { return }
        let caps = effectiveCapabilities(statusPath: statusPath)
        func has(_ bit: Int) -> Bool { caps & (UInt64(1) << UInt64(bit)) != 0 }
        if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) { return }
        throw .notPrivileged(euid: geteuid())
    }

    /// The CapEff mask from /proc/self/status; 0 when it cannot be read.
    static func effectiveCapabilities(statusPath: String) -> UInt64 {
        guard let text = try? String(contentsOfFile: statusPath, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimming(.whitespaces), radix: 16) ?? 0
        }
        return 0
    }
}

/// Where the BPF objects that ship with btfgen are found when --object is not given.
public enum DefaultObjects {
    public static let environmentVariable = "BTFGEN_BPF_DIR"

    /// In order: $BTFGEN_BPF_DIR, `<bindir>/../share/btfgen/bpf` (an installed btfgen), and `./bpf`
    /// (a checkout after `make bpf`).
    public static func searchPath(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        executable: String? = currentExecutable()
    ) -> [String] {
        var dirs: [String] = []
        if let dir = environment[environmentVariable], !dir.isEmpty { dirs.append(dir) }
        if let executable {
            let bin = URL(fileURLWithPath: executable).deletingLastPathComponent()
            dirs.append(
                bin.deletingLastPathComponent().appendingPathComponent("share/btfgen/bpf").standardizedFileURL.path)
        }
        dirs.append(URL(fileURLWithPath: "bpf").standardizedFileURL.path)
        return dirs
    }

    /// The `*.bpf.o` files of the first directory in the search path that has any: per
    /// directory, those of `<dir>/<arch>/` (`make bpf` builds bpf/x86_64/ and bpf/arm64/, and an
    /// image for several architectures can ship them all) before those of `<dir>` itself (one
    /// architecture's, as `make install` puts them). Objects of another architecture are refused
    /// where they are used (`TargetObject.checkArchitecture`).
    public static func find(searchPath: [String] = searchPath(), arch: String? = nil) throws(DeployError) -> [String] {
        for dir in searchPath {
            for candidate in (arch.map { [dir + "/" + $0] } ?? []) + [dir] {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: candidate)) ?? []
                let objects = names.filter { $0.hasSuffix(".bpf.o") }.sorted()
                if !objects.isEmpty {
                    return objects.map { URL(fileURLWithPath: candidate).appendingPathComponent($0).path }
                }
            }
        }
        throw .noDefaultObjects(searched: searchPath)
    }

    public static func currentExecutable() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }
}

/// Where a bundle (`btfgen bundle`) shipped with the programs is found when --bundle is not given.
public enum DefaultBundle {
    public static let environmentVariable = "BTFGEN_BUNDLE"

    /// In order: $BTFGEN_BUNDLE, `/usr/share/btfgen/bundle.tar.xz` (where `btfgen bundle --format oci`
    /// puts it in an image), `<bindir>/../share/btfgen/bundle.tar.xz`.
    public static func searchPath(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        executable: String? = DefaultObjects.currentExecutable()
    ) -> [String] {
        var paths: [String] = []
        if let path = environment[environmentVariable], !path.isEmpty { paths.append(path) }
        paths.append("/usr/share/btfgen/bundle.tar.xz")
        if let executable {
            let prefix = URL(fileURLWithPath: executable).deletingLastPathComponent().deletingLastPathComponent()
            paths.append(prefix.appendingPathComponent("share/btfgen/bundle.tar.xz").standardizedFileURL.path)
        }
        return paths
    }

    /// The first bundle file on the search path, if any.
    public static func find(searchPath: [String] = searchPath()) -> String? {
        searchPath.first { FileManager.default.fileExists(atPath: $0) }
    }
}
