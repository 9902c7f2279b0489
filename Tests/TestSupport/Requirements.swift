// One way to gate a test on what the machine must have: `@Test(.requires(.root, .hostBTF,
// .fixture("BTFGEN_TEST_VMLINUX"), .tool("qemu-system-x86_64")))`. Where nothing is promised the
// test is skipped, and the skip names what is missing and how to get it. Under
// BTFGEN_REQUIRE_FIXTURES=1 (scripts/test.sh, CI) everything is promised, so a missing capability
// is a failure naming it: a test that cannot run there must never report a pass.
import Foundation
import Testing

/// Something a test needs that a machine may lack, with how to get it.
public struct Requirement: Sendable, CustomStringConvertible {
    /// What is needed, e.g. "root" or "BTFGEN_TEST_VMLINUX".
    public let description: String
    /// Why it is missing here and how to get it; only asked for when `isMet` is false.
    let problem: @Sendable () -> String
    let isMet: @Sendable () -> Bool

    /// A requirement named `description`, met when `isMet` returns true.
    public init(_ description: String, remedy: String, isMet: @escaping @Sendable () -> Bool) {
        self.init(description, problem: { remedy }, isMet: isMet)
    }

    init(_ description: String, problem: @escaping @Sendable () -> String, isMet: @escaping @Sendable () -> Bool) {
        self.description = description
        self.problem = problem
        self.isMet = isMet
    }

    /// "needs X: how to get it", for a skip comment or a failure.
    var missing: String { "needs \(description): \(problem())" }
}

extension Requirement {
    /// Root: loading BPF programs, mounting, mknod.
    public static let root = Requirement("root", remedy: "run the tests as root (CI does)") { geteuid() == 0 }

    /// The running kernel's own BTF at /sys/kernel/btf/vmlinux.
    public static let hostBTF = Requirement(
        "the host kernel's BTF (/sys/kernel/btf/vmlinux)",
        remedy: "run on a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.4 or later)"
    ) { FileManager.default.isReadableFile(atPath: "/sys/kernel/btf/vmlinux") }

    /// The running kernel's ELF notes (its build-id) at /sys/kernel/notes.
    public static let kernelNotes = Requirement(
        "the running kernel's notes (/sys/kernel/notes)", remedy: "mount sysfs at /sys (a container may hide it)"
    ) { FileManager.default.isReadableFile(atPath: "/sys/kernel/notes") }

    /// Every BPF object `make bpf` compiles: a bpf/NAME.bpf.o for each bpf/NAME.bpf.c, and so in bpf/tests.
    public static let bpfObjects = Requirement(
        "the BPF objects (bpf/*.bpf.o, bpf/tests/*.bpf.o)",
        problem: {
            let missing = BPFSources.unbuilt
            let named = missing.prefix(3).joined(separator: ", ") + (missing.count > 3 ? " …" : "")
            return "\(named) not built: run `make bpf`"
        }, isMet: { BPFSources.unbuilt.isEmpty })

    /// A fixture scripts/test.sh exports: the variable is set and, when it names a path, the path exists.
    public static func fixture(_ variable: String) -> Requirement {
        Requirement(
            variable,
            problem: {
                let value = ProcessInfo.processInfo.environment[variable] ?? ""
                var state = value.isEmpty ? "not set" : "\(value) does not exist"
                // A fixture script that cannot provide its fixture says why in <PREFIX>_UNAVAILABLE.
                let group = variable.split(separator: "_").dropLast().joined(separator: "_")
                if let why = ProcessInfo.processInfo.environment[group + "_UNAVAILABLE"], !why.isEmpty {
                    state += " (\(why))"
                }
                let script = Fixture.script(for: variable)
                return "\(state); run \(script) and export what it prints as scripts/test.sh does"
            },
            isMet: {
                guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { return false }
                return !value.hasPrefix("/") || FileManager.default.fileExists(atPath: value)
            })
    }

    /// An executable on PATH.
    public static func tool(_ name: String) -> Requirement {
        Requirement(
            name, remedy: "not on PATH; apt-get install \(Capability.package(providing: name)) (scripts/setup.sh does)"
        ) { Capability.tool(name) }
    }
}

extension Trait where Self == ConditionTrait {
    /// Run the test (or every test of the suite) only where all `requirements` are met.
    ///
    /// Elsewhere the test is skipped with a comment naming each missing requirement and how to get
    /// it; under BTFGEN_REQUIRE_FIXTURES=1 it fails with that text instead, without running.
    public static func requires(_ requirements: Requirement..., sourceLocation: SourceLocation = #_sourceLocation)
        -> Self
    {
        requires(requirements, sourceLocation: sourceLocation)
    }

    /// The same, for a list kept in one place for several tests.
    public static func requires(_ requirements: [Requirement], sourceLocation: SourceLocation = #_sourceLocation)
        -> Self
    {
        let missing = requirements.filter { !$0.isMet() }.map(\.missing)
        if missing.isEmpty { return .enabled(if: true) }
        let text = missing.joined(separator: "; ")
        if Fixture.required {
            return .enabled(Comment(rawValue: text), sourceLocation: sourceLocation) {
                throw MissingRequirement(description: "\(text) (BTFGEN_REQUIRE_FIXTURES=1 promises it)")
            }
        }
        return .enabled(if: false, Comment(rawValue: text), sourceLocation: sourceLocation)
    }
}

/// A requirement CI promised and this machine does not meet.
public struct MissingRequirement: Error, CustomStringConvertible {
    public let description: String
}

/// The BPF sources in the repository and whether each has its object.
enum BPFSources {
    /// Sources whose object `make bpf` has not built, relative to the repository root.
    static var unbuilt: [String] {
        var missing: [String] = []
        for dir in ["bpf", "bpf/tests"] {
            let full = Repo.root.appendingPathComponent(dir).path
            let names = (try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []
            let sources = names.filter { $0.hasSuffix(".bpf.c") }.sorted()
            // No sources at all would make "every object is built" vacuously true.
            if sources.isEmpty { missing.append("\(dir)/*.bpf.c") }
            for s in sources where !FileManager.default.fileExists(atPath: full + "/" + s.dropLast(2) + ".o") {
                missing.append("\(dir)/\(s.dropLast(2)).o")
            }
        }
        return missing
    }
}

extension Fixture {
    /// The script that prepares a fixture variable.
    static func script(for variable: String) -> String {
        switch variable {
        case "BTFGEN_DEBIAN_VMLINUZ": return "scripts/fetch-debian-image.sh"
        case _ where variable.hasPrefix("BTFGEN_DEBIAN_"): return "scripts/fetch-debian-dbg.sh"
        case _ where variable.hasPrefix("BTFGEN_TEST_ARM64_"): return "scripts/build-test-kernel-arm64.sh"
        case _ where variable.hasPrefix("BTFGEN_TEST_"): return "scripts/build-test-kernel.sh"
        case _ where variable.hasPrefix("BTFGEN_OLD_"): return "scripts/fetch-old-libbpf.sh"
        case "BTFGEN_STATIC_BIN": return "scripts/build-static.sh"
        default: return "scripts/test.sh"
        }
    }
}

extension Capability {
    /// The Debian package that installs a tool (scripts/setup.sh installs them all).
    static func package(providing tool: String) -> String {
        switch tool {
        case "qemu-system-x86_64": return "qemu-system-x86"
        case "qemu-system-aarch64": return "qemu-system-arm"
        case "aarch64-linux-gnu-gcc": return "gcc-aarch64-linux-gnu"
        case "busybox": return "busybox-static"
        case "rpmbuild": return "rpm"
        case "createrepo_c": return "createrepo-c"
        case "pahole": return "dwarves"
        case "setpriv", "unshare", "mount": return "util-linux"
        case "apt-ftparchive": return "apt-utils"
        case "gpg": return "gnupg"
        case _ where tool.hasPrefix("llvm-"): return "llvm"
        case "readelf": return "binutils"
        default: return tool
        }
    }
}
