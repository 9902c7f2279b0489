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
    /// A device or terminal given as an input: nothing to read a kernel from.
    case notAStream(path: String, kind: String)
    /// A fifo that no process opened for writing within the wait.
    case noWriter(path: String, seconds: Int)
    /// A pipe that went on past `Ingest.streamLimit`.
    case tooLarge(path: String, limit: Int64)
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
        case .notAStream(let path, let kind):
            return
                "\(path) is a \(kind), not a file or a pipe; pass a debuginfo vmlinux or package, or pipe one in (`xz -dc vmlinux.xz | btfgen build /dev/stdin`)"
        case .noWriter(let path, let seconds):
            return
                "\(path) is a fifo that no process opened for writing within \(seconds) s; start the writer first (`xz -dc vmlinux.xz > \(path) &`) or pass the file itself"
        case .tooLarge(let path, let limit):
            return
                "\(path) carried more than \(limit >> 30) GiB, more than any debuginfo kernel or package; btfgen stopped reading it (nothing was stored): pass the kernel's file instead"
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

/// An input opened and classified by its first bytes, before anything is unpacked or copied.
public final class OpenedInput: @unchecked Sendable {
    /// What the user passed.
    public let path: String
    public let kind: FileKind
    /// A path the tools (other processes) can open for the same regular file; nil for a pipe, a
    /// socket, or a file whose name means something else in another process (`/dev/stdin`
    /// redirected from a deleted file).
    let toolPath: String?
    /// The open stream (pipes and sockets are read once) and the bytes already read from it.
    let stream: Int32?
    let head: [UInt8]

    init(path: String, kind: FileKind, toolPath: String?, stream: Int32?, head: [UInt8]) {
        self.path = path
        self.kind = kind
        self.toolPath = toolPath
        self.stream = stream
        self.head = head
    }

    deinit { if let stream { close(stream) } }

    /// True unless the input is a vmlinux the tools can read where it is: then nothing is
    /// unpacked, and the catalog's scratch space is not needed yet.
    public var needsScratch: Bool { kind != .elf || toolPath == nil }
}

public enum Ingest {
    /// Where debuginfo packages keep the vmlinux.
    public static let vmlinuxPatterns = ["usr/lib/debug/boot/vmlinux-*", "usr/lib/debug/lib/modules/*/vmlinux"]

    /// Most bytes read from a pipe: more than any debuginfo kernel or package (the largest are
    /// ~1 GB), so a stream that never ends (`yes | btfgen build /dev/stdin`) is cut off.
    public static let streamLimit: Int64 = 8 << 30
    /// How long a fifo without a writer is waited for before btfgen says so.
    public static let writerWait: Int32 = 10_000

    /// Open and classify `path`: a regular file by its first bytes; a pipe (`/dev/stdin`, a fifo)
    /// by the first bytes read from it; a device or terminal is refused without reading.
    public static func open(path: String) throws(IngestError) -> OpenedInput {
        // O_NONBLOCK: a fifo nobody writes to must not block the open forever.
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw .file(errno == ENOENT ? .missing(path: path) : .unreadable(path: path, errno: errno))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw .file(.unreadable(path: path, errno: code))
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            // The kinds differ in their first bytes (a boot image's header ends at 0x206).
            var head = [UInt8](repeating: 0, count: 4096)
            let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) }
            guard n >= 0 else {
                let code = errno
                close(fd)
                throw .file(.unreadable(path: path, errno: code))
            }
            let kind = head[0..<n].withUnsafeBytes { detectKind($0) }
            // A file the tools cannot open by name is copied from this descriptor instead.
            guard let toolPath = sameFile(path, as: st) else {
                return OpenedInput(path: path, kind: kind, toolPath: nil, stream: fd, head: [])
            }
            close(fd)
            return OpenedInput(path: path, kind: kind, toolPath: toolPath, stream: nil, head: [])
        case S_IFDIR:
            close(fd)
            throw .file(.isDirectory(path: path))
        case S_IFIFO, S_IFSOCK:
            let head: [UInt8]
            do { head = try readHead(fd, path: path) } catch let error {
                close(fd)
                throw error
            }
            return OpenedInput(
                path: path, kind: head.withUnsafeBytes { detectKind($0) }, toolPath: nil, stream: fd, head: head)
        default:
            let terminal = isatty(fd) == 1
            close(fd)
            throw .notAStream(path: path, kind: terminal ? "terminal" : FileAccessError.specialKind(st.st_mode)!)
        }
    }

    /// Classify `path` and unpack it into `scratchDirectory` if needed.
    public static func prepare(path: String, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        try prepare(try open(path: path), scratchDirectory: scratchDirectory)
    }

    /// Turn an opened input into a vmlinux on disk: as it is, or unpacked (or, from a pipe, copied)
    /// into `scratchDirectory`.
    public static func prepare(_ input: OpenedInput, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        let path = input.path
        switch input.kind {
        case .empty: throw .image(.empty(path: path))
        case .bzImage: throw .image(.compressedBootImage(path: path))
        case .unknown: throw .image(.notELF(path: path))
        default: break
        }
        // What the unpackers read: the file itself, or the pipe's bytes saved to scratch.
        let readable: String
        var copy: String? = nil
        if let toolPath = input.toolPath {
            readable = toolPath
        } else {
            let out = scratchFile(in: scratchDirectory, input.kind == .elf ? "vmlinux" : "input")
            try save(input, to: out)
            if input.kind == .elf {
                return PreparedInput(source: path, vmlinux: out, isPrivate: true, package: nil, container: "vmlinux")
            }
            readable = out
            copy = out
        }
        defer { if let copy { unlink(copy) } }
        switch input.kind {
        case .empty, .bzImage, .unknown:
            throw .image(.notELF(path: path))  // handled above
        case .elf:
            return PreparedInput(source: path, vmlinux: readable, isPrivate: false, package: nil, container: "vmlinux")
        case .xz, .gzip, .zstd, .bzip2:
            let out = scratchFile(in: scratchDirectory, "vmlinux")
            let reader = try ArchiveReader(path: readable, format: .raw, label: path)
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
            return try extractDeb(path: readable, label: path, scratchDirectory: scratchDirectory)
        case .rpmPackage:
            return try extractRPM(path: readable, label: path, scratchDirectory: scratchDirectory)
        }
    }

    /// `path` resolved to a name any process can open, if it names the same file btfgen opened:
    /// `/dev/stdin` means pahole's own stdin in pahole.
    static func sameFile(_ path: String, as opened: stat) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let name = String(cString: resolved)
        var st = stat()
        guard !name.hasPrefix("/proc/"), stat(name, &st) == 0, st.st_dev == opened.st_dev, st.st_ino == opened.st_ino
        else { return nil }
        return name
    }

    /// The first 4 KiB of a pipe (enough to tell every kind apart), waiting up to `writerWait` for
    /// a fifo's writer to appear. A reader opened with O_NONBLOCK sees EOF while no writer is
    /// connected and EAGAIN while one is but has not written yet.
    static func readHead(_ fd: Int32, path: String) throws(IngestError) -> [UInt8] {
        var head = [UInt8](repeating: 0, count: 4096)
        var count = 0
        var waitedForWriter = false
        while count < head.count {
            let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n > 0 {
                count += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno != EAGAIN { throw .io(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 && (count > 0 || waitedForWriter) { break }  // the end of the stream
            // No data yet: with a writer connected (EAGAIN) wait as long as it takes; without one
            // (EOF before any byte) give a writer `writerWait` ms to appear.
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let timeout: Int32 = n < 0 ? -1 : writerWait
            let ready = poll(&p, 1, timeout)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { throw .noWriter(path: path, seconds: Int(writerWait / 1000)) }
            if n == 0 { waitedForWriter = true }
        }
        return Array(head[0..<count])
    }

    /// The whole stream (its head, then the rest) into a new scratch file, at most `streamLimit`.
    static func save(_ input: OpenedInput, to out: String) throws(IngestError) {
        guard let fd = input.stream else { throw .io(path: input.path, reason: "not a stream") }
        // The rest is read blocking: the writer is there, and a slow one is not an error.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        let file = Glibc.open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard file >= 0 else {
            throw errno == ENOSPC ? .noSpace(path: out) : .io(path: out, reason: String(cString: strerror(errno)))
        }
        var failure: IngestError? = nil
        var total = Int64(input.head.count)
        var code = writeAll(file, input.head)
        if code == 0 {
            readChunks(fd) { chunk in
                guard failure == nil, code == 0 else { return }
                total += Int64(chunk.count)
                if total > streamLimit {
                    failure = .tooLarge(path: input.path, limit: streamLimit)
                    return
                }
                code = writeAll(file, chunk)
            }
        }
        if code == 0 && failure == nil && fsync(file) != 0 { code = errno }
        close(file)
        if code != 0 {
            let full = code == ENOSPC || code == EDQUOT
            failure = full ? .noSpace(path: out) : .io(path: out, reason: String(cString: strerror(code)))
        }
        if let failure {
            unlink(out)
            throw failure
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

    static func extractDeb(path: String, label: String, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        let outer = try ArchiveReader(path: path, format: .ar, label: label)
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
                        source: label, vmlinux: out, isPrivate: true, package: meta,
                        container: label.hasSuffix(".ddeb") ? "ddeb" : "deb")
                }
            }
        }
        throw .noVmlinuxInPackage(path: label, looked: vmlinuxPatterns)
    }

    static func extractRPM(path: String, label: String, scratchDirectory: URL) throws(IngestError) -> PreparedInput {
        // libarchive's rpm filter strips the lead and headers; the payload is a cpio archive.
        let reader = try ArchiveReader(path: path, format: .cpio, label: label)
        while let entry = try reader.next() {
            guard entry.isRegular, isVmlinuxMember(entry.name) else { continue }
            let out = scratchFile(in: scratchDirectory, "vmlinux")
            try reader.extractCurrent(to: out)
            let meta = PackageMetadata(format: .rpm, name: nil, version: nil, maintainer: nil, member: entry.name)
            return PreparedInput(source: label, vmlinux: out, isPrivate: true, package: meta, container: "rpm")
        }
        throw .noVmlinuxInPackage(path: label, looked: vmlinuxPatterns)
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
