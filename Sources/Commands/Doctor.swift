import ArgumentParser
import Catalog
import FoundationEssentials
import Toolchain

extension BTFGen {
    /// `btfgen doctor`: are the tools there, which versions, what to install.
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the tools btfgen drives and the catalog it uses.")

        @OptionGroup var catalogOptions: CatalogOptions

        func run() throws {
            var problems = 0
            var rows: [[String]] = []
            do {
                let tools = try Toolchain.probe()
                rows.append([
                    "ok", "pahole", tools.pahole.version.description, tools.pahole.path,
                    "flags: \(tools.paholeFlags(parallel: false).joined(separator: " "))",
                ])
                for (name, tool, package) in [
                    ("llvm-objcopy", tools.llvmObjcopy, Toolchain.llvmPackage), ("strip", tools.strip, Toolchain.stripPackage),
                ] {
                    if let tool {
                        rows.append(["ok", name, tool.version.description, tool.path, ""])
                    } else {
                        rows.append(["missing", name, "-", "-", "apt-get install \(package) (needed for --method objcopy)"])
                        problems += 1
                    }
                }
                rows.append(["ok", "method", tools.defaultMethod.rawValue, "", "default encoding method"])
            } catch let e as ToolError {
                rows.append(["error", "pahole", "-", "-", e.description])
                problems += 1
            }
            let catalog = catalogOptions.resolved
            do {
                // Every entry's file against the sha256 its index records: a changed file would be
                // refused on use, so say so now, with both digests.
                let checked = try catalog.verifyAll()
                let bad = checked.compactMap(\.problem)
                for problem in bad { warn("\(problem)") }
                if bad.isEmpty {
                    rows.append(["ok", "catalog", "\(checked.count) entries", catalog.root.path, "every file matches its sha256"])
                } else {
                    rows.append([
                        "error", "catalog", "\(checked.count) entries", catalog.root.path,
                        "\(bad.count) entr\(bad.count == 1 ? "y's file is" : "ies' files are") missing or changed (above); rebuild with `btfgen build --force`",
                    ])
                    problems += 1
                }
            } catch {
                rows.append(["error", "catalog", "-", catalog.root.path, "\(error)"])
                problems += 1
            }
            print(table([["STATUS", "CHECK", "VERSION", "WHERE", "NOTE"]] + rows))
            if problems > 0 {
                warn("\(problems) problem\(problems == 1 ? "" : "s") found; see NOTE above")
                throw ExitCode.failure
            }
        }
    }
}
