// The three tools of the pipeline (seed 004): pahole turns DWARF into BTF, llvm-objcopy keeps
// only the .BTF section, strip drops the rest of the symbols. Versions are probed once.
import FoundationEssentials
import SystemSupport

/// A dotted version such as pahole's `v1.24` or LLVM's `14.0.6`.
public struct ToolVersion: Comparable, Sendable, CustomStringConvertible, Codable, Hashable {
    public let parts: [Int]

    public init(_ parts: [Int]) { self.parts = parts }

    /// The first `N.N[.N]` run in `text`.
    public init?(parsing text: String) {
        var digits: [Int] = []
        var current = ""
        var started = false
        for c in text {
            if c.isNumber {
                current.append(c)
                started = true
            } else if c == "." && started && !current.isEmpty {
                digits.append(Int(current)!)
                current = ""
            } else if started {
                break
            }
        }
        if !current.isEmpty { digits.append(Int(current)!) }
        guard digits.count >= 2 else { return nil }
        parts = digits
    }

    public var description: String { parts.map(String.init).joined(separator: ".") }

    /// `1.16` and `1.16.0` are the same version.
    public static func == (a: ToolVersion, b: ToolVersion) -> Bool { a.trimmed == b.trimmed }

    public func hash(into hasher: inout Hasher) { hasher.combine(trimmed) }

    private var trimmed: [Int] {
        var p = parts
        while p.count > 1, p.last == 0 { p.removeLast() }
        return p
    }

    public static func < (a: ToolVersion, b: ToolVersion) -> Bool {
        for i in 0..<max(a.parts.count, b.parts.count) {
            let x = i < a.parts.count ? a.parts[i] : 0
            let y = i < b.parts.count ? b.parts[i] : 0
            if x != y { return x < y }
        }
        return false
    }
}

/// One located tool and its version.
public struct Tool: Sendable, Equatable {
    public let name: String
    public let path: String
    public let version: ToolVersion
    /// The version line as the tool printed it.
    public let versionText: String
}

/// How to turn DWARF into a catalog BTF file.
public enum BuildMethod: String, CaseIterable, Sendable, Codable {
    /// `pahole --btf_encode_detached=OUT VMLINUX`: raw BTF straight out, the input untouched.
    case detached
    /// `pahole -J COPY; llvm-objcopy --only-section=.BTF …; strip -x`: the seed 004 pipeline.
    case objcopy
}

/// The located pipeline tools, probed once per process.
public struct Toolchain: Sendable {
    public let pahole: Tool
    public let llvmObjcopy: Tool?
    public let strip: Tool?

    /// pahole 1.16 is the first that encodes kernel BTF usable by libbpf's CO-RE (seed 004).
    public static let minimumPahole = ToolVersion([1, 16])
    /// `--btf_encode_detached` appeared in pahole 1.20.
    public static let detachedPahole = ToolVersion([1, 20])

    public static let paholePackage = "dwarves"
    public static let llvmPackage = "llvm"
    public static let stripPackage = "binutils"

    /// Locate and version every tool. pahole is required; the other two only for `.objcopy`.
    public static func probe(runner: ToolRunner = ToolRunner()) throws -> Toolchain {
        guard let paholePath = locateTool(["pahole"]) else {
            throw ToolError.missing(tool: "pahole", package: paholePackage)
        }
        let pahole = try version(of: "pahole", at: paholePath, arguments: ["--version"], runner: runner)
        guard pahole.version >= minimumPahole else {
            throw ToolError.tooOld(
                tool: "pahole", found: pahole.version.description,
                needed: minimumPahole.description, package: paholePackage)
        }
        let objcopy = try locateTool(["llvm-objcopy"] + (11...20).reversed().map { "llvm-objcopy-\($0)" })
            .map {
                try version(of: "llvm-objcopy", at: $0, arguments: ["--version"], runner: runner, line: "LLVM version")
            }
        let strip = try locateTool(["strip"]).map {
            try version(of: "strip", at: $0, arguments: ["--version"], runner: runner)
        }
        return Toolchain(pahole: pahole, llvmObjcopy: objcopy, strip: strip)
    }

    static func version(
        of name: String, at path: String, arguments: [String], runner: ToolRunner,
        line marker: String? = nil
    ) throws -> Tool {
        let out = try runner.run(path, arguments, name: name)
        let lines = out.stdout.split(separator: "\n").map(String.init)
        let line = marker.flatMap { m in lines.first { $0.contains(m) } } ?? lines.first ?? ""
        // GNU tools print `GNU strip (GNU Binutils for Debian) 2.40`: the version is the last word.
        let candidate = name == "strip" ? String(line.split(separator: " ").last ?? "") : line
        guard let v = ToolVersion(parsing: candidate) ?? ToolVersion(parsing: line) else {
            throw ToolError.unparsableVersion(tool: name, output: out.stdout)
        }
        return Tool(name: name, path: path, version: v, versionText: line.trimming(.whitespaces))
    }

    /// The tools `method` needs, or the error telling the user what to install.
    public func require(_ method: BuildMethod) throws {
        switch method {
        case .detached:
            guard pahole.version >= Toolchain.detachedPahole else {
                throw ToolError.tooOld(
                    tool: "pahole", found: pahole.version.description,
                    needed: "\(Toolchain.detachedPahole) (for --method detached; or use --method objcopy)",
                    package: Toolchain.paholePackage)
            }
        case .objcopy:
            guard llvmObjcopy != nil else {
                throw ToolError.missing(tool: "llvm-objcopy", package: Toolchain.llvmPackage)
            }
            guard strip != nil else { throw ToolError.missing(tool: "strip", package: Toolchain.stripPackage) }
        }
    }

    /// The method used when the user does not choose: detached is faster (no copy of the input,
    /// no rewrite, no objcopy/strip passes) and gives the same types (see BuildTests); objcopy is
    /// the fallback for pahole older than 1.20.
    public var defaultMethod: BuildMethod {
        pahole.version >= Toolchain.detachedPahole ? .detached : .objcopy
    }

    /// pahole's encoding flags for its version, as the kernel's scripts/pahole-flags.sh picks them.
    /// `parallel` adds `-j` (one thread per core): faster, but its output varies from run to run
    /// until the builder rewrites it (canonical order, first definitions of duplicated functions).
    public func paholeFlags(parallel: Bool) -> [String] {
        let v = pahole.version
        var flags: [String] = []
        if v >= ToolVersion([1, 18]) && v <= ToolVersion([1, 21]) {
            flags.append("--skip_encoding_btf_vars")  // zero-sized per-CPU vars crash older encoders
        }
        if v >= ToolVersion([1, 21]) { flags.append("--btf_gen_floats") }
        if parallel && v >= ToolVersion([1, 22]) { flags.append("-j") }
        if v >= ToolVersion([1, 24]) { flags.append("--lang_exclude=rust") }
        if v >= ToolVersion([1, 25]) {
            flags += ["--skip_encoding_btf_inconsistent_proto", "--btf_gen_optimized"]
        }
        return flags
    }
}
