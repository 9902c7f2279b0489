// Small text helpers that Foundation used to provide (FoundationEssentials has none of them):
// trimming by Foundation's character sets, NSString-style padding and printf-style numbers.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The character sets btfgen trims by, with Foundation's `CharacterSet` membership.
package enum TrimSet: Sendable {
    /// `CharacterSet.whitespaces`: Unicode general category Zs, tab and (as Foundation still
    /// counts it) U+200B ZERO WIDTH SPACE.
    case whitespaces
    /// `CharacterSet.newlines`: U+000A–U+000D, U+0085, U+2028, U+2029.
    case newlines
    /// `CharacterSet.whitespacesAndNewlines`: Unicode general category Z*, U+0009–U+000D, U+0085
    /// and U+200B.
    case whitespacesAndNewlines

    func contains(_ s: Unicode.Scalar) -> Bool {
        switch self {
        case .whitespaces:
            return s == "\t" || s.value == 0x200B || s.properties.generalCategory == .spaceSeparator
        case .newlines:
            return (0x0A...0x0D).contains(s.value) || s.value == 0x85 || s.value == 0x2028 || s.value == 0x2029
        case .whitespacesAndNewlines:
            switch s.properties.generalCategory {
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
            default: return (0x09...0x0D).contains(s.value) || s.value == 0x85 || s.value == 0x200B
            }
        }
    }
}

extension StringProtocol {
    /// `trimmingCharacters(in:)`: drops leading and trailing scalars in `set`.
    package func trimming(_ set: TrimSet) -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !set.contains($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !set.contains($0) })!
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars[first...last])
        return String(result)
    }

    /// `padding(toLength:withPad: " ", startingAt: 0)`: spaces up to `length` UTF-16 units, or
    /// the first `length` units of a longer string.
    package func padded(toLength length: Int) -> String {
        let units = utf16.count
        if units >= length { return String(decoding: Array(utf16.prefix(length)), as: UTF16.self) }
        return String(self) + String(repeating: " ", count: length - units)
    }
}

/// `String(format: "%.<digits>f", value)`, formatted by the C library as Foundation did.
package func fixed(_ value: Double, digits: Int) -> String {
    withVaList([value]) { args in
        var buffer = [CChar](repeating: 0, count: 64)
        let n = Int(vsnprintf(&buffer, buffer.count, "%.\(digits)f", args))
        if n >= buffer.count {
            buffer = [CChar](repeating: 0, count: n + 1)
            _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.\(digits)f", $0) }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// `(path as NSString).deletingLastPathComponent`: the path without its last component and
/// trailing slashes; "/" for a file at the root, "" for a bare name.
package func deletingLastPathComponent(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "" }
    var parent = p[..<slash]
    while parent.hasSuffix("/") { parent = parent.dropLast() }
    return parent.isEmpty ? "/" : String(parent)
}
