// What `btfgen inspect` reports about a BTF: sizes, a histogram of kinds, the largest types.

/// Per-kind figures.
public struct KindStatistics: Sendable, Hashable {
    public var kind: KindCode
    public var count: Int
    /// Bytes the kind's records take in the type section.
    public var bytes: Int
}

/// One entry of the largest-types list.
public struct TypeSize: Sendable, Hashable {
    public var id: TypeID
    public var kind: KindCode
    public var name: String
    /// Bytes of the type's own record (STRUCT with many members, big ENUMs…).
    public var recordBytes: Int
    /// The C size for sized kinds, else nil.
    public var byteSize: UInt32?
}

/// A readable overview of one BTF.
public struct BTFSummary: Sendable, Hashable {
    public var byteOrder: ByteOrder
    public var headerLength: Int
    public var typeSectionBytes: Int
    public var stringSectionBytes: Int
    public var typeCount: Int
    public var kinds: [KindStatistics]
    public var largest: [TypeSize]

    public var totalBytes: Int { headerLength + typeSectionBytes + stringSectionBytes }

    public init(_ btf: BTF, largest limit: Int = 10) {
        byteOrder = btf.byteOrder
        headerLength = Int(btf.headerLength)
        stringSectionBytes = btf.strings.count
        typeCount = btf.types.count
        var counts = [Int](repeating: 0, count: 20), bytes = [Int](repeating: 0, count: 20)
        var total = 0
        for t in btf.types {
            let k = Int(t.kind.code.rawValue)
            counts[k] += 1
            bytes[k] += t.encodedSize
            total += t.encodedSize
        }
        typeSectionBytes = total
        kinds = KindCode.allCases.filter { counts[Int($0.rawValue)] > 0 }.map {
            KindStatistics(kind: $0, count: counts[Int($0.rawValue)], bytes: bytes[Int($0.rawValue)])
        }
        // Largest by record size; ties by id so the list is stable.
        let order = btf.types.indices.sorted {
            let a = btf.types[$0].encodedSize, b = btf.types[$1].encodedSize
            return a != b ? a > b : $0 < $1
        }
        largest = order.prefix(limit).map { i in
            let t = btf.types[i]
            return TypeSize(
                id: TypeID(UInt32(i + 1)), kind: t.kind.code, name: btf.strings.string(at: t.nameOffset),
                recordBytes: t.encodedSize, byteSize: t.kind.byteSize)
        }
    }
}
