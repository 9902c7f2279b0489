// SHA-256 for catalog, bundle and download digests: swift-crypto's (BoringSSL's assembly, which
// uses the CPU's SHA extensions where it has them), linked statically, so the static btfgen that
// runs in a bare initramfs has it too. This type only adapts it to the hex digests btfgen records.
import Crypto

/// Incremental SHA-256 with lower-case hex digests.
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    /// Feed more bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        Array(bytes).withUnsafeBytes { update($0) }
    }

    /// The digest as lower-case hex.
    public mutating func finalizeHex() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for byte in hasher.finalize() {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// SHA-256 of a whole buffer.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var h = SHA256()
        h.update(bytes)
        return h.finalizeHex()
    }
}
