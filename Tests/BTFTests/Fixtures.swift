// Where the BTF tests find real inputs: the host's vmlinux BTF, the fixture kernels exported by
// scripts/test.sh, and BPF objects built by `make bpf`.
import ELF
import Foundation
import TestSupport
import Testing

/// A kernel BTF available to the tests, with a label for messages.
struct KernelBTF: Sendable, CustomStringConvertible {
    let label: String
    let path: String
    var description: String { label }
}

enum BTFFixtures {
    /// Read a whole file.
    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FixtureMissing(what: path)
        }
        return [UInt8](data)
    }

    /// The host's own BTF.
    static var host: KernelBTF? {
        FileManager.default.isReadableFile(atPath: "/sys/kernel/btf/vmlinux")
            ? KernelBTF(label: "host", path: "/sys/kernel/btf/vmlinux") : nil
    }

    static let cacheDirectory: String = {
        let dir =
            ProcessInfo.processInfo.environment["BTFGEN_TEST_CACHE"]
            ?? (NSTemporaryDirectory() + "btfgen-engine-fixtures")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Debian 6.1's native .BTF, dumped once from BTFGEN_DEBIAN_VMLINUX with llvm-objcopy.
    static var debian: KernelBTF? {
        guard let vmlinux = Fixture.debianVmlinux else { return nil }
        let out = cacheDirectory + "/debian-" + URL(fileURLWithPath: vmlinux).lastPathComponent + ".btf"
        if !FileManager.default.fileExists(atPath: out) {
            let tmp = out + ".tmp"
            guard let r = try? runProcess("llvm-objcopy-14", ["--dump-section", ".BTF=\(tmp)", vmlinux, "/dev/null"]),
                r.status == 0 || FileManager.default.fileExists(atPath: tmp)
            else { return nil }
            try? FileManager.default.moveItem(atPath: tmp, toPath: out)
        }
        return FileManager.default.fileExists(atPath: out) ? KernelBTF(label: "debian-6.1", path: out) : nil
    }

    /// Debian 6.1 arm64's native .BTF, taken once from BTFGEN_DEBIAN_ARM64_VMLINUX. Read with the
    /// ELF module: llvm-objcopy 14 refuses this vmlinux (its .rela.dyn links no symbol table) and
    /// binutils on x86_64 knows no AArch64. bpftool reads the same file, so the comparison with
    /// bpftool does not depend on this reading.
    static var debianArm64: KernelBTF? {
        guard let vmlinux = Fixture.debianArm64Vmlinux else { return nil }
        let out = cacheDirectory + "/debian-" + URL(fileURLWithPath: vmlinux).lastPathComponent + ".btf"
        if !FileManager.default.fileExists(atPath: out) {
            guard let bytes = try? read(vmlinux),
                let btf = try? bytes.withUnsafeBytes({ try btfPayload(of: $0).map { [UInt8]($0) } })
            else { return nil }
            let tmp = out + ".tmp"
            guard (try? Data(btf).write(to: URL(fileURLWithPath: tmp))) != nil else { return nil }
            try? FileManager.default.moveItem(atPath: tmp, toPath: out)
        }
        return FileManager.default.fileExists(atPath: out) ? KernelBTF(label: "debian-6.1-arm64", path: out) : nil
    }

    /// The programs built for arm64 by `make bpf` (bpf/arm64/*.bpf.o).
    static var arm64Objects: [String] {
        let full = Repo.root.appendingPathComponent("bpf/arm64").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []
        return names.filter { $0.hasSuffix(".bpf.o") }.sorted().map { full + "/" + $0 }
    }

    /// The BTF-less test kernel's BTF, generated once with pahole --btf_encode_detached.
    static var testKernel: KernelBTF? {
        guard let vmlinux = Fixture.testVmlinux else { return nil }
        // FNV-1a of the path: stable across runs (String.hashValue is seeded per process).
        let key = vmlinux.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        let out = cacheDirectory + "/testkernel-" + String(key, radix: 16) + ".btf"
        if !FileManager.default.fileExists(atPath: out) {
            let tmp = out + ".tmp"
            guard let r = try? runProcess("pahole", ["--btf_encode_detached=\(tmp)", vmlinux]), r.status == 0 else {
                return nil
            }
            try? FileManager.default.moveItem(atPath: tmp, toPath: out)
        }
        return KernelBTF(label: "test-kernel", path: out)
    }

    /// Every kernel BTF available here.
    static var kernels: [KernelBTF] { [host, debian, testKernel].compactMap { $0 } }

    /// BPF objects built by `make bpf`: bpf/*.bpf.o and bpf/tests/*.bpf.o.
    static var objects: [String] {
        var found: [String] = []
        for dir in ["bpf", "bpf/tests"] {
            let full = Repo.root.appendingPathComponent(dir).path
            let names = (try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []
            found += names.filter { $0.hasSuffix(".bpf.o") }.sorted().map { full + "/" + $0 }
        }
        return found
    }

    /// The objects compiled from bpf/tests (the relocation-kind exercisers).
    static var testObjects: [String] { objects.filter { $0.contains("/bpf/tests/") } }
}

struct FixtureMissing: Error, CustomStringConvertible {
    let what: String
    var description: String { "fixture \(what) is missing" }
}
