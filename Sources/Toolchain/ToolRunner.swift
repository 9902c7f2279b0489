// Running external tools: arguments are arrays (never shell strings), captured output is bounded,
// and a non-zero exit becomes a ToolError carrying the tool's stderr tail. Tools are started by
// CSpawn so that they die with btfgen.
import CSpawn
import Dispatch
import FoundationEssentials
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Why an external tool could not do its job.
public enum ToolError: Error, Equatable {
    case missing(tool: String, package: String)
    case tooOld(tool: String, found: String, needed: String, package: String)
    case failed(tool: String, arguments: [String], status: Int32, stderrTail: String)
    case killed(tool: String, signal: Int32)
    case unparsableVersion(tool: String, output: String)
    case launchFailed(tool: String, reason: String)
}

extension ToolError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .missing(let tool, let package):
            return
                "\(tool) not found on PATH; install it with `apt-get install \(package)` (or set BTFGEN_\(ToolError.envName(tool)) to its path)"
        case .tooOld(let tool, let found, let needed, let package):
            return "\(tool) \(found) is too old: btfgen needs \(needed) or newer; install a newer \(package)"
        case .failed(let tool, _, let status, let tail):
            let t = tail.trimming(.whitespacesAndNewlines)
            return "\(tool) failed with exit status \(status)"
                + (t.isEmpty ? "" : ": \(t.replacing("\n", with: " | "))")
        case .killed(let tool, let signal):
            return "\(tool) was killed by signal \(signal) (out of memory? try --jobs 1)"
        case .unparsableVersion(let tool, let output):
            return "cannot tell \(tool)'s version from `\(output.prefix(80))`; install the Debian package of it"
        case .launchFailed(let tool, let reason):
            return "cannot run \(tool): \(reason)"
        }
    }

    static func envName(_ tool: String) -> String {
        tool.uppercased().replacing("-", with: "_")
    }
}

/// A finished tool run.
public struct ToolOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs one executable with bounded capture of its output.
public struct ToolRunner: Sendable {
    /// Bytes of stdout kept (the head); stderr keeps its last `stderrLimit` bytes.
    public var stdoutLimit = 1 << 20
    public var stderrLimit = 16 << 10

    public init() {}

    /// Run `executable` with `arguments`; throws `.failed` on a non-zero exit unless `check` is off.
    @discardableResult
    public func run(
        _ executable: String, _ arguments: [String], name: String? = nil,
        check: Bool = true
    ) throws -> ToolOutput {
        let toolName = name ?? URL(fileURLWithPath: executable).lastPathComponent
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        var code = btfgen_pipe(&out)
        if code == 0 {
            code = btfgen_pipe(&err)
            if code != 0 {
                close(out[0])
                close(out[1])
            }
        }
        guard code == 0 else { throw ToolError.launchFailed(tool: toolName, reason: String(cString: strerror(-code))) }
        let pid = ToolRunner.spawn(executable, [toolName] + arguments, stdout: out[1], stderr: err[1])
        close(out[1])
        close(err[1])
        defer {
            close(out[0])
            close(err[0])
        }
        guard pid > 0 else {
            throw ToolError.launchFailed(tool: toolName, reason: String(cString: strerror(-pid)))
        }
        let limits = (stdoutLimit, stderrLimit)
        let errFD = err[0]
        nonisolated(unsafe) var errData: [UInt8] = []
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            keepProcessNice()
            errData = ToolRunner.drain(errFD, keepTail: limits.1)
            group.leave()
        }
        let outData = ToolRunner.drain(out[0], keepHead: limits.0)
        group.wait()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // <sys/wait.h>'s macros: the low 7 bits are the terminating signal, 0 for a normal exit.
        let signal = status & 0x7f
        if signal != 0 { throw ToolError.killed(tool: toolName, signal: signal) }
        let result = ToolOutput(
            status: (status >> 8) & 0xff,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
        if check && result.status != 0 {
            throw ToolError.failed(
                tool: toolName, arguments: arguments, status: result.status,
                stderrTail: ToolRunner.tail(result.stderr.isEmpty ? result.stdout : result.stderr))
        }
        return result
    }

    /// `btfgen_spawn` with Swift strings; the child's argv[0] is the tool's name.
    static func spawn(_ path: String, _ argv: [String], stdout: Int32, stderr: Int32) -> pid_t {
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        return btfgen_spawn(path, &cArgs, stdout, stderr)
    }

    /// The last few lines of a tool's complaint: enough to act on, short enough for one line.
    static func tail(_ text: String, lines: Int = 3) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).joined(separator: "\n")
    }

    /// Read `fd` to its end, keeping the first `keepHead` bytes.
    static func drain(_ fd: Int32, keepHead: Int) -> [UInt8] {
        var kept: [UInt8] = []
        readChunks(fd) { chunk in
            if kept.count < keepHead { kept.append(contentsOf: chunk.prefix(keepHead - kept.count)) }
        }
        return kept
    }

    /// Read `fd` to its end, keeping the last `keepTail` bytes.
    static func drain(_ fd: Int32, keepTail: Int) -> [UInt8] {
        var kept: [UInt8] = []
        readChunks(fd) { chunk in
            kept.append(contentsOf: chunk)
            if kept.count > 2 * keepTail { kept = Array(kept.suffix(keepTail)) }
        }
        return Array(kept.suffix(keepTail))
    }
}

/// Find an executable: `$BTFGEN_<NAME>` first, then each candidate name on PATH.
public func locateTool(_ candidates: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
    -> String?
{
    if let first = candidates.first, let explicit = environment["BTFGEN_\(ToolError.envName(first))"], !explicit.isEmpty
    {
        return FileManager.default.isExecutableFile(atPath: explicit) ? explicit : nil
    }
    let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for name in candidates {
        for dir in path.split(separator: ":") {
            let full = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: full) { return full }
        }
    }
    return nil
}
