// Reading small archives someone else made (BTFHub tarballs, bundles): every member is checked
// before anything is used. Absolute paths, `..`, symbolic and hard links, devices and fifos are
// refused outright: a BTF archive never needs them, and each is a way out of the target tree.
import Kernel

/// Why an archive member was refused.
public enum UnsafeMemberReason: String, Sendable, Equatable {
    case absolutePath = "an absolute path"
    case parentReference = "a `..` component"
    case link = "a link"
    case specialFile = "a device, fifo or socket"
    case tooLarge = "larger than the limit"
}

/// The regular files of an archive, read into memory after every member passed the checks.
public enum SafeArchive {
    /// Every regular file's relative path and contents. Directories are accepted and skipped.
    /// `limit` bounds each file and the total, so a hostile archive cannot exhaust memory.
    public static func regularFiles(path: String, limit: Int = 256 << 20) throws(IngestError) -> [(name: String, bytes: [UInt8])] {
        let reader = try ArchiveReader(path: path, format: .tar)
        var files: [(String, [UInt8])] = []
        var total = 0
        while let member = try reader.next() {
            if let reason = check(member) { throw .unsafeMember(path: path, member: member.name, reason: reason) }
            if member.isDirectory { continue }
            if member.size > limit || total + Int(member.size) > limit {
                throw .unsafeMember(path: path, member: member.name, reason: .tooLarge)
            }
            let bytes = try reader.readCurrent(limit: limit)
            total += bytes.count
            files.append((normalized(member.name), bytes))
        }
        return files
    }

    /// Nil when the member is safe to use.
    public static func check(_ member: ArchiveMember) -> UnsafeMemberReason? {
        if member.name.hasPrefix("/") { return .absolutePath }
        if member.name.split(separator: "/").contains("..") { return .parentReference }
        if member.isHardlink || member.linkTarget != nil || member.fileType == 0o120000 { return .link }
        if !member.isRegular && !member.isDirectory { return .specialFile }
        return nil
    }

    static func normalized(_ name: String) -> String {
        var p = Substring(name)
        while p.hasPrefix("./") { p = p.dropFirst(2) }
        return String(p)
    }
}
