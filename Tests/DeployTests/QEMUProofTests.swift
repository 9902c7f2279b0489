// The proof on kernels without /sys/kernel/btf/vmlinux: the BTF-less 6.1 test kernel, its twin (the
// same release built again) and Debian's real 6.1 cloud kernel booted under QEMU (TCG) with an
// initramfs holding a static btfgen, the BPF objects, catalogs and bundles (scripts/qemu/prepare.sh).
// The guest prints its findings on the serial console (scripts/qemu/init.sh); every assertion is
// made here, on the host, against facts the guest cannot fake: the build-id readelf reads from the
// vmlinux, the actor's own pid.
import BTF
import Catalog
import Foundation
import TestSupport
import Testing

enum QEMU {
    /// Debian's kernel is booted only by the tests that require it; the rest need no catalog of it.
    static var hasDebian: Bool {
        Fixture.debianVmlinux != nil && Fixture.debianVmlinuz != nil
            && ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_RELEASE"] != nil
    }
    static let debian: [Requirement] = [
        .fixture("BTFGEN_DEBIAN_VMLINUX"), .fixture("BTFGEN_DEBIAN_RELEASE"), .fixture("BTFGEN_DEBIAN_VMLINUZ"),
    ]

    /// What prepare.sh made.
    struct Prepared: Sendable {
        let work: String
        let initramfs: String
        let testBuildID: String
        let otherBuildID: String
        let hasDebian: Bool
        /// The test kernel's BTF minimized for bpf/ by `btfgen minimize`: what the test bundle holds.
        let minBTFBytes: Int
        /// The sha256 of those types in name order: the bundle's blob for the test kernel.
        let minBTFNameOrderSHA256: String
    }

    /// Built once per test process: the static btfgen, the catalogs and the initramfs.
    static let prepared: Result<Prepared, PrepareFailure> = {
        do {
            let bin: String
            if let given = Fixture.staticBtfgen {
                bin = given
            } else {
                let r = try runProcess(Repo.root.appendingPathComponent("scripts/build-static.sh").path, [])
                guard r.status == 0 else {
                    return .failure(PrepareFailure(text: "build-static.sh: \(r.stderr.suffix(2000))"))
                }
                bin = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            _ = try bpfObjects()
            let work = try ScratchDirectory("btfgen-qemu").path
            var env = ["BTFGEN_STATIC_BIN": bin]
            if !hasDebian { env["BTFGEN_DEBIAN_VMLINUX"] = "" }
            let r = try runProcess(
                Repo.root.appendingPathComponent("scripts/qemu/prepare.sh").path, [work], environment: env)
            guard r.status == 0 else { return .failure(PrepareFailure(text: "prepare.sh: \(r.stderr.suffix(2000))")) }
            var values: [String: String] = [:]
            for line in r.stdout.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
            }
            guard let initramfs = values["INITRAMFS"], let id = values["TEST_BUILD_ID"],
                let other = values["OTHER_BUILD_ID"]
            else {
                return .failure(PrepareFailure(text: "prepare.sh printed no INITRAMFS/TEST_BUILD_ID: \(r.stdout)"))
            }
            return .success(
                Prepared(
                    work: work, initramfs: initramfs, testBuildID: id, otherBuildID: other,
                    hasDebian: env["BTFGEN_DEBIAN_VMLINUX"] == nil,
                    minBTFBytes: Int(values["MIN_BTF_BYTES"] ?? "") ?? -1,
                    minBTFNameOrderSHA256: try values["MIN_BTF"].map { path in
                        let bytes = try BTF(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
                            .inNameOrder().encoded()
                        return bytes.withUnsafeBytes { SHA256.hex($0) }
                    } ?? "?"))
        } catch {
            return .failure(PrepareFailure(text: "\(error)"))
        }
    }()

    struct PrepareFailure: Error, CustomStringConvertible {
        let text: String
        var description: String { text }
    }

    /// One boot: the console, split into the guest's `BTFGEN:` lines.
    struct Console {
        let status: Int32
        let text: String
        var lines: [String] {
            text.split(separator: "\n").compactMap { $0.hasPrefix("BTFGEN: ") ? String($0.dropFirst(8)) : nil }
        }
        func value(_ key: String) -> String? {
            lines.last { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        var verdictSeconds: Double? {
            text.split(separator: "\n").last { $0.hasPrefix("BTFGEN-HOST: verdict-seconds=") }
                .flatMap { Double($0.split(separator: "=").last ?? "") }
        }
        var events: [[String: Any]] {
            lines.compactMap { line in
                guard line.hasPrefix("event ") else { return nil }
                return (try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8))) as? [String: Any]
            }
        }
        var attachStderr: String {
            lines.filter { $0.hasPrefix("attach-stderr: ") }.map { String($0.dropFirst(15)) }.joined(separator: "\n")
        }
        var resolve: String { lines.filter { $0.hasPrefix("resolve: ") }.joined(separator: "\n") }
    }

    static func boot(_ kernel: String, _ prepared: Prepared, _ params: [String], timeout: Int = 600) throws -> Console {
        let r = try runProcess(
            Repo.root.appendingPathComponent("scripts/qemu/boot.sh").path,
            [kernel, prepared.initramfs] + params, environment: ["TIMEOUT": "\(timeout)"])
        let console = Console(status: r.status, text: r.stdout)
        print(
            "qemu \(params.joined(separator: " ")) on \(URL(fileURLWithPath: kernel).lastPathComponent): boot-to-verdict \(console.verdictSeconds.map { String(format: "%.1f s", $0) } ?? "none")"
        )
        return console
    }

    static func require() throws -> Prepared {
        switch prepared {
        case .success(let p): return p
        case .failure(let f): throw f
        }
    }
}

/// The build-id readelf reads from a vmlinux: an oracle independent of btfgen.
func readelfBuildID(_ path: String) throws -> String {
    let r = try runProcess("readelf", ["-n", path])
    let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("Build ID:") })
    return String(try #require(line.split(separator: " ").last))
}

/// The actor's events on a console, checked against what the actor itself printed.
func expectActorEvents(_ console: QEMU.Console, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let actorLine = try #require(
        console.lines.first { $0.hasPrefix("actor pid=") }, "the actor never ran: \(console.text.suffix(3000))")
    let truth = try ActorTruth(actorLine)
    #expect(truth.name == "btfgen-probe" && truth.path == "/tmp/unlink-me")
    let mine = console.events.filter { $0["pid"] as? Int == truth.pid }
    let rename = mine.first { $0["kind"] as? String == "rename" && $0["new_comm"] as? String == "btfgen-probe" }
    let unlink = mine.first { $0["kind"] as? String == "unlinkat" }
    let exec = mine.first { $0["kind"] as? String == "exec" }
    #expect(
        rename?["comm"] as? String == "actor", "rename event: \(String(describing: rename))",
        sourceLocation: sourceLocation)
    #expect(rename?["tid"] as? Int == truth.pid, sourceLocation: sourceLocation)
    #expect(rename?["oom_score_adj"] as? Int == 0, sourceLocation: sourceLocation)
    #expect(
        unlink?["path"] as? String == "/tmp/unlink-me", "unlinkat event: \(String(describing: unlink))",
        sourceLocation: sourceLocation)
    #expect(unlink?["comm"] as? String == "btfgen-probe", sourceLocation: sourceLocation)
    #expect(unlink?["syscall"] as? Int == 263, sourceLocation: sourceLocation)
    #expect(exec?["path"] as? String == "/usr/bin/actor", sourceLocation: sourceLocation)
    #expect(console.value("attach-exit") == "0", "attach: \(console.attachStderr)", sourceLocation: sourceLocation)
    #expect(console.attachStderr.contains("stopped (signal)"), sourceLocation: sourceLocation)
    #expect(!console.attachStderr.contains("contradict"), sourceLocation: sourceLocation)
}

@Suite(
    .serialized,
    .requires(
        .root, .tool("qemu-system-x86_64"), .tool("busybox"), .fixture("BTFGEN_TEST_BZIMAGE"),
        .fixture("BTFGEN_TEST_VMLINUX"), .fixture("BTFGEN_TEST_RELEASE"), .fixture("BTFGEN_TEST_TWIN_BZIMAGE"),
        .fixture("BTFGEN_TEST_TWIN_VMLINUX")))  // root: mknod in the initramfs
struct QEMUProofTests {
    @Test func autoPicksTheEntryByBuildIDOnAKernelWithoutBTF() throws {
        let p = try QEMU.require()
        let kernel = try #require(Fixture.testBzImage, "BTFGEN_TEST_BZIMAGE")
        #expect(p.testBuildID == (try readelfBuildID(try #require(Fixture.testVmlinux))))
        let console = try QEMU.boot(kernel, p, ["btfgen_case=trace", "btfgen_catalog=test"])
        #expect(console.status == 0, "qemu: \(console.text.suffix(3000))")
        #expect(console.value("native_btf") == "no", "the test kernel must not have BTF")
        #expect(console.resolve.contains("source:         catalog-build-id"), "\(console.resolve)")
        #expect(console.resolve.contains("build-id:       \(p.testBuildID)"))
        #expect(console.attachStderr.contains("[catalog-build-id]"))
        try expectActorEvents(console)
    }

    @Test func aBundleAtTheDefaultPathIsPickedByBuildIDAndAnotherBuildsIsRefused() throws {
        // No catalog in the guest at all: only /usr/share/btfgen/bundle.tar.xz, as an image ships it.
        // Its blob is what ships to a fleet: the catalog's BTF cut down to the three programs'
        // relocations, the very types `btfgen minimize` makes for them (in name order), a few KB.
        let p = try QEMU.require()
        let kernel = try #require(Fixture.testBzImage, "BTFGEN_TEST_BZIMAGE")
        #expect(p.minBTFBytes > 0 && p.minBTFBytes < 16_384, "minimized by btfgen minimize: \(p.minBTFBytes) B")
        let good = try QEMU.boot(kernel, p, ["btfgen_case=trace", "btfgen_catalog=none", "btfgen_bundle=test"])
        #expect(good.status == 0, "qemu: \(good.text.suffix(3000))")
        #expect(good.value("native_btf") == "no")
        #expect(good.resolve.contains("source:         bundle-build-id"), "\(good.resolve)")
        #expect(good.resolve.contains("bundle:         /usr/share/btfgen/bundle.tar.xz blob sha256:"))
        #expect(
            good.resolve.contains("blob sha256:\(p.minBTFNameOrderSHA256)"),
            "the blob used is not `btfgen minimize`'s output in name order \(p.minBTFNameOrderSHA256): \(good.resolve)")
        #expect(good.attachStderr.contains("[bundle-build-id]"))
        try expectActorEvents(good)

        let other = try QEMU.boot(kernel, p, ["btfgen_case=refuse", "btfgen_catalog=none", "btfgen_bundle=other"])
        #expect(other.value("attach-exit") == "1")
        #expect(
            other.attachStderr.hasPrefix("btfgen: build-id mismatch: bundle /usr/share/btfgen/bundle.tar.xz"),
            "\(other.attachStderr)")
        // The bundle records the first 8 bytes of a build-id.
        #expect(other.attachStderr.contains("has build-id \(p.otherBuildID.prefix(16)) but the running kernel"))
    }

    @Test func anotherBuildOfTheSameReleaseIsRefused() throws {
        // kernels-other holds the BTF of the test kernel's twin: the same release built again.
        let p = try QEMU.require()
        let kernel = try #require(Fixture.testBzImage, "BTFGEN_TEST_BZIMAGE")
        #expect(p.otherBuildID == (try readelfBuildID(try #require(Fixture.testTwinVmlinux))))
        #expect(p.otherBuildID != p.testBuildID)
        let console = try QEMU.boot(kernel, p, ["btfgen_case=refuse", "btfgen_catalog=other"])
        #expect(console.status == 0)
        try expectRelease(console)
        #expect(console.value("attach-exit") == "1")
        let err = console.attachStderr
        #expect(err.hasPrefix("btfgen: build-id mismatch:"), "\(err)")
        #expect(err.contains("has build-id \(p.otherBuildID) but the running kernel"))
        #expect(err.contains("has build-id \(p.testBuildID)"))
        #expect(!err.contains("attached"))
    }

    @Test func theTwinKernelRefusesTheTestKernelsCatalog() throws {
        // The other way round: the twin booted, the test kernel's catalog offered. Same `uname -r`,
        // so only the build-id tells them apart.
        let p = try QEMU.require()
        let twin = try #require(Fixture.testTwinBzImage, "BTFGEN_TEST_TWIN_BZIMAGE")
        let console = try QEMU.boot(twin, p, ["btfgen_case=refuse", "btfgen_catalog=test"])
        #expect(console.status == 0, "qemu: \(console.text.suffix(3000))")
        try expectRelease(console)
        #expect(console.value("native_btf") == "no")
        #expect(console.value("attach-exit") == "1")
        let err = console.attachStderr
        #expect(err.hasPrefix("btfgen: build-id mismatch:"), "\(err)")
        #expect(err.contains("has build-id \(p.testBuildID) but the running kernel"))
        #expect(err.contains("has build-id \(p.otherBuildID)"))
        #expect(!err.contains("attached"))
    }

    /// The guest ran the test kernel's release (`uname -r`), whichever of the two builds it booted.
    func expectRelease(_ console: QEMU.Console, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let release = try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_RELEASE"], "BTFGEN_TEST_RELEASE")
        let header = try #require(console.lines.first { $0.hasPrefix("case=") }, "\(console.text.suffix(3000))")
        #expect(header.contains(" release=\(release) "), "\(header)", sourceLocation: sourceLocation)
    }

    @Test(.requires(QEMU.debian))
    func anotherKernelsBTFIsRefusedAndForcingItIsCaught() throws {
        let p = try QEMU.require()
        try #require(p.hasDebian, "BTFGEN_DEBIAN_VMLINUX/BTFGEN_DEBIAN_VMLINUZ missing")
        let kernel = try #require(Fixture.testBzImage, "BTFGEN_TEST_BZIMAGE")
        let release = try #require(ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_RELEASE"])
        // Named explicitly: refused for its build-id.
        let named = try QEMU.boot(
            kernel, p, ["btfgen_case=refuse", "btfgen_catalog=debian", "btfgen_flags=--kernel,\(release)"])
        #expect(named.value("attach-exit") == "1")
        #expect(named.attachStderr.hasPrefix("btfgen: build-id mismatch:"), "\(named.attachStderr)")
        // Forced anyway: CO-RE reads garbage, and attach says so and fails instead of staying quiet.
        let forced = try QEMU.boot(
            kernel, p, ["btfgen_case=trace", "btfgen_catalog=debian", "btfgen_flags=--kernel,\(release),--force"])
        #expect(forced.value("attach-exit") == "3", "\(forced.attachStderr)")
        #expect(forced.attachStderr.contains("does not describe this kernel"))
    }

    @Test(.requires(QEMU.debian))
    func debiansRealCloudKernelWithCatalogBTFFromItsDbgPackage() throws {
        let p = try QEMU.require()
        try #require(p.hasDebian, "BTFGEN_DEBIAN_VMLINUX/BTFGEN_DEBIAN_VMLINUZ missing")
        let vmlinuz = try #require(Fixture.debianVmlinuz), dbg = try #require(Fixture.debianVmlinux)
        let console = try QEMU.boot(
            vmlinuz, p, ["btfgen_case=trace", "btfgen_catalog=debian", "btfgen_flags=--force-catalog"])
        #expect(console.status == 0, "qemu: \(console.text.suffix(3000))")
        #expect(console.value("native_btf") == "yes", "Debian's kernel has BTF; --force-catalog must bypass it")
        #expect(console.resolve.contains("source:         catalog-build-id"), "\(console.resolve)")
        #expect(
            console.resolve.contains("build-id:       \(try readelfBuildID(dbg))"), "booted kernel ≠ the -dbg package's"
        )
        try expectActorEvents(console)
    }

    @Test func installLetsAPlainLibbpfLoaderFindTheBTFByItself() throws {
        // A loader that knows nothing about btfgen (no btf_custom_path): after `btfgen install`
        // libbpf finds the BTF at /boot/vmlinux-$(uname -r) and the events are right.
        let p = try QEMU.require()
        let kernel = try #require(Fixture.testBzImage, "BTFGEN_TEST_BZIMAGE")
        let console = try QEMU.boot(kernel, p, ["btfgen_case=install", "btfgen_catalog=test"])
        try expectInstallProof(console, p)
    }

    @Test func installFromTheDefaultBundleLetsAPlainLibbpfLoaderFindTheBTF() throws {
        // An image with no catalog, only its bundle: install writes that kernel's blob, verified.
        let p = try QEMU.require()
        let kernel = try #require(Fixture.testBzImage, "BTFGEN_TEST_BZIMAGE")
        let console = try QEMU.boot(kernel, p, ["btfgen_case=install", "btfgen_catalog=none", "btfgen_bundle=test"])
        try expectInstallProof(console, p)
        #expect(
            console.lines.contains {
                $0.hasPrefix("install: btfgen: note: this BTF comes from bundle /usr/share/btfgen/bundle.tar.xz")
            }, "\(console.lines.filter { $0.hasPrefix("install: ") })")
    }

    /// The `install` case: btfgen installed the test kernel's BTF, a plain libbpf loader saw the
    /// actor truthfully, and uninstall took the file away again.
    func expectInstallProof(
        _ console: QEMU.Console, _ p: QEMU.Prepared, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let release = try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_RELEASE"], "BTFGEN_TEST_RELEASE")
        #expect(console.status == 0, "qemu: \(console.text.suffix(3000))", sourceLocation: sourceLocation)
        #expect(console.value("native_btf") == "no", sourceLocation: sourceLocation)
        let installed = console.lines.filter { $0.hasPrefix("install: ") }
        #expect(console.value("install-exit") == "0", "\(installed)", sourceLocation: sourceLocation)
        #expect(
            installed.contains {
                $0.hasPrefix("install: installed /boot/vmlinux-\(release) ") && $0.contains(p.testBuildID)
            },
            "\(installed)", sourceLocation: sourceLocation)
        #expect(console.lines.contains("boot-file: vmlinux-\(release)"), sourceLocation: sourceLocation)

        let actorLine = try #require(console.lines.first { $0.hasPrefix("actor pid=") }, "\(console.text.suffix(3000))")
        let truth = try ActorTruth(actorLine)
        let mine = console.events.filter { $0["pid"] as? Int == truth.pid }
        let rename = mine.first { $0["kind"] as? String == "rename" && $0["new_comm"] as? String == "btfgen-probe" }
        let unlink = mine.first { $0["kind"] as? String == "unlinkat" }
        #expect(
            rename?["comm"] as? String == "actor", "events: \(console.events) stderr: \(console.attachStderr)",
            sourceLocation: sourceLocation)
        #expect(rename?["tid"] as? Int == truth.pid, sourceLocation: sourceLocation)
        #expect(
            rename?["helper_pid"] as? Int == truth.pid, "CO-RE pid and helper pid agree", sourceLocation: sourceLocation
        )
        #expect(unlink?["path"] as? String == "/tmp/unlink-me", sourceLocation: sourceLocation)
        #expect(unlink?["syscall"] as? Int == 263, sourceLocation: sourceLocation)
        #expect(console.attachStderr.contains("plain_loader: attached 2 programs"), sourceLocation: sourceLocation)
        #expect(console.value("attach-exit") == "0", sourceLocation: sourceLocation)
        // uninstall removes exactly what install wrote.
        #expect(
            console.lines.contains("uninstall: removed /boot/vmlinux-\(release)"),
            "\(console.lines.filter { $0.hasPrefix("uninstall") })", sourceLocation: sourceLocation)
        #expect(!console.lines.contains { $0.hasPrefix("boot-file-after: vmlinux-") }, sourceLocation: sourceLocation)
    }
}
