// Writing to standard error without FileHandle.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Write `text` to file descriptor 2 in full (what `FileHandle.standardError.write` did).
package func writeStandardError(_ text: String) {
    writeAll(STDERR_FILENO, Array(text.utf8))
}

/// Write all of `bytes` to `fd`, retrying short writes and EINTR. Returns 0, or the errno of the
/// write that failed (EIO for one that wrote nothing).
@discardableResult
package func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
    bytes.withUnsafeBytes { writeAll(fd, $0) }
}

/// `writeAll` for raw bytes.
@discardableResult
package func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> Int32 {
    var offset = 0
    while offset < raw.count {
        let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
        if n > 0 {
            offset += n
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            return n < 0 ? errno : EIO
        }
    }
    return 0
}

/// Read from `fd` until end of file or an error, handing each chunk (at most `chunk` bytes) to `body`.
package func readChunks(_ fd: Int32, chunk: Int = 64 << 10, _ body: (UnsafeRawBufferPointer) -> Void) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 1)
    defer { buffer.deallocate() }
    while true {
        let n = read(fd, buffer.baseAddress!, chunk)
        if n > 0 {
            body(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            return
        }
    }
}
