// The proof on arm64: Debian's real cloud-arm64 kernel and a BTF-less arm64 6.1 test kernel (built
// with Debian's cross compiler, scripts/build-test-kernel-arm64.sh) booted under
// qemu-system-aarch64 -M virt (TCG). No Swift toolchain for aarch64 Linux is reachable from this
// x86_64 build host, so btfgen does not run in the guest. What runs where:
//   host:  `btfgen build` makes the catalogs from the two vmlinux files (scripts/qemu/prepare-arm64.sh);
//          `btfgen resolve … --extract` selects the BTF for the guest's kernel with btfgen's own
//          selection code, reading the guest's /sys/kernel/notes (printed by boot 1) where it reads a
//          running kernel's (scripts/qemu/select-btf.sh);
//   guest: boot 1 prints its identity; boot 2 runs a plain libbpf loader (plain_loader.c,
//          cross-compiled, static) with the extracted file as btf_custom_path and the actor.
// Every assertion is made here against facts the guest cannot fake: the build-id readelf reads from
// the vmlinux, the actor's own pid.
import Foundation
import TestSupport
import Testing

enum QEMUArm64 {
    static let requirements: [Requirement] = [
        .root, .tool("qemu-system-aarch64"), .tool("aarch64-linux-gnu-gcc"), .tool("unshare"),
        .fixture("BTFGEN_TEST_ARM64_VMLINUX"), .fixture("BTFGEN_TEST_ARM64_IMAGE"),
        .fixture("BTFGEN_TEST_ARM64_RELEASE"), .fixture("BTFGEN_DEBIAN_ARM64_VMLINUX"),
        .fixture("BTFGEN_DEBIAN_ARM64_VMLINUZ"), .fixture("BTFGEN_DEBIAN_ARM64_RELEASE"),
    ]  // root: mknod in the initramfs, the private mount namespace of select-btf.sh

    /// One arm64 kernel as prepare-arm64.sh recorded it in its catalog.
    struct Kernel: Sendable {
        let catalog: String
        let buildID: String
        let arch: String
        let btfBytes: Int
        let btfTypes: Int
        let minBytes: Int
    }

    struct Prepared: Sendable {
        let work: String
        let test: Kernel
        let debian: Kernel
    }

    /// Built once per test process: both catalogs, by the btfgen built with the tests.
    static let prepared: Result<Prepared, QEMU.PrepareFailure> = {
        do {
            let work = try ScratchDirectory("btfgen-qemu-arm64").path
            let r = try runProcess(
                script("prepare-arm64.sh"), [work], environment: ["BTFGEN": Repo.btfgen])
            guard r.status == 0 else {
                return .failure(QEMU.PrepareFailure(text: "prepare-arm64.sh: \(r.stderr.suffix(2000))"))
            }
            var v: [String: String] = [:]
            for line in r.stdout.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { v[String(kv[0])] = String(kv[1]) }
            }
            let kernelBuild = ProcessInfo.processInfo.environment["BTFGEN_TEST_ARM64_BUILD_SECONDS"] ?? "?"
            print(
                "prepare-arm64.sh (arm64 test kernel cross-build: \(kernelBuild) s): \(r.stdout.split(separator: "\n").joined(separator: " "))"
            )
            func kernel(_ name: String) -> Kernel {
                Kernel(
                    catalog: "\(work)/kernels-\(name.lowercased())", buildID: v["\(name)_BUILD_ID"] ?? "?",
                    arch: v["\(name)_ARCH"] ?? "?", btfBytes: Int(v["\(name)_BTF_BYTES"] ?? "") ?? -1,
                    btfTypes: Int(v["\(name)_BTF_TYPES"] ?? "") ?? -1, minBytes: Int(v["\(name)_MIN_BYTES"] ?? "") ?? -1
                )
            }
            return .success(Prepared(work: work, test: kernel("TEST"), debian: kernel("DEBIAN")))
        } catch {
            return .failure(QEMU.PrepareFailure(text: "\(error)"))
        }
    }()

    static func require() throws -> Prepared {
        switch prepared {
        case .success(let p): return p
        case .failure(let f): throw f
        }
    }

    static func script(_ name: String) -> String {
        Repo.root.appendingPathComponent("scripts/qemu/\(name)").path
    }

    /// An initramfs holding the guest's userland and each BTF file as /btf/NAME.
    static func initramfs(_ name: String, btf: [String: String] = [:], in p: Prepared) throws -> String {
        let out = "\(p.work)/\(name).cpio.gz"
        let r = try runProcess(
            script("pack-initramfs-arm64.sh"),
            [out, Repo.root.appendingPathComponent("bpf/arm64").path] + btf.map { "\($0.key)=\($0.value)" })
        guard r.status == 0 else {
            throw QEMU.PrepareFailure(text: "pack-initramfs-arm64.sh: \(r.stderr.suffix(2000))")
        }
        return out
    }

    /// One boot, bounded: 180 s against the 3–40 s a TCG boot to the verdict takes here, so a hung
    /// guest fails with its console instead of holding CI.
    static func boot(_ kernel: String, _ initramfs: String, _ params: [String], timeout: Int = 180) throws
        -> QEMU.Console
    {
        let r = try runProcess(
            script("boot-arm64.sh"), [kernel, initramfs] + params, environment: ["TIMEOUT": "\(timeout)"])
        let console = QEMU.Console(status: r.status, text: r.stdout)
        print(
            "qemu-system-aarch64 \(params.joined(separator: " ")) on \(URL(fileURLWithPath: kernel).lastPathComponent): boot-to-verdict \(console.verdictSeconds.map { String(format: "%.1f s", $0) } ?? "none")"
        )
        return console
    }

    /// Boot 1: the guest prints who it is; the console is kept for select-btf.sh.
    static func identify(_ kernel: String, _ p: Prepared, name: String) throws -> (QEMU.Console, log: String) {
        let console = try boot(kernel, try initramfs("identify", in: p), ["btfgen_case=identify"])
        #expect(console.status == 0, "qemu: \(console.text.suffix(3000))")
        let log = "\(p.work)/\(name)-identify.log"
        try console.text.write(toFile: log, atomically: true, encoding: .utf8)
        return (console, log)
    }

    /// The host-side selection, as select-btf.sh runs it: `btfgen resolve ARGS --extract OUT`.
    struct Selection {
        let status: Int32
        let output: String
        let btf: String
        func line(_ prefix: String) -> String? {
            output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
        }
    }

    static func select(_ identifyLog: String, _ out: String, _ args: [String]) throws -> Selection {
        let r = try runProcess(script("select-btf.sh"), [Repo.btfgen, identifyLog, out] + args)
        print("select-btf.sh: \(r.stdout)\(r.stderr)")
        return Selection(status: r.status, output: r.stdout + r.stderr, btf: out)
    }

    /// The selection a guest without btfgen gets: the guest's own kernel, named by the build-id the
    /// guest printed, from the catalog, never the host's native BTF. A named build-id is another
    /// machine's target: btfgen takes the architecture from the entry (arm64) instead of this
    /// x86_64 host's uname, and finds only the entry with exactly that build-id.
    static func selectionArgs(catalog: String, buildID: String) -> [String] {
        ["--catalog", catalog, "--kernel", buildID]
    }

    /// The guest's build-id, read from the GNU note in the hex of /sys/kernel/notes it printed.
    static func buildID(fromNotesHex hex: String) -> String? {
        // Elf_Nhdr: namesz 4, descsz, type 3 (NT_GNU_BUILD_ID), "GNU\0", then the descriptor.
        let marker = "0400000014000000030000004" + "74e5500"
        guard let r = hex.range(of: marker) else { return nil }
        return String(hex[r.upperBound...].prefix(40))
    }
}

/// The actor's events on an arm64 console from plain_loader, checked against what the actor printed.
func expectArm64ActorEvents(_ console: QEMU.Console, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let actorLine = try #require(
        console.lines.first { $0.hasPrefix("actor pid=") }, "the actor never ran: \(console.text.suffix(3000))",
        sourceLocation: sourceLocation)
    let truth = try ActorTruth(actorLine)
    #expect(truth.name == "btfgen-probe" && truth.path == "/tmp/unlink-me", sourceLocation: sourceLocation)
    let mine = console.events.filter { $0["pid"] as? Int == truth.pid }
    let rename = mine.first { $0["kind"] as? String == "rename" && $0["new_comm"] as? String == "btfgen-probe" }
    let unlink = mine.first { $0["kind"] as? String == "unlinkat" }
    let exec = mine.first { $0["kind"] as? String == "exec" }
    #expect(
        rename?["comm"] as? String == "actor", "rename event: \(String(describing: rename)) \(console.events)",
        sourceLocation: sourceLocation)
    #expect(rename?["tid"] as? Int == truth.pid, sourceLocation: sourceLocation)
    #expect(
        rename?["helper_pid"] as? Int == truth.pid, "CO-RE pid and helper pid agree", sourceLocation: sourceLocation)
    #expect(rename?["oom_score_adj"] as? Int == 0, sourceLocation: sourceLocation)
    #expect(
        unlink?["path"] as? String == "/tmp/unlink-me", "unlinkat event: \(String(describing: unlink))",
        sourceLocation: sourceLocation)
    #expect(unlink?["comm"] as? String == "btfgen-probe", sourceLocation: sourceLocation)
    #expect(unlink?["syscall"] as? Int == 35, "arm64's unlinkat is syscall 35", sourceLocation: sourceLocation)
    #expect(exec?["path"] as? String == "/usr/bin/actor", sourceLocation: sourceLocation)
    #expect(console.attachStderr.contains("plain_loader: attached 3 programs"), sourceLocation: sourceLocation)
    #expect(console.value("attach-exit") == "0", "attach: \(console.attachStderr)", sourceLocation: sourceLocation)
    // Every event about the current task: the CO-RE pid equals the helper's.
    for e in console.events where e["kind"] as? String != "exec" {
        #expect(e["pid"] as? Int == e["helper_pid"] as? Int, "\(e)", sourceLocation: sourceLocation)
    }
}

@Suite(.serialized, .requires(QEMUArm64.requirements))
struct QEMUArm64ProofTests {
    /// Boot 1, the host's selection from the guest's identity, boot 2 with the extracted BTF.
    func proveOn(
        kernel: String, vmlinux: String, release: String, entry: QEMUArm64.Kernel, name: String,
        nativeBTF: Bool, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let p = try QEMUArm64.require()
        let (id, log) = try QEMUArm64.identify(kernel, p, name: name)
        let header = try #require(id.lines.first { $0.hasPrefix("case=") }, "\(id.text.suffix(3000))")
        #expect(header.contains(" release=\(release) machine=aarch64"), "\(header)", sourceLocation: sourceLocation)
        #expect(id.value("native_btf") == (nativeBTF ? "yes" : "no"), sourceLocation: sourceLocation)
        let guestID = try #require(id.value("notes").flatMap(QEMUArm64.buildID(fromNotesHex:)), "\(id.lines)")
        #expect(guestID == (try readelfBuildID(vmlinux)), "booted kernel ≠ its vmlinux", sourceLocation: sourceLocation)
        #expect(entry.buildID == guestID && entry.arch == "arm64", "\(entry)", sourceLocation: sourceLocation)

        let ours = "\(p.work)/\(name).btf"
        let s = try QEMUArm64.select(log, ours, QEMUArm64.selectionArgs(catalog: entry.catalog, buildID: guestID))
        #expect(s.status == 0, "\(s.output)", sourceLocation: sourceLocation)
        #expect(s.line("build-id:") == "build-id:       \(guestID)", "\(s.output)", sourceLocation: sourceLocation)
        #expect(s.line("source:") == "source:         catalog-named", "\(s.output)", sourceLocation: sourceLocation)
        #expect(
            !s.output.contains("warning:"), "named by build-id: nothing to warn about: \(s.output)",
            sourceLocation: sourceLocation)
        #expect(s.line("BTF:")?.hasPrefix("BTF:            \(entry.catalog)/") == true, sourceLocation: sourceLocation)
        #expect(s.line("extracted:") == "extracted:      \(ours)", sourceLocation: sourceLocation)

        let trace = try QEMUArm64.boot(
            kernel, try QEMUArm64.initramfs(name, btf: ["ours": ours], in: p),
            ["btfgen_case=trace", "btfgen_btf=ours"])
        #expect(trace.status == 0, "qemu: \(trace.text.suffix(3000))", sourceLocation: sourceLocation)
        #expect(trace.value("native_btf") == (nativeBTF ? "yes" : "no"), sourceLocation: sourceLocation)
        try expectArm64ActorEvents(trace, sourceLocation: sourceLocation)
    }

    @Test func debiansRealArm64CloudKernelWithBTFBuiltFromItsDbgPackage() throws {
        // The kernel has its own BTF; the guest's loader is handed ours (btf_custom_path), which
        // btfgen built from the -dbg package and selected by the booted kernel's build-id.
        let p = try QEMUArm64.require()
        try proveOn(
            kernel: try #require(Fixture.debianArm64Vmlinuz), vmlinux: try #require(Fixture.debianArm64Vmlinux),
            release: try #require(ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_ARM64_RELEASE"]),
            entry: p.debian, name: "debian", nativeBTF: true)
    }

    @Test func aBTFLessArm64KernelWithBTFBuiltByBtfgen() throws {
        let p = try QEMUArm64.require()
        try proveOn(
            kernel: try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_ARM64_IMAGE"]),
            vmlinux: try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_ARM64_VMLINUX"]),
            release: try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_ARM64_RELEASE"]),
            entry: p.test, name: "test", nativeBTF: false)
    }

    @Test func anotherKernelsBTFIsRefusedAndForcingItIntoTheGuestGivesGarbage() throws {
        // The BTF-less guest, a catalog holding only Debian's arm64 kernel.
        let p = try QEMUArm64.require()
        let image = try #require(ProcessInfo.processInfo.environment["BTFGEN_TEST_ARM64_IMAGE"])
        let debianRelease = try #require(ProcessInfo.processInfo.environment["BTFGEN_DEBIAN_ARM64_RELEASE"])
        let (id, log) = try QEMUArm64.identify(image, p, name: "wrong")
        let guestID = try #require(id.value("notes").flatMap(QEMUArm64.buildID(fromNotesHex:)), "\(id.lines)")
        #expect(guestID == p.test.buildID && guestID != p.debian.buildID)

        // Automatic selection: nothing in the catalog has the guest's build-id. One line, exit 1.
        let auto = try QEMUArm64.select(
            log, "\(p.work)/auto.btf", ["--catalog", p.debian.catalog, "--kernel", "auto", "--force-catalog"])
        #expect(auto.status == 1, "\(auto.output)")
        let autoLines = auto.output.split(separator: "\n").filter { !$0.hasPrefix("+ ") }
        #expect(autoLines.count == 1 && autoLines[0].hasPrefix("btfgen: "), "\(auto.output)")
        #expect(auto.output.contains("none with build-id \(guestID)"), "\(auto.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(p.work)/auto.btf"), "nothing half-written")
        // Named by its release: refused for its build-id.
        // Named by the guest's build-id (what the positive proofs do): no such entry. One line, exit 1.
        let byID = try QEMUArm64.select(
            log, "\(p.work)/by-id.btf", QEMUArm64.selectionArgs(catalog: p.debian.catalog, buildID: guestID))
        #expect(byID.status == 1, "\(byID.output)")
        let byIDLines = byID.output.split(separator: "\n").filter { !$0.hasPrefix("+ ") }
        #expect(byIDLines.count == 1 && byIDLines[0].hasPrefix("btfgen: "), "\(byID.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(p.work)/by-id.btf"), "nothing half-written")

        // Named by Debian's release for this other machine: nothing here can confirm it, so btfgen
        // serves it only with a warning to name the target by build-id. Booted with that BTF, the
        // plain loader in the guest, which has no check of its own, loads and attaches and then
        // reports what the wrong layout reads.
        let wrong = "\(p.work)/wrong.btf"
        let named = try QEMUArm64.select(log, wrong, ["--catalog", p.debian.catalog, "--kernel", debianRelease])
        #expect(named.status == 0, "\(named.output)")
        #expect(named.line("source:") == "source:         catalog-named", "\(named.output)")
        #expect(
            named.output.contains("which distros reuse across builds: name it by the target's build-id"),
            "\(named.output)")
        let trace = try QEMUArm64.boot(
            image, try QEMUArm64.initramfs("wrong", btf: ["wrong": wrong], in: p),
            ["btfgen_case=trace", "btfgen_btf=wrong"])
        #expect(trace.status == 0, "qemu: \(trace.text.suffix(3000))")
        let actorLine = try #require(trace.lines.first { $0.hasPrefix("actor pid=") }, "\(trace.text.suffix(3000))")
        let truth = try ActorTruth(actorLine)
        // The helper (no BTF involved) sees the actor; the CO-RE reads through Debian's layout do not.
        let seen = trace.events.filter { $0["helper_pid"] as? Int == truth.pid && $0["kind"] as? String != "exec" }
        #expect(!seen.isEmpty, "the programs did not run: \(trace.attachStderr)")
        for e in seen {
            #expect(e["pid"] as? Int != truth.pid, "a CO-RE pid read right through another kernel's BTF: \(e)")
        }
        print("wrong BTF forced into the guest, events about the actor (pid \(truth.pid)): \(seen)")
    }
}
