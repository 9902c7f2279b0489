// The host's identity inside a container: os-release from --host-root, $BTFGEN_HOST_ROOT or
// /proc/1/root (pid 1 in another mount namespace, as with hostPID), else the process's own; the
// source named by `resolve`; install and uninstall below the host root. The container cases run
// in real mount and pid namespaces (unshare) whose /etc/os-release is bind-mounted over.
import Deploy
import Foundation
import Kernel
import LibBPF
import TestSupport
import Testing

/// A directory laid out like a distribution's /, holding only its os-release.
struct FakeHostRoot {
    let dir: ScratchDirectory
    var path: String { dir.path }

    init(
        _ osRelease: String = "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.6\"\n",
        at relative: String = "etc/os-release"
    ) throws {
        dir = try ScratchDirectory("btfgen-hostroot")
        let file = dir.file(relative)
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try osRelease.write(toFile: file, atomically: true, encoding: .utf8)
    }
}

/// `resolve --json`'s `running` object.
func runningJSON(_ result: ProcessResult) throws -> [String: Any] {
    let json = try #require(
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
    return try #require(json["running"] as? [String: Any])
}

/// Any BTF file for `--btf`, so that `resolve` chooses something on every machine.
func someBTFFile(_ dir: ScratchDirectory) throws -> String {
    let file = dir.file("any.btf")
    try Data(tinyBTF().encoded()).write(to: URL(fileURLWithPath: file))
    return file
}

@Suite struct HostRootTests {
    @Test func hostRootOptionNamesTheHostsDistroAndSaysSo() throws {
        let host = try FakeHostRoot()
        defer { host.dir.remove() }
        let btf = try someBTFFile(host.dir)
        let text = try btfgen(["resolve", "--btf", btf, "--host-root", host.path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains(" rhel 8.6\n"), "\(text.stdout)")
        #expect(
            text.stdout.contains(
                "host identity:  \(host.path)/etc/os-release (host root \(host.path) from --host-root"),
            "\(text.stdout)")

        let json = try btfgen(["resolve", "--json", "--btf", btf, "--host-root", host.path])
        let running = try runningJSON(json)
        #expect(running["distro"] as? String == "rhel")
        #expect(running["distroVersion"] as? String == "8.6")
        #expect(running["osRelease"] as? String == host.path + "/etc/os-release")
        let root = try #require(running["hostRoot"] as? [String: Any])
        #expect(root["source"] as? String == "--host-root")
        #expect(root["path"] as? String == host.path)
    }

    @Test func environmentNamesTheHostRootAndTheOptionWins() throws {
        let host = try FakeHostRoot()
        let other = try FakeHostRoot("ID=amzn\nVERSION_ID=\"2\"\n")
        defer { host.dir.remove(); other.dir.remove() }
        let btf = try someBTFFile(host.dir)
        let env = try btfgen(
            ["resolve", "--json", "--btf", btf], environment: [HostRoot.environmentVariable: other.path])
        let fromEnv = try runningJSON(env)
        #expect(fromEnv["distro"] as? String == "amzn")
        #expect((fromEnv["hostRoot"] as? [String: Any])?["source"] as? String == "BTFGEN_HOST_ROOT")
        let text = try btfgen(["resolve", "--btf", btf], environment: [HostRoot.environmentVariable: other.path])
        #expect(text.stdout.contains("from $BTFGEN_HOST_ROOT"), "\(text.stdout)")

        let both = try btfgen(
            ["resolve", "--json", "--btf", btf, "--host-root", host.path],
            environment: [HostRoot.environmentVariable: other.path])
        let fromOption = try runningJSON(both)
        #expect(fromOption["distro"] as? String == "rhel")
        #expect((fromOption["hostRoot"] as? [String: Any])?["source"] as? String == "--host-root")
    }

    @Test func withoutAHostRootTheProcessesOwnOSReleaseIsRead() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let r = try btfgen(
            ["resolve", "--json", "--btf", try someBTFFile(dir)], environment: [HostRoot.environmentVariable: ""])
        let running = try runningJSON(r)
        let own = try #require(HostRoot.osReleasePath(in: "/"))
        let values = RunningKernel.parseOSRelease(try String(contentsOfFile: own, encoding: .utf8))
        #expect(running["distro"] as? String == values["ID"] ?? KernelIdentity.unknownDistro)
        #expect(running["osRelease"] as? String == own)
        // On the host itself /proc/1/root is / (or unreadable): nothing changes.
        #expect((running["hostRoot"] as? [String: Any])?["source"] as? String == "/")
    }

    @Test func osReleaseIsFoundAndFollowedInsideTheRoot() throws {
        // Only usr/lib/os-release: the fallback os-release(5) names.
        let lib = try FakeHostRoot("ID=ubuntu\nVERSION_ID=\"18.04\"\n", at: "usr/lib/os-release")
        defer { lib.dir.remove() }
        #expect(HostRoot.osReleasePath(in: lib.path) == lib.path + "/usr/lib/os-release")
        let k = RunningKernel.read(KernelProbe(hostRoot: HostRoot(path: lib.path, source: .option)))
        #expect(k.distro == "ubuntu" && k.distroVersion == "18.04")

        // etc/os-release as an absolute link and a relative one with `..` past the top: both are
        // resolved in the host root, as a chroot would, never into this process's own /usr/lib.
        for target in ["/usr/lib/os-release", "../../../../../usr/lib/os-release"] {
            let etc = lib.path + "/etc/os-release"
            try? FileManager.default.removeItem(atPath: etc)
            try FileManager.default.createDirectory(atPath: lib.path + "/etc", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: etc, withDestinationPath: target)
            #expect(HostRoot.osReleasePath(in: lib.path) == lib.path + "/usr/lib/os-release", "link \(target)")
        }

        // A link loop is no os-release at all.
        let loop = try ScratchDirectory()
        defer { loop.remove() }
        try FileManager.default.createDirectory(atPath: loop.file("etc"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: loop.file("etc/os-release"), withDestinationPath: "os-release")
        #expect(HostRoot.osReleasePath(in: loop.path) == nil)
    }

    @Test func aHostRootThatCannotBeUsedIsOneLine() throws {
        let empty = try ScratchDirectory()
        defer { empty.remove() }
        let file = empty.file("plain")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let btf = try someBTFFile(empty)
        let cases: [(String, String)] = [
            (empty.file("absent"), "does not exist"), (file, "is not a directory"),
            (empty.path, "holds neither etc/os-release nor usr/lib/os-release"),
        ]
        for (path, says) in cases {
            for command in [["resolve", "--btf", btf], ["attach", "--dry-run", "--btf", btf], ["uninstall"]] {
                let viaOption = try btfgen(command + ["--host-root", path])
                #expect(viaOption.status != 0)
                #expect(viaOption.stdout.isEmpty, "\(viaOption.stdout)")
                #expect(viaOption.stderrLines.count == 1, "\(viaOption.stderr)")
                #expect(viaOption.stderr.contains("--host-root \(path) \(says)"), "\(viaOption.stderr)")
            }
            let viaEnv = try btfgen(["resolve", "--btf", btf], environment: [HostRoot.environmentVariable: path])
            #expect(viaEnv.status != 0)
            #expect(viaEnv.stderrLines.count == 1, "\(viaEnv.stderr)")
            #expect(viaEnv.stderr.contains("$BTFGEN_HOST_ROOT=\(path) \(says)"), "\(viaEnv.stderr)")
        }
    }

    @Test(.requires(.hostBTF))  // the BTF to install
    func installAndUninstallWorkBelowTheHostRoot() throws {
        let host = try FakeHostRoot()
        defer { host.dir.remove() }
        let release = RunningKernel.read().release
        let mine = host.path + "/boot/vmlinux-\(release)"
        let systems = "/boot/vmlinux-\(release)"
        let systemHadOne = FileManager.default.fileExists(atPath: systems)

        let r = try btfgen([
            "install", "--host-root", host.path, "--force-catalog", "--btf", "/sys/kernel/btf/vmlinux",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        if !systemHadOne && FileManager.default.fileExists(atPath: systems) {
            Issue.record("install wrote \(systems) outside the host root")
            try btfgen(["uninstall", "--release", release, "--host-root", "/"])  // what it wrote, and only that
        }
        #expect(r.stdout.hasPrefix("installed \(mine) "), "\(r.stdout)")
        // What the host's libbpf will read, in the host's tree.
        let parsed = try LibBPFBTF(path: mine)
        #expect(parsed.typeCount > 1000)
        #expect(FileManager.default.fileExists(atPath: host.path + BTFInstaller.registryPath))

        let u = try btfgen(["uninstall", "--host-root", host.path])
        #expect(u.status == 0, "\(u.stderr)")
        #expect(u.stdout == "removed \(mine)\n")
        #expect(!FileManager.default.fileExists(atPath: mine))
    }

    /// Run `btfgen ARGS` in a new mount namespace whose /etc/os-release says Alpine: a container
    /// image's. With `ownPidNamespace` pid 1 is in that namespace too (a container without
    /// hostPID); without, pid 1 is in the namespace outside it, like the host's init.
    func inContainer(ownPidNamespace: Bool, _ arguments: [String]) throws -> ProcessResult {
        let dir = try ScratchDirectory("btfgen-container")
        defer { dir.remove() }
        let osRelease = dir.file("os-release")
        try "ID=alpine\nVERSION_ID=3.20.1\n".write(toFile: osRelease, atomically: true, encoding: .utf8)
        // `mount --bind` follows /etc/os-release's link (Debian's points into /usr/lib), so the
        // file is replaced for every name this namespace has for it.
        let bindAndRun =
            ["sh", "-c", "mount --bind \"$1\" /etc/os-release && shift && exec \"$@\"", "sh", osRelease, Repo.btfgen]
            + arguments
        // A new pid namespace (its own /proc) whose pid 1 is sh, with mounts of its own.
        let pidNamespace = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
        var command = pidNamespace
        if ownPidNamespace {
            command += bindAndRun  // btfgen becomes pid 1, in the container's mounts
        } else {
            // pid 1 (sh) stays in the outer mounts and waits; btfgen runs in an inner mount namespace.
            command += ["sh", "-c", "\"$@\"; exit $?", "sh", "unshare", "--mount", "--propagation", "private"]
            command += bindAndRun
        }
        return try runProcess(command[0], Array(command.dropFirst()), environment: [HostRoot.environmentVariable: ""])
    }

    @Test(.requires(.root, .tool("unshare"), .tool("mount")))  // mount and pid namespaces
    func aContainerWithTheHostsPidsReadsTheHostsOSReleaseThroughProc1Root() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let btf = try someBTFFile(dir)
        let r = try inContainer(ownPidNamespace: false, ["resolve", "--json", "--btf", btf])
        #expect(r.status == 0, "\(r.stderr)")
        let running = try runningJSON(r)
        let own = try #require(HostRoot.osReleasePath(in: "/"))
        let host = RunningKernel.parseOSRelease(try String(contentsOfFile: own, encoding: .utf8))
        #expect(host["ID"] != "alpine")
        #expect(running["distro"] as? String == host["ID"], "the container's os-release was read")
        let root = try #require(running["hostRoot"] as? [String: Any])
        #expect(root["source"] as? String == "/proc/1/root")
        #expect((running["osRelease"] as? String)?.hasPrefix("/proc/1/root/") == true)

        // An explicit host root still comes first.
        let fake = try FakeHostRoot()
        defer { fake.dir.remove() }
        let explicit = try inContainer(
            ownPidNamespace: false, ["resolve", "--json", "--btf", btf, "--host-root", fake.path])
        #expect(try runningJSON(explicit)["distro"] as? String == "rhel")
    }

    @Test(.requires(.root, .tool("unshare"), .tool("mount")))  // mount and pid namespaces
    func aContainerWithItsOwnPidsHasOnlyItsOwnOSRelease() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let btf = try someBTFFile(dir)
        let r = try inContainer(ownPidNamespace: true, ["resolve", "--btf", btf])
        #expect(r.status == 0, "\(r.stderr)")
        // pid 1 shares the container's root and mounts: /proc/1/root is no way out, and resolve says which file it read.
        #expect(r.stdout.contains(" alpine 3.20.1\n"), "\(r.stdout)")
        #expect(r.stdout.contains("(this process's own root"), "\(r.stdout)")
    }
}
