// Which BTF describes the running kernel. A CO-RE program relocated against another kernel's BTF
// loads and attaches without a single error and then reports garbage, so the choice is made by
// identity, in a fixed order, and anything short of a build-id match is either refused or said
// out loud:
//
//   1. --btf FILE                      the user's explicit file, used as given
//   2. /sys/kernel/btf/vmlinux         the kernel's own BTF (skipped with --force-catalog)
//   3. catalog or bundle entry,        the only automatic match that proves identity
//      same build-id                   (catalog first; a bundle ships inside an image)
//   4. catalog or bundle entry, same   only when the running build-id cannot be read; warned
//      release, distro and arch
//   5. refuse                          listing what was searched and the `btfgen build` to run
//
// An entry whose build-id differs from the running kernel's is refused unless --force, whether
// it was found by release or named with --kernel.
//
// Architecture: BTF is for one architecture's kernels. The target is this machine (uname -m)
// unless the request names another one: an explicit architecture (--arch, or the machine type of
// an image tree given as the host root), or — for resolve and install, which can prepare BTF for
// another machine — a --kernel entry of another architecture, whose arch is then the target's.
// Nothing of the running kernel describes another machine, so such a target's kernel must be
// named (--kernel) and is not compared with the running one. attach loads here: for it, an
// entry, bundle or BTF of another architecture is refused, --force or not.
import Bundle
import Catalog
import FoundationEssentials
import Kernel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What the user asked for.
public struct BTFRequest: Sendable, Equatable {
    /// `auto` (the running kernel), a release, or a build-id (or unique prefix) in the catalog.
    public var kernel: String
    /// `--btf FILE`.
    public var btfFile: String?
    /// Skip the kernel's own BTF even when it has one.
    public var forceCatalog: Bool
    /// Accept a catalog entry whose identity differs from the running kernel's.
    public var force: Bool
    /// The architecture of the machine the BTF is for, when that is declared (--arch, an image
    /// tree's); nil: this machine's, or a named entry's where another machine is allowed.
    public var arch: String?
    /// Whether a --kernel entry of another architecture names another machine's kernel (resolve,
    /// install) rather than a mistake (attach, which loads here).
    public var otherMachineAllowed: Bool

    public static let auto = "auto"

    public init(
        kernel: String = BTFRequest.auto, btfFile: String? = nil, forceCatalog: Bool = false,
        force: Bool = false, arch: String? = nil, otherMachineAllowed: Bool = false
    ) {
        self.kernel = kernel
        self.btfFile = btfFile
        self.forceCatalog = forceCatalog
        self.force = force
        self.arch = arch
        self.otherMachineAllowed = otherMachineAllowed
    }
}

/// The BTF chosen for loading, and why.
public struct BTFChoice: Sendable, Equatable, Encodable {
    /// How the BTF was found.
    public enum Source: String, Sendable, Encodable {
        /// `--btf FILE`.
        case file
        /// /sys/kernel/btf/vmlinux.
        case native
        /// Catalog entry with the running kernel's build-id.
        case catalogBuildID = "catalog-build-id"
        /// Catalog entry with the running kernel's release and distro; build-id unreadable.
        case catalogRelease = "catalog-release"
        /// Catalog entry accepted with --force although its identity differs.
        case catalogForced = "catalog-forced"
        /// The same three, from a bundle.
        case bundleBuildID = "bundle-build-id"
        case bundleRelease = "bundle-release"
        case bundleForced = "bundle-forced"
        /// A catalog or bundle entry named with --kernel for another machine (another architecture).
        case catalogNamed = "catalog-named"
        case bundleNamed = "bundle-named"
    }

    public var source: Source
    /// The BTF itself; `btf.verified()` reads and checks it.
    public var btf: ChosenBTF
    /// One sentence: why this BTF.
    public var reason: String
    /// Things the user must hear (weaker matches, forced mismatches).
    public var warnings: [String]
    /// The machine the BTF is for: its architecture, and whether it is this one.
    public var target: ArchTarget
    /// The kernel release it is for: the entry's, the running one's for this machine; nil for a
    /// --btf file for another machine.
    public var release: String?

    public init(
        source: Source, btf: ChosenBTF, reason: String, warnings: [String], target: ArchTarget, release: String?
    ) {
        self.source = source
        self.btf = btf
        self.reason = reason
        self.warnings = warnings
        self.target = target
        self.release = release
    }

    /// For messages: the file, or `BUNDLE#sha256:DIGEST`.
    public var path: String { btf.location }

    enum CodingKeys: String, CodingKey { case source, path, reason, entry, blob, warnings, arch, release, thisMachine }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(path, forKey: .path)
        try c.encode(reason, forKey: .reason)
        try c.encodeIfPresent(btf.entry, forKey: .entry)
        try c.encodeIfPresent(btf.blob, forKey: .blob)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(target.arch, forKey: .arch)
        try c.encode(target.isThisMachine, forKey: .thisMachine)
        try c.encodeIfPresent(release, forKey: .release)
    }
}

/// Chooses the BTF for a running kernel from a request, a catalog and (optionally) a bundle.
public struct BTFSelector: Sendable {
    public let running: RunningKernel
    public let catalog: Catalog
    public let bundle: BundleReader?

    public init(running: RunningKernel, catalog: Catalog, bundle: BundleReader? = nil) {
        self.running = running
        self.catalog = catalog
        self.bundle = bundle
    }

    /// One kernel's BTF the selector may pick: a catalog entry or a bundle kernel.
    struct Candidate {
        let identity: KernelIdentity
        /// How the user sees it in messages.
        let label: String
        let btf: ChosenBTF

        func choice(_ kind: MatchKind, reason: String, warnings: [String] = [], thisMachine: Bool = true)
            -> BTFChoice
        {
            let source: BTFChoice.Source
            switch (kind, btf.blob != nil) {
            case (.buildID, false): source = .catalogBuildID
            case (.release, false): source = .catalogRelease
            case (.forced, false): source = .catalogForced
            case (.named, false): source = .catalogNamed
            case (.buildID, true): source = .bundleBuildID
            case (.release, true): source = .bundleRelease
            case (.forced, true): source = .bundleForced
            case (.named, true): source = .bundleNamed
            }
            return BTFChoice(
                source: source, btf: btf, reason: reason, warnings: warnings,
                target: ArchTarget(arch: identity.arch, isThisMachine: thisMachine), release: identity.release)
        }
    }

    enum MatchKind { case buildID, release, forced, named }

    /// This machine, as a target.
    var thisMachine: ArchTarget { ArchTarget(arch: running.arch, isThisMachine: true) }

    public func choose(_ request: BTFRequest) throws(DeployError) -> BTFChoice {
        // A declared architecture other than this machine's is another machine.
        let other = request.arch.flatMap { $0 == running.arch ? nil : ArchTarget(arch: $0, isThisMachine: false) }
        if let file = request.btfFile {
            guard FileManager.default.fileExists(atPath: file) else { throw .btfFileMissing(path: file) }
            return BTFChoice(
                source: .file, btf: .file(path: file), reason: "--btf \(file) was given", warnings: [],
                target: other ?? thisMachine, release: other == nil ? running.release : nil)
        }
        if request.kernel != BTFRequest.auto {
            return try named(
                request.kernel, force: request.force, target: other, otherMachineAllowed: request.otherMachineAllowed)
        }
        if let other { throw .otherMachineNeedsKernel(targetArch: other.arch, machineArch: running.arch) }
        if let native = running.nativeBTF, !request.forceCatalog {
            return BTFChoice(
                source: .native, btf: .native(path: native),
                reason: "the running kernel exposes its own BTF at \(native)", warnings: [], target: thisMachine,
                release: running.release)
        }
        return try automatic(force: request.force, skippedNative: running.nativeBTF != nil)
    }

    /// Steps 3–5 for the running kernel.
    private func automatic(force: Bool, skippedNative: Bool) throws(DeployError) -> BTFChoice {
        let entries = try allEntries()
        let bundled = bundleCandidates()
        let candidates = entries.map(candidate) + bundled
        var searched: [String] = []
        if skippedNative {
            searched.append("\(running.nativeBTF!) (skipped: --force-catalog)")
        } else {
            searched.append("/sys/kernel/btf/vmlinux (absent)")
        }
        let sameRelease = candidates.filter {
            $0.identity.release == running.release && $0.identity.arch == running.arch
        }
        if let id = running.buildID {
            if let hit = candidates.first(where: { identifiesRunning($0.identity, id) }) {
                if hit.identity.arch != running.arch {
                    throw .archMismatch(entry: hit.label, entryArch: hit.identity.arch, runningArch: running.arch)
                }
                return hit.choice(
                    .buildID, reason: "\(hit.label) has the running kernel's build-id \(buildIDText(hit, id))")
            }
            searched.append("catalog \(catalog.root.path): \(entries.count) entries, none with build-id \(id)")
            if let bundle {
                searched.append("bundle \(bundle.path): \(bundled.count) kernels, none with build-id \(id)")
            }
            // Same release, other build: the dangerous case (distros reuse uname -r across builds).
            if let other = sameRelease.first {
                let otherID = other.identity.buildID?.hex ?? "none recorded"
                if !force {
                    throw .buildIDMismatch(
                        entry: other.label, entryBuildID: otherID, running: id.hex,
                        runningRelease: running.release)
                }
                return forced(other, why: "its build-id \(otherID) differs from the running kernel's \(id)")
            }
        } else {
            let why = running.buildIDProblem ?? "unknown reason"
            searched.append("running build-id unreadable (\(why))")
            let matches = sameRelease.filter { $0.identity.distro == running.distro }
            // Several builds of one release: only an exact duplicate (a catalog entry and its bundle copy) is not ambiguous.
            let builds = Set(matches.map { $0.identity.buildID?.hex ?? "" })
            if matches.count > 1 && (builds.count > 1 || builds.contains("")) {
                throw .ambiguousRelease(release: running.release, candidates: matches.map(\.label))
            }
            if let hit = matches.first {
                return hit.choice(
                    .release, reason: "\(hit.label) has the running kernel's release and distro",
                    warnings: [
                        "the running kernel's build-id cannot be read (\(why)); \(hit.label) was matched by release \(running.release) and distro \(running.distro) only, which distros reuse across builds: if events look wrong, rebuild BTF from this exact kernel's debuginfo"
                    ])
            }
            searched.append(
                "catalog \(catalog.root.path): \(entries.count) entries, none with release \(running.release) for \(running.distro)/\(running.arch)"
            )
            if let bundle {
                searched.append(
                    "bundle \(bundle.path): \(bundled.count) kernels, none with release \(running.release) for \(running.distro)/\(running.arch)"
                )
            }
            if force, let other = sameRelease.first {
                return forced(
                    other, why: "its distro \(other.identity.distro) differs from the running \(running.distro)")
            }
        }
        // A bundle for other architectures only (and nothing of ours in the catalog) is the whole story.
        if let bundle, !bundled.isEmpty, !candidates.contains(where: { $0.identity.arch == running.arch }) {
            throw .noKernelOfArch(bundle: bundle.path, arches: bundle.manifest.kernelArchitectures, target: thisMachine)
        }
        throw .noMatch(running: runningSummary, searched: searched)
    }

    /// `--kernel RELEASE|BUILD-ID`: the named entry (catalog, else bundle), checked against the
    /// running kernel — unless it is for another machine: a declared `target`, or (where allowed)
    /// an entry of another architecture.
    private func named(_ query: String, force: Bool, target: ArchTarget?, otherMachineAllowed: Bool)
        throws(DeployError) -> BTFChoice
    {
        let found: Candidate
        do {
            found = candidate(try catalog.lookup(query))
        } catch {
            guard let hit = bundleLookup(query) else { throw catalogFailure(error) }
            found = hit
        }
        if let target {
            guard found.identity.arch == target.arch else {
                throw .targetArchMismatch(entry: found.label, entryArch: found.identity.arch, target: target)
            }
            return forOtherMachine(found, query: query)
        }
        if found.identity.arch != running.arch {
            guard otherMachineAllowed else {
                throw .archMismatch(entry: found.label, entryArch: found.identity.arch, runningArch: running.arch)
            }
            return forOtherMachine(found, query: query)
        }
        if let id = running.buildID, let entryID = found.identity.buildID {
            if identifiesRunning(found.identity, id) {
                return found.choice(
                    .buildID,
                    reason:
                        "\(found.label) (--kernel \(query)) has the running kernel's build-id \(buildIDText(found, id))"
                )
            }
            if !force {
                throw .buildIDMismatch(
                    entry: found.label, entryBuildID: entryID.hex, running: id.hex,
                    runningRelease: running.release)
            }
            return forced(found, why: "its build-id \(entryID) differs from the running kernel's \(id)")
        }
        // One side has no build-id: the release is all there is to compare.
        if found.identity.release != running.release {
            if !force { throw .releaseMismatch(entry: found.label, runningRelease: running.release) }
            return forced(
                found, why: "its release \(found.identity.release) differs from the running \(running.release)")
        }
        let missing =
            running.buildID == nil ? "the running kernel's build-id cannot be read" : "the entry records no build-id"
        return found.choice(
            .release, reason: "\(found.label) (--kernel \(query)) has the running kernel's release",
            warnings: ["\(missing); \(found.label) was matched by release \(running.release) only"])
    }

    /// A named entry for a machine of another architecture: nothing running here can confirm it,
    /// so only a build-id names it for certain.
    private func forOtherMachine(_ found: Candidate, query: String) -> BTFChoice {
        let byBuildID = found.identity.buildID.map { $0.hex.hasPrefix(query.lowercased()) } ?? false
        return found.choice(
            .named,
            reason:
                "\(found.label) named with --kernel \(query), for a \(found.identity.arch) machine (this one is \(running.arch), so nothing running here is compared with it)",
            warnings: byBuildID
                ? []
                : [
                    "\(found.label) was named by release \(query), which distros reuse across builds: name it by the target's build-id to be sure"
                ], thisMachine: false)
    }

    private func forced(_ found: Candidate, why: String) -> BTFChoice {
        found.choice(
            .forced, reason: "\(found.label) forced with --force",
            warnings: [
                "--force: using \(found.label) although \(why); CO-RE reads will be wrong unless the layouts happen to agree"
            ])
    }

    private func allEntries() throws(DeployError) -> [CatalogEntry] {
        do { return try catalog.entries() } catch { throw catalogFailure(error) }
    }

    /// Catalog reads fail only with a CatalogError; anything else would mean the index could not
    /// be decoded, and is said so.
    private func catalogFailure(_ error: any Error) -> DeployError {
        .catalog(
            error as? CatalogError
                ?? .unreadableIndex(path: catalog.indexURL.path, reason: "\(error)"))
    }

    private func candidate(_ entry: CatalogEntry) -> Candidate {
        let label =
            "catalog entry \(entry.path) (release \(entry.identity.release)\(entry.identity.buildID.map { ", build-id \($0.hex.prefix(12))…" } ?? ""))"
        return Candidate(identity: entry.identity, label: label, btf: .catalog(entry, root: catalog.root.path))
    }

    private func bundleCandidates() -> [Candidate] {
        guard let bundle else { return [] }
        return bundle.manifest.kernels.map { k in
            let label =
                "bundle \(bundle.path) kernel \(k.distro)/\(k.distroVersion)/\(k.arch)/\(k.release)\(k.buildID.map { " (build-id \($0.hex.prefix(12))…)" } ?? "")"
            return Candidate(
                identity: k.identity, label: label,
                btf: .bundle(
                    BundleBlob(
                        bundle: bundle.path, digest: k.blob, kernel: k.identity,
                        objects: bundle.manifest.objects(for: k.arch).map(\.sha256))))
        }
    }

    /// A bundle kernel by release or build-id (or a unique build-id prefix of ≥ 8 digits).
    private func bundleLookup(_ query: String) -> Candidate? {
        let all = bundleCandidates()
        let q = query.lowercased()
        let whole = BuildID(hex: q)
        var matches = all.filter { c in
            c.identity.release == query || c.identity.buildID?.hex == q
                || (whole.map { c.identity.buildID?.names($0) ?? false } ?? false)
        }
        if matches.isEmpty, q.count >= 8, q.allSatisfy(\.isHexDigit) {
            matches = all.filter { $0.identity.buildID?.hex.hasPrefix(q) ?? false }
        }
        return matches.count == 1 ? matches[0] : nil
    }

    /// Whether a candidate's recorded build-id names the running kernel's `id`: the whole id, or
    /// the first 8 bytes a bundle records, with the release the same as well (so a false match
    /// would need both a 64-bit collision and the release).
    private func identifiesRunning(_ identity: KernelIdentity, _ id: BuildID) -> Bool {
        guard let recorded = identity.buildID, recorded.names(id) else { return false }
        return recorded == id || identity.release == running.release
    }

    /// The running build-id as a match reports it, saying so when the candidate holds its prefix only.
    private func buildIDText(_ c: Candidate, _ id: BuildID) -> String {
        c.identity.buildID == id
            ? id.hex : "\(id) (the first \(BuildID.recordedPrefixBytes) bytes, as bundles record it)"
    }

    private var runningSummary: String {
        "release \(running.release), \(running.distro) \(running.distroVersion), \(running.arch), build-id \(running.buildID?.hex ?? "unreadable")"
    }
}
