// The tools that turn a debuginfo vmlinux into BTF: pahole encodes the DWARF as BTF (straight
// to a file with --btf_encode_detached, or into a .BTF section of a vmlinux copy with -J), and
// for the latter llvm-objcopy keeps only the .BTF section and strip drops the remaining symbols.
// Versions are probed once.
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

/// What probing found for each tool: pahole (required), llvm-objcopy and strip (nil: not installed).
public struct ToolProbe: Sendable {
    public let pahole: Result<Tool, ToolError>
    public let llvmObjcopy: Result<Tool?, ToolError>
    public let strip: Result<Tool?, ToolError>

    /// The toolchain when pahole works (a broken llvm-objcopy or strip counts as absent); nil without pahole.
    public var usable: Toolchain? {
        guard case .success(let pahole) = pahole else { return nil }
        return Toolchain(
            pahole: pahole, llvmObjcopy: (try? llvmObjcopy.get()) ?? nil, strip: (try? strip.get()) ?? nil)
    }
}

/// How to turn DWARF into a catalog BTF file.
public enum BuildMethod: String, CaseIterable, Sendable, Codable {
    /// `pahole --btf_encode_detached=OUT VMLINUX`: raw BTF straight out, the input untouched.
    case detached
    /// `pahole -J COPY; llvm-objcopy --only-section=.BTF …; strip -x`: the BTF in a small ELF
    /// (BTFHub's format), for a pahole older than 1.20 that cannot write raw BTF.
    case objcopy
}

/// The located pipeline tools, probed once per process.
public struct Toolchain: Sendable {
    public let pahole: Tool
    public let llvmObjcopy: Tool?
    public let strip: Tool?

    /// pahole 1.16 is the oldest that Linux's own build accepts for CONFIG_DEBUG_INFO_BTF.
    public static let minimumPahole = ToolVersion([1, 16])
    /// `--btf_encode_detached` appeared in pahole 1.20.
    public static let detachedPahole = ToolVersion([1, 20])

    public static let paholePackage = "dwarves"
    public static let llvmPackage = "llvm"
    public static let stripPackage = "binutils"

    /// Locate and version every tool. pahole is required; the other two only for `.objcopy`.
    public static func probe(runner: ToolRunner = ToolRunner()) throws -> Toolchain {
        let each = probeEach(runner: runner)
        return Toolchain(
            pahole: try each.pahole.get(), llvmObjcopy: try each.llvmObjcopy.get(), strip: try each.strip.get())
    }

    /// Each tool on its own: one missing or broken tool does not hide what is known of the others
    /// (`btfgen doctor` reports every row).
    public static func probeEach(runner: ToolRunner = ToolRunner()) -> ToolProbe {
        let pahole = Result { () throws(ToolError) -> Tool in
            guard let path = locateTool(["pahole"]) else { throw .missing(tool: "pahole", package: paholePackage) }
            let pahole = try version(of: "pahole", at: path, arguments: ["--version"], runner: runner)
            guard pahole.version >= minimumPahole else {
                throw .tooOld(
                    tool: "pahole", found: pahole.version.description,
                    needed: minimumPahole.description, package: paholePackage)
            }
            return pahole
        }
        let objcopy = Result { () throws(ToolError) -> Tool? in
            guard let path = locateTool(["llvm-objcopy"] + (11...20).reversed().map { "llvm-objcopy-\($0)" }) else {
                return nil
            }
            return try version(
                of: "llvm-objcopy", at: path, arguments: ["--version"], runner: runner, line: "LLVM version")
        }
        let strip = Result { () throws(ToolError) -> Tool? in
            guard let path = locateTool(["strip"]) else { return nil }
            return try version(of: "strip", at: path, arguments: ["--version"], runner: runner)
        }
        return ToolProbe(pahole: pahole, llvmObjcopy: objcopy, strip: strip)
    }

    static func version(
        of name: String, at path: String, arguments: [String], runner: ToolRunner,
        line marker: String? = nil
    ) throws(ToolError) -> Tool {
        let out: ToolOutput
        do { out = try runner.run(path, arguments, name: name) } catch let e as ToolError { throw e } catch {
            throw .launchFailed(tool: name, reason: describe(error))
        }
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
