import ArgumentParser
import Catalog
import FoundationEssentials
import Sync
import SystemSupport
import Toolchain

#if canImport(Glibc)
    import Glibc
#endif

extension BTFGen {
    /// `btfgen sync REPO...`: every kernel debuginfo package of apt and rpm-md repositories → catalog entries.
    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sync",
            abstract: "Build BTF for every kernel debuginfo package an apt or rpm-md repository holds.",
            discussion: """
                REPO is a sources.list line, 'deb [arch=amd64 signed-by=KEYRING] URL SUITE COMPONENT...', or \
                an rpm-md (dnf/yum) repository: 'rpm-md [arch=x86_64 signed-by=KEYRING] URL', or the bare \
                http(s) URL of the directory holding repodata/ (e.g. \
                https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/debug/tree/). An argument starting with \
                'deb' is apt, one starting with 'rpm-md' or http(s):// is rpm-md. The Release file's (or \
                repomd.xml.asc's) signature is checked with gpgv, and every index and package against the \
                digests the signed index gives; nothing unverified is built. rpm-md syncs kernel-debuginfo \
                and its flavours (kernel-rt-, -debug-, -64k-, -uek-debuginfo…), never kernel-debuginfo-common. \
                Packages already \
                in the catalog (same name, version and sha256) are skipped without downloading; packages \
                that failed to build are recorded (`btfgen list --failed`) and skipped until --retry-failed \
                or a different pahole or btfgen. --shard K/N builds the K-th of N disjoint shares (by a \
                stable hash of the package name; for rpm-md, of name-version.arch, as every kernel-debuginfo \
                shares one name) into this catalog; a Kubernetes Indexed Job passes \
                --shard $((JOB_COMPLETION_INDEX + 1))/N, a GitHub Actions matrix --shard ${{ matrix.shard }}/N. \
                A Release whose signed Valid-Until has passed is refused (a stale mirror or a replayed index); \
                for an archive snapshot say [check-valid-until=no] on its line, as apt takes it. \
                --keep-packages DIR keeps each verified package (CI caches it) and uses one found there when \
                its size and sha256 match the signed index. On a terminal one status line shows the progress; \
                in a log, one line per package.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Argument(
            help: ArgumentHelp(
                "sources.list lines or rpm-md repository URLs, each one argument (quote it).", valueName: "repo"))
        var repositories: [String]

        @Option(help: ArgumentHelp("Only packages whose name matches this shell glob.", valueName: "glob"))
        var match: String?

        @Option(
            help: ArgumentHelp(
                "Architectures, comma-separated (x86_64, aarch64, or Debian's amd64, arm64). Default: each line's [arch=…], else this machine's.",
                valueName: "list"))
        var arch: String?

        @Option(
            name: .shortAndLong,
            help:
                "Packages to download and build at once (default 1; each needs ~1 GB for pahole and one package of disk)."
        )
        var jobs: Int = 1

        @Flag(help: "List what would be built and the bytes to fetch; download no package.")
        var dryRun = false

        @Flag(help: "Print the outcome per package as JSON.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "Keyring to verify the Release (or repomd.xml.asc) signature with (default: the line's signed-by, else for apt the distribution's archive keyring when installed).",
                valueName: "file"))
        var keyring: String?

        @Flag(help: "Retry packages recorded as failed with the same tool versions.")
        var retryFailed = false

        @Option(help: ArgumentHelp("Build only the K-th of N shares of the packages (1 ≤ K ≤ N).", valueName: "K/N"))
        var shard: String?

        @Option(
            help: ArgumentHelp(
                "Keep the verified packages in this directory, and use one already there (same size and sha256 as the signed index) instead of downloading it.",
                valueName: "dir"))
        var keepPackages: String?

        @Option(
            help: ArgumentHelp(
                "Give up on a transfer that moves less than 1 KiB/s for this many seconds (default 60).",
                valueName: "seconds"))
        var timeout: Int = 60

        func validate() throws {
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if timeout < 1 { throw ValidationError("--timeout takes a number of seconds, at least 1") }
            if repositories.isEmpty {
                throw ValidationError("give at least one repository: a sources.list line or an rpm-md URL")
            }
            if let shard, Shard(parsing: shard) == nil {
                throw ValidationError("--shard takes K/N with 1 ≤ K ≤ N, e.g. --shard 1/4")
            }
        }

        func run() throws {
            let sources = try reporting {
                try repositories.map { (l) throws(SyncError) in try PackageRepository(parsing: l) }
            }
            let tools = try reporting { try Toolchain.probe() }
            try reporting { try tools.require(tools.defaultMethod) }
            var options = SyncOptions()
            options.match = match
            options.architectures = (arch ?? "").split(separator: ",").map { DebianArch.debian(String($0)) }
            options.jobs = jobs
            options.dryRun = dryRun
            options.keyring = keyring
            options.retryFailed = retryFailed
            options.shard = shard.flatMap(Shard.init(parsing:))
            options.btfgenVersion = BTFGenVersion.string
            if let keepPackages, !dryRun {
                do { try prepareOutputDirectory(keepPackages) } catch {
                    warn(
                        "--keep-packages \(keepPackages) cannot be written: \(error.reason); give a directory you can write"
                    )
                    throw ExitCode.failure
                }
                options.keepPackages = keepPackages
            }
            var sync = RepositorySync(catalog: catalogOptions.resolved, tools: tools, options: options)
            // --json prints the outcomes alone; warnings and failures still go to stderr.
            let progress = SyncProgress(terminal: !json && isatty(STDERR_FILENO) == 1)
            let quiet = json
            sync.downloader.lowSpeedSeconds = timeout
            if progress.terminal { sync.downloader.onBytes = { progress.addBytes($0) } }
            let notice: @Sendable (SyncNotice) -> Void = { n in
                switch n {
                case .unsignedRelease(let url):
                    progress.message(
                        "btfgen: \(url): no keyring to check its signature with; give --keyring FILE (the indexes are still checked against it)"
                    )
                case .noIndex(let url):
                    progress.message(
                        "btfgen: the repository's Release file lists no \(url)(.xz|.gz): nothing to sync there (check the component and --arch)"
                    )
                case .fetching, .building:
                    if !quiet { progress.handle(n) }
                case .finished(let o):
                    if case .failed(let f) = o.result {
                        progress.message("btfgen: \(o.package.name) \(o.package.version): \(f.reason)")
                    }
                    if !quiet { progress.handle(n) }
                }
            }
            let discovered = try reporting { try sync.discover(sources, notice: notice) }
            let planned = try reporting { try sync.plan(discovered) }
            let fetching = planned.filter { $0.1 == .fetch }.map(\.0.package)
            if !dryRun { progress.start(total: fetching.count, bytes: fetching.reduce(0) { $0 + $1.size }) }
            let outcomes = sync.run(planned, notice: notice)
            progress.finish()
            if json {
                try printJSON(outcomes.map { SyncSummary($0, catalog: sync.catalog, dryRun: dryRun) })
            } else {
                for o in outcomes { print(describe(o, catalog: sync.catalog)) }
                print(summary(outcomes))
            }
            if outcomes.contains(where: { if case .failed = $0.result { return true } else { return false } }) {
                throw ExitCode.failure
            }
        }

        func describe(_ o: PackageOutcome, catalog: Catalog) -> String {
            let p = "\(o.package.name) \(o.package.version) \(o.package.architecture)"
            switch o.result {
            case .built(let e): return "built       \(p) → \(catalog.url(of: e).path)"
            case .alreadyCatalogued(let e): return "catalogued  \(p) (same build-id already in the catalog: \(e.path))"
            case .present: return "present     \(p)"
            case .failedBefore(let f):
                return "failed      \(p) (before, \(f.failedAt); --retry-failed retries): \(f.reason)"
            case .wouldFetch:
                if !dryRun { return "not tried   \(p) (the sync stopped: the disk is full)" }
                return "would build \(p) (\(formatBytes(o.package.size)))"
            case .failed(let f): return "FAILED      \(p): \(f.reason)"
            }
        }

        func summary(_ outcomes: [PackageOutcome]) -> String {
            var built = 0, present = 0, failedBefore = 0, wouldFetch = 0, failed = 0, bytes = 0, toFetch = 0
            for o in outcomes {
                bytes += o.bytes
                switch o.result {
                case .built, .alreadyCatalogued: built += 1
                case .present: present += 1
                case .failedBefore: failedBefore += 1
                case .wouldFetch:
                    wouldFetch += 1
                    toFetch += o.package.size
                case .failed: failed += 1
                }
            }
            if dryRun {
                return
                    "\(outcomes.count) package\(outcomes.count == 1 ? "" : "s"): \(wouldFetch) to build (\(formatBytes(toFetch)) to fetch), \(present) in the catalog, \(failedBefore) failed before"
            }
            let untried = wouldFetch > 0 ? ", \(wouldFetch) not tried (disk full)" : ""
            return
                "\(outcomes.count) package\(outcomes.count == 1 ? "" : "s"): \(built) built, \(present) already in the catalog, \(failed) failed, \(failedBefore) skipped (failed before)\(untried); \(formatBytes(bytes)) downloaded"
        }
    }
}

/// The JSON form of one package's outcome.
struct SyncSummary: Encodable {
    let package: SourcePackage
    /// built, catalogued, present, failedBefore, wouldBuild (dry run), notTried (a full disk
    /// stopped the sync first), failed.
    let outcome: String
    let path: String?
    let failure: FailureRecord?
    let bytes: Int

    init(_ o: PackageOutcome, catalog: Catalog, dryRun: Bool) {
        package = o.package
        bytes = o.bytes
        switch o.result {
        case .built(let e): (outcome, path, failure) = ("built", catalog.url(of: e).path, nil)
        case .alreadyCatalogued(let e): (outcome, path, failure) = ("catalogued", catalog.url(of: e).path, nil)
        case .present(let e): (outcome, path, failure) = ("present", catalog.url(of: e).path, nil)
        case .failedBefore(let f): (outcome, path, failure) = ("failedBefore", nil, f)
        case .wouldFetch: (outcome, path, failure) = (dryRun ? "wouldBuild" : "notTried", nil, nil)
        case .failed(let f): (outcome, path, failure) = ("failed", nil, f)
        }
    }
}
