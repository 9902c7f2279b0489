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

/// Write all of `bytes` to `fd`, retrying short writes and EINTR; stops at any other error.
package func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
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
