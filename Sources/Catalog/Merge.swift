// `btfgen catalog merge`: the union of catalogs built apart (the shards of a `btfgen sync
// --shard K/N` fleet, or catalogs of different teams), in one journaled write. btfgen's BTF is
// canonical, so two entries with one build-id and one sha256 hold the same types: they are one
// kernel, kept once. One build-id with two digests means one of the two is not what the other
// says it is (another pahole, a tampered file that was re-indexed): neither is preferred
// silently. The destination keeps what it has; a kernel only the sources hold, and on which they
// disagree, is left out. Everything else merges, and the command reports the conflicts and
// exits non-zero.
import FoundationEssentials
import Kernel

#if canImport(Glibc)
    import Glibc
#endif

/// An entry a merge adds or finds, and the catalog it comes from.
public struct MergedEntry: Codable, Equatable, Sendable {
    public var entry: CatalogEntry
    /// The root of the catalog the entry was taken from.
    public var from: String
}

/// Two entries of one kernel whose BTF differ.
public struct MergeConflict: Codable, Equatable, Sendable {
    /// What became of the kernel.
    public enum Resolution: String, Codable, Sendable {
        /// The destination had it: its entry stays as it was.
        case keptDestination
        /// Only sources had it, and they disagree: it is not merged at all.
        case leftOut
    }
    /// Hex build-id; nil for imported entries, which are told apart by distro, version, arch and release.
    public var buildID: String?
    public var release: String
    /// The entry compared against (the destination's, else the first source's) and where it is.
    public var sha256: String
    public var source: String
    /// The entry that differs, and the catalog it is in.
    public var otherSHA256: String
    public var otherSource: String
    public var resolution: Resolution
}

/// What `merge` did (or, for a dry run, would do).
public struct MergeReport: Codable, Equatable, Sendable {
    public var destination: String
    public var dryRun: Bool
    /// Kernels new to the destination, each once.
    public var added: [MergedEntry] = []
    /// Kernels the destination (or an earlier source) already held with the same BTF, each once.
    public var present: [MergedEntry] = []
    public var conflicts: [MergeConflict] = []
    /// Failure records taken from the sources.
    public var failuresMerged: [FailureRecord] = []
    /// Failure records dropped because the package now has an entry.
    public var failuresResolved: [FailureRecord] = []
    /// Existing entries that gained the repository package a source recorded for them, so the
    /// next `btfgen sync` skips that package without downloading it.
    public var packagesRecorded = 0

    public init(destination: String, dryRun: Bool) {
        self.destination = destination
        self.dryRun = dryRun
    }

    /// True when the merge changes the destination's index.
    public var changesIndex: Bool {
        !added.isEmpty || !failuresMerged.isEmpty || !failuresResolved.isEmpty || packagesRecorded > 0
    }
}

extension Catalog {
    /// Merge the entries and failure records of `sources` into this catalog in one journaled
    /// write under the lock (`commit`): a merge killed at any moment leaves the catalog as it was
    /// or is finished by the next writer. Every source entry's file is checked against its
    /// recorded sha256 first; one bad file refuses the whole merge, naming its catalog. The
    /// sources are only read. `dryRun` reports without creating or locking anything.
    public func merge(_ sources: [Catalog], dryRun: Bool = false) throws -> MergeReport {
        let loaded = try loadMergeSources(sources)
        if dryRun {
            return planMerge(try index(), from: loaded, dryRun: true).report
        }
        try prepare()
        return try withLock {
            try recoverInterruptedWrites()
            let plan = planMerge(try index(), from: loaded, dryRun: false)
            guard plan.report.changesIndex else { return plan.report }
            var copies: [(file: URL, destination: String)] = []
            do {
                for copy in plan.copies {
                    // Checked again as it is read: a source changed since the check is hashed anew.
                    let bytes: [UInt8]
                    do { bytes = try copy.source.verifiedBytes(of: copy.entry) } catch {
                        throw CatalogError.unusableMergeSource(root: copy.source.root.path, reason: "\(error)")
                    }
                    let file = scratchFile("merge.btf")
                    copies.append((file, copy.destination))
                    try writeFileDurably(Data(bytes), to: file)
                }
                try commit(plan.index, placingAll: copies)
                let placed = Set(copies.map(\.destination))
                for entry in plan.index.entries where placed.contains(entry.path) { recordPlaced(entry) }
            } catch {
                // Before the commit point nothing is decided: the copies go, the catalog stays.
                for copy in copies { unlink(copy.file.path) }
                throw error
            }
            return plan.report
        }
    }

    /// Each source's index, with every entry's file verified; refused by name when a source is
    /// missing, is the destination, or holds a file that is not what its index says.
    private func loadMergeSources(_ sources: [Catalog]) throws -> [(Catalog, CatalogIndex)] {
        let destination = Catalog.directoryIdentity(root.path)
        var seen = Set<String>()
        var loaded: [(Catalog, CatalogIndex)] = []
        for source in sources.map(\.readOnly) {
            let path = source.root.path
            guard let identity = Catalog.directoryIdentity(path) else {
                if FileManager.default.fileExists(atPath: path) {
                    throw CatalogError.unusableMergeSource(root: path, reason: "it is not a directory")
                }
                throw CatalogError.mergeSourceMissing(path: path)
            }
            if identity == destination { throw CatalogError.mergeIntoItself(path: path) }
            // The same directory named twice (a symlink, a trailing slash) is merged once.
            guard seen.insert(identity).inserted else { continue }
            let index: CatalogIndex
            do {
                index = try source.index()
                for entry in index.entries {
                    // Only the catalog's own files: an index naming one elsewhere is not btfgen's.
                    let components = entry.path.split(separator: "/")
                    if entry.path.hasPrefix("/") || components.contains("..") || components.isEmpty {
                        throw CatalogError.unreadableIndex(
                            path: source.indexURL.path, reason: "entry path \(entry.path) is outside the catalog")
                    }
                    try source.verify(entry)
                }
            } catch {
                throw CatalogError.unusableMergeSource(root: path, reason: "\(error)")
            }
            loaded.append((source, index))
        }
        return loaded
    }

    /// `device:inode` of a directory, nil when there is none at `path`.
    private static func directoryIdentity(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return "\(st.st_dev):\(st.st_ino)"
    }

    /// A merge decided but not written: the new index, the files to copy, and the report.
    struct MergePlan {
        var index: CatalogIndex
        var copies: [(source: Catalog, entry: CatalogEntry, destination: String)] = []
        var report: MergeReport
    }

    /// Which kernel an entry is: its build-id, or for imports (which have none) the catalog path
    /// its distro, version, arch and release give, as `insert` files them.
    static func mergeKey(_ entry: CatalogEntry) -> String {
        if let id = entry.identity.buildID { return "id:" + id.hex }
        let id = entry.identity
        return "path:" + [id.distro, id.distroVersion, id.arch, id.release].map(safeComponent).joined(separator: "/")
    }

    func planMerge(_ current: CatalogIndex, from sources: [(Catalog, CatalogIndex)], dryRun: Bool) -> MergePlan {
        let destination = self
        let root = self.root.path
        var plan = MergePlan(index: current, report: MergeReport(destination: root, dryRun: dryRun))
        // Every source's offer of each kernel, in the order the sources were given.
        var order: [String] = []
        var offers: [String: [(source: Catalog, entry: CatalogEntry)]] = [:]
        for (source, index) in sources {
            for entry in index.entries {
                let key = Catalog.mergeKey(entry)
                if offers[key] == nil { order.append(key) }
                offers[key, default: []].append((source, entry))
            }
        }
        var held: [String: Int] = [:]
        for (i, entry) in current.entries.enumerated() { held[Catalog.mergeKey(entry)] = i }

        func conflict(
            _ a: CatalogEntry, _ aFrom: String, _ b: CatalogEntry, _ bFrom: String, _ r: MergeConflict.Resolution
        )
            -> MergeConflict
        {
            MergeConflict(
                buildID: a.identity.buildID?.hex, release: a.identity.release, sha256: a.sha256, source: aFrom,
                otherSHA256: b.sha256, otherSource: bFrom, resolution: r)
        }

        for key in order {
            let all = offers[key]!
            if let i = held[key] {
                let existing = plan.index.entries[i]
                for offer in all where offer.entry.sha256 != existing.sha256 {
                    plan.report.conflicts.append(
                        conflict(existing, root, offer.entry, offer.source.root.path, .keptDestination))
                }
                let same = all.filter { $0.entry.sha256 == existing.sha256 }
                guard !same.isEmpty else { continue }
                plan.report.present.append(MergedEntry(entry: existing, from: root))
                if existing.package == nil, let package = same.lazy.compactMap(\.entry.package).first {
                    plan.index.entries[i].package = package
                    plan.report.packagesRecorded += 1
                }
                continue
            }
            let first = all[0]
            let differing = all.filter { $0.entry.sha256 != first.entry.sha256 }
            if !differing.isEmpty {
                for offer in differing {
                    plan.report.conflicts.append(
                        conflict(first.entry, first.source.root.path, offer.entry, offer.source.root.path, .leftOut))
                }
                continue
            }
            var entry = first.entry
            if entry.package == nil, let package = all.lazy.compactMap(\.entry.package).first {
                entry.package = package
            }
            entry.path = destination.mergePath(for: entry.identity, in: plan.index)
            plan.index.entries.append(entry)
            held[key] = plan.index.entries.count - 1
            plan.copies.append((first.source, first.entry, entry.path))
            plan.report.added.append(MergedEntry(entry: entry, from: first.source.root.path))
        }

        // Failure records: the destination's stand, a package that now has an entry has none,
        // and a source's record is taken once (the first source's, when several record it).
        // Keyed by name, version and architecture, as sync keys them: every rpm-md kernel version
        // is named `kernel-debuginfo`, so the name alone would let one version's entry or record
        // hide another's.
        func sameRepositoryPackage(_ a: SourcePackage, _ b: SourcePackage) -> Bool { a.isSameVersion(as: b) }
        let built = plan.index.entries.compactMap(\.package)
        func hasEntry(_ package: SourcePackage) -> Bool { built.contains { sameRepositoryPackage($0, package) } }
        for failure in plan.index.failures where hasEntry(failure.package) {
            plan.report.failuresResolved.append(failure)
        }
        plan.index.failures.removeAll { hasEntry($0.package) }
        for (_, index) in sources {
            for failure in index.failures where !hasEntry(failure.package) {
                guard !plan.index.failures.contains(where: { sameRepositoryPackage($0.package, failure.package) })
                else { continue }
                plan.index.failures.append(failure)
                plan.report.failuresMerged.append(failure)
            }
        }
        return plan
    }

    /// Where a merged entry goes: `freePath`, or a name no entry has when that one is taken (an
    /// import and a build of one release), since a merge never replaces what the catalog holds.
    func mergePath(for id: KernelIdentity, in index: CatalogIndex) -> String {
        let taken = Set(index.entries.map(\.path))
        let path = freePath(for: id, in: index)
        guard taken.contains(path) else { return path }
        let stem = path.dropLast(".btf".count)
        if let buildID = id.buildID, !taken.contains("\(stem)+\(buildID.hex.prefix(12)).btf") {
            return "\(stem)+\(buildID.hex.prefix(12)).btf"
        }
        var n = 2
        while taken.contains("\(stem)+\(n).btf") { n += 1 }
        return "\(stem)+\(n).btf"
    }
}
