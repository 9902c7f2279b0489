// `btfgen attach --bundle` on this host, from a bundle built for the running kernel's identity:
// the blob is read straight out of the tar.xz, verified, and used; a corrupted blob is refused
// with one line before anything is loaded.
import Bundle
import Catalog
import Foundation
import Kernel
import TestSupport
import Testing

@Suite(.requires(.root, .hostBTF))
struct BundleAttachTests {
    /// A bundle holding the host's BTF under the running kernel's identity (build-id included).
    func hostBundle(_ dir: ScratchDirectory) throws -> (path: String, digest: String) {
        let running = RunningKernel.read()
        let id = try #require(running.buildID, "running build-id unreadable: \(running.buildIDProblem ?? "?")")
        let btf = [UInt8](try #require(FileManager.default.contents(atPath: "/sys/kernel/btf/vmlinux")))
        let identity = KernelIdentity(
            release: running.release, arch: running.arch, buildID: id, distro: running.distro,
            distroVersion: running.distroVersion, compiler: nil, banner: nil)
        let entry = CatalogEntry(
            identity: identity, path: "host.btf", sha256: "", size: btf.count, typeCount: 0,
            build: nil, source: "/sys/kernel/btf/vmlinux", builtAt: "2026-11-23T00:00:00Z")
        let path = dir.file("host.tar.xz")
        let m = try Bundle.write(
            to: path, kernels: [(entry, btf)], objects: [], compat: "libbpf-1.x", btfgenVersion: "test")
        return (path, m.kernels[0].blob)
    }

    @Test func attachReadsTheBundleDirectlyAndRefusesACorruptedOne() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let (bundle, _) = try hostBundle(dir)
        let empty = dir.file("empty-catalog")
        let r = try btfgen(["attach", "--bundle", bundle, "--force-catalog", "--catalog", empty, "--count", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("[bundle-build-id]"), "\(r.stderr)")
        #expect(r.stderr.contains("attached 3 programs"), "\(r.stderr)")
        // Nothing was unpacked next to the bundle.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["host.tar.xz"])

        let flipped = dir.file("flipped.tar.xz")
        let script = """
            import io, sys, tarfile
            with tarfile.open(sys.argv[1]) as s, tarfile.open(sys.argv[2], 'w:xz') as d:
                for m in s.getmembers():
                    data = s.extractfile(m).read() if m.isfile() else None
                    if data is not None and m.name == 'blobs':
                        data = bytearray(data); data[1000] ^= 0x01; data = bytes(data)
                    d.addfile(m, io.BytesIO(data) if data is not None else None)
            """
        try #require(try runProcess("python3", ["-c", script, bundle, flipped]).status == 0)
        let bad = try btfgen(["attach", "--bundle", flipped, "--force-catalog", "--catalog", empty, "--count", "0"])
        #expect(bad.status != 0)
        #expect(bad.stderrLines.count == 1, "\(bad.stderr)")
        // Format 4's one sum covers the manifest and the blobs: the line gives both sums' first digits.
        let recorded = try #require(
            try runProcess("tar", ["-xOJf", bundle, "manifest.json"]).stdout.split(separator: "\"").dropLast().last)
        #expect(bad.stderr.contains("corrupted") && bad.stderr.contains(recorded.prefix(16)), "\(bad.stderr)")
        #expect(!bad.stderr.contains("attached"))
    }
}
