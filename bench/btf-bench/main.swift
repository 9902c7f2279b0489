// In-process timings for bench/btf-bench.sh: parsing kernel BTF with btfgen's engine against
// libbpf's btf__parse, each including reading the file.
//
//   btfgen-bench parse FILE [ITERATIONS]
//   btfgen-bench canonical FILE [OUT]
import BTF
import ELF
import Foundation
import LibBPF

func readFile(_ path: String) -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("btfgen-bench: cannot read \(path)\n".utf8))
        exit(1)
    }
    return [UInt8](d)
}

func time(_ iterations: Int, _ body: () throws -> Void) rethrows -> [Double] {
    var samples: [Double] = []
    for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return samples.sorted()
}

func median(_ s: [Double]) -> Double { s[s.count / 2] }

let args = CommandLine.arguments
if args.count >= 4, args[1] == "minimize" {
    // btfgen-bench minimize KERNEL OBJECT... : per-stage timings for one kernel.
    let objects = try args[3...].map { try BPFObject(bytes: readFile($0)) }
    let kernel = args[2]
    let bytes = readFile(kernel)
    let read = time(20) { _ = readFile(kernel) }
    let indexV = try time(20) { _ = try BTFIndex(bytes, validate: true) }
    let indexN = try time(20) { _ = try BTFIndex(bytes, validate: false) }
    let index = try BTFIndex(bytes, validate: false)
    let minimize = try time(20) { _ = try index.minimized(for: objects).encoded() }
    let t1 = time(20) { _ = Minimizer(target: index) }
    let t2 = time(20) {
        var m = Minimizer(target: index); m.prepareCandidates(for: objects)
    }
    let t3 = try time(20) {
        var m = Minimizer(target: index); m.prepareCandidates(for: objects); for o in objects { try m.record(o) }
    }
    var mm = Minimizer(target: index); mm.prepareCandidates(for: objects); for o in objects { try mm.record(o) }
    let t4 = time(20) { _ = mm.minimized() }
    let t5 = time(20) { _ = mm.markedTypes }
    print(
        String(
            format: "init %.2f, +prepare %.2f, +record %.2f; minimized() %.2f, markedTypes %.2f", t1[0], t2[0], t3[0],
            t4[0], t5[0]))
    print(
        String(
            format: "read %.2f ms, index validated %.2f ms, index unvalidated %.2f ms, minimize+encode %.2f ms",
            read[0], indexV[0], indexN[0], minimize[0]))
    exit(0)
}
if args.count >= 5, args[1] == "first-definitions" {
    // btfgen-bench first-definitions BTF VMLINUX OUT: drop pahole -j's extra function copies, canonicalize.
    let btf = try BTF(decoding: readFile(args[2]))
    let start = DispatchTime.now().uptimeNanoseconds
    let names = btf.duplicatedFunctionNames
    let vmlinux = readFile(args[3])
    let read = DispatchTime.now().uptimeNanoseconds
    let definitions = try vmlinux.withUnsafeBytes {
        try DWARFFunctions.definitions(in: ELFFile(bytes: $0), named: names)
    }
    let scanned = DispatchTime.now().uptimeNanoseconds
    let d = btf.keepingFirstDefinitions(definitions)
    let c = try d.btf.canonicalized()
    let end = DispatchTime.now().uptimeNanoseconds
    print(
        String(
            format:
                "%d duplicated names, %d found in DWARF; read %.0f ms, scan %.0f ms, dedup+canonical %.0f ms; dropped %d, unresolved %d, %d types",
            names.count, definitions.count, Double(read - start) / 1e6, Double(scanned - read) / 1e6,
            Double(end - scanned) / 1e6, d.dropped, d.unresolved.count, c.btf.types.count))
    for u in d.unresolved.prefix(5) { print("unresolved \(u): \(definitions[u] ?? [])") }
    _ = FileManager.default.createFile(atPath: args[4], contents: Data(c.btf.encoded()))
    exit(0)
}
if args.count >= 3, args[1] == "canonical" {
    // btfgen-bench canonical FILE [OUT]: decode, canonicalize and encode timings; OUT gets the bytes.
    let bytes = readFile(args[2])
    let decode = try time(5) { _ = try BTF(decoding: bytes) }
    let btf = try BTF(decoding: bytes)
    let canon = try time(5) { _ = try btf.canonicalized() }
    let c = try btf.canonicalized()
    let encode = time(5) { _ = c.btf.encoded() }
    print(
        String(
            format: "decode %.1f ms, canonicalize %.1f ms, encode %.1f ms; %d types in, %d out (%d merged), %d rounds",
            decode[0], canon[0], encode[0], c.inputTypes, c.btf.types.count, c.mergedDuplicates, c.rounds))
    if args.count > 3 { _ = FileManager.default.createFile(atPath: args[3], contents: Data(c.btf.encoded())) }
    exit(0)
}
guard args.count >= 3, args[1] == "parse" else {
    FileHandle.standardError.write(Data("usage: btfgen-bench parse FILE [ITERATIONS]\n".utf8))
    exit(2)
}
let path = args[2]
let iterations = args.count > 3 ? Int(args[3]) ?? 50 : 50
// Warm both up (page cache, allocator).
_ = try BTF(decoding: readFile(path))
_ = try LibBPFBTF(path: path)
var types = 0
let ours = try time(iterations) {
    let index = try BTFIndex(readFile(path))
    types = index.typeCount
}
let full = try time(iterations) { _ = try BTF(decoding: readFile(path)) }
let theirs = try time(iterations) { _ = try LibBPFBTF(path: path) }
// Minimum of the samples: the least disturbed run on a shared machine.
let o = ours[0], t = theirs[0], f = full[0]
print(
    String(
        format: "parse %@ (%d types): btfgen BTFIndex (validated) %.2f ms, libbpf btf__parse %.2f ms: ratio %.2fx; "
            + "full model decode %.2f ms (%.2fx) [min of %d runs each]",
        path, types, o, t, o / t, f, f / t, iterations))
if ProcessInfo.processInfo.environment["BTFGEN_BENCH_DETAIL"] != nil {
    let bytes = readFile(path)
    let r = time(iterations) { _ = readFile(path) }
    let d = try time(iterations) { _ = try BTF(decoding: bytes) }
    let e = try time(iterations) { _ = try BTF(decoding: bytes).encoded() }
    print(String(format: "read %.2f ms, decode %.2f ms, decode+encode %.2f ms", median(r), median(d), median(e)))
}
