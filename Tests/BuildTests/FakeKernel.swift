// Small stand-ins for debuginfo kernels, compiled on the fly from Fixtures/fake_kernel.c with
// `gcc -g`: an ELF with DWARF, a GNU build-id and a `Linux version` banner. pahole encodes any
// DWARF ELF, so the whole pipeline runs on them in milliseconds.
import Foundation
import TestSupport
import Testing

enum FakeKernel {
    static let source = Repo.root.appendingPathComponent("Tests/BuildTests/Fixtures/fake_kernel.c").path

    /// Compile a fake vmlinux into `directory`. `variant` changes the layout and so the build-id.
    static func compile(
        in directory: ScratchDirectory, name: String = "vmlinux",
        release: String = "4.18.0-305.el8.x86_64", variant: Int = 0,
        utsVersion: String? = nil, debugInfo: Bool = true
    ) throws -> String {
        let out = directory.file(name)
        var args = ["-O0", "-Wl,--build-id=sha1", "-DRELEASE=\"\(release)\"", "-DVARIANT=\(variant)"]
        if debugInfo { args.append("-g") }
        if let utsVersion { args.append("-DUTS_VERSION=\"\(utsVersion)\"") }
        args += ["-o", out, source]
        let r = try runProcess("gcc", args)
        try #require(r.status == 0, "gcc failed: \(r.stderr)")
        return out
    }

    /// The GNU build-id as `readelf -n` prints it: an oracle independent of our ELF reader.
    static func readelfBuildID(_ path: String) throws -> String {
        let r = try runProcess("readelf", ["-n", path])
        try #require(r.status == 0, "readelf failed: \(r.stderr)")
        for line in r.stdout.split(separator: "\n") where line.contains("Build ID:") {
            return String(line.split(separator: " ").last!)
        }
        Issue.record("readelf -n printed no build-id for \(path)")
        return ""
    }
}

/// A snapshot of every file under a directory (relative path → sha256), to prove "untouched".
func treeSnapshot(_ root: String) throws -> [String: String] {
    var result: [String: String] = [:]
    guard let walker = FileManager.default.enumerator(atPath: root) else { return result }
    while let rel = walker.nextObject() as? String {
        var isDir: ObjCBool = false
        let full = root + "/" + rel
        _ = FileManager.default.fileExists(atPath: full, isDirectory: &isDir)
        result[rel] = isDir.boolValue ? "dir" : try sha256sum(full)
    }
    return result
}

/// The catalog's index decoded loosely, as a user's script would read it.
func indexEntries(_ catalog: String) throws -> [[String: Any]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: catalog + "/index.json"))
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return try #require(object["entries"] as? [[String: Any]])
}

/// The catalog's `.btf` files (relative paths), scratch excluded.
func catalogBTFFiles(_ catalog: String) throws -> [String] {
    try treeSnapshot(catalog).keys.filter { $0.hasSuffix(".btf") && !$0.hasPrefix(".tmp") }
}

/// Where the intents in a catalog's scratch would place BTF files.
func pendingDestinations(_ catalog: String) throws -> [String] {
    let tmp = catalog + "/.tmp"
    return ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasSuffix("-intent.json") }
        .compactMap { name in
            guard let data = FileManager.default.contents(atPath: tmp + "/" + name),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return nil }
            return json["destination"] as? String
        }
}
