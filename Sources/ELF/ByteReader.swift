/// Fixed-width integer loads from a byte buffer in a chosen byte order. Callers check bounds first.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public let littleEndian: Bool

    public init(bytes: UnsafeRawBufferPointer, littleEndian: Bool) {
        self.bytes = bytes
        self.littleEndian = littleEndian
    }

    @inline(__always) public func u8(_ at: Int) -> UInt8 { bytes[at] }

    @inline(__always) public func u16(_ at: Int) -> UInt16 {
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return littleEndian ? UInt16(littleEndian: v) : UInt16(bigEndian: v)
    }

    @inline(__always) public func u32(_ at: Int) -> UInt32 {
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return littleEndian ? UInt32(littleEndian: v) : UInt32(bigEndian: v)
    }

    @inline(__always) public func u64(_ at: Int) -> UInt64 {
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)
        return littleEndian ? UInt64(littleEndian: v) : UInt64(bigEndian: v)
    }
}

/// Lower-case hex of a byte sequence, as `readelf -n` prints build-ids.
public func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits: [Character] = Array("0123456789abcdef")
    var s = ""
    for b in bytes {
        s.append(digits[Int(b >> 4)])
        s.append(digits[Int(b & 0xf)])
    }
    return s
}
