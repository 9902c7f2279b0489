// A real apt repository for `btfgen sync` tests: packages made by dpkg-deb around small DWARF
// "kernels" (Tests/BuildTests/Fixtures/fake_kernel.c), indexed by apt-ftparchive, signed by a
// throwaway gpg key, and served on loopback by a real nginx with its own prefix and access log.
import Foundation
import TestSupport
import Testing

/// A repository directory tree and the key that signs it.
final class AptRepository {
    let scratch: ScratchDirectory
    let root: String
    let suite = "bookworm"
    let gnupgHome: String
    /// The public half of the signing key, as a keyring gpgv reads.
    let keyring: String
    /// Package name → the .deb's path.
    private(set) var packages: [String: String] = [:]

    init(scratch: ScratchDirectory) throws {
        self.scratch = scratch
        root = scratch.file("repo")
        gnupgHome = scratch.file("gnupg")
        keyring = scratch.file("repo-keyring.gpg")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Self.makeKey(home: gnupgHome, name: "btfgen sync test <sync@btfgen.invalid>", exportTo: keyring)
    }

    /// A fresh signing key in its own GNUPGHOME, exported as a binary keyring.
    static func makeKey(home: String, name: String, exportTo keyring: String) throws {
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        chmod(home, 0o700)
        let env = ["GNUPGHOME": home]
        let gen = try runProcess(
            "gpg", ["--batch", "--passphrase", "", "--quick-gen-key", name, "ed25519", "sign", "never"],
            environment: env)
        try #require(gen.status == 0, "gpg --quick-gen-key: \(gen.stderr)")
        let export = try runProcess("gpg", ["--batch", "--output", keyring, "--export"], environment: env)
        try #require(export.status == 0, "gpg --export: \(export.stderr)")
    }

    /// Add `linux-image-<release>-dbg` holding a fake vmlinux at usr/lib/debug/boot/vmlinux-<release>
    /// (or nothing there when `withVmlinux` is off).
    @discardableResult
    /// `ubuntu` makes Ubuntu's `linux-image-unsigned-<release>-dbgsym` as a .ddeb instead.
    /// `randomBytes` adds a file of that many incompressible bytes (a big package); `vmlinuxZeros`
    /// that many zeros after the vmlinux's own bytes (a small package that unpacks big).
    func addKernel(
        release: String, version: String = "6.1.999-1", variant: Int, withVmlinux: Bool = true, ubuntu: Bool = false,
        randomBytes: Int = 0, vmlinuxZeros: Int = 0
    ) throws -> String {
        let name = ubuntu ? "linux-image-unsigned-\(release)-dbgsym" : "linux-image-\(release)-dbg"
        let distro = ubuntu ? "Ubuntu" : "Debian"
        let build = scratch.file("build-\(name)")
        try FileManager.default.createDirectory(atPath: build + "/DEBIAN", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: build + "/usr/lib/debug/boot", withIntermediateDirectories: true)
        if withVmlinux {
            let vmlinux = scratch.file("vmlinux-\(release)")
            let source = Repo.root.appendingPathComponent("Tests/BuildTests/Fixtures/fake_kernel.c").path
            let cc = try runProcess(
                "gcc",
                [
                    "-O0", "-g", "-Wl,--build-id=sha1", "-DRELEASE=\"\(release)\"", "-DVARIANT=\(variant)",
                    "-DUTS_VERSION=\"#1 SMP PREEMPT_DYNAMIC \(distro) \(version) (2026-11-01)\"", "-o", vmlinux, source,
                ])
            try #require(cc.status == 0, "gcc: \(cc.stderr)")
            if vmlinuxZeros > 0 {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: vmlinux))
                try handle.seekToEnd()
                try handle.write(contentsOf: Data(count: vmlinuxZeros))
                try handle.close()
            }
            try FileManager.default.moveItem(atPath: vmlinux, toPath: build + "/usr/lib/debug/boot/vmlinux-\(release)")
        } else {
            try Data("not a kernel\n".utf8).write(to: URL(fileURLWithPath: build + "/usr/lib/debug/boot/README"))
        }
        if randomBytes > 0 {
            try FileManager.default.createDirectory(atPath: build + "/usr/share/doc", withIntermediateDirectories: true)
            let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
            try random.readData(ofLength: randomBytes).write(to: URL(fileURLWithPath: build + "/usr/share/doc/padding"))
            try random.close()
        }
        // As dpkg-gencontrol writes it: the unpacked size in KiB.
        let unpacked = try runProcess("du", ["-sk", "--exclude=DEBIAN", build])
        let installedKiB = unpacked.stdout.split(separator: "\t").first.map(String.init) ?? "0"
        try """
        Package: \(name)
        Source: linux
        Installed-Size: \(installedKiB)
        Version: \(version)
        Architecture: amd64
        Maintainer: \(ubuntu ? "Ubuntu Kernel Team <kernel-team@lists.ubuntu.com>" : "Debian Kernel Team <debian-kernel@lists.debian.org>")
        Section: debug
        Priority: optional
        Description: Debug symbols for linux-image-\(release)

        """.write(toFile: build + "/DEBIAN/control", atomically: true, encoding: .utf8)
        let pool = root + "/pool/main/l/linux"
        try FileManager.default.createDirectory(atPath: pool, withIntermediateDirectories: true)
        let deb = pool + "/\(name)_\(version)_amd64.\(ubuntu ? "ddeb" : "deb")"
        // Random bytes do not compress: do not spend the time trying.
        let compression = randomBytes > 0 ? "-Znone" : "-Zxz"
        let pack = try runProcess("dpkg-deb", [compression, "--build", "--root-owner-group", build, deb])
        try #require(pack.status == 0, "dpkg-deb: \(pack.stderr)")
        packages[name] = deb
        return name
    }

    /// Add a package no kernel sync should touch.
    func addOther(name: String) throws {
        let build = scratch.file("build-\(name)")
        try FileManager.default.createDirectory(atPath: build + "/DEBIAN", withIntermediateDirectories: true)
        try """
        Package: \(name)
        Version: 1.0
        Architecture: amd64
        Maintainer: Nobody <nobody@btfgen.invalid>
        Description: not a kernel

        """.write(toFile: build + "/DEBIAN/control", atomically: true, encoding: .utf8)
        let deb = root + "/pool/main/o/\(name)_1.0_amd64.deb"
        try FileManager.default.createDirectory(atPath: root + "/pool/main/o", withIntermediateDirectories: true)
        try #require(try runProcess("dpkg-deb", ["--build", "--root-owner-group", build, deb]).status == 0)
    }

    var binaryDir: String { root + "/dists/\(suite)/main/binary-amd64" }
    var distsDir: String { root + "/dists/\(suite)" }

    /// Regenerate Packages(.xz) with apt-ftparchive, the Release file, and InRelease signed by the key.
    func publish() throws {
        try FileManager.default.createDirectory(atPath: binaryDir, withIntermediateDirectories: true)
        // Ubuntu's .ddeb packages sit in the same index as .deb ones.
        var index = ""
        for ext in [".deb", ".ddeb"] {
            let packages = try runProcess(
                "apt-ftparchive", ["-o", "APT::FTPArchive::Packages::Extensions=\(ext)", "packages", "pool"],
                currentDirectory: root)
            try #require(packages.status == 0, "apt-ftparchive packages: \(packages.stderr)")
            index += packages.stdout
        }
        try index.write(toFile: binaryDir + "/Packages", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: binaryDir + "/Packages.xz")
        try #require(try runProcess("xz", ["-k", "-f", binaryDir + "/Packages"]).status == 0)
        try sign()
    }

    /// Rewrite Release (digests of whatever the index files are now) and sign it as InRelease.
    func sign() throws {
        for f in ["Release", "InRelease", "Release.gpg"] {
            try? FileManager.default.removeItem(atPath: distsDir + "/" + f)
        }
        let release = try runProcess(
            "apt-ftparchive",
            [
                "-o", "APT::FTPArchive::Release::Origin=btfgen-test", "-o", "APT::FTPArchive::Release::Suite=\(suite)",
                "-o", "APT::FTPArchive::Release::Architectures=amd64", "-o",
                "APT::FTPArchive::Release::Components=main",
                "release", ".",
            ], currentDirectory: distsDir)
        try #require(release.status == 0, "apt-ftparchive release: \(release.stderr)")
        try release.stdout.write(toFile: distsDir + "/Release", atomically: true, encoding: .utf8)
        let signed = try runProcess(
            "gpg", ["--batch", "--yes", "--clearsign", "--output", distsDir + "/InRelease", distsDir + "/Release"],
            environment: ["GNUPGHOME": gnupgHome])
        try #require(signed.status == 0, "gpg --clearsign: \(signed.stderr)")
    }

    /// gpg leaves an agent running per GNUPGHOME: end ours (and a second key's, if any).
    func stopAgents() {
        for home in [gnupgHome] + extraHomes {
            _ = try? runProcess("gpgconf", ["--kill", "gpg-agent"], environment: ["GNUPGHOME": home])
        }
    }

    /// Other GNUPGHOMEs a test made keys in.
    var extraHomes: [String] = []

    /// The sources.list line for this repository served at `url`.
    func sourceLine(_ url: String) -> String { "deb [arch=amd64] \(url) \(suite) main" }
}

/// nginx serving a directory on a free 127.0.0.1 port, with its own config, prefix and logs.
final class Nginx {
    let process = Process()
    let port: Int
    let accessLog: String
    let prefix: String

    /// `server` replaces the server block's body after `listen` (a forward proxy's, say); `name`
    /// keeps a second nginx's prefix apart from the first's.
    init(serving root: String, scratch: ScratchDirectory, name: String = "nginx", server: String? = nil) throws {
        prefix = scratch.file(name)
        try FileManager.default.createDirectory(atPath: prefix + "/logs", withIntermediateDirectories: true)
        accessLog = prefix + "/logs/access.log"
        port = try Nginx.freePort()
        let config = prefix + "/nginx.conf"
        try """
        daemon off;
        master_process off;
        worker_processes 1;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/logs/error.log;
        events { worker_connections 64; }
        http {
            access_log \(accessLog);
            client_body_temp_path \(prefix)/body;
            proxy_temp_path \(prefix)/proxy;
            fastcgi_temp_path \(prefix)/fastcgi;
            uwsgi_temp_path \(prefix)/uwsgi;
            scgi_temp_path \(prefix)/scgi;
            default_type application/octet-stream;
            server {
                listen 127.0.0.1:\(port);
                \(server ?? "root \(root);")
            }
        }

        """.write(toFile: config, atomically: true, encoding: .utf8)
        let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        let executable = try #require(nginx, "nginx is not installed (scripts/setup.sh installs it)")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-p", prefix, "-c", config, "-e", prefix + "/logs/error.log"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready once it accepts connections; give up (and stop it) after 10 s.
        for _ in 0..<200 {
            if Nginx.accepts(port) { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        let log = (try? String(contentsOfFile: prefix + "/logs/error.log", encoding: .utf8)) ?? ""
        Issue.record("nginx did not start on 127.0.0.1:\(port): \(log)")
        throw CancellationError()
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// SIGKILL: nginx started from a test thread inherits its blocked SIGTERM, and with no
    /// master process there is nothing to flush (the access log is written unbuffered).
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Request paths logged so far (GET and HEAD alike).
    func requests() -> [String] {
        let text = (try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let start = line.firstIndex(of: "\"") else { return nil }
            let words = line[line.index(after: start)...].split(separator: " ")
            return words.count >= 2 ? String(words[1]) : nil
        }
    }

    /// The .deb files requested so far, by file name.
    func debRequests() -> [String] {
        requests().filter { $0.hasSuffix(".deb") || $0.hasSuffix(".ddeb") }.map {
            String($0.split(separator: "/").last!)
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                guard bind(fd, p, length) == 0 else { return -1 }
                return getsockname(fd, p, &length)
            }
        }
        try #require(bound == 0, "cannot find a free port")
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// The catalog's index as a user's script reads it.
func catalogIndex(_ catalog: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: catalog + "/index.json") else { return [:] }
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func catalogEntries(_ catalog: String) throws -> [[String: Any]] {
    (try catalogIndex(catalog)["entries"] as? [[String: Any]]) ?? []
}

func catalogFailures(_ catalog: String) throws -> [[String: Any]] {
    (try catalogIndex(catalog)["failures"] as? [[String: Any]]) ?? []
}

/// Package name → the entry's BTF sha256, for entries a sync recorded.
func builtPackages(_ catalog: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for e in try catalogEntries(catalog) {
        guard let p = e["package"] as? [String: Any], let name = p["name"] as? String else { continue }
        result[name] = e["sha256"] as? String
    }
    return result
}
