// `btfgen sync` through a real forward proxy (a second nginx on loopback, its own access log) and
// against real servers that accept the connection and then stall: the proxy variables are
// honoured as libcurl reads them, and a stalled transfer ends with one line, never blocks, and
// leaves nothing half-stored.
import Foundation
import Sync
import TestSupport
import Testing

/// The environment with every proxy variable cleared, then `set` applied: the tests must not
/// depend on (or go through) a proxy the machine running them has.
func proxyEnvironment(_ set: [String: String] = [:]) -> [String: String] {
    var env: [String: String] = [:]
    for v in [
        "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
    ] {
        env[v] = ""
    }
    return env.merging(set) { $1 }
}

/// A fixture server script started on a free port (it writes the port to a file), killed by `stop()`.
struct FixtureServer {
    let process = Process()
    let url: String

    init(_ script: String, _ arguments: [String], portFile: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Repo.root.appendingPathComponent("Tests/SyncTests/Fixtures/\(script)").path] + arguments
        try process.run()
        // Up to 60 s: python3's start on a loaded CI machine took more than the 10 s once allowed.
        var port: String? = nil
        let deadline = Date().addingTimeInterval(60)
        while port == nil && process.isRunning && Date() < deadline {
            port = try? String(contentsOfFile: portFile, encoding: .utf8)
            if port == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        guard let port else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("\(script) did not start (status \(process.terminationStatus))")
            throw CancellationError()
        }
        url = "http://127.0.0.1:\(port)"
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite(
    .serialized,
    .requires(
        .tool("nginx"), .tool("apt-ftparchive"), .tool("dpkg-deb"), .tool("gpg"), .tool("gpgv"), .tool("gcc"),
        .tool("xz"), .tool("python3")))
struct NetworkEdgeTests {
    /// nginx as an HTTP forward proxy: it fetches the absolute URL a client asks it for.
    static func forwardProxy(_ served: ServedRepository) throws -> Nginx {
        try Nginx(
            serving: served.repo.root, scratch: served.dir, name: "proxy",
            server: "location / { proxy_pass http://$http_host$request_uri; }")
    }

    @Test func everyRequestGoesThroughHTTPProxyAndNoneWhenNoProxyNamesTheHost() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let proxy = try Self.forwardProxy(served)
        defer { proxy.stop() }

        let catalog = served.dir.file("kernels")
        let r = try btfgen(
            ["sync", served.line, "--catalog", catalog, "--keyring", served.repo.keyring],
            environment: proxyEnvironment(["http_proxy": proxy.url]))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
        // The proxy logs the absolute URL it was asked for, the server the path it then got.
        let origin = served.nginx.requests()
        #expect(origin.contains { $0.hasSuffix("InRelease") } && origin.contains { $0.hasSuffix(".deb") })
        #expect(proxy.requests() == origin.map { served.nginx.url + $0 }, "\(proxy.requests()) vs \(origin)")

        // no_proxy naming the host: straight to the server, the proxy sees nothing.
        let direct = served.dir.file("direct")
        let before = served.nginx.requests().count
        let d = try btfgen(
            ["sync", served.line, "--catalog", direct, "--keyring", served.repo.keyring],
            environment: proxyEnvironment(["http_proxy": proxy.url, "no_proxy": "127.0.0.1"]))
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try builtPackages(direct).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
        #expect(served.nginx.requests().count > before)
        #expect(proxy.requests().count == origin.count, "no_proxy was not honoured")
    }

    @Test func aProxyThatIsDownFailsTheSyncInOneLineNamingItAndRecordsNothing() throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let closed = "http://127.0.0.1:\(try Nginx.freePort())"
        let catalog = served.dir.file("kernels")
        let r = try btfgen(
            ["sync", served.line, "--catalog", catalog, "--keyring", served.repo.keyring],
            environment: proxyEnvironment(["http_proxy": closed]))
        #expect(r.status != 0)
        #expect(r.stderrLines.count == 1, "\(r.stderr)")
        let line = try #require(r.stderrLines.first)
        #expect(line.contains("through the proxy \(closed) (from http_proxy)"), "\(line)")
        #expect(line.contains(served.nginx.url + "/dists/"), "\(line)")
        #expect(served.nginx.requests().isEmpty)
        // Nothing about the repository's packages was learnt, so nothing is recorded against them.
        #expect(try catalogEntries(catalog).isEmpty)
        #expect(try catalogFailures(catalog).isEmpty)

        // An uppercase HTTP_PROXY is not libcurl's for http (a CGI sets it from a request header):
        // the sync goes direct.
        let upper = try btfgen(
            ["sync", served.line, "--catalog", catalog, "--keyring", served.repo.keyring],
            environment: proxyEnvironment(["HTTP_PROXY": closed]))
        #expect(upper.status == 0, "\(upper.stderr)")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
    }

    /// A server that stalls on the package (silent: sends nothing; partial: headers and half the
    /// body) or on the signed index.
    @Test(arguments: [
        ("silent", "linux-image-6.1.0-90-amd64-dbg_6.1.999-1_amd64.deb"),
        ("partial", "linux-image-6.1.0-90-amd64-dbg_6.1.999-1_amd64.deb"),
        ("silent", "InRelease"),
    ])
    func aStalledTransferEndsWithOneLineAndNothingHalfStored(mode: String, stalled: String) throws {
        let served = try ServedRepository(kernels: [("6.1.0-90-amd64", 1)])
        defer { served.close() }
        let log = served.dir.file("requests.log")
        let server = try FixtureServer(
            "faulty_server.py", [served.repo.root, served.dir.file("port"), log, mode, stalled],
            portFile: served.dir.file("port"))
        defer { server.stop() }
        let catalog = served.dir.file("kernels")
        let started = Date()
        let r = try btfgen(
            [
                "sync", served.repo.sourceLine(server.url), "--catalog", catalog, "--keyring", served.repo.keyring,
                "--timeout", "1",
            ], environment: proxyEnvironment())
        // Two tries of 1 s each, not the server's hour (a generous bound: a loaded CI machine).
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(r.status != 0)
        let url = server.url + (stalled == "InRelease" ? "/dists/bookworm/InRelease" : "/pool/main/l/linux/\(stalled)")
        let lines = r.stderrLines.filter { !$0.contains("] fetching ") }
        #expect(lines.count == 1, "\(r.stderr)")
        let line = try #require(lines.first)
        #expect(line.contains(url), "\(line)")
        #expect(line.contains("the server stalled; `btfgen sync --timeout SECONDS` waits longer"), "\(line)")
        let requests = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter {
            $0.contains(stalled)
        }
        #expect(requests.count == 2, "tried once more: \(requests)")
        if mode == "partial" {
            #expect(requests.last?.contains("bytes=") == true, "the second try did not resume: \(requests)")
        }
        #expect(try catalogEntries(catalog).isEmpty)
        let failures = try catalogFailures(catalog)
        if stalled == "InRelease" {
            // Before any package: nothing to record against one.
            #expect(failures.isEmpty)
        } else {
            // A download failure is recorded (`list --failed` shows it) but not skipped: below.
            #expect(failures.map { $0["stage"] as? String } == ["download"])
        }
        let scratch = catalog + "/.tmp"
        if FileManager.default.fileExists(atPath: scratch) {
            #expect(try FileManager.default.contentsOfDirectory(atPath: scratch) == [], "half-stored")
        }

        // The mirror is well again: the next sync builds the package.
        let again = try served.sync(catalog)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try builtPackages(catalog).keys.sorted() == ["linux-image-6.1.0-90-amd64-dbg"])
    }

    @Test func timeoutTakesAPositiveNumberOfSeconds() throws {
        let r = try btfgen(["sync", "deb http://127.0.0.1:1 bookworm main", "--timeout", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--timeout takes a number of seconds, at least 1"), "\(r.stderr)")
    }
}

@Suite struct ProxyChoiceTests {
    func proxy(_ url: String, _ env: [String: String]) -> String? {
        Downloader.proxy(for: url) { env[$0] }.map { "\($0.variable)=\($0.value)" }
    }

    @Test func theProxyIsChosenAsLibcurlChoosesIt() {
        let p = "http://proxy:3128"
        #expect(proxy("http://h/x", ["http_proxy": p]) == "http_proxy=\(p)")
        #expect(proxy("http://h/x", ["HTTP_PROXY": p]) == nil)
        #expect(proxy("https://h/x", ["HTTPS_PROXY": p]) == "HTTPS_PROXY=\(p)")
        #expect(proxy("https://h/x", ["http_proxy": p]) == nil)
        #expect(proxy("http://h:8080/x", ["ALL_PROXY": p]) == "ALL_PROXY=\(p)")
        #expect(proxy("http://h/x", ["http_proxy": p, "no_proxy": "*"]) == nil)
        #expect(proxy("http://a.example.com:80/x", ["http_proxy": p, "NO_PROXY": "other, .example.com"]) == nil)
        #expect(proxy("http://notexample.com/x", ["http_proxy": p, "no_proxy": "example.com"]) == "http_proxy=\(p)")
        #expect(proxy("http://user@[::1]:80/x", ["http_proxy": p, "no_proxy": "::1"]) == nil)
    }
}
