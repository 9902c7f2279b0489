// HTTP through libcurl: proxies from the usual environment variables (libcurl's default),
// redirects followed (to http/https only), HTTP errors fail the transfer, and a transfer that
// stalls is cut off. A download goes to a `.part` file that is renamed only once it is complete
// and matches the digest the signed index gives it, so nothing half-fetched is ever used.
import CLibCurl
import Catalog
import FoundationEssentials
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What a file must be before it is used.
public struct ExpectedFile: Sendable, Equatable {
    public var size: Int
    public var sha256: String
    public init(size: Int, sha256: String) {
        self.size = size
        self.sha256 = sha256
    }
}

/// Fetches URLs into files with libcurl.
public struct Downloader: Sendable {
    /// Seconds to establish a connection.
    public var connectTimeout = 30
    /// A transfer slower than `lowSpeedBytes` per second for `lowSpeedSeconds` is aborted
    /// (`btfgen sync --timeout` sets the seconds).
    public var lowSpeedBytes = 1024
    public var lowSpeedSeconds = 60
    /// Told the size of each chunk as it is written (the progress display counts them).
    public var onBytes: (@Sendable (Int) -> Void)? = nil

    public init() {}

    /// Fetch `url` into `destination`, verified against `expected` when given. A transfer that
    /// drops after some bytes is resumed once with a Range request; bytes that do not match are
    /// fetched once more from the start; a second failure is thrown, and a full disk at once (a
    /// second attempt would only fetch the same bytes into the same full disk). Returns the bytes
    /// transferred.
    @discardableResult
    public func fetch(_ url: String, to destination: String, expected: ExpectedFile?) throws(SyncError) -> Int {
        let part = destination + ".part"
        unlink(part)
        defer { unlink(part) }
        var transferred = 0
        var lastError: SyncError? = nil
        for attempt in 0..<2 {
            // The second attempt resumes a transfer that dropped midway, else starts over.
            var resume = 0
            if attempt == 1, case .download(_, 0, _) = lastError, let size = fileSize(part), size > 0,
                expected.map({ size < $0.size }) ?? true
            {
                resume = size
            } else {
                unlink(part)
            }
            do {
                transferred += try transfer(url, to: part, resumeFrom: resume)
            } catch {
                if case .noSpace = error { throw error }
                lastError = error
                continue
            }
            if let expected {
                let size = fileSize(part) ?? -1
                if size != expected.size {
                    lastError = .mismatch(url: url, expected: "\(expected.size) bytes", actual: "\(size) bytes")
                    continue
                }
                let digest = try sha256(ofFile: part)
                if digest != expected.sha256.lowercased() {
                    lastError = .mismatch(url: url, expected: "sha256 \(expected.sha256)", actual: "sha256 \(digest)")
                    continue
                }
            }
            guard rename(part, destination) == 0 else {
                throw .io(path: destination, reason: String(cString: strerror(errno)))
            }
            return transferred
        }
        throw lastError!
    }

    /// Fetch a small file (an index) into memory, without a digest to check yet (the signature
    /// or the signed index checks it afterwards).
    public func fetchData(_ url: String, scratch: String, limit: Int = 1 << 30) throws(SyncError) -> [UInt8] {
        try fetch(url, to: scratch, expected: nil)
        defer { unlink(scratch) }
        guard let data = FileManager.default.contents(atPath: scratch) else {
            throw .io(path: scratch, reason: "cannot read back the download")
        }
        return Array(data.prefix(limit))
    }

    /// One libcurl transfer appended to `path`, starting at byte `resumeFrom`.
    func transfer(_ url: String, to path: String, resumeFrom: Int) throws(SyncError) -> Int {
        let api = try LibCurl.get()
        guard let curl = api.pointee.easy_init() else {
            throw .download(url: url, status: 0, reason: "libcurl could not be initialised")
        }
        defer { api.pointee.easy_cleanup(curl) }
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (resumeFrom > 0 ? O_APPEND : O_TRUNC), 0o600)
        guard fd >= 0 else { throw Downloader.writeFailure(errno, path: path) }
        let sink = Sink(fd: fd, onBytes: onBytes)
        defer { close(fd) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            _ = btfgen_curl_set_string(api, curl, CURLOPT_URL, url)
            _ = btfgen_curl_set_string(api, curl, CURLOPT_PROTOCOLS_STR, "http,https")
            _ = btfgen_curl_set_string(api, curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
            _ = btfgen_curl_set_long(api, curl, CURLOPT_FOLLOWLOCATION, 1)
            _ = btfgen_curl_set_long(api, curl, CURLOPT_MAXREDIRS, 10)
            _ = btfgen_curl_set_long(api, curl, CURLOPT_FAILONERROR, 1)
            _ = btfgen_curl_set_long(api, curl, CURLOPT_NOSIGNAL, 1)
            _ = btfgen_curl_set_long(api, curl, CURLOPT_CONNECTTIMEOUT, connectTimeout)
            _ = btfgen_curl_set_long(api, curl, CURLOPT_LOW_SPEED_LIMIT, lowSpeedBytes)
            _ = btfgen_curl_set_long(api, curl, CURLOPT_LOW_SPEED_TIME, lowSpeedSeconds)
            _ = btfgen_curl_set_string(api, curl, CURLOPT_USERAGENT, "btfgen-sync")
            if resumeFrom > 0 {
                _ = btfgen_curl_set_offset(api, curl, CURLOPT_RESUME_FROM_LARGE, curl_off_t(resumeFrom))
            }
            _ = btfgen_curl_set_pointer(api, curl, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            _ = btfgen_curl_set_write_function(api, curl, writeToSink)
            _ = btfgen_curl_set_pointer(api, curl, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
            return api.pointee.easy_perform(curl)
        }
        var status = 0
        btfgen_curl_get_long(api, curl, CURLINFO_RESPONSE_CODE, &status)
        if sink.failure != 0 {
            // The part file goes before the free space is measured: it is what the next try needs.
            unlink(path)
            throw Downloader.writeFailure(sink.failure, path: path)
        }
        guard code == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let reason =
                detail.isEmpty
                ? (api.pointee.easy_strerror(code).map { String(cString: $0) } ?? "libcurl error \(code.rawValue)")
                : detail
            if code == CURLE_HTTP_RETURNED_ERROR { throw .download(url: url, status: status, reason: reason) }
            var said = reason
            if code == CURLE_OPERATION_TIMEDOUT {
                said += " (the server stalled; `btfgen sync --timeout SECONDS` waits longer)"
            }
            // libcurl names the proxy's address as if it were the server's: say it is the proxy.
            if let (variable, proxy) = Downloader.proxy(for: url) {
                said = "through the proxy \(proxy) (from \(variable)): \(said)"
            }
            throw .download(url: url, status: 0, reason: said)
        }
        // A server that ignores Range sends the whole file again with 200: start the file over.
        if resumeFrom > 0 && status == 200 {
            throw .download(url: url, status: 0, reason: "the server does not resume (sent the whole file)")
        }
        return sink.written
    }
}

/// libcurl's functions, resolved from libcurl.so.4 on first use and kept for the process.
private enum LibCurl {
    static let shared = LoadedLibrary(
        empty: btfgen_curl_api(), load: btfgen_curl_load,
        ready: { $0.pointee.global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK })

    static func get() throws(SyncError) -> UnsafeMutablePointer<btfgen_curl_api> {
        guard let api = shared.table else {
            throw .libcurlMissing(reason: shared.failure.isEmpty ? "curl_global_init failed" : shared.failure)
        }
        return api
    }
}

extension Downloader {
    /// The proxy libcurl takes for `url` from the environment, and the variable naming it, as
    /// libcurl chooses: `no_proxy`/`NO_PROXY` first, then `http_proxy` (lowercase only, as an
    /// uppercase one may come from a CGI request header) or `https_proxy`/`HTTPS_PROXY`, then
    /// `all_proxy`/`ALL_PROXY`. Only used to say which proxy a failed transfer went through.
    public static func proxy(
        for url: String, environment: (String) -> String? = { getenv($0).map { String(cString: $0) } }
    )
        -> (variable: String, value: String)?
    {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var host = String(url[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        host = host.lowercased()
        let noProxy = environment("no_proxy") ?? environment("NO_PROXY") ?? ""
        for entry in noProxy.split(whereSeparator: { $0 == "," || $0 == " " }) {
            var name = entry.lowercased()
            if name == "*" { return nil }
            if name.hasPrefix(".") { name.removeFirst() }
            if host == name || host.hasSuffix("." + name) { return nil }
        }
        let names = scheme == "https" ? ["https_proxy", "HTTPS_PROXY"] : ["\(scheme)_proxy"]
        for variable in names + ["all_proxy", "ALL_PROXY"] {
            if let value = environment(variable), !value.isEmpty { return (variable, value) }
        }
        return nil
    }

    /// A write into `path` that failed with `code`: a full disk (or quota) is said as one, with
    /// the filesystem and what is free there.
    static func writeFailure(_ code: Int32, path: String) -> SyncError {
        if code == ENOSPC || code == EDQUOT {
            return .noSpace(FileSystemSpace(holding: path), needed: nil, what: "writing \(path)")
        }
        return .io(path: path, reason: String(cString: strerror(code)))
    }
}

/// Where libcurl's write callback puts the bytes.
private final class Sink {
    let fd: Int32
    let onBytes: (@Sendable (Int) -> Void)?
    var written = 0
    var failure: Int32 = 0
    init(fd: Int32, onBytes: (@Sendable (Int) -> Void)?) {
        self.fd = fd
        self.onBytes = onBytes
    }
}

private let writeToSink: btfgen_curl_write_callback = { data, size, count, context in
    let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
    let total = size * count
    var offset = 0
    while offset < total {
        let n = write(sink.fd, data! + offset, total - offset)
        if n < 0 {
            if errno == EINTR { continue }
            sink.failure = errno
            return 0  // libcurl aborts the transfer
        }
        offset += n
    }
    sink.written += total
    sink.onBytes?(total)
    return total
}

func fileSize(_ path: String) -> Int? {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : nil
}

/// SHA256 of a file, read in chunks.
func sha256(ofFile path: String) throws(SyncError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var hasher = SHA256()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .io(path: path, reason: String(cString: strerror(errno)))
        }
        if n == 0 { break }
        buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
    return hasher.finalizeHex()
}
