// Which BTF describes the running kernel. A CO-RE program relocated against another kernel's BTF
// loads and attaches without a single error and then reports garbage, so the choice is made by
// identity, in a fixed order, and anything short of a build-id match is either refused or said
// out loud:
//
//   1. --btf FILE                      the user's explicit file, used as given
//   2. /sys/kernel/btf/vmlinux         the kernel's own BTF (skipped with --force-catalog)
//   3. catalog entry, same build-id    the only automatic match that proves identity
//   4. catalog entry, same release,    only when the running build-id cannot be read; warned
//      distro and arch
//   5. refuse                          listing what was searched and the `btfgen build` to run
//
// An entry whose build-id differs from the running kernel's is refused unless --force, whether
// it was found by release or named with --kernel.
import Catalog
import Foundation
import Kernel

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

    public static let auto = "auto"

    public init(
        kernel: String = BTFRequest.auto, btfFile: String? = nil, forceCatalog: Bool = false,
        force: Bool = false
    ) {
        self.kernel = kernel
        self.btfFile = btfFile
        self.forceCatalog = forceCatalog
        self.force = force
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
    }

    public var source: Source
    /// The BTF file to hand libbpf.
    public var path: String
    /// One sentence: why this file.
    public var reason: String
    /// The catalog entry, when the BTF came from the catalog.
    public var entry: CatalogEntry?
    /// Things the user must hear (weaker matches, forced mismatches).
    public var warnings: [String]

    /// libbpf reads the kernel's own BTF by itself; a custom path is only needed otherwise.
    public var customPath: String? { source == .native ? nil : path }
}

/// Chooses the BTF for a running kernel from a request and a catalog.
public struct BTFSelector: Sendable {
    public let running: RunningKernel
    public let catalog: Catalog

    public init(running: RunningKernel, catalog: Catalog) {
        self.running = running
        self.catalog = catalog
    }

    public func choose(_ request: BTFRequest) throws(LoaderError) -> BTFChoice {
        if let file = request.btfFile {
            guard FileManager.default.fileExists(atPath: file) else { throw .btfFileMissing(path: file) }
            return BTFChoice(source: .file, path: file, reason: "--btf \(file) was given", entry: nil, warnings: [])
        }
        if request.kernel != BTFRequest.auto {
            return try named(request.kernel, force: request.force)
        }
        if let native = running.nativeBTF, !request.forceCatalog {
            return BTFChoice(
                source: .native, path: native,
                reason: "the running kernel exposes its own BTF at \(native)", entry: nil, warnings: [])
        }
        return try automatic(force: request.force, skippedNative: running.nativeBTF != nil)
    }

    /// Steps 3–5 for the running kernel.
    private func automatic(force: Bool, skippedNative: Bool) throws(LoaderError) -> BTFChoice {
        let entries = try allEntries()
        var searched: [String] = []
        if skippedNative {
            searched.append("\(running.nativeBTF!) (skipped: --force-catalog)")
        } else {
            searched.append("/sys/kernel/btf/vmlinux (absent)")
        }
        let sameRelease = entries.filter {
            $0.identity.release == running.release && $0.identity.arch == running.arch
        }
        if let id = running.buildID {
            if let hit = entries.first(where: { $0.identity.buildID == id }) {
                if hit.identity.arch != running.arch {
                    throw .archMismatch(entry: describe(hit), entryArch: hit.identity.arch, runningArch: running.arch)
                }
                return BTFChoice(
                    source: .catalogBuildID, path: catalog.url(of: hit).path,
                    reason: "catalog entry \(describe(hit)) has the running kernel's build-id \(id)",
                    entry: hit, warnings: [])
            }
            searched.append("catalog \(catalog.root.path): \(entries.count) entries, none with build-id \(id)")
            // Same release, other build: the dangerous case (distros reuse uname -r across builds).
            if let other = sameRelease.first {
                let otherID = other.identity.buildID?.hex ?? "none recorded"
                if !force {
                    throw .buildIDMismatch(
                        entry: describe(other), entryBuildID: otherID, running: id.hex,
                        runningRelease: running.release)
                }
                return forced(other, why: "its build-id \(otherID) differs from the running kernel's \(id)")
            }
        } else {
            let why = running.buildIDProblem ?? "unknown reason"
            searched.append("running build-id unreadable (\(why))")
            let candidates = sameRelease.filter { $0.identity.distro == running.distro }
            if candidates.count > 1 {
                throw .ambiguousRelease(release: running.release, candidates: candidates.map(describe))
            }
            if let hit = candidates.first {
                return BTFChoice(
                    source: .catalogRelease, path: catalog.url(of: hit).path,
                    reason: "catalog entry \(describe(hit)) has the running kernel's release and distro",
                    entry: hit,
                    warnings: [
                        "the running kernel's build-id cannot be read (\(why)); \(describe(hit)) was matched by release \(running.release) and distro \(running.distro) only, which distros reuse across builds: if events look wrong, rebuild BTF from this exact kernel's debuginfo"
                    ])
            }
            searched.append(
                "catalog \(catalog.root.path): \(entries.count) entries, none with release \(running.release) for \(running.distro)/\(running.arch)"
            )
            if force, let other = sameRelease.first {
                return forced(
                    other, why: "its distro \(other.identity.distro) differs from the running \(running.distro)")
            }
        }
        throw .noMatch(running: runningSummary, searched: searched)
    }

    /// `--kernel RELEASE|BUILD-ID`: the named entry, checked against the running kernel.
    private func named(_ query: String, force: Bool) throws(LoaderError) -> BTFChoice {
        let entry: CatalogEntry
        do { entry = try catalog.lookup(query) } catch { throw .catalog("\(error)") }
        if entry.identity.arch != running.arch && !force {
            throw .archMismatch(entry: describe(entry), entryArch: entry.identity.arch, runningArch: running.arch)
        }
        if let id = running.buildID, let entryID = entry.identity.buildID {
            if id == entryID {
                return BTFChoice(
                    source: .catalogBuildID, path: catalog.url(of: entry).path,
                    reason:
                        "catalog entry \(describe(entry)) (--kernel \(query)) has the running kernel's build-id \(id)",
                    entry: entry, warnings: [])
            }
            if !force {
                throw .buildIDMismatch(
                    entry: describe(entry), entryBuildID: entryID.hex, running: id.hex,
                    runningRelease: running.release)
            }
            return forced(entry, why: "its build-id \(entryID) differs from the running kernel's \(id)")
        }
        // One side has no build-id: the release is all there is to compare.
        if entry.identity.release != running.release {
            if !force { throw .releaseMismatch(entry: describe(entry), runningRelease: running.release) }
            return forced(
                entry, why: "its release \(entry.identity.release) differs from the running \(running.release)")
        }
        let missing =
            running.buildID == nil ? "the running kernel's build-id cannot be read" : "the entry records no build-id"
        return BTFChoice(
            source: .catalogRelease, path: catalog.url(of: entry).path,
            reason: "catalog entry \(describe(entry)) (--kernel \(query)) has the running kernel's release",
            entry: entry,
            warnings: ["\(missing); \(describe(entry)) was matched by release \(running.release) only"])
    }

    private func forced(_ entry: CatalogEntry, why: String) -> BTFChoice {
        BTFChoice(
            source: .catalogForced, path: catalog.url(of: entry).path,
            reason: "catalog entry \(describe(entry)) forced with --force",
            entry: entry,
            warnings: [
                "--force: using \(describe(entry)) although \(why); CO-RE reads will be wrong unless the layouts happen to agree"
            ])
    }

    private func allEntries() throws(LoaderError) -> [CatalogEntry] {
        do { return try catalog.entries() } catch { throw .catalog("\(error)") }
    }

    private var runningSummary: String {
        "release \(running.release), \(running.distro) \(running.distroVersion), \(running.arch), build-id \(running.buildID?.hex ?? "unreadable")"
    }

    private func describe(_ entry: CatalogEntry) -> String {
        "\(entry.path) (release \(entry.identity.release)\(entry.identity.buildID.map { ", build-id \($0.hex.prefix(12))…" } ?? ""))"
    }
}
