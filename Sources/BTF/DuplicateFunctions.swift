// Functions pahole's parallel encoder wrote more than once.
//
// pahole 1.24 encodes a function from the first compilation unit that defines it; with `-j`
// every worker thread keeps its own marks, so a function defined in several units (a sys_ni.c
// stub and the real syscall, same-named statics in two files) comes out once per thread that met
// one of its definitions — how many copies, and which, changes from run to run. Given each
// name's definitions in compilation-unit order (ELF's DWARFFunctions, same signature notation),
// `keepingFirstDefinitions` keeps the copy the single-threaded encoder keeps and drops the
// others, with the prototypes only they used.

/// What `keepingFirstDefinitions` did.
public struct FunctionDeduplication: Sendable {
    public let btf: BTF
    /// FUNC and FUNC_PROTO records dropped.
    public let dropped: Int
    /// Names whose copies matched no definition; all their copies were kept.
    public let unresolved: [String]
}

extension BTF {
    /// Names of FUNCs that occur more than once.
    public var duplicatedFunctionNames: Set<String> { Set(functionCopies.keys) }

    /// The indexes (id - 1) of each FUNC name's copies, for names written more than once. Names
    /// are grouped by a hash of their bytes first, so that only the few repeated ones become
    /// Strings (a kernel has some 60,000 FUNCs).
    public var functionCopies: [String: [Int]] {
        var keyed: [(hash: UInt64, index: Int32)] = []
        strings.withUnsafeBytes { s in
            for (i, t) in types.enumerated() {
                guard case .function = t.kind else { continue }
                var h: UInt64 = 0xCBF2_9CE4_8422_2325
                var at = Int(t.nameOffset)
                while at < s.count && s[at] != 0 {
                    h = (h ^ UInt64(s[at])) &* 0x0000_0100_0000_01B3
                    at += 1
                }
                keyed.append((h, Int32(i)))
            }
        }
        keyed.sort { $0.hash < $1.hash }
        var copies: [String: [Int]] = [:]
        var run = 0
        while run < keyed.count {
            var end = run + 1
            while end < keyed.count && keyed[end].hash == keyed[run].hash { end += 1 }
            if end - run > 1 {
                for k in run..<end {
                    let i = Int(keyed[k].index)
                    copies[strings.string(at: types[i].nameOffset), default: []].append(i)
                }
            }
            run = end
        }
        return copies.filter { $0.value.count > 1 }.mapValues { $0.sorted() }
    }

    /// The signature of FUNC `id` in the notation of `DWARFFunctions` (ELF module).
    public func signature(ofFunction id: TypeID) -> String {
        guard let t = type(id), case .function(let proto, _) = t.kind,
            case .functionProto(let returns, let parameters)? = type(proto)?.kind
        else { return "?" }
        var list: [String] = []
        for (i, p) in parameters.enumerated() {
            if i == parameters.count - 1, p.type.isVoid, strings.isEmpty(at: p.nameOffset) {
                list.append("...")
            } else {
                list.append(strings.string(at: p.nameOffset) + ":" + shape(p.type))
            }
        }
        return shape(returns) + "(" + list.joined(separator: ",") + ")"
    }

    func shape(_ id: TypeID, depth: Int = 0) -> String {
        guard let t = type(id) else { return "void" }
        guard depth < 16 else { return "?" }
        let name = strings.string(at: t.nameOffset)
        switch t.kind {
        case .int, .float: return "base:" + name
        case .pointer(let to): return "*" + shape(to, depth: depth + 1)
        case .const(let to): return "c" + shape(to, depth: depth + 1)
        case .volatile(let to): return "v" + shape(to, depth: depth + 1)
        case .restrict(let to): return "r" + shape(to, depth: depth + 1)
        case .typeTag(let to, _): return shape(to, depth: depth + 1)
        case .typedef: return "t:" + name
        case .structure: return "s:" + name
        case .union: return "u:" + name
        case .forward(let isUnion): return (isUnion ? "u:" : "s:") + name
        case .enumeration, .enum64: return "e:" + name
        case .functionProto: return "fn"
        case .array(let element, _, _): return "[]" + shape(element, depth: depth + 1)
        case .function, .variable, .dataSection, .declTag: return "?"
        }
    }

    /// Keep, of each function written more than once, the copies whose signature is the first
    /// in `definitions[name]` (its definitions in compilation-unit order) that any copy has;
    /// drop the other copies and the prototypes nothing else refers to.
    /// `copies`, when given, is `functionCopies` (computed once by a caller that needed it already).
    public func keepingFirstDefinitions(
        _ definitions: [String: [String]], copies: [String: [Int]]? = nil
    ) -> FunctionDeduplication {
        let copies = copies ?? functionCopies
        var doomed = [Bool](repeating: false, count: types.count)
        var unresolved: [String] = []
        for (name, ids) in copies where ids.count > 1 {
            let signatures = ids.map { signature(ofFunction: TypeID(UInt32($0 + 1))) }
            guard Set(signatures).count > 1 else { continue }  // identical copies: canonical order merges them
            guard let first = definitions[name]?.first(where: { signatures.contains($0) }) else {
                unresolved.append(name)
                continue
            }
            for (i, s) in zip(ids, signatures) where s != first { doomed[i] = true }
        }
        // Prototypes only the dropped copies used go with them.
        var users = [Int](repeating: 0, count: types.count + 1)
        for (i, t) in types.enumerated() where !doomed[i] { t.forEachReference { users[Int($0.rawValue)] += 1 } }
        for (i, t) in types.enumerated() where doomed[i] {
            if case .function(let proto, _) = t.kind, !proto.isVoid, users[Int(proto.rawValue)] == 0 {
                doomed[Int(proto.rawValue) - 1] = true
            }
        }
        return FunctionDeduplication(
            btf: removing(doomed), dropped: doomed.filter { $0 }.count, unresolved: unresolved.sorted())
    }

    /// This BTF without the types marked in `doomed` (indexed by id - 1); nothing kept may refer
    /// to them.
    func removing(_ doomed: [Bool]) -> BTF {
        var newID = [UInt32](repeating: 0, count: types.count)
        var next: UInt32 = 1
        for i in types.indices where !doomed[i] {
            newID[i] = next
            next += 1
        }
        var copy = self
        copy.types = types.indices.filter { !doomed[$0] }.map { i in
            types[i].remappingTypes { $0.isVoid ? .void : TypeID(newID[Int($0.rawValue) - 1]) }
        }
        return copy
    }
}
