import ArgumentParser
import Builder
import Catalog
import FoundationEssentials

extension BTFGen {
    /// `btfgen catalog import|export|remove`: BTFHub interop, and taking kernels out.
    struct CatalogCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "catalog",
            abstract: "Move kernels between the catalog and a BTFHub-style archive tree, or remove them.",
            subcommands: [Import.self, Export.self, Remove.self])
    }
}

extension BTFGen.CatalogCommand {
    /// `btfgen catalog import DIR`.
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
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
        static let configuration = CommandConfiguration(abstract: "Write the catalog out as a BTFHub archive tree.")

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
