// Identity of a kernel image on disk, read by our own ELF reader: release and compiler from the
// `Linux version …` banner, architecture from the ELF header, GNU build-id from the notes.
import ELF

/// Why a file is not a usable debuginfo vmlinux.
public enum KernelImageError: Error, Equatable {
    case empty(path: String)
    case compressedBootImage(path: String)
    case notELF(path: String)
    case badELF(path: String, reason: String)
    case noDWARF(path: String)
    case noBanner(path: String)
}

extension KernelImageError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .empty(let path):
            return "\(path) is empty; pass a debuginfo vmlinux or a linux-image-*-dbg / kernel-debuginfo package"
        case .compressedBootImage(let path):
            return
                "\(path) is a compressed boot image (bzImage/vmlinuz) without DWARF; use the debuginfo vmlinux instead: Debian/Ubuntu linux-image-<release>-dbg(sym) (usr/lib/debug/boot/vmlinux-<release>), RHEL/CentOS kernel-debuginfo (usr/lib/debug/lib/modules/<release>/vmlinux), or vmlinux from your kernel build tree"
        case .notELF(let path):
            return
                "\(path) is not an ELF file, a compressed vmlinux (.xz/.gz/.zst) or a .deb/.ddeb/.rpm package; pass a debuginfo vmlinux"
        case .badELF(let path, let reason):
            return "\(path): \(reason); the file is damaged or incomplete (fetch it again)"
        case .noDWARF(let path):
            return
                "\(path) has no DWARF debug info (.debug_info); BTF is generated from DWARF: use the debuginfo vmlinux (e.g. the -dbg/-debuginfo package), or a kernel built with CONFIG_DEBUG_INFO=y"
        case .noBanner(let path):
            return
                "\(path) has DWARF but no `Linux version` banner, so it is not a kernel image (the banner is where btfgen reads the release); pass the kernel's own vmlinux, not a module or another program"
        }
    }
}

/// What we learn from a vmlinux file.
public struct KernelImageInfo: Sendable, Equatable {
    public var release: String?
    public var arch: String
    public var buildID: BuildID?
    public var compiler: String?
    public var banner: String?
    /// Size of `.debug_info` in bytes.
    public var dwarfBytes: UInt64
    /// Size of the image's own `.BTF` section, if it has one (modern distro kernels).
    public var nativeBTFBytes: UInt64?
}

/// Kinds of input file, told apart by their first bytes.
public enum FileKind: Equatable, Sendable {
    case empty
    case elf
    case bzImage
    case xz, gzip, zstd, bzip2
    case debPackage
    case rpmPackage
    case unknown
}

/// Recognise a file by its magic bytes.
public func detectKind(_ bytes: UnsafeRawBufferPointer) -> FileKind {
    func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
        guard bytes.count >= offset + magic.count else { return false }
        for (i, b) in magic.enumerated() where bytes[offset + i] != b { return false }
        return true
    }
    if bytes.isEmpty { return .empty }
    if ELFFile.hasMagic(bytes) { return .elf }
    // x86 boot protocol: 0x55AA at 0x1fe and "HdrS" at 0x202. arm64 Image: "ARMd" at 0x38.
    if starts([0x48, 0x64, 0x72, 0x53], at: 0x202) || starts([0x41, 0x52, 0x4d, 0x64], at: 0x38) { return .bzImage }
    if starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .xz }
    if starts([0x1f, 0x8b]) { return .gzip }
    if starts([0x28, 0xb5, 0x2f, 0xfd]) { return .zstd }
    if starts([0x42, 0x5a, 0x68]) { return .bzip2 }
    if starts(Array("!<arch>\n".utf8)) { return .debPackage }
    if starts([0xed, 0xab, 0xee, 0xdb]) { return .rpmPackage }
    return .unknown
}

extension KernelImageInfo {
    /// Read identity from a mapped vmlinux. Throws for anything that is not a DWARF kernel ELF.
    public static func read(_ file: MappedFile, requireBanner: Bool = true) throws(KernelImageError) -> KernelImageInfo
    {
        let bytes = file.bytes
        switch detectKind(bytes) {
        case .empty: throw .empty(path: file.path)
        case .bzImage: throw .compressedBootImage(path: file.path)
        case .elf: break
        default: throw .notELF(path: file.path)
        }
        let elf: ELFFile
        do { elf = try ELFFile(bytes: bytes) } catch { throw .badELF(path: file.path, reason: "\(error)") }
        let debugInfo = elf.section(named: ".debug_info")
        guard let debugInfo, debugInfo.size > 0, debugInfo.hasFileData else { throw .noDWARF(path: file.path) }
        var buildID: BuildID? = nil
        do {
            if let id = try elf.gnuBuildID(), !id.isEmpty { buildID = BuildID(bytes: id) }
        } catch { throw .badELF(path: file.path, reason: "\(error)") }
        let banner = findBanner(in: elf)
        if requireBanner && banner == nil { throw .noBanner(path: file.path) }
        let parsed = banner.map(Banner.init)
        let btf = elf.section(named: ".BTF").flatMap { $0.size > 0 && $0.hasFileData ? $0.size : nil }
        return KernelImageInfo(
            release: parsed?.release, arch: KernelArch.name(elfMachine: elf.machine),
            buildID: buildID, compiler: parsed?.compiler, banner: banner,
            dwarfBytes: debugInfo.size, nativeBTFBytes: btf)
    }

    /// The `Linux version …` string: `.rodata` first, then every other allocated data section.
    static func findBanner(in elf: ELFFile) -> String? {
        let needle = Array("Linux version ".utf8)
        let preferred = elf.sections.filter { $0.name == ".rodata" }
        let others = elf.sections.filter { $0.name != ".rodata" && $0.type == 1 && ($0.flags & 2) != 0 }
        for section in preferred + others {
            let data = elf.data(of: section)
            var searchFrom = 0
            while searchFrom < data.count,
                let hit = firstOffset(of: needle, in: UnsafeRawBufferPointer(rebasing: data[searchFrom...]))
            {
                let start = searchFrom + hit
                var end = start
                while end < data.count && data[end] != 0 && data[end] != 0x0a && end - start < 512 { end += 1 }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: data[start..<end]), as: UTF8.self)
                // `Linux version %s` format strings are not banners; a release has no '%'.
                if let release = Banner(text).release, !release.isEmpty, !release.contains("%") { return text }
                searchFrom = start + needle.count
            }
        }
        return nil
    }
}

/// `Linux version <release> (<builder>) (<compiler>) <version>` split into its parts.
public struct Banner: Equatable, Sendable {
    public let release: String?
    public let compiler: String?
    /// The `#1 SMP … ` tail (UTS_VERSION).
    public let utsVersion: String?

    public init(_ text: String) {
        let prefix = "Linux version "
        guard text.hasPrefix(prefix) else {
            release = nil; compiler = nil; utsVersion = nil
            return
        }
        let rest = text.dropFirst(prefix.count)
        let rel = rest.prefix { $0 != " " }
        release = rel.isEmpty ? nil : String(rel)
        var groups: [String] = []
        var tail = Substring("")
        var depth = 0
        var current = ""
        var index = rest.index(rest.startIndex, offsetBy: rel.count)
        while index < rest.endIndex {
            let c = rest[index]
            if c == "(" {
                if depth > 0 { current.append(c) }
                depth += 1
            } else if c == ")" && depth > 0 {
                depth -= 1
                if depth == 0 {
                    groups.append(current)
                    current = ""
                } else {
                    current.append(c)
                }
            } else if depth > 0 {
                current.append(c)
            } else if c != " " && groups.count >= 1 {
                tail = rest[index...]
                break
            }
            index = rest.index(after: index)
        }
        compiler = groups.count >= 2 ? groups[1] : nil
        utsVersion = tail.isEmpty ? nil : String(tail)
    }
}
