// `btfgen sync`: discover the kernel debuginfo packages of apt and rpm-md repositories through
// their signed indexes, skip what the catalog already holds (or failed to build with the same
// tools), and stream the rest: download into the catalog's scratch, verify, build, delete. Peak
// disk is about `jobs` packages at once.
import Builder
import Catalog
import Dispatch
import FoundationEssentials
import Kernel
import Synchronization
import SystemSupport
import Toolchain

#if canImport(Glibc)
    import Glibc
#endif

/// `--shard K/N`: this worker's share of the discovered packages.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    /// 1-based.
    public let index: Int
    public let count: Int

    /// Parse `K/N` with 1 ≤ K ≤ N.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, k >= 1, k <= n else {
            return nil
        }
        index = k
        count = n
    }

    public var description: String { "\(index)/\(count)" }

    /// True when `name` falls in this shard. FNV-1a (64-bit) of the package name: the same in
    /// every process and on every machine, unlike Swift's per-process seeded `Hasher`, so N
    /// workers partition the packages without talking to each other.
    public func contains(_ name: String) -> Bool {
        Int(Shard.fnv1a(name) % UInt64(count)) == index - 1
    }

    public static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// Choices for one sync.
public struct SyncOptions: Sendable {
    /// A shell glob the package name must match (`fnmatch`).
    public var match: String?
    /// Debian architectures; empty means each line's `[arch=…]`, else the host's.
    public var architectures: [String] = []
    public var jobs = 1
    public var dryRun = false
    /// `--keyring`; nil means each line's `signed-by`, else the distribution's installed keyring.
    public var keyring: String?
    public var retryFailed = false
    public var shard: Shard?
    public var btfgenVersion = "unknown"
    /// `--keep-packages DIR`: verified packages are kept there, and one found there is used
    /// instead of downloading it again.
    public var keepPackages: String?
    public init() {}
}

/// A package the repository offers, with where its index came from.
public struct DiscoveredPackage: Sendable, Equatable {
    public var package: SourcePackage
    public var source: PackageRepository
    /// What the package unpacks to, as its index says (an upper bound of the vmlinux in it).
    public var unpackedSize: Int? = nil
}

/// What the sync decided for one package.
public enum PackagePlan: Sendable, Equatable {
    case fetch
    /// The catalog has an entry built from this very package file.
    case present(CatalogEntry)
    /// It failed to build before with the same pahole and btfgen (`--retry-failed` retries).
    case failedBefore(FailureRecord)
}

/// What happened to one package.
public struct PackageOutcome: Sendable {
    public enum Result: Sendable {
        case built(CatalogEntry)
        /// The kernel (same build-id) was already catalogued from elsewhere.
        case alreadyCatalogued(CatalogEntry)
        case present(CatalogEntry)
        case failedBefore(FailureRecord)
        case wouldFetch
        case failed(FailureRecord)
    }
    public var package: SourcePackage
    public var result: Result
    /// Bytes downloaded for it.
    public var bytes: Int
    /// It failed because the catalog's filesystem is full: no further package is started.
    public var diskFull = false
}

/// What a sync reports as it goes: signature checks skipped, indexes missing, packages fetched and done.
public enum SyncNotice: Sendable {
    case unsignedRelease(url: String)
    /// The Release file lists no Packages index for a component and architecture asked for.
    case noIndex(url: String)
    case fetching(SourcePackage, number: Int, of: Int)
    /// Downloaded (or found in --keep-packages) and verified; the build starts.
    case building(SourcePackage)
    case finished(PackageOutcome)
}

/// Syncs apt and rpm-md repositories into a catalog.
public struct RepositorySync: Sendable {
    public let catalog: Catalog
    public let tools: Toolchain
    public let options: SyncOptions
    public var downloader = Downloader()

    public init(catalog: Catalog, tools: Toolchain, options: SyncOptions) {
        self.catalog = catalog
        self.tools = tools
        self.options = options
    }

    // MARK: Discovery

    /// Every kernel debuginfo package the repositories offer (matched, in this shard), each
    /// vouched for by a verified index. Sorted by name, version, architecture.
    public func discover(_ repositories: [PackageRepository], notice: (SyncNotice) -> Void = { _ in })
        throws(SyncError) -> [DiscoveredPackage]
    {
        // Indexes go to the catalog's scratch, where a killed sync's files are cleared by the next
        // writer; a dry run leaves the catalog untouched and uses a private temporary directory.
        let scratch = try IndexScratch(catalog: catalog, dryRun: options.dryRun)
        defer { scratch.remove() }
        var found: [String: DiscoveredPackage] = [:]
        for repository in repositories {
            let offered: [(package: SourcePackage, unpackedSize: Int?)]
            // What a shard is chosen by: apt's package names are one per kernel, but every rpm
            // version of a kernel is `kernel-debuginfo`, so there it is the name-version.arch.
            let shardKey: (SourcePackage) -> String
            switch repository {
            case .apt(let source):
                offered = try aptPackages(source, scratch: scratch, notice: notice)
                shardKey = { $0.name }
            case .rpmMD(let rpm):
                offered = try rpmPackages(rpm, scratch: scratch, notice: notice).map { ($0, nil) }
                shardKey = { "\($0.name)-\($0.version).\($0.architecture)" }
            }
            for (p, unpackedSize) in offered {
                if let glob = options.match, fnmatch(glob, p.name, 0) != 0 { continue }
                if let shard = options.shard, !shard.contains(shardKey(p)) { continue }
                // One package in several components, suites or repositories is fetched once.
                found["\(p.name) \(p.version) \(p.architecture)"] = DiscoveredPackage(
                    package: p, source: repository, unpackedSize: unpackedSize)
            }
        }
        return found.values.sorted {
            ($0.package.name, $0.package.version, $0.package.architecture)
                < ($1.package.name, $1.package.version, $1.package.architecture)
        }
    }

    /// The kernel debuginfo packages of an apt source, each vouched for by a verified Packages index.
    func aptPackages(_ source: AptSource, scratch: IndexScratch, notice: (SyncNotice) -> Void) throws(SyncError)
        -> [(package: SourcePackage, unpackedSize: Int?)]
    {
        var found: [(package: SourcePackage, unpackedSize: Int?)] = []
        let release = try fetchRelease(source, scratch: scratch, notice: notice)
        if source.checkValidUntil { try release.checkValid() }
        let architectures =
            !options.architectures.isEmpty
            ? options.architectures : (!source.architectures.isEmpty ? source.architectures : [DebianArch.host])
        for component in source.components {
            for arch in architectures {
                guard let (path, expected) = release.packagesIndex(component: component, architecture: arch) else {
                    notice(.noIndex(url: source.distsURL("\(component)/binary-\(arch)/Packages")))
                    continue
                }
                let url = source.distsURL(path)
                let local = scratch.file(URL(fileURLWithPath: path).lastPathComponent)
                try downloader.fetch(url, to: local, expected: expected)
                defer { unlink(local) }
                let text = try decompressIndex(local, url: url)
                for p in try AptPackage.parseIndex(text, url: url) where p.architecture == arch {
                    guard AptPackage.isKernelDebuginfo(p.name) else { continue }
                    let package = SourcePackage(
                        name: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256,
                        size: p.size, url: source.poolURL(p.filename))
                    found.append((package, p.installedSize))
                }
            }
        }
        return found
    }

    /// InRelease if the repository has one, else Release + Release.gpg; verified with gpgv when
    /// a keyring is known.
    func fetchRelease(_ source: AptSource, scratch: IndexScratch, notice: (SyncNotice) -> Void) throws(SyncError)
        -> AptRelease
    {
        let keyringPath = options.keyring ?? source.defaultKeyring()
        let check = try keyringPath.map { (k) throws(SyncError) in try SignatureCheck(keyring: k) }
        let inRelease = source.distsURL("InRelease")
        let local = scratch.file("InRelease")
        defer { unlink(local) }
        do {
            try downloader.fetch(inRelease, to: local, expected: nil)
            let text: Substring
            if let check {
                let signed = try check.verifiedClearsigned(
                    local, output: scratch.file("InRelease.txt"), url: inRelease)
                text = Substring(String(decoding: signed, as: UTF8.self))
            } else {
                notice(.unsignedRelease(url: inRelease))
                text = unverifiedClearsignedText(Array(FileManager.default.contents(atPath: local) ?? Data()))
            }
            return try AptRelease(text: text, url: inRelease)
        } catch .download(_, 404, _) {
            // Older archives have only Release and its detached signature.
        }
        let releaseURL = source.distsURL("Release")
        let releaseFile = scratch.file("Release")
        defer { unlink(releaseFile) }
        try downloader.fetch(releaseURL, to: releaseFile, expected: nil)
        if let check {
            let signature = scratch.file("Release.gpg")
            defer { unlink(signature) }
            try downloader.fetch(source.distsURL("Release.gpg"), to: signature, expected: nil)
            try check.verifyDetached(signature: signature, data: releaseFile, url: releaseURL)
        } else {
            notice(.unsignedRelease(url: releaseURL))
        }
        guard let data = FileManager.default.contents(atPath: releaseFile) else {
            throw .io(path: releaseFile, reason: "cannot read back the download")
        }
        return try AptRelease(text: Substring(String(decoding: data, as: UTF8.self)), url: releaseURL)
    }

    // MARK: Planning

    /// What to do with each package, from the catalog's entries and failure records.
    public func plan(_ packages: [DiscoveredPackage]) throws(SyncError) -> [(DiscoveredPackage, PackagePlan)] {
        let index: CatalogIndex
        do { index = try catalog.index() } catch { throw .catalog(error) }
        return packages.map { d in
            if let entry = index.entries.first(where: { $0.package?.isSameFile(as: d.package) == true }) {
                return (d, .present(entry))
            }
            if !options.retryFailed,
                let failure = index.failures.first(where: {
                    $0.package.isSameFile(as: d.package) && $0.stage == .build
                        && $0.pahole == tools.pahole.version.description && $0.btfgen == options.btfgenVersion
                })
            {
                return (d, .failedBefore(failure))
            }
            return (d, .fetch)
        }
    }

    // MARK: Running

    /// Fetch and build every planned package, `options.jobs` at a time. Failures are recorded in
    /// the catalog and returned, never thrown.
    public func run(_ planned: [(DiscoveredPackage, PackagePlan)], notice: @escaping @Sendable (SyncNotice) -> Void)
        -> [PackageOutcome]
    {
        let work = planned.enumerated().filter { $0.element.1 == .fetch }.map(\.offset)
        let outcomes = Mutex([PackageOutcome?](repeating: nil, count: planned.count))
        for (i, (d, plan)) in planned.enumerated() {
            let result: PackageOutcome.Result
            switch plan {
            case .fetch: result = .wouldFetch
            case .present(let e): result = .present(e)
            case .failedBefore(let f): result = .failedBefore(f)
            }
            outcomes.withLock { $0[i] = PackageOutcome(package: d.package, result: result, bytes: 0) }
        }
        guard !options.dryRun, !work.isEmpty else { return outcomes.withLock { $0.map { $0! } } }
        let next = Mutex(0)
        let total = work.count
        // A full disk fails every package after it the same way: the sync stops taking new ones
        // (they stay `wouldFetch`, reported as not attempted).
        let stopped = Atomic(false)
        // Builds block in waitpid for minutes: each worker gets a thread of its own rather than
        // one of Dispatch's pool, which would cap the workers at the core count.
        let group = DispatchGroup()
        for _ in 0..<max(1, min(options.jobs, total)) {
            group.enter()
            detachThread {
                defer { group.leave() }
                worker()
            }
        }
        group.wait()
        return outcomes.withLock { $0.map { $0! } }

        @Sendable func worker() {
            while true {
                let n: Int? = next.withLock { k in
                    guard k < total, !stopped.load(ordering: .relaxed) else { return nil }
                    k += 1
                    return k - 1
                }
                guard let n else { return }
                let i = work[n]
                let d = planned[i].0
                notice(.fetching(d.package, number: n + 1, of: total))
                let outcome = syncOne(d, notice: notice)
                if outcome.diskFull { stopped.store(true, ordering: .relaxed) }
                outcomes.withLock { $0[i] = outcome }
                notice(.finished(outcome))
            }
        }
    }

    /// Download, verify, build and delete one package; a failure is recorded in the catalog, a
    /// full disk is not.
    func syncOne(_ d: DiscoveredPackage, notice: (SyncNotice) -> Void = { _ in }) -> PackageOutcome {
        let package = d.package
        let directory = catalog.scratchFile("sync").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var bytes = 0
        func failed(_ stage: FailureRecord.Stage, _ reason: String) -> PackageOutcome {
            let record = FailureRecord(
                package: package, stage: stage, reason: reason, pahole: tools.pahole.version.description,
                btfgen: options.btfgenVersion, failedAt: utcTimestamp())
            var result = PackageOutcome.Result.failed(record)
            do { try catalog.recordFailure(record) } catch {
                var unrecorded = record
                unrecorded.reason += " (and the failure could not be recorded: \(describe(error)))"
                result = .failed(unrecorded)
            }
            return PackageOutcome(package: package, result: result, bytes: bytes)
        }
        // The package keeps its own file name, which the entry records as its source.
        let name = URL(fileURLWithPath: package.url).lastPathComponent
        let file = directory + "/" + (name.isEmpty || name.hasPrefix(".") ? "package.deb" : name)
        do {
            try makeDirectories(directory)
        } catch {
            return failed(.download, "cannot create \(directory): \(describe(error))")
        }
        // A full disk says nothing about the package: it is not recorded (a record would need the
        // full disk and mark a good package as failing), and the next sync tries it again.
        func diskFull(_ space: FileSystemSpace, stage: String) -> PackageOutcome {
            unlink(file)
            try? FileManager.default.removeItem(atPath: directory)
            let needed = package.size + (d.unpackedSize ?? 0)
            let error = SyncError.noSpace(
                FileSystemSpace(holding: space.mountPoint), needed: needed,
                what:
                    "\(stage == "download" ? "downloading" : "building") it (the package is \(byteCount(package.size))"
                    + (d.unpackedSize.map { ", up to \(byteCount($0)) unpacked" } ?? "") + ")")
            let record = FailureRecord(
                package: package, stage: stage == "download" ? .download : .build, reason: error.description,
                pahole: tools.pahole.version.description, btfgen: options.btfgenVersion, failedAt: utcTimestamp())
            return PackageOutcome(package: package, result: .failed(record), bytes: bytes, diskFull: true)
        }
        let input: String
        do {
            let expected = ExpectedFile(size: package.size, sha256: package.sha256)
            if let kept = try keptPackage(name: URL(fileURLWithPath: file).lastPathComponent, expected: expected) {
                input = kept
            } else {
                bytes = try downloader.fetch(package.url, to: file, expected: expected)
                input = try keep(file, name: URL(fileURLWithPath: file).lastPathComponent) ?? file
            }
        } catch {
            if case .noSpace(let space, _, _) = error { return diskFull(space, stage: "download") }
            if case .mismatch = error { return failed(.verify, error.description) }
            return failed(.download, error.description)
        }
        notice(.building(package))
        var buildOptions = BuildOptions()
        buildOptions.btfgenVersion = options.btfgenVersion
        buildOptions.sourcePackage = package
        let builder = KernelBTFBuilder(catalog: catalog, tools: tools, options: buildOptions)
        do {
            let r = try builder.build(input)
            unlink(file)
            switch r.outcome {
            case .added, .replaced:
                return PackageOutcome(package: package, result: .built(r.entry), bytes: bytes)
            case .unchanged, .identical:
                var entry = r.entry
                entry.package = package
                do { try catalog.recordPackage(package, buildID: r.entry.identity.buildID) } catch {
                    return failed(.build, "built, but the catalog could not record it: \(describe(error))")
                }
                return PackageOutcome(package: package, result: .alreadyCatalogued(entry), bytes: bytes)
            }
        } catch {
            if RepositorySync.isDiskFull(error) {
                return diskFull(FileSystemSpace(holding: catalog.scratchURL.path), stage: "build")
            }
            // Name the package, not btfgen's scratch copy of it; the package file goes first, so a
            // nearly full disk still has room for the record.
            unlink(file)
            return failed(.build, error.description.replacing(input, with: package.url))
        }
    }
}

/// Where a sync keeps the Release and Packages files while it reads them.
struct IndexScratch {
    let directory: String
    /// A temporary directory of its own (dry run), removed with its contents.
    let isPrivate: Bool
    let catalog: Catalog

    init(catalog: Catalog, dryRun: Bool) throws(SyncError) {
        self.catalog = catalog
        isPrivate = dryRun
        if dryRun {
            let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
            var template = Array("\(base)/btfgen-sync-XXXXXX".utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw .io(path: base, reason: String(cString: strerror(errno)))
            }
            directory = String(cString: made)
        } else {
            do { try catalog.prepare() } catch { throw .catalog(error) }
            directory = catalog.scratchURL.path
        }
    }

    /// A fresh path in the scratch directory.
    func file(_ label: String) -> String {
        isPrivate ? "\(directory)/\(label)" : catalog.scratchFile(label).path
    }

    func remove() {
        if isPrivate { try? FileManager.default.removeItem(atPath: directory) }
    }
}
