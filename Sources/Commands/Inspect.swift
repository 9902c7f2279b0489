import ArgumentParser
import BTF
import ELF
import FoundationEssentials
import Kernel

extension BTFGen {
    /// `btfgen inspect FILE`: what a BTF holds.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Summarize a BTF: raw .btf, an ELF with .BTF (vmlinux), or a BPF object.")

        @Argument(help: ArgumentHelp("The file to inspect.", valueName: "file"))
        var file: String

        @Option(help: "How many of the largest types to list.")
        var top = 10

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            if top < 0 { throw ValidationError("--top must be 0 or more") }
        }

        struct Report: Encodable {
            struct Kind: Encodable { let kind: String; let count: Int; let bytes: Int }
            struct Large: Encodable {
                let id: UInt32; let kind: String; let name: String; let recordBytes: Int; let size: UInt32?
            }
            let file: String
            let container: String
            let byteOrder: String
            let totalBytes: Int
            let headerBytes: Int
            let typeBytes: Int
            let stringBytes: Int
            let types: Int
            let kinds: [Kind]
            let largest: [Large]
            let coreRelocations: [String: Int]?
        }

        func run() throws {
            let mapped = try reporting { try MappedFile(path: file) }
            let (btf, container, relocations) = try reporting { () throws -> (BTF, String, [String: Int]?) in
                do {
                    if ELFFile.hasMagic(mapped.bytes) {
                        let elf = try ELFFile(bytes: mapped.bytes)
                        if elf.machine == ELFFile.machineBPF {
                            let o = try BPFObject(bytes: mapped.bytes)
                            var byKind: [String: Int] = [:]
                            for r in o.coreRelocations { byKind[r.relocation.kind.name, default: 0] += 1 }
                            return (o.btf, "BPF object", byKind)
                        }
                        return (try loadBTF(from: mapped.bytes), "ELF .BTF section", nil)
                    }
                    return (try BTF(decoding: mapped.bytes), "raw BTF", nil)
                } catch {
                    throw InputFailure("\(file): \(error)")
                }
            }
            let s = BTFSummary(btf, largest: top)
            let report = Report(
                file: file, container: container, byteOrder: s.byteOrder == .little ? "little" : "big",
                totalBytes: s.totalBytes, headerBytes: s.headerLength, typeBytes: s.typeSectionBytes,
                stringBytes: s.stringSectionBytes, types: s.typeCount,
                kinds: s.kinds.map { .init(kind: $0.kind.name, count: $0.count, bytes: $0.bytes) },
                largest: s.largest.map {
                    .init(
                        id: $0.id.rawValue, kind: $0.kind.name, name: $0.name, recordBytes: $0.recordBytes,
                        size: $0.byteSize)
                },
                coreRelocations: relocations)
            if json {
                try printJSON(report)
                return
            }
            print(
                "\(file): \(container), \(report.byteOrder)-endian BTF, \(formatBytes(s.totalBytes)) "
                    + "(types \(formatBytes(s.typeSectionBytes)), strings \(formatBytes(s.stringSectionBytes))), \(s.typeCount) types"
            )
            print("")
            var rows = [["KIND", "COUNT", "BYTES"]]
            rows += s.kinds.map { [$0.kind.name, String($0.count), String($0.bytes)] }
            print(table(rows))
            if !s.largest.isEmpty {
                print("")
                var large = [["ID", "KIND", "NAME", "RECORD", "SIZE"]]
                large += s.largest.map {
                    [
                        String($0.id.rawValue), $0.kind.name, $0.name.isEmpty ? "(anon)" : $0.name,
                        String($0.recordBytes),
                        $0.byteSize.map(String.init) ?? "-",
                    ]
                }
                print(table(large))
            }
            if let relocations, !relocations.isEmpty {
                print("")
                print(
                    "CO-RE relocations: "
                        + relocations.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                )
            }
        }
    }
}
