import ArgumentParser
import Builder
import Catalog
import FoundationEssentials

extension BTFGen {
    /// `btfgen catalog import|export|remove|merge`: BTFHub interop, taking kernels out, and joining catalogs.
    struct CatalogCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "catalog",
            abstract:
                "Move kernels between the catalog and a BTFHub-style archive tree, remove them, or merge catalogs.",
            subcommands: [Import.self, Export.self, Remove.self, Merge.self])
    }
}

extension BTFGen.CatalogCommand {
    /// `btfgen catalog import DIR`.
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import a BTFHub archive tree (<distro>/<version>/<arch>/<release>.btf.tar.xz).",
            discussion: """
                BTFHub records no build-id, so imported entries have none: `btfgen attach` then \
                matches them by release and distro, with a warning. Archives holding absolute \
                paths, `..`, links or device files, and BTF that libbpf cannot parse, are refused.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Argument(help: ArgumentHelp("The archive tree's root.", valueName: "dir"))
        var tree: String

        @Flag(help: "Replace entries of the same kernel even when their BTF is identical.")
        var force = false

        func run() throws {
            let catalog = catalogOptions.resolved
            let report = try reporting {
                try BTFHubInterop.importTree(tree, into: catalog, force: force)
            }
            for e in report.imported { print("imported \(e.source) → \(catalog.url(of: e).path)") }
            for r in report.refused { warn("refused \(r)") }
            print(
                "\(report.imported.count) imported, \(report.unchanged.count) already present, \(report.refused.count) refused"
            )
            if !report.refused.isEmpty { throw ExitCode.failure }
        }
    }

    /// `btfgen catalog export --layout btfhub DIR`.
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write the catalog out as a BTFHub archive tree.")

        enum Layout: String, ExpressibleByArgument { case btfhub }

        @OptionGroup var catalogOptions: CatalogOptions

        @Option(help: "Tree layout (btfhub: <distro>/<version>/<arch>/<release>.btf.tar.xz).")
        var layout: Layout = .btfhub

        @Argument(help: ArgumentHelp("Where to write the tree.", valueName: "dir"))
        var tree: String

        func run() throws {
            let catalog = catalogOptions.resolved
            let tree = self.tree
            let written = try reporting {
                // Before any work: a file, a read-only or a foreign directory is named as such.
                try prepareOutput(tree, option: "`catalog export`")
                do { return try BTFHubInterop.exportTree(catalog, to: tree) } catch {
                    throw outputFailure(error, path: tree, option: "`catalog export`") ?? error
                }
            }
            for w in written { print(w) }
            print("\(written.count) kernel\(written.count == 1 ? "" : "s") written to \(tree)")
        }
    }

    /// `btfgen catalog remove RELEASE|BUILD-ID...`.
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove kernels (their index entries and BTF files) from the catalog.",
            discussion: """
                Each KERNEL is a release or a build-id (8 or more hex digits of one are enough), as \
                `btfgen list` shows them. A release that several entries share is refused: give \
                their build-ids. All named entries go in one atomic write, or none does: a query \
                that matches nothing or more than one entry removes nothing, and a removal \
                interrupted at any moment is finished by the next command that writes the catalog.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Argument(help: ArgumentHelp("Releases or build-ids of the entries to remove.", valueName: "kernel"))
        var queries: [String]

        func validate() throws {
            if queries.isEmpty { throw ValidationError("give at least one release or build-id (see `btfgen list`)") }
        }

        func run() throws {
            let catalog = catalogOptions.resolved
            let queries = self.queries
            let removed = try reporting { try catalog.remove(queries) }
            for e in removed {
                let id = e.identity.buildID?.hex ?? "(no build-id)"
                print("removed \(e.identity.release) \(id) \(catalog.url(of: e).path)")
            }
        }
    }
}

extension BTFGen.CatalogCommand {
    /// `btfgen catalog merge SRC... --catalog DST`.
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Merge other catalogs (e.g. the shards of `btfgen sync --shard K/N`) into this one.",
            discussion: """
                Entries with the same build-id and the same BTF sha256 are the same kernel and are kept \
                once; failure records are merged too, except for packages that now have an entry. The \
                same build-id with a different sha256 is a conflict, printed on one line each: the \
                destination's entry stays as it was, and a kernel only the sources hold, on which they \
                disagree, is left out. Everything else is merged and the exit status is 1 \
                (--dry-run shows it all first). Every source file is checked against its recorded \
                sha256 first: a source that fails is refused by name and nothing is written. The \
                sources are only read; the merge is one atomic write, finished by the next command \
                that writes the catalog if it is interrupted.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Argument(help: ArgumentHelp("Catalog directories to merge from.", valueName: "source"))
        var sources: [String]

        @Flag(help: "Show what would be merged; write nothing.")
        var dryRun = false

        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() throws {
            let catalog = catalogOptions.resolved
            let sources = self.sources.map { Catalog(root: URL(fileURLWithPath: $0)) }
            let dryRun = self.dryRun
            let report = try reporting { try catalog.merge(sources, dryRun: dryRun) }
            for c in report.conflicts { warn(describe(c)) }
            if json {
                try printJSON(report)
            } else {
                let verb = dryRun ? "would add" : "added"
                for a in report.added {
                    let id = a.entry.identity.buildID?.hex ?? "(no build-id)"
                    print("\(verb) \(a.entry.identity.release) \(id) from \(a.from) → \(catalog.url(of: a.entry).path)")
                }
                print(summary(report))
            }
            if !report.conflicts.isEmpty { throw ExitCode.failure }
        }

        func describe(_ c: MergeConflict) -> String {
            let kernel = c.buildID.map { "build-id \($0)" } ?? "kernel without build-id"
            let query = c.buildID ?? c.release
            let outcome =
                switch c.resolution {
                case .keptDestination:
                    "the destination's entry is kept; to take the other, `btfgen catalog remove \(query) --catalog \(c.source)` and merge again"
                case .leftOut: "neither is merged; merge the catalog that holds the right one first"
                }
            return
                "conflict: \(kernel) (release \(c.release)) has sha256 \(c.sha256) in \(c.source) but \(c.otherSHA256) in \(c.otherSource) (compare their build records with `btfgen show \(query) --catalog DIR`); \(outcome)"
        }

        func summary(_ r: MergeReport) -> String {
            func count(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }
            var parts = [
                "\(r.added.count) \(dryRun ? "to add" : "added")", "\(r.present.count) already present",
                count(r.conflicts.count, "conflict", "conflicts"),
                count(r.failuresMerged.count, "failure record merged", "failure records merged"),
            ]
            if r.packagesRecorded > 0 {
                parts.append(
                    count(r.packagesRecorded, "entry given its package record", "entries given their package records"))
            }
            if !r.failuresResolved.isEmpty {
                parts.append(count(r.failuresResolved.count, "failure record resolved", "failure records resolved"))
            }
            return parts.joined(separator: ", ")
        }
    }
}
