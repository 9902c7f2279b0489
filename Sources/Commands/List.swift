import ArgumentParser
import Catalog
import FoundationEssentials
import SystemSupport

extension BTFGen {
    /// `btfgen list`: the catalog as a table or JSON.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List catalog entries.")

        @OptionGroup var catalogOptions: CatalogOptions

        @Flag(help: "Print the entries as JSON.")
        var json = false

        @Flag(help: "List the repository packages `btfgen sync` could not build, with the reason.")
        var failed = false

        func run() throws {
            let catalog = catalogOptions.resolved
            if failed { return try listFailures(catalog) }
            let entries = try reporting { try catalog.entries() }
            if json {
                try printJSON(entries)
                return
            }
            if entries.isEmpty {
                print(
                    "catalog \(catalog.root.path) is empty; add kernels with `btfgen build <debuginfo vmlinux or package>`"
                )
                printFailureCount(catalog)
                return
            }
            let header = ["RELEASE", "ARCH", "DISTRO", "VERSION", "BUILD-ID", "TYPES", "SIZE"]
            let rows = entries.map { e in
                [
                    e.identity.release, e.identity.arch, e.identity.distro, e.identity.distroVersion,
                    e.identity.buildID.map { String($0.hex.prefix(12)) } ?? "-", String(e.typeCount),
                    formatBytes(e.size),
                ]
            }
            print(table([header] + rows))
            print("\(entries.count) kernel\(entries.count == 1 ? "" : "s") in \(catalog.root.path)")
            printFailureCount(catalog)
        }

        /// One line pointing at `--failed` when sync recorded failures.
        func printFailureCount(_ catalog: Catalog) {
            let count = (try? catalog.failures().count) ?? 0
            if count > 0 {
                print("\(count) package\(count == 1 ? "" : "s") failed to build; see `btfgen list --failed`")
            }
        }

        func listFailures(_ catalog: Catalog) throws {
            let failures = try reporting { try catalog.failures() }
            if json {
                try printJSON(failures)
                return
            }
            if failures.isEmpty {
                print("no failed packages recorded in \(catalog.root.path)")
                return
            }
            let header = ["PACKAGE", "VERSION", "ARCH", "STAGE", "PAHOLE", "FAILED", "REASON"]
            let rows = failures.map { f in
                [
                    f.package.name, f.package.version, f.package.architecture, f.stage.rawValue, f.pahole, f.failedAt,
                    f.reason,
                ]
            }
            print(table([header] + rows))
            print("\(failures.count) failed package\(failures.count == 1 ? "" : "s") in \(catalog.root.path)")
        }
    }

    /// `btfgen show RELEASE|BUILD-ID`: one entry in full.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one catalog entry by release or build-id.")

        @OptionGroup var catalogOptions: CatalogOptions

        @Argument(
            help: ArgumentHelp(
                "A release (uname -r) or a build-id (or a unique prefix of ≥ 8 hex digits).",
                valueName: "release|build-id"))
        var query: String

        @Flag(help: "Print the entry as JSON.")
        var json = false

        func run() throws {
            let catalog = catalogOptions.resolved
            let e = try reporting { try catalog.lookup(query) }
            if json {
                try printJSON(e)
                return
            }
            let id = e.identity
            var rows: [[String]] = [
                ["release", id.release], ["arch", id.arch], ["distro", "\(id.distro) \(id.distroVersion)"],
                ["build-id", id.buildID?.hex ?? "unknown"],
                ["file", catalog.url(of: e).path], ["size", "\(e.size) bytes"], ["sha256", e.sha256],
                ["types", String(e.typeCount)], ["source", e.source], ["built", e.builtAt],
            ]
            if let c = id.compiler { rows.append(["compiler", c]) }
            if let b = e.build {
                rows.append(["method", b.method])
                rows.append(["pahole", "\(b.pahole) \(b.paholeFlags.joined(separator: " "))"])
                if let o = b.llvmObjcopy { rows.append(["llvm-objcopy", o]) }
                if let s = b.strip { rows.append(["strip", s]) }
            }
            if let p = e.package {
                rows.append(["package", "\(p.name) \(p.version) \(p.architecture)"])
                rows.append(["package url", p.url])
                rows.append(["package sha256", p.sha256])
            }
            if let banner = id.banner { rows.append(["banner", banner]) }
            print(table(rows))
        }
    }
}

/// Left-aligned columns separated by two spaces.
func table(_ rows: [[String]]) -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: width)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padded(toLength: widths[i])
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
