// The rpm-md chain of trust, followed link by link: repodata/repomd.xml (checked with gpgv
// against repomd.xml.asc when a keyring is given) gives the size and SHA256 of the primary
// index, compressed and uncompressed; the primary index gives the size and SHA256 of each
// package file. Only what the previous link vouched for is read.
import Catalog
import FoundationEssentials
import Ingest

/// A repository's repomd.xml: where its metadata files are, with their digests.
public struct RpmRepomd: Sendable, Equatable {
    /// One `<data type="…">` record.
    public struct DataFile: Sendable, Equatable {
        /// Relative to the repository's base URL (`repodata/…-primary.xml.gz`).
        public var location: String
        /// Of the file as stored (compressed).
        public var expected: ExpectedFile
        /// Of its decompressed content, when repomd.xml gives them.
        public var open: ExpectedFile?
    }

    /// By `type` (`primary`, `filelists`, …); only files with a SHA256 and a size are kept.
    public var files: [String: DataFile] = [:]
    /// Types listed with a digest btfgen cannot check (sha1, sha512, …), by type.
    public var unverifiable: [String: String] = [:]

    public init(xml bytes: [UInt8], url: String) throws(SyncError) {
        var offset = 0
        let reader = try XMLStreamReader(label: url) { buffer in
            let n = min(buffer.count, bytes.count - offset)
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + n])) }
            offset += n
            return n
        }
        var sawRoot = false
        // The fields of the <data> record being read.
        var type: String? = nil
        var fields: [String: String] = [:]
        var checksumTypes: [String: String] = [:]
        var field: String? = nil
        while try reader.read() {
            if reader.isElement {
                switch reader.depth {
                case 0:
                    guard reader.localName == "repomd" else {
                        throw .badIndex(url: url, problem: "its root element is <\(reader.localName)>, not <repomd>")
                    }
                    sawRoot = true
                case 1 where reader.localName == "data":
                    type = reader.attribute("type")
                    fields = [:]
                    checksumTypes = [:]
                case 2 where type != nil:
                    let name = reader.localName
                    if name == "location" {
                        fields["location"] = reader.attribute("href")
                    } else if ["checksum", "open-checksum", "size", "open-size"].contains(name) {
                        if let t = reader.attribute("type") { checksumTypes[name] = t.lowercased() }
                        field = reader.isEmptyElement ? nil : name
                        fields[name] = ""
                    }
                default: break
                }
            } else if reader.isText, let f = field {
                fields[f, default: ""] += reader.value
            } else if reader.isEndElement {
                if reader.depth == 2 { field = nil }
                if reader.depth == 1, reader.localName == "data", let t = type {
                    try record(t, fields, checksumTypes, url: url)
                    type = nil
                }
            }
        }
        guard sawRoot else { throw .badIndex(url: url, problem: "it is empty") }
    }

    private mutating func record(
        _ type: String, _ fields: [String: String], _ checksumTypes: [String: String], url: String
    ) throws(SyncError) {
        func digest(_ name: String) -> String? {
            guard let value = fields[name]?.trimming(.whitespacesAndNewlines), value.count == 64,
                value.allSatisfy(\.isHexDigit)
            else { return nil }
            return value.lowercased()
        }
        func number(_ name: String) -> Int? { fields[name].flatMap { Int($0.trimming(.whitespacesAndNewlines)) } }
        guard let location = fields["location"], !location.isEmpty else {
            throw .badIndex(url: url, problem: "its \(type) record has no location")
        }
        let checksumType = checksumTypes["checksum"] ?? "?"
        guard checksumType == "sha256", let sha = digest("checksum"), let size = number("size") else {
            unverifiable[type] = checksumType == "sha256" ? "no size" : checksumType
            return
        }
        var open: ExpectedFile? = nil
        if checksumTypes["open-checksum"] == "sha256", let openSHA = digest("open-checksum"),
            let openSize = number("open-size")
        {
            open = ExpectedFile(size: openSize, sha256: openSHA)
        }
        files[type] = DataFile(location: location, expected: ExpectedFile(size: size, sha256: sha), open: open)
    }

    /// The primary index's record, which every package's digest comes from.
    public func primary(url: String) throws(SyncError) -> DataFile {
        if let p = files["primary"] { return p }
        if let why = unverifiable["primary"] {
            throw .badIndex(
                url: url,
                problem: why == "no size"
                    ? "its primary record gives no size" : "its primary index is checksummed with \(why), not sha256")
        }
        throw .badIndex(url: url, problem: "it lists no primary index")
    }
}

/// One package of a primary index, with what is needed to fetch and verify it.
public struct RpmPackage: Sendable, Equatable {
    public var name: String
    /// rpm's architecture (`x86_64`, `aarch64`).
    public var architecture: String
    public var epoch: String
    public var ver: String
    public var rel: String
    public var sha256: String
    public var size: Int
    /// `<location href>`, relative to `base` or to the repository's base URL.
    public var location: String
    /// `<location xml:base>`: another base URL the package is fetched from.
    public var base: String?

    /// rpm's `[epoch:]version-release`, as `rpm -q` and dnf print it.
    public var version: String { epoch.isEmpty || epoch == "0" ? "\(ver)-\(rel)" : "\(epoch):\(ver)-\(rel)" }

    /// Kernel flavours whose debuginfo package holds a vmlinux: RHEL's `-rt`, `-debug`, `-64k`
    /// (aarch64), `-zfcpdump` (s390x); Oracle's `-uek`; Fedora's `-16k`, `-lpae`; combinations
    /// such as `kernel-rt-debug-debuginfo`, `kernel-uek-debug-debuginfo`.
    static let flavours: Set<Substring> = ["rt", "debug", "64k", "16k", "uek", "zfcpdump", "lpae"]

    /// A kernel debuginfo package: `kernel-debuginfo` (RHEL, CentOS, Alma, Rocky, Fedora, Amazon
    /// Linux), holding `/usr/lib/debug/lib/modules/<release>/vmlinux`, or a flavour's
    /// `kernel-<flavour>-debuginfo`. `kernel-debuginfo-common-<arch>` holds sources, no vmlinux;
    /// `kernel-tools-debuginfo` and the like hold user-space tools.
    public static func isKernelDebuginfo(_ name: String) -> Bool {
        if name == "kernel-debuginfo" { return true }
        guard name.hasPrefix("kernel-"), name.hasSuffix("-debuginfo") else { return false }
        let middle = name.dropFirst("kernel-".count).dropLast("-debuginfo".count)
        return !middle.isEmpty
            && middle.split(separator: "-", omittingEmptySubsequences: false).allSatisfy {
                flavours.contains($0)
            }
    }

    /// The packages of a primary index at `path` (compressed with gzip, xz, zstd or bzip2, or
    /// plain) that `keep` selects by name, read as the file is decompressed. The decompressed
    /// bytes are checked against `open` at the end, and only then returned.
    public static func parsePrimary(
        path: String, url: String, open: ExpectedFile?, keep: (String) -> Bool
    ) throws(SyncError) -> [RpmPackage] {
        let archive: ArchiveReader
        do {
            archive = try ArchiveReader(path: path, format: .raw, label: url)
            guard try archive.next() != nil else { throw SyncError.badIndex(url: url, problem: "it is empty") }
        } catch let e as SyncError {
            throw e
        } catch {
            throw .badIndex(url: url, problem: "it does not decompress (\(error))")
        }
        var hasher = SHA256()
        var total = 0
        let reader = try XMLStreamReader(label: url) { (buffer) throws(SyncError) -> Int in
            let n: Int
            do { n = try archive.readData(into: buffer) } catch {
                throw .badIndex(url: url, problem: "it does not decompress (\(error))")
            }
            if let open, total + n > open.size {
                throw .mismatch(
                    url: url, expected: "\(open.size) bytes decompressed", actual: "more than \(open.size) bytes")
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += n
            return n
        }
        var result: [RpmPackage] = []
        var sawRoot = false
        // The <package> being read: its fields, and whether it is one `keep` wants.
        var fields: [String: String] = [:]
        var wanted = true
        var field: String? = nil
        var advanced = try reader.read()
        while advanced {
            if reader.isElement {
                let name = reader.localName
                switch reader.depth {
                case 0:
                    guard name == "metadata" else {
                        throw .badIndex(url: url, problem: "its root element is <\(name)>, not <metadata>")
                    }
                    sawRoot = true
                case 1 where name == "package":
                    fields = [:]
                    wanted = true
                case 2:
                    // <name> comes first; the rest of a package nobody wants (its <format>
                    // with provides and files is most of the index) is skipped unparsed.
                    if !wanted {
                        advanced = try reader.skipSubtree()
                        continue
                    }
                    switch name {
                    case "name", "arch", "checksum":
                        if name == "checksum" { fields["checksum-type"] = reader.attribute("type") }
                        field = reader.isEmptyElement ? nil : name
                        fields[name] = ""
                    case "version":
                        fields["epoch"] = reader.attribute("epoch") ?? ""
                        fields["ver"] = reader.attribute("ver")
                        fields["rel"] = reader.attribute("rel")
                    case "size": fields["size"] = reader.attribute("package")
                    case "location":
                        fields["location"] = reader.attribute("href")
                        fields["base"] = reader.attribute("xml:base")
                    case "format":
                        advanced = try reader.skipSubtree()
                        continue
                    default: break
                    }
                default: break
                }
            } else if reader.isText, let f = field {
                fields[f, default: ""] += reader.value
            } else if reader.isEndElement {
                if reader.depth == 2 {
                    if field == "name", let n = fields["name"] { wanted = keep(n.trimming(.whitespacesAndNewlines)) }
                    field = nil
                } else if reader.depth == 1, reader.localName == "package", wanted {
                    result.append(try package(fields, url: url))
                }
            }
            advanced = try reader.read()
        }
        guard sawRoot else { throw .badIndex(url: url, problem: "it is empty") }
        if let open {
            let digest = hasher.finalizeHex()
            guard total == open.size, digest == open.sha256 else {
                throw .mismatch(
                    url: url, expected: "\(open.size) bytes, sha256 \(open.sha256) decompressed",
                    actual: "\(total) bytes, sha256 \(digest)")
            }
        }
        return result
    }

    private static func package(_ fields: [String: String], url: String) throws(SyncError) -> RpmPackage {
        let name = fields["name"]?.trimming(.whitespacesAndNewlines) ?? ""
        guard let arch = fields["arch"]?.trimming(.whitespacesAndNewlines), let ver = fields["ver"],
            let rel = fields["rel"], let location = fields["location"], let sizeText = fields["size"],
            let size = Int(sizeText), let sha = fields["checksum"]?.trimming(.whitespacesAndNewlines)
        else {
            throw .badIndex(url: url, problem: "package \(name) lacks arch, version, size, location or checksum")
        }
        guard fields["checksum-type"]?.lowercased() == "sha256", sha.count == 64, sha.allSatisfy(\.isHexDigit) else {
            throw .badIndex(
                url: url,
                problem: "package \(name) is checksummed with \(fields["checksum-type"] ?? "nothing"), not sha256")
        }
        guard !location.hasPrefix("/"), !location.contains("://"), !location.split(separator: "/").contains("..")
        else {
            throw .badIndex(url: url, problem: "package \(name) has location \(location) outside the repository")
        }
        let base = fields["base"].flatMap { $0.isEmpty ? nil : $0 }
        if let base, !base.hasPrefix("http://") && !base.hasPrefix("https://") {
            throw .badIndex(url: url, problem: "package \(name) has xml:base \(base), not an http(s) URL")
        }
        return RpmPackage(
            name: name, architecture: arch, epoch: fields["epoch"] ?? "", ver: ver, rel: rel, sha256: sha.lowercased(),
            size: size, location: location, base: base)
    }
}
