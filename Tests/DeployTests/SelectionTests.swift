// BTF selection against fake system trees (/sys/kernel/notes, /sys/kernel/btf/vmlinux,
// /etc/os-release) and real catalogs: every rung of the order, and every refusal.
import BTF
import Bundle
import Catalog
import Deploy
import Foundation
import Kernel
import TestSupport
import Testing

/// A fake `/` holding what RunningKernel reads, plus a catalog beside it.
struct FakeSystem {
    let dir: ScratchDirectory
    var root: String { dir.file("root") }
    var catalog: Catalog { Catalog(root: URL(fileURLWithPath: dir.file("kernels"))) }

    init() throws {
        dir = try ScratchDirectory("btfgen-select")
        try FileManager.default.createDirectory(atPath: root + "/sys/kernel/btf", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
    }

    /// /sys/kernel/notes as the kernel lays it out: a Xen-style note, then the GNU build-id note.
    func writeNotes(buildID: [UInt8]) throws {
        var data = Data()
        func note(_ name: String, _ type: UInt32, _ desc: [UInt8]) {
            let nameBytes = Array(name.utf8) + [0]
            for v in [UInt32(nameBytes.count), UInt32(desc.count), type] {
                withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
            }
            data.append(contentsOf: nameBytes + [UInt8](repeating: 0, count: (4 - nameBytes.count % 4) % 4))
            data.append(contentsOf: desc + [UInt8](repeating: 0, count: (4 - desc.count % 4) % 4))
        }
        note("Xen", 6, [0x6c, 0x69, 0x6e, 0x75, 0x78, 0])
        note("GNU", 3, buildID)
        try data.write(to: URL(fileURLWithPath: root + "/sys/kernel/notes"))
    }

    func writeOSRelease(_ text: String) throws {
        try text.write(toFile: root + "/etc/os-release", atomically: true, encoding: .utf8)
    }

    func writeNativeBTF() throws {
        try Data([0x9f, 0xeb, 1, 0]).write(to: URL(fileURLWithPath: root + "/sys/kernel/btf/vmlinux"))
    }

    func running(release: String = "6.1.0-26-cloud-amd64", machine: String = "x86_64") -> RunningKernel {
        RunningKernel.read(KernelProbe(root: root, release: release, machine: machine))
    }

    /// Insert a catalog entry whose BTF file holds `label` (selection never parses it).
    @discardableResult
    func addEntry(release: String, buildID: String?, distro: String = "debian", arch: String = "x86_64") throws
        -> CatalogEntry
    {
        try catalog.prepare()
        let file = catalog.scratchFile("btf")
        let bytes = Data("btf of \(release) \(buildID ?? "-")".utf8)
        try bytes.write(to: file)
        let identity = KernelIdentity(
            release: release, arch: arch, buildID: buildID.flatMap(BuildID.init(hex:)),
            distro: distro, distroVersion: "12")
        let entry = CatalogEntry(
            identity: identity, path: "", sha256: bytes.withUnsafeBytes { SHA256.hex($0) }, size: bytes.count,
            typeCount: 1, build: nil, source: "test", builtAt: "2026-01-01T00:00:00Z")
        switch try catalog.insert(btfFile: file, entry: entry, force: false) {
        case .added(let e), .replaced(let e), .unchanged(let e): return e
        }
    }

    func choose(_ request: BTFRequest, running: RunningKernel? = nil, bundle: String? = nil) throws(DeployError)
        -> BTFChoice
    {
        let reader = try bundle.map { path throws(DeployError) in
            do throws(BundleError) { return try BundleReader(path: path) } catch { throw .bundle(error) }
        }
        return try BTFSelector(running: running ?? self.running(), catalog: catalog, bundle: reader).choose(request)
    }

    /// A bundle file of kernels `(release, build-id, BTF bytes)`, written by the Bundle module.
    func writeBundle(_ kernels: [(String, String?, [UInt8])], arch: String = "x86_64") throws -> String {
        let path = dir.file("bundle-\(UUID().uuidString.prefix(6)).tar.xz")
        let pairs = kernels.map { release, id, bytes in
            (
                CatalogEntry(
                    identity: KernelIdentity(
                        release: release, arch: arch, buildID: id.flatMap(BuildID.init(hex:)), distro: "debian",
                        distroVersion: "12"),
                    path: "", sha256: "", size: bytes.count, typeCount: 1, build: nil, source: "test",
                    builtAt: "2026-01-01T00:00:00Z"), bytes
            )
        }
        _ = try Bundle.write(to: path, kernels: pairs, objects: [], compat: "libbpf-1.x", btfgenVersion: "test")
        return path
    }
}

let runningID: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]
let runningHex = "deadbeef0102030405060708"
let otherHex = "0badc0de0102030405060708"

@Suite struct RunningKernelTests {
    @Test func readsBuildIDReleaseArchAndDistroFromTheTree() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.writeOSRelease("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
        let k = sys.running(release: "6.1.0-26-cloud-amd64", machine: "x86_64")
        #expect(k.buildID?.hex == runningHex)
        #expect(k.buildIDProblem == nil)
        #expect(k.release == "6.1.0-26-cloud-amd64")
        #expect(k.arch == "x86_64")
        #expect(k.distro == "debian")
        #expect(k.distroVersion == "12")
        #expect(k.nativeBTF == nil)
        #expect(k.version == KernelVersion(major: 6, minor: 1, patch: 0))
    }

    @Test func missingNotesAndOSReleaseAreReportedNotGuessed() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        let k = sys.running(machine: "aarch64")
        #expect(k.buildID == nil)
        #expect(k.buildIDProblem?.contains("sys/kernel/notes does not exist") == true)
        #expect(k.distro == "custom")
        #expect(k.distroVersion == "unknown")
        #expect(k.arch == "arm64")
    }

    @Test func notesWithoutABuildIDAndGarbageNotesAreProblems() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        let path = sys.root + "/sys/kernel/notes"
        try Data([4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x58, 0x65, 0x6e, 0]).write(to: URL(fileURLWithPath: path))
        guard case .failure(.noBuildIDNote) = RunningKernel.readBuildID(notesPath: path) else {
            Issue.record("a notes file without a GNU note gave a build-id")
            return
        }
        try Data([0xff, 0xff, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]).write(to: URL(fileURLWithPath: path))
        guard case .failure(.malformed) = RunningKernel.readBuildID(notesPath: path) else {
            Issue.record("truncated notes were accepted")
            return
        }
    }

    @Test(.requires(.kernelNotes))
    func theHostKernelsBuildIDIsReadable() throws {
        // Every distro kernel and the QEMU test kernel link with --build-id (SHA-1: 20 bytes).
        let k = RunningKernel.read()
        #expect(k.buildIDProblem == nil)
        #expect(k.buildID?.hex.count == 40)
    }

    @Test func osReleaseQuotingAndComments() {
        let v = RunningKernel.parseOSRelease("# comment\nID='rhel'\nVERSION_ID=\"8.9\"\nID_LIKE=\"fedora\"\n")
        #expect(v["ID"] == "rhel")
        #expect(v["VERSION_ID"] == "8.9")
        #expect(v["ID_LIKE"] == "fedora")
    }

    @Test func kernelVersionsCompareNumerically() {
        #expect(KernelVersion(release: "4.18.0-513.el8.x86_64")! > KernelVersion(major: 4, minor: 17))
        #expect(KernelVersion(release: "4.9.0-19-amd64")! < KernelVersion(major: 4, minor: 17))
        #expect(KernelVersion(release: "4.17")! == KernelVersion(major: 4, minor: 17))
        #expect(KernelVersion(release: "garbage") == nil)
    }
}

@Suite struct SelectionTests {
    @Test func btfFileWinsAndMustExist() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNativeBTF()
        let file = sys.dir.file("my.btf")
        try Data([1]).write(to: URL(fileURLWithPath: file))
        let c = try sys.choose(BTFRequest(btfFile: file))
        #expect(c.source == .file)
        #expect(c.path == file)
        // One byte is not BTF: refused before anything could use it.
        #expect(throws: DeployError.self) { try c.btf.verified() }
        let good = sys.dir.file("good.btf")
        let btf = tinyBTF().encoded()
        try Data(btf).write(to: URL(fileURLWithPath: good))
        let g = try sys.choose(BTFRequest(btfFile: good))
        let path = try #require(try g.btf.verified().libbpfPath())
        #expect(FileManager.default.contents(atPath: path).map { [UInt8]($0) } == btf, "libbpf gets the file's bytes")
        #expect(throws: DeployError.btfFileMissing(path: file + ".nope")) {
            try sys.choose(BTFRequest(btfFile: file + ".nope"))
        }
    }

    @Test func nativeBTFUnlessTheCatalogIsForced() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNativeBTF()
        try sys.writeNotes(buildID: runningID)
        let entry = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: runningHex)
        let native = try sys.choose(BTFRequest())
        #expect(native.source == .native)
        #expect(try native.btf.verified().libbpfPath() == nil, "libbpf finds the native BTF by itself")
        let forced = try sys.choose(BTFRequest(forceCatalog: true))
        #expect(forced.source == .catalogBuildID)
        #expect(forced.path == sys.catalog.url(of: entry).path)
        #expect(forced.warnings.isEmpty)
    }

    @Test func catalogEntryWithTheRunningBuildIDIsChosenAmongOthers() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.addEntry(release: "6.1.0-25-cloud-amd64", buildID: "1111111111111111")
        let mine = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: runningHex)
        try sys.addEntry(release: "5.10.0-30-amd64", buildID: "2222222222222222")
        let c = try sys.choose(BTFRequest())
        #expect(c.source == .catalogBuildID)
        #expect(c.btf.entry == mine)
        #expect(c.reason.contains(runningHex))
    }

    @Test func sameReleaseOtherBuildIsRefusedUnlessForced() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        let other = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: otherHex)
        do {
            _ = try sys.choose(BTFRequest())
            Issue.record("a BTF of another build was accepted")
        } catch {
            guard case .buildIDMismatch(_, let entryID, let running, _) = error else {
                Issue.record("wrong refusal: \(error)")
                return
            }
            #expect(entryID == otherHex)
            #expect(running == runningHex)
            #expect(error.description.hasPrefix("build-id mismatch"))
            #expect(error.description.contains("btfgen build"))
            #expect(error.description.contains("--force"))
        }
        let forced = try sys.choose(BTFRequest(force: true))
        #expect(forced.source == .catalogForced)
        #expect(forced.btf.entry == other)
        #expect(forced.warnings.count == 1)
    }

    @Test func releaseAndDistroOnlyWhenTheBuildIDCannotBeRead() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeOSRelease("ID=debian\nVERSION_ID=12\n")
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: otherHex, distro: "ubuntu")
        let debian = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: nil, distro: "debian")
        let c = try sys.choose(BTFRequest())
        #expect(c.source == .catalogRelease)
        #expect(c.btf.entry == debian)
        #expect(c.warnings.count == 1)
        #expect(c.warnings[0].contains("build-id cannot be read"))
    }

    @Test func releaseOfAnotherDistroIsNotAMatch() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeOSRelease("ID=debian\nVERSION_ID=12\n")
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: otherHex, distro: "ubuntu")
        #expect(throws: DeployError.self) { try sys.choose(BTFRequest()) }
    }

    @Test func twoBuildsOfOneReleaseWithoutABuildIDAreAmbiguous() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeOSRelease("ID=debian\n")
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: otherHex)
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: "3333333333333333")
        do {
            _ = try sys.choose(BTFRequest())
            Issue.record("picked one of two builds by release alone")
        } catch {
            guard case .ambiguousRelease(_, let candidates) = error else { Issue.record("\(error)"); return }
            #expect(candidates.count == 2)
            // --kernel takes a unique build-id prefix: the message must not ask for more than that.
            #expect(error.description.contains("--kernel BUILD-ID (8 or more hex digits are enough)"), "\(error)")
        }
    }

    @Test func nothingMatchingListsWhatWasSearchedAndHowToBuildIt() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.addEntry(release: "5.10.0-30-amd64", buildID: otherHex)
        do {
            _ = try sys.choose(BTFRequest())
            Issue.record("another kernel's BTF was accepted")
        } catch {
            guard case .noMatch(_, let searched) = error else { Issue.record("\(error)"); return }
            #expect(searched.contains("/sys/kernel/btf/vmlinux (absent)"))
            #expect(searched.contains { $0.contains("1 entries, none with build-id \(runningHex)") })
            #expect(error.description.contains("btfgen build"))
        }
        // --force does not turn an unrelated release into a candidate.
        #expect(throws: DeployError.self) { try sys.choose(BTFRequest(force: true)) }
    }

    @Test func namedEntriesAreCheckedAgainstTheRunningKernel() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.writeNativeBTF()
        let mine = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: runningHex)
        try sys.addEntry(release: "5.10.0-30-amd64", buildID: otherHex)
        // A named entry bypasses the native BTF, and the right one passes by release or build-id.
        #expect(try sys.choose(BTFRequest(kernel: "6.1.0-26-cloud-amd64")).btf.entry == mine)
        #expect(try sys.choose(BTFRequest(kernel: String(runningHex.prefix(10)))).btf.entry == mine)
        #expect(
            throws: DeployError.buildIDMismatch(
                entry:
                    "catalog entry debian/12/x86_64/5.10.0-30-amd64.btf (release 5.10.0-30-amd64, build-id 0badc0de0102…)",
                entryBuildID: otherHex, running: runningHex, runningRelease: "6.1.0-26-cloud-amd64")
        ) {
            try sys.choose(BTFRequest(kernel: "5.10.0-30-amd64"))
        }
        #expect(try sys.choose(BTFRequest(kernel: "5.10.0-30-amd64", force: true)).source == .catalogForced)
        #expect(throws: DeployError.self) { try sys.choose(BTFRequest(kernel: "4.19.0-1-amd64")) }
    }

    @Test func namedEntryWithoutBuildIDsFallsBackToTheRelease() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: nil)
        try sys.addEntry(release: "5.10.0-30-amd64", buildID: nil)
        let c = try sys.choose(BTFRequest(kernel: "6.1.0-26-cloud-amd64"))
        #expect(c.source == .catalogRelease)
        #expect(!c.warnings.isEmpty)
        #expect(
            throws: DeployError.releaseMismatch(
                entry: "catalog entry debian/12/x86_64/5.10.0-30-amd64.btf (release 5.10.0-30-amd64)",
                runningRelease: "6.1.0-26-cloud-amd64")
        ) {
            try sys.choose(BTFRequest(kernel: "5.10.0-30-amd64"))
        }
    }

    @Test func anEntryForAnotherArchitectureIsRefused() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.addEntry(release: "6.1.0-26-arm64", buildID: runningHex, arch: "arm64")
        #expect(throws: DeployError.self) { try sys.choose(BTFRequest()) }
    }

    @Test func anEntryForAnotherArchitectureIsRefusedByAttachEvenWithForce() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.addEntry(release: "6.1.0-26-cloud-arm64", buildID: otherHex, arch: "arm64")
        let label =
            "catalog entry debian/12/arm64/6.1.0-26-cloud-arm64.btf (release 6.1.0-26-cloud-arm64, build-id 0badc0de0102…)"
        #expect(throws: DeployError.archMismatch(entry: label, entryArch: "arm64", runningArch: "x86_64")) {
            try sys.choose(BTFRequest(kernel: otherHex, force: true))
        }
        let line = DeployError.archMismatch(entry: label, entryArch: "arm64", runningArch: "x86_64").description
        #expect(line.contains("is for arm64 but this machine is x86_64") && !line.contains("\n"))
    }

    @Test func aKernelNamedForAnotherArchitectureIsChosenForThatMachine() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        let arm = try sys.addEntry(release: "6.1.0-26-cloud-arm64", buildID: otherHex, arch: "arm64")
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: runningHex)
        // resolve and install: an arm64 build-id names the arm64 guest's kernel; nothing running here is compared.
        let c = try sys.choose(BTFRequest(kernel: otherHex, otherMachineAllowed: true))
        #expect(c.source == .catalogNamed)
        #expect(c.btf.entry == arm)
        #expect(c.target == ArchTarget(arch: "arm64", isThisMachine: false))
        #expect(c.release == "6.1.0-26-cloud-arm64")
        #expect(c.warnings.isEmpty)
        // By release only: chosen, with a warning that a release names no build for certain.
        let byRelease = try sys.choose(BTFRequest(kernel: "6.1.0-26-cloud-arm64", otherMachineAllowed: true))
        #expect(byRelease.btf.entry == arm && byRelease.warnings.count == 1)
        // A declared arm64 target: its kernel must be named, and be arm64.
        #expect(throws: DeployError.otherMachineNeedsKernel(targetArch: "arm64", machineArch: "x86_64")) {
            try sys.choose(BTFRequest(arch: "arm64", otherMachineAllowed: true))
        }
        #expect(
            throws: DeployError.targetArchMismatch(
                entry:
                    "catalog entry debian/12/x86_64/6.1.0-26-cloud-amd64.btf (release 6.1.0-26-cloud-amd64, build-id deadbeef0102…)",
                entryArch: "x86_64", target: ArchTarget(arch: "arm64", isThisMachine: false))
        ) {
            try sys.choose(BTFRequest(kernel: runningHex, arch: "arm64", otherMachineAllowed: true))
        }
        #expect(try sys.choose(BTFRequest(kernel: otherHex, arch: "arm64")).source == .catalogNamed)
        // Declaring this machine's own architecture changes nothing.
        #expect(try sys.choose(BTFRequest(arch: "x86_64")).source == .catalogBuildID)
    }

    @Test func aBundleOfAnotherArchitectureOnlyIsRefusedNamingBoth() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        let bundle = try sys.writeBundle([("6.1.0-26-cloud-arm64", otherHex, [7, 7, 7])], arch: "arm64")
        let expected = DeployError.noKernelOfArch(
            bundle: bundle, arches: ["arm64"], target: ArchTarget(arch: "x86_64", isThisMachine: true))
        #expect(throws: expected) { try sys.choose(BTFRequest(), bundle: bundle) }
        #expect(expected.description.contains("holds only arm64 kernels but this machine is x86_64"))
        // Named by build-id for the arm64 machine, its blob is what comes out.
        let c = try sys.choose(BTFRequest(kernel: otherHex, otherMachineAllowed: true), bundle: bundle)
        #expect(c.source == .bundleNamed)
        #expect(try c.btf.verified().rawBTF == [7, 7, 7])
    }

    @Test func bundleKernelWithTheRunningBuildIDIsChosenAndItsBlobReachesLibbpf() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        try sys.addEntry(release: "5.10.0-30-amd64", buildID: otherHex)
        let blob = Array("minimized btf of the running kernel".utf8)
        let bundle = try sys.writeBundle([
            ("6.1.0-26-cloud-amd64", runningHex, blob), ("6.1.0-25-cloud-amd64", "1111111111111111", [1, 2, 3]),
        ])
        let c = try sys.choose(BTFRequest(), bundle: bundle)
        #expect(c.source == .bundleBuildID)
        #expect(c.btf.entry == nil)
        #expect(c.btf.blob?.bundle == bundle)
        #expect(c.reason.contains("has the running kernel's build-id \(runningHex)"))
        let path = try #require(try c.btf.verified().libbpfPath())
        #expect(path.hasPrefix("/proc/self/fd/"))
        #expect(FileManager.default.contents(atPath: path).map { [UInt8]($0) } == blob)
        // The catalog is searched first: an entry with the same build-id wins over the bundle.
        let mine = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: runningHex)
        let fromCatalog = try sys.choose(BTFRequest(), bundle: bundle)
        #expect(fromCatalog.source == .catalogBuildID)
        #expect(fromCatalog.btf.entry == mine)
    }

    @Test func bundleKernelOfAnotherBuildIsRefusedAndCanBeNamed() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        let bundle = try sys.writeBundle([("6.1.0-26-cloud-amd64", otherHex, [9, 9, 9])])
        do {
            _ = try sys.choose(BTFRequest(), bundle: bundle)
            Issue.record("a bundle kernel of another build was accepted")
        } catch {
            guard case .buildIDMismatch(let entry, let entryID, _, _) = error else {
                Issue.record("wrong refusal: \(error)")
                return
            }
            #expect(entry.hasPrefix("bundle \(bundle) kernel debian/12/x86_64/6.1.0-26-cloud-amd64"))
            #expect(entryID == String(otherHex.prefix(16)), "the first 8 bytes, as the bundle records it")
        }
        #expect(throws: DeployError.self) { try sys.choose(BTFRequest(kernel: "6.1.0-26-cloud-amd64"), bundle: bundle) }
        let forced = try sys.choose(BTFRequest(kernel: "6.1.0-26-cloud-amd64", force: true), bundle: bundle)
        #expect(forced.source == .bundleForced)
        #expect(
            try forced.btf.verified().libbpfPath().flatMap { FileManager.default.contents(atPath: $0) }
                == Data([9, 9, 9]))
    }

    /// A bundle records each build-id's first 8 bytes: they name the running kernel only together
    /// with its release, and a catalog entry (whole build-ids) is never matched by a prefix.
    @Test func aBundlesBuildIDPrefixNamesTheKernelOnlyWithItsRelease() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        // Another build whose id begins with the running kernel's first 8 bytes.
        let sameStart = String(runningHex.prefix(16)) + "ffffffff"
        let otherRelease = try sys.writeBundle([("6.1.0-99-cloud-amd64", sameStart, [5, 5, 5])])
        do {
            _ = try sys.choose(BTFRequest(), bundle: otherRelease)
            Issue.record("a bundle kernel of another release was chosen by 8 bytes of build-id")
        } catch {
            guard case .noMatch = error else {
                Issue.record("wrong refusal: \(error)")
                return
            }
        }
        let sameRelease = try sys.writeBundle([("6.1.0-26-cloud-amd64", sameStart, [6, 6, 6])])
        let c = try sys.choose(BTFRequest(), bundle: sameRelease)
        #expect(c.source == .bundleBuildID)
        #expect(c.reason.contains("\(runningHex) (the first 8 bytes, as bundles record it)"), "\(c.reason)")
        #expect(try c.btf.verified().rawBTF == [6, 6, 6])
        // Named by the running kernel's whole build-id, the bundle kernel is found as well.
        let named = try sys.choose(BTFRequest(kernel: runningHex), bundle: sameRelease)
        #expect(named.source == .bundleBuildID, "\(named.reason)")
        // The catalog keeps whole build-ids: an entry that differs after 8 bytes is another build.
        try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: sameStart)
        do {
            _ = try sys.choose(BTFRequest())
            Issue.record("a catalog entry of another build was chosen")
        } catch {
            guard case .buildIDMismatch(_, let entryID, let running, _) = error else {
                Issue.record("wrong refusal: \(error)")
                return
            }
            #expect(entryID == sameStart && running == runningHex)
        }
    }

    @Test func aBlobTheBundleDoesNotHoldIsNeverHandedToLibbpf() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        let bundle = try sys.writeBundle([("6.1.0-26-cloud-amd64", runningHex, [1, 2, 3, 4])])
        var c = try sys.choose(BTFRequest(), bundle: bundle)
        var blob = try #require(c.btf.blob)
        blob.digest = String(repeating: "0", count: 64)
        c.btf = .bundle(blob)
        #expect(throws: DeployError.self) { try c.btf.verified().libbpfPath() }
    }

    @Test func aCatalogFileChangedSinceItWasWrittenIsRefusedWithBothDigests() throws {
        let sys = try FakeSystem()
        defer { sys.dir.remove() }
        try sys.writeNotes(buildID: runningID)
        let entry = try sys.addEntry(release: "6.1.0-26-cloud-amd64", buildID: runningHex)
        let c = try sys.choose(BTFRequest())
        #expect(try c.btf.verified().rawBTF.count == entry.size)
        // Same size, one byte different: parses as well as before, and must not be used.
        let path = sys.catalog.url(of: entry).path
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[0] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: path))
        let actual = bytes.withUnsafeBytes { SHA256.hex($0) }
        do {
            _ = try sys.choose(BTFRequest()).btf.verified()
            Issue.record("a changed catalog file was used")
        } catch {
            #expect("\(error)".contains(path), "\(error)")
            #expect("\(error)".contains(entry.sha256) && "\(error)".contains(actual), "\(error)")
        }
        let problems = try sys.catalog.verifyAll().compactMap(\.problem)
        #expect(problems == [.digestMismatch(path: path, recorded: entry.sha256, actual: actual)])
    }
}

/// The smallest real BTF: one `int`.
func tinyBTF() -> BTF {
    var strings = StringTableBuilder()
    let name = strings.add("int")
    var btf = BTF(strings: strings.table)
    btf.append(BTFType(nameOffset: name, kind: .int(size: 4, encoding: 1, bitOffset: 0, bits: 32)))
    return btf
}
