// A seeded mutation fuzzer for the BTF engine: it mutates real BTF and BPF objects and feeds them
// to every entry point (BTF decode/encode, .BTF.ext and object reading, CO-RE resolution,
// minimizing, compat rewriting, summaries). A crash or trap kills the process (the script sees
// the signal); a broken invariant or an input taking over a second is reported, saved, and
// makes the exit status 1.
//
//   btf-fuzz --seconds N [--seed S] [--out DIR] FILE...
// FILEs are BPF objects (*.o) and kernel BTFs (anything else); each becomes a seed, and kernel
// BTFs are also minimized for the objects to give small, realistic BTF seeds.
import BTF
import Foundation

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("btf-fuzz: \(message)\n".utf8))
    exit(2)
}

var seconds = 10.0
var seed: UInt64 = 1
var outDir = "fuzz-findings"
var files: [String] = []
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--seconds":
        guard let v = Double(args.popFirst() ?? "") else { fail("--seconds needs a number") }
        seconds = v
    case "--seed":
        guard let v = UInt64(args.popFirst() ?? "") else { fail("--seed needs a number") }
        seed = v
    case "--out":
        guard let v = args.popFirst() else { fail("--out needs a directory") }
        outDir = v
    default: files.append(a)
    }
}
if files.isEmpty { fail("usage: btf-fuzz --seconds N [--seed S] [--out DIR] FILE...") }

func read(_ path: String) -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    return [UInt8](d)
}

// Seeds and a fixed small target for resolving mutated objects.
var objects: [BPFObject] = []
var btfSeeds: [[UInt8]] = []
var objectSeeds: [[UInt8]] = []
var kernels: [BTF] = []
for f in files {
    let bytes = read(f)
    if f.hasSuffix(".o") {
        guard let o = try? BPFObject(bytes: bytes) else { fail("\(f) is not a readable BPF object") }
        objects.append(o)
        objectSeeds.append(bytes)
        btfSeeds.append(o.btf.encoded())
    } else {
        guard let k = try? bytes.withUnsafeBytes({ try BTF(loading: $0) }) else { fail("\(f) is not readable BTF") }
        kernels.append(k)
    }
}
var targets: [BTF] = []
for k in kernels {
    if let small = try? k.minimized(for: objects) {
        btfSeeds.append(small.encoded())
        btfSeeds.append(small.compatible(with: .libbpf0).encoded())
        targets.append(small)
    }
}
if targets.isEmpty, let first = objects.first { targets.append(first.btf) }

/// One input through every entry point. Returns a broken invariant, if any.
@MainActor func exercise(btf bytes: [UInt8]) -> String? {
    // The lazy index (what `btfgen minimize` uses) must survive anything, validated or not.
    if let index = try? BTFIndex(bytes, validate: false) {
        _ = try? index.minimized(for: objects)
        for id in stride(from: 0, through: index.typeCount, by: max(1, index.typeCount / 64)) {
            _ = index.type(TypeID(UInt32(id)))
        }
    }
    let validated = (try? BTFIndex(bytes)) != nil
    guard let btf = try? BTF(decoding: bytes) else {
        return validated ? "BTFIndex accepts what BTF(decoding:) rejects" : nil
    }
    if !validated { return "BTFIndex rejects what BTF(decoding:) accepts" }
    // Accepted input must re-encode to exactly itself.
    if btf.encoded() != bytes { return "decode→encode is not the identity" }
    for id in btf.ids {
        _ = btf.skippingModifiers(id)
        _ = btf.resolvedSize(id, pointerSize: 8)
    }
    _ = BTFSummary(btf)
    let compat = btf.compatible(with: .libbpf0)
    if (try? BTF(decoding: compat.encoded())) != compat { return "compat output does not decode to itself" }
    // As a CO-RE target for the real objects.
    if let small = try? btf.minimized(for: objects) {
        if (try? BTF(decoding: small.encoded())) != small { return "minimized output does not decode to itself" }
    }
    return nil
}

@MainActor func exercise(object bytes: [UInt8]) -> String? {
    guard let object = try? BPFObject(bytes: bytes) else { return nil }
    for t in targets {
        var r = CoreResolver(target: t)
        _ = try? r.resolve(object)
        if let small = try? t.minimized(for: [object]) {
            if (try? BTF(decoding: small.encoded())) != small { return "minimized output does not decode to itself" }
        }
    }
    return exercise(btf: object.btf.encoded())
}

let interesting32: [UInt32] = [
    0, 1, 2, 3, 4, 7, 8, 12, 16, 19, 20, 31, 32, 64, 0x7f, 0x80, 0xff, 0xffff, 0x1_0000,
    0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff, 0x0100_0000, 0x1300_0000, 0x8400_0001,
]

func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var b = input
    let rounds = Int.random(in: 1...4, using: &rng)
    for _ in 0..<rounds {
        guard !b.isEmpty else { return [UInt8].random(count: 32, using: &rng) }
        switch Int.random(in: 0..<8, using: &rng) {
        case 0:  // flip a bit
            let i = Int.random(in: 0..<b.count, using: &rng)
            b[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 1:  // random byte
            b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 2, 3:  // interesting aligned u32 (type ids, vlen, kinds, offsets)
            guard b.count >= 4 else { continue }
            let i = Int.random(in: 0..<(b.count / 4), using: &rng) * 4
            var v = interesting32.randomElement(using: &rng)!
            if Bool.random(using: &rng) { v = v &+ UInt32(i / 4) }
            for k in 0..<4 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        case 4:  // truncate
            b.removeLast(Int.random(in: 0...min(b.count, 64), using: &rng))
        case 5:  // duplicate a chunk
            let i = Int.random(in: 0..<b.count, using: &rng)
            let n = Int.random(in: 1...min(64, b.count - i), using: &rng)
            b.insert(contentsOf: b[i..<i + n], at: Int.random(in: 0...b.count, using: &rng))
        case 6:  // delete a chunk
            let i = Int.random(in: 0..<b.count, using: &rng)
            b.removeSubrange(i..<min(b.count, i + Int.random(in: 1...16, using: &rng)))
        default:  // small arithmetic on a u32
            guard b.count >= 4 else { continue }
            let i = Int.random(in: 0...(b.count - 4), using: &rng)
            var v = UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
            v = v &+ UInt32(bitPattern: Int32.random(in: -16...16, using: &rng))
            for k in 0..<4 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        }
    }
    return b
}

extension Array where Element == UInt8 {
    static func random(count: Int, using rng: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
}

@MainActor func save(_ bytes: [UInt8], _ why: String, _ n: Int) {
    try? FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
    let path = "\(outDir)/finding-\(seed)-\(n).bin"
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    FileHandle.standardError.write(Data("btf-fuzz: \(why); input saved to \(path)\n".utf8))
}

var rng = SplitMix64(state: seed)
let start = Date()
var executions = 0, accepted = 0, findings = 0
// Keep accepted mutants as new seeds (bounded), so mutations compound past the header checks.
var pool: [(bytes: [UInt8], isObject: Bool)] = btfSeeds.map { ($0, false) } + objectSeeds.map { ($0, true) }
let initialPool = pool.count
while Date().timeIntervalSince(start) < seconds {
    let pick = pool.randomElement(using: &rng)!
    let input = mutate(pick.bytes, &rng)
    let t0 = Date()
    let problem = pick.isObject ? exercise(object: input) : exercise(btf: input)
    let took = Date().timeIntervalSince(t0)
    executions += 1
    if let problem {
        findings += 1
        save(input, problem, executions)
    } else if took > 1.0 {
        findings += 1
        save(input, "input took \(Int(took * 1000)) ms", executions)
    }
    if !pick.isObject, (try? BTF(decoding: input)) != nil {
        accepted += 1
        if pool.count < initialPool + 512 { pool.append((input, false)) }
    }
}
print(
    "btf-fuzz: \(executions) executions in \(Int(seconds)) s (seed \(seed)), \(accepted) mutants accepted as valid BTF, \(findings) findings"
)
exit(findings == 0 ? 0 : 1)
