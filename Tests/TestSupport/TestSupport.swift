// Shared helpers for btfgen's test targets: locating the repository, the built binary and the
// heavy fixtures (exported by scripts/test.sh), running processes, and scratch directories.
import Foundation

/// Where things are.
public enum Repo {
    /// The package root (the directory holding Package.swift).
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    /// The directory of the running test binary, which holds the products SwiftPM built with it.
    public static let productsDirectory: URL = {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe)
        while url.pathExtension != "xctest" && url.path != "/" && !url.lastPathComponent.hasSuffix("PackageTests") {
            let parent = url.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: parent.appendingPathComponent("btfgen").path) {
                return parent
            }
            url = parent
        }
        return url.deletingLastPathComponent()
    }()

    /// The `btfgen` executable built alongside the tests (`swift build` builds it).
    public static var btfgen: String {
        if let explicit = ProcessInfo.processInfo.environment["BTFGEN_BIN"] { return explicit }
        return productsDirectory.appendingPathComponent("btfgen").path
    }
}

/// Heavy fixtures prepared by scripts/test.sh and handed over in environment variables.
public enum Fixture {
    public static func path(_ variable: String) -> String? {
        guard let p = ProcessInfo.processInfo.environment[variable], !p.isEmpty,
            FileManager.default.fileExists(atPath: p)
        else { return nil }
        return p
    }
    /// Debian's linux-image-*-dbg .deb (BTFGEN_DEBIAN_DEB).
    public static var debianDeb: String? { path("BTFGEN_DEBIAN_DEB") }
    /// The vmlinux inside it, extracted by dpkg-deb (BTFGEN_DEBIAN_VMLINUX).
    public static var debianVmlinux: String? { path("BTFGEN_DEBIAN_VMLINUX") }
    /// The BTF-less test kernel's vmlinux and bzImage (BTFGEN_TEST_VMLINUX, BTFGEN_TEST_BZIMAGE).
    public static var testVmlinux: String? { path("BTFGEN_TEST_VMLINUX") }
    public static var testBzImage: String? { path("BTFGEN_TEST_BZIMAGE") }
    /// The test kernel's twin: the same release built again with another build-id
    /// (BTFGEN_TEST_TWIN_VMLINUX, BTFGEN_TEST_TWIN_BZIMAGE).
    public static var testTwinVmlinux: String? { path("BTFGEN_TEST_TWIN_VMLINUX") }
    public static var testTwinBzImage: String? { path("BTFGEN_TEST_TWIN_BZIMAGE") }
    /// Debian's bootable vmlinuz matching the -dbg package (BTFGEN_DEBIAN_VMLINUZ, scripts/fetch-debian-image.sh).
    public static var debianVmlinuz: String? { path("BTFGEN_DEBIAN_VMLINUZ") }
    /// Debian's arm64 linux-image-*-cloud-arm64-dbg .deb, its vmlinux and its bootable image
    /// (BTFGEN_DEBIAN_ARM64_{DEB,VMLINUX,VMLINUZ}: `fetch-debian-dbg.sh cloud-arm64`, fetch-debian-image.sh).
    public static var debianArm64Deb: String? { path("BTFGEN_DEBIAN_ARM64_DEB") }
    public static var debianArm64Vmlinux: String? { path("BTFGEN_DEBIAN_ARM64_VMLINUX") }
    public static var debianArm64Vmlinuz: String? { path("BTFGEN_DEBIAN_ARM64_VMLINUZ") }
    /// A real libbpf 0.x shared object (BTFGEN_OLD_LIBBPF0, scripts/fetch-old-libbpf.sh).
    public static var oldLibbpf0: String? { path("BTFGEN_OLD_LIBBPF0") }
    /// btfgen built with --static-swift-stdlib (BTFGEN_STATIC_BIN, scripts/build-static.sh).
    public static var staticBtfgen: String? { path("BTFGEN_STATIC_BIN") }
    /// True when scripts/test.sh promised every fixture (CI): a missing one is then a failure, not a skip.
    public static var required: Bool { ProcessInfo.processInfo.environment["BTFGEN_REQUIRE_FIXTURES"] == "1" }
}

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

extension ProcessResult {
    /// stderr split into its non-empty lines (a refusal must be exactly one).
    public var stderrLines: [Substring] { stderr.split(separator: "\n") }
}

/// Run `executable` with `arguments` (no shell), capturing both streams.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    currentDirectory: String? = nil, stdin: Data? = nil
) throws -> ProcessResult {
    let process = Process()
    if executable.contains("/") {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
    }
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try? input.fileHandleForWriting.close()
    // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// Run the built `btfgen` with `arguments`.
@discardableResult
public func btfgen(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    try runProcess(Repo.btfgen, arguments, environment: environment)
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
public struct ScratchDirectory: Sendable {
    public let url: URL
    public var path: String { url.path }

    public init(_ label: String = "btfgen-test") throws {
        let base = FileManager.default.temporaryDirectory
        url = base.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Capabilities a test may need; each says why it is missing.
public enum Capability {
    public static var isRoot: Bool { geteuid() == 0 }
    public static func tool(_ name: String) -> Bool {
        (try? runProcess("sh", ["-c", "command -v \(name)"]).status == 0) ?? false
    }
}

/// SHA-256 of a file by `sha256sum`, an oracle independent of btfgen's own hashing.
public func sha256sum(_ path: String) throws -> String {
    let r = try runProcess("sha256sum", [path])
    return String(r.stdout.prefix(64))
}
