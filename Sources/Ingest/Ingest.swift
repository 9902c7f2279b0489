// Turning what the user passes to `btfgen build` into a vmlinux on disk: a vmlinux as is, a
// compressed vmlinux, or the vmlinux inside a Debian/Ubuntu .deb/.ddeb or an RPM
// kernel-debuginfo package. Everything unpacked goes to scratch space; the input is only read.
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Why an input could not be turned into a vmlinux.
public enum IngestError: Error, Equatable {
    case image(KernelImageError)
    case file(FileAccessError)
    case archive(path: String, reason: String)
    case noVmlinuxInPackage(path: String, looked: [String])
    case noSpace(path: String)
    case io(path: String, reason: String)
    case unsafeMember(path: String, member: String, reason: UnsafeMemberReason)
}

extension IngestError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .image(let e): return e.description
        case .file(let e): return e.description
        case .archive(let path, let reason):
            return "\(path) cannot be unpacked: \(reason); the file is damaged or incomplete (fetch it again)"
        case .noVmlinuxInPackage(let path, let looked):
            return
                "\(path) holds no vmlinux (looked for \(looked.joined(separator: ", "))); pass the debuginfo package (linux-image-<release>-dbg, linux-image-unsigned-<release>-dbgsym, kernel-debuginfo-<release>)"
        case .noSpace(let path):
            return
                "no space left on the device holding \(path); free some space and run the command again (nothing was stored)"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .unsafeMember(let path, let member, let reason):
            return "\(path) holds \(member), \(reason.rawValue); refusing the whole archive (it is damaged or hostile)"
        }
    }
}

/// What a package says about itself.
public struct PackageMetadata: Equatable, Sendable {
    public enum Format: String, Sendable { case deb, rpm }
    public var format: Format
    public var name: String?
    public var version: String?
    public var maintainer: String?
    /// Path of the vmlinux inside the package.
    public var member: String
}

/// A vmlinux ready for the pipeline.
public struct PreparedInput: Sendable {
    /// What the user passed.
    public let source: String
    /// The vmlinux to encode: `source` itself, or a file btfgen unpacked into scratch space.
    public let vmlinux: String
    /// True when `vmlinux` is btfgen's own scratch file (a tool may rewrite it; delete it after).
    public let isPrivate: Bool
    public let package: PackageMetadata?
    /// How the input was wrapped (`vmlinux`, `vmlinux.xz`, `deb`, `rpm`, …), for messages.
    public let container: String
}

public enum Ingest {
    /// Where debuginfo packages keep the vmlinux.
    public static let vmlinuxPatterns = ["usr/lib/debug/boot/vmlinux-*", "usr/lib/debug/lib/modules/*/vmlinux"]

    /// Classify `path` and unpack it into `scratchDirectory` if needed.
    public static func prepare(path: String, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        let kind: FileKind
        do {
            let mapped = try MappedFile(path: path)
            kind = mapped.withBytes { detectKind($0) }
        } catch { throw .file(error) }
        switch kind {
        case .empty: throw .image(.empty(path: path))
        case .bzImage: throw .image(.compressedBootImage(path: path))
        case .elf:
            return PreparedInput(source: path, vmlinux: path, isPrivate: false, package: nil, container: "vmlinux")
        case .unknown: throw .image(.notELF(path: path))
        case .xz, .gzip, .zstd, .bzip2:
            let out = scratchFile(in: scratchDirectory, "vmlinux")
            let reader = try ArchiveReader(path: path, format: .raw)
            guard try reader.next() != nil else { throw .archive(path: path, reason: "no data") }
            try reader.extractCurrent(to: out)
            let inner: FileKind
            do { inner = try MappedFile(path: out).withBytes { detectKind($0) } } catch { throw .file(error) }
            switch inner {
            case .elf:
                return PreparedInput(
                    source: path, vmlinux: out, isPrivate: true, package: nil,
                    container: "compressed vmlinux")
            case .bzImage:
                unlink(out)
                throw .image(.compressedBootImage(path: path))
            case .empty:
                unlink(out)
                throw .image(.empty(path: path))
            default:
                unlink(out)
                throw .image(.notELF(path: path))
            }
        case .debPackage:
            return try extractDeb(path: path, scratchDirectory: scratchDirectory)
        case .rpmPackage:
            return try extractRPM(path: path, scratchDirectory: scratchDirectory)
        }
    }

    static func scratchFile(in dir: URL, _ label: String) -> String {
        dir.appendingPathComponent("\(getpid())-\(UUID().uuidString.prefix(8))-\(label)").path
    }

    /// Does an archive member path (with or without `./`) name a debuginfo vmlinux?
    public static func isVmlinuxMember(_ name: String) -> Bool {
        var p = Substring(name)
        while p.hasPrefix("./") { p = p.dropFirst(2) }
        while p.hasPrefix("/") { p = p.dropFirst() }
        let parts = p.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 5, parts[0] == "usr", parts[1] == "lib", parts[2] == "debug", parts[3] == "boot",
            parts[4].hasPrefix("vmlinux-"), parts[4].count > "vmlinux-".count
        {
            return true
        }
        if parts.count == 7, Array(parts[0..<5]) == ["usr", "lib", "debug", "lib", "modules"], !parts[5].isEmpty,
            parts[6] == "vmlinux"
        {
            return true
        }
        return false
    }

    static func extractDeb(path: String, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        let outer = try ArchiveReader(path: path, format: .ar)
        var control: [String: String] = [:]
        while let member = try outer.next() {
            if member.name.hasPrefix("control.tar") {
                let inner = try ArchiveReader(member: outer, name: member.name, format: .tar)
                while let entry = try inner.next() {
                    if entry.name == "./control" || entry.name == "control" {
                        control = parseControl(String(decoding: try inner.readCurrent(limit: 1 << 20), as: UTF8.self))
                        break
                    }
                }
            } else if member.name.hasPrefix("data.tar") {
                let inner = try ArchiveReader(member: outer, name: member.name, format: .tar)
                while let entry = try inner.next() {
                    guard entry.isRegular, isVmlinuxMember(entry.name) else { continue }
                    let out = scratchFile(in: scratchDirectory, "vmlinux")
                    try inner.extractCurrent(to: out)
                    let meta = PackageMetadata(
                        format: .deb, name: control["Package"], version: control["Version"],
                        maintainer: control["Maintainer"], member: entry.name)
                    return PreparedInput(
                        source: path, vmlinux: out, isPrivate: true, package: meta,
                        container: path.hasSuffix(".ddeb") ? "ddeb" : "deb")
                }
            }
        }
        throw .noVmlinuxInPackage(path: path, looked: vmlinuxPatterns)
    }

    static func extractRPM(path: String, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        // libarchive's rpm filter strips the lead and headers; the payload is a cpio archive.
        let reader = try ArchiveReader(path: path, format: .cpio)
        while let entry = try reader.next() {
            guard entry.isRegular, isVmlinuxMember(entry.name) else { continue }
            let out = scratchFile(in: scratchDirectory, "vmlinux")
            try reader.extractCurrent(to: out)
            let meta = PackageMetadata(format: .rpm, name: nil, version: nil, maintainer: nil, member: entry.name)
            return PreparedInput(source: path, vmlinux: out, isPrivate: true, package: meta, container: "rpm")
        }
        throw .noVmlinuxInPackage(path: path, looked: vmlinuxPatterns)
    }

    /// `Key: value` lines of a Debian control file (continuation lines are skipped).
    static func parseControl(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix(" ") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimming(.whitespaces)
        }
        return fields
    }
}
