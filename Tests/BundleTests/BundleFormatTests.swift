// The bundle container and its OCI packaging, on real kernel BTF: content addressing,
// reproducibility, streaming verified reads, corruption detection, and real OCI tools
// (skopeo, umoci) accepting the layout.
import Bundle
import Catalog
import Deploy
import ELF
import Foundation
import Ingest
import Kernel
import LibBPF
import TestSupport
import Testing

@Suite(.requires(.hostBTF)) struct BundleFormatTests {
    /// Real BTF to put in bundles: the host's own, when it has one.
    static var hostBTF: [UInt8]? {
        FileManager.default.contents(atPath: "/sys/kernel/btf/vmlinux").map { [UInt8]($0) }
    }

    func entry(_ release: String, buildID: String?, bytes: [UInt8], arch: String = "x86_64") -> CatalogEntry {
        let identity = KernelIdentity(
            release: release, arch: arch, buildID: buildID.flatMap(BuildID.init(hex:)),
            distro: "rhel", distroVersion: "8", compiler: nil, banner: nil)
        return CatalogEntry(
            identity: identity, path: "rhel/8/\(arch)/\(release).btf",
            sha256: bytes.withUnsafeBytes { SHA256.hex($0) }, size: bytes.count, typeCount: 1,
            build: nil, source: "vmlinux", builtAt: "2026-11-23T00:00:00Z")
    }

    @Test func elfWrapperIsReadByLibbpfAndBinutils() throws {
        let btf = try #require(Self.hostBTF, "this host has no /sys/kernel/btf/vmlinux")
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let path = dir.file("vmlinux-wrapped")
        try Data(ELFWriter.btfObject(btf)).write(to: URL(fileURLWithPath: path))
        let viaELF = try LibBPFBTF(path: path)
        let raw = dir.file("raw.btf")
        try Data(btf).write(to: URL(fileURLWithPath: raw))
        #expect(viaELF.typeCount == (try LibBPFBTF(path: raw)).typeCount)
        #expect(viaELF.structNamed("task_struct") == (try LibBPFBTF(path: raw)).structNamed("task_struct"))
        let dumped = dir.file("dumped")
        let r = try runProcess("llvm-objcopy", ["--dump-section", ".BTF=\(dumped)", path, dir.file("discard")])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(try sha256sum(dumped) == (try sha256sum(raw)))
        let sections = try runProcess("readelf", ["-S", "-W", path]).stdout
        #expect(sections.contains(".BTF") && sections.contains(".shstrtab"))
    }

    @Test func identicalBlobsAreStoredOnceAndOutputIsReproducible() throws {
        let btf = try #require(Self.hostBTF)
        let small = Array(btf.prefix(24))  // not BTF-valid, but a distinct blob is all this test needs
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let kernels = [
            (entry("4.18.0-305.el8.x86_64", buildID: "aa00000000000000000000000000000000000001", bytes: btf), btf),
            (entry("4.18.0-305.3.1.el8.x86_64", buildID: "aa00000000000000000000000000000000000002", bytes: btf), btf),
            (entry("4.18.0-80.el8.x86_64", buildID: nil, bytes: small), small),
        ]
        let objects = [BundleObject(name: "task_rename.bpf.o", sha256: String(repeating: "ab", count: 32))]
        let a = dir.file("a.tar.xz"), b = dir.file("b.tar.xz")
        let manifest = try Bundle.write(
            to: a, kernels: kernels, objects: objects, compat: "libbpf-1.x", btfgenVersion: "test")
        _ = try Bundle.write(
            to: b, kernels: kernels.reversed(), objects: objects, compat: "libbpf-1.x", btfgenVersion: "test")
        #expect(try sha256sum(a) == (try sha256sum(b)), "same inputs in another order must give the same bytes")
        #expect(manifest.kernels.count == 3)
        #expect(manifest.blobs.count == 2)
        // GNU tar as the oracle for the container: manifest first, then blobs, fixed owners and times.
        let listing = try runProcess("tar", ["-tvJf", a]).stdout.split(separator: "\n")
        #expect(listing.compactMap { $0.split(separator: " ").last } == ["manifest.json", "blobs"])
        #expect(listing.allSatisfy { $0.contains(" 0/0 ") && $0.contains("1970-01-01") })
        #expect(listing.last?.contains(" \(btf.count + small.count) ") == true, "both blobs, once each: \(listing)")

        let reader = try BundleReader(path: a)
        #expect(reader.manifest == manifest)
        let chosen = try #require(reader.manifest.kernels.first { $0.release == "4.18.0-305.el8.x86_64" })
        #expect(chosen.buildID?.hex == "aa00000000000000", "the first 8 bytes, as format 4 records it")
        #expect(try reader.blob(chosen.blob) == btf)
        #expect(throws: BundleError.missingBlob(path: a, digest: String(repeating: "0", count: 64))) {
            try reader.blob(String(repeating: "0", count: 64))
        }
    }

    /// Format 4 is what `tar -xOJf B manifest.json | jq` shows: kernels grouped by what they
    /// share, rows of release, the first 8 bytes of the build-id and blob number, objects with the
    /// first 8 bytes of their sha256, one sha256 over the manifest and blobs, and no blob named by
    /// its 64 hex digits (those made format 2 twice as big).
    @Test func theManifestIsCompactAndCarriesEveryField() throws {
        let btf = try #require(Self.hostBTF)
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let blobs = [Array(btf.prefix(300)), Array(btf.prefix(200))]
        var kernels: [(CatalogEntry, [UInt8])] = []
        for (i, release) in ["4.18.0-305.el8.x86_64", "4.18.0-348.el8.x86_64", "4.18.0-80.el8.x86_64"].enumerated() {
            let blob = blobs[i % 2]
            var e = entry(release, buildID: "0\(i)" + String(repeating: "e", count: 36) + "0\(i)", bytes: blob)
            e.build = BuildRecord(
                method: "detached", pahole: "1.24", llvmObjcopy: nil, strip: nil, paholeFlags: [], btfgen: "test")
            kernels.append((e, blob))
        }
        let path = dir.file("b.tar.xz")
        let written = try Bundle.write(
            to: path, kernels: kernels,
            objects: [BundleObject(name: "a.bpf.o", sha256: String(repeating: "ab", count: 32))],
            compat: "libbpf-1.x", btfgenVersion: "test")
        let text = try runProcess("tar", ["-xOJf", path, "manifest.json"]).stdout
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(json["format"] as? Int == 4 && json["btfgen"] as? String == "test")
        #expect(Set(json.keys) == ["blobs", "btfgen", "compat", "format", "kernels", "objects", "sha256"])
        let groups = try #require(json["kernels"] as? [[String: Any]])
        #expect(groups.count == 1)
        #expect(groups[0]["distro"] as? String == "rhel" && groups[0]["version"] as? String == "8")
        #expect(groups[0]["arch"] as? String == "x86_64" && groups[0]["pahole"] as? String == "1.24")
        let rows = try #require(groups[0]["k"] as? [[Any]])
        #expect(
            rows.map { $0[0] as? String } == ["4.18.0-305.el8.x86_64", "4.18.0-348.el8.x86_64", "4.18.0-80.el8.x86_64"])
        #expect(rows.map { $0[1] as? String } == (0..<3).map { "0\($0)" + String(repeating: "e", count: 14) })
        let objects = try #require(json["objects"] as? [[String: Any]])
        #expect(objects.map { $0["sha256"] as? String } == [String(repeating: "ab", count: 8)])
        #expect((json["blobs"] as? [String: Any])?.keys.sorted() == ["sizes"], "format 4's one sum covers the blobs")
        let sizes = try #require((json["blobs"] as? [String: Any])?["sizes"] as? [Int])
        #expect(sizes == [200, 300], "numbered by size")
        #expect(rows.map { $0[2] as? Int } == [1, 0, 1])
        for k in written.kernels { #expect(!text.contains(k.blob), "blob \(k.blob) is named by number only") }
        // The sum, recomputed here by python from the raw bytes: the manifest before it, then the blobs.
        let check = """
            import hashlib, json, sys, tarfile
            with tarfile.open(sys.argv[1]) as t:
                m = t.extractfile('manifest.json').read(); b = t.extractfile('blobs').read()
            head, sep, tail = m.rpartition(b',"sha256":"')
            assert tail == hashlib.sha256(head + b).hexdigest().encode() + b'"}\\n', 'sum'
            print('ok')
            """
        let py = try runProcess("python3", ["-c", check, path])
        #expect(py.stdout == "ok\n", "\(py.stderr)")
        #expect(try BundleReader(path: path).manifest == written)
    }

    /// `.xzSmallest` (bundles) is a plain xz stream that GNU tar and xz take, smaller than
    /// libarchive's xz -9 on a bundle's kind of content: rows with hex build-ids and small BTF blobs.
    @Test func theSmallestXZIsPlainXZAndSmaller() throws {
        let btf = try #require(Self.hostBTF)
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let rows = (0..<60).map { i in
            let id = String(Array("\(i)".utf8).withUnsafeBytes { SHA256.hex($0) }.prefix(40))
            return "[\"6.1.0-\(i)-cloud-amd64\",\"\(id)\",\(i % 7)]"
        }
        let text = Array(rows.joined(separator: ",").utf8)
        let blobs = (0..<8).flatMap { i in Array(btf[(i * 4096)..<(i * 4096 + 400)]) }
        var sizes: [String: Int] = [:]
        for compression in [ArchiveWriter.Compression.xz, .xzSmallest] {
            let path = dir.file("\(compression).tar.xz")
            let writer = try ArchiveWriter(path: path, compression: compression)
            try writer.addFile("manifest.json", contents: text)
            try writer.addFile("blobs", contents: blobs)
            try writer.finish()
            #expect(try runProcess("xz", ["-t", path]).status == 0)
            #expect(
                try runProcess("tar", ["-xOJf", path, "manifest.json"]).stdout == String(decoding: text, as: UTF8.self))
            let out = dir.file("blobs-\(compression)")
            #expect(try runProcess("sh", ["-c", "tar -xOJf \"$1\" blobs > \"$2\"", "sh", path, out]).status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(blobs))
            sizes["\(compression)"] = try #require(
                try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        }
        #expect(sizes["xzSmallest"]! < sizes["xz"]!, "\(sizes)")
    }

    @Test func corruptedBundlesAreRefused() throws {
        let btf = try #require(Self.hostBTF)
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let good = dir.file("good.tar.xz")
        let blobs = [Array(btf.prefix(400)), Array(btf.prefix(100))]
        let manifest = try Bundle.write(
            to: good,
            kernels: [
                (entry("5.4.0-1", buildID: "aa00000000000000000000000000000000000001", bytes: blobs[0]), blobs[0]),
                (entry("5.4.0-2", buildID: "aa00000000000000000000000000000000000002", bytes: blobs[1]), blobs[1]),
            ],
            objects: [], compat: "libbpf-1.x", btfgenVersion: "test")
        let digest = try #require(manifest.kernels.first?.blob)
        // Rebuild it with one byte flipped in the manifest (each byte in turn) or in the blobs (first,
        // middle, last), or without the blobs member; python's tarfile keeps everything else.
        let script = """
            import io, os, sys, tarfile
            src, out = sys.argv[1], sys.argv[2]
            with tarfile.open(src) as s:
                members = [(m, s.extractfile(m).read()) for m in s.getmembers()]
            def write(name, change):
                with tarfile.open(os.path.join(out, name), 'w:xz') as d:
                    for m, data in members:
                        data = change(m.name, data)
                        if data is not None:
                            m.size = len(data); d.addfile(m, io.BytesIO(data))
            def flip(member, i):
                def change(name, data):
                    if name != member: return data
                    data = bytearray(data); data[i] ^= 0x01; return bytes(data)
                return change
            sizes = dict((m.name, len(data)) for m, data in members)
            for i in range(sizes['manifest.json']): write('manifest-%d.tar.xz' % i, flip('manifest.json', i))
            for i in [0, sizes['blobs'] // 2, sizes['blobs'] - 1]: write('blobs-%d.tar.xz' % i, flip('blobs', i))
            write('drop.tar.xz', lambda name, data: None if name == 'blobs' else data)
            """
        let out = dir.file("bad")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let made = try runProcess("python3", ["-c", script, good, out])
        try #require(made.status == 0, "\(made.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(names.filter { $0.hasPrefix("manifest-") }.count > 100)
        var wrong: [String] = []
        for name in names {
            do {
                _ = try BundleReader(path: out + "/" + name)
                wrong.append("\(name): accepted")
            } catch {
                switch error {
                case .badManifest where name.hasPrefix("manifest-"): continue
                case .corrupt(_, let recorded, let actual)
                where name.hasPrefix("manifest-")
                    || name.hasPrefix("blobs-") && recorded.count == 64
                        && actual.count == 64:
                    continue
                case .missingBlob where name == "drop.tar.xz": continue
                default: wrong.append("\(name): \(error)")
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong)")
        #expect(throws: Never.self) { try BundleReader(path: good) }
        // Truncated, not a bundle at all, and a tar without a manifest.
        let whole = try Data(contentsOf: URL(fileURLWithPath: good))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: dir.file("cut.tar.xz")))
        #expect(throws: BundleError.self) { _ = try BundleReader(path: dir.file("cut.tar.xz")).blob(digest) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir.file("hello.tar.xz")))
        #expect(throws: BundleError.self) { try BundleReader(path: dir.file("hello.tar.xz")) }
        try #require(
            try runProcess("tar", ["-cJf", dir.file("plain.tar.xz"), "-C", dir.path, "hello.tar.xz"]).status == 0)
        #expect(throws: BundleError.noManifest(path: dir.file("plain.tar.xz"))) {
            try BundleReader(path: dir.file("plain.tar.xz"))
        }
    }

    /// An image of arm64 kernels says `arm64` (OCI's spelling) so a pull for linux/arm64 finds it;
    /// x86_64 kernels say `amd64`, not BTFHub's `x86_64`, which no OCI platform is called.
    @Test(.requires(.hostBTF)) func ociPlatformIsTheKernelsArchitecture() throws {
        let btf = try #require(Self.hostBTF)
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        for (arch, oci) in [("arm64", "arm64"), ("x86_64", "amd64")] {
            let bundle = dir.file("\(arch).tar.xz")
            let manifest = try Bundle.write(
                to: bundle, kernels: [(entry("6.1.0-57-cloud-\(oci)", buildID: nil, bytes: btf, arch: arch), btf)],
                objects: [], compat: "libbpf-1.x", btfgenVersion: "test")
            #expect(OCILayout.architectures(of: manifest) == [oci])
            let layout = dir.file("oci-\(arch)")
            try OCILayout.write(bundle: bundle, manifest: manifest, to: layout)
            let index =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
            let platform = (index?["manifests"] as? [[String: Any]])?.first?["platform"] as? [String: Any]
            #expect(platform?["architecture"] as? String == oci)
        }
    }

    /// One bundle for an x86_64 and arm64 fleet is one multi-platform image: the tag names an
    /// image index with a manifest per platform, both on the same layer (stored once), and skopeo
    /// takes each platform's image from it, which umoci then unpacks to the same bundle.
    @Test(.requires(.hostBTF, .tool("skopeo"), .tool("umoci")))
    func aMixedArchitectureBundleIsOneImageForEachPlatform() throws {
        let btf = try #require(Self.hostBTF)
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let bundle = dir.file("mixed.tar.xz")
        let manifest = try Bundle.write(
            to: bundle,
            kernels: [
                (entry("6.1.0-57-cloud-amd64", buildID: nil, bytes: btf, arch: "x86_64"), btf),
                (entry("6.1.0-57-cloud-arm64", buildID: nil, bytes: btf, arch: "arm64"), btf),
            ], objects: [], compat: "libbpf-1.x", btfgenVersion: "test")
        #expect(OCILayout.architectures(of: manifest) == ["amd64", "arm64"])
        let layout = dir.file("oci")
        try OCILayout.write(bundle: bundle, manifest: manifest, to: layout, tag: "v1")
        func json(_ path: String) throws -> [String: Any] {
            try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        let top = try #require((try json(layout + "/index.json"))["manifests"] as? [[String: Any]])
        #expect(top.count == 1 && top[0]["mediaType"] as? String == OCILayout.indexMediaType)
        let nestedDigest = try #require((top[0]["digest"] as? String)?.dropFirst("sha256:".count))
        let platforms = try #require(
            (try json(layout + "/blobs/sha256/\(nestedDigest)"))["manifests"] as? [[String: Any]])
        #expect(
            platforms.compactMap { ($0["platform"] as? [String: Any])?["architecture"] as? String } == [
                "amd64", "arm64",
            ])
        let layers = try platforms.map { descriptor -> String in
            let digest = try #require((descriptor["digest"] as? String)?.dropFirst("sha256:".count))
            let image = try json(layout + "/blobs/sha256/\(digest)")
            return try #require(((image["layers"] as? [[String: Any]])?.first?["digest"]) as? String)
        }
        #expect(Set(layers).count == 1, "both platforms share one layer")

        for arch in ["amd64", "arm64"] {
            let copied = dir.file("copied-\(arch)")
            let copy = try runProcess(
                "skopeo",
                [
                    "--override-arch", arch, "--override-os", "linux", "copy", "--quiet", "oci:\(layout):v1",
                    "oci:\(copied):v1",
                ])
            try #require(copy.status == 0, "skopeo: \(copy.stderr)")
            let config = try runProcess("skopeo", ["inspect", "--config", "oci:\(copied):v1"])
            #expect(config.stdout.contains("\"architecture\": \"\(arch)\""), "\(config.stdout)")
            let unpacked = dir.file("unpacked-\(arch)")
            let unpack = try runProcess("umoci", ["unpack", "--image", "\(copied):v1", unpacked])
            try #require(unpack.status == 0, "umoci: \(unpack.stderr)")
            #expect(try sha256sum(unpacked + "/rootfs/" + Bundle.imagePath) == (try sha256sum(bundle)))
        }
    }

    @Test(.requires(.tool("skopeo"), .tool("umoci")))
    func ociLayoutIsAcceptedBySkopeoAndUmoci() throws {
        let btf = try #require(Self.hostBTF)
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let bundle = dir.file("bundle.tar.xz")
        let manifest = try Bundle.write(
            to: bundle, kernels: [(entry("5.4.0-1", buildID: nil, bytes: btf), btf)],
            objects: [], compat: "libbpf-1.x", btfgenVersion: "test")
        let layout = dir.file("oci")
        try OCILayout.write(bundle: bundle, manifest: manifest, to: layout, tag: "v1")
        let again = dir.file("oci-again")
        try OCILayout.write(bundle: bundle, manifest: manifest, to: again, tag: "v1")
        #expect(
            try sha256sum(layout + "/index.json") == (try sha256sum(again + "/index.json")),
            "OCI layout is reproducible")
        #expect(throws: BundleError.exists(path: layout)) {
            try OCILayout.write(bundle: bundle, manifest: manifest, to: layout)
        }

        let copy = try runProcess("skopeo", ["copy", "--quiet", "oci:\(layout):v1", "oci:\(dir.file("copied")):v1"])
        try #require(copy.status == 0, "skopeo: \(copy.stderr)")
        let inspect = try runProcess("skopeo", ["inspect", "--config", "oci:\(dir.file("copied")):v1"])
        #expect(inspect.stdout.contains("io.btfgen.bundle.path"))
        let unpack = try runProcess("umoci", ["unpack", "--image", "\(dir.file("copied")):v1", dir.file("unpacked")])
        try #require(unpack.status == 0, "umoci: \(unpack.stderr)")
        let extracted = dir.file("unpacked/rootfs/" + Bundle.imagePath)
        #expect(try sha256sum(extracted) == (try sha256sum(bundle)))
        #expect(try BundleReader(path: extracted).manifest == manifest)
    }
}
