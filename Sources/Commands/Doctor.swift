import ArgumentParser
import Catalog
import FoundationEssentials
import Toolchain

extension BTFGen {
    /// `btfgen doctor`: are the tools there, which versions, what to install; is the catalog sound.
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "doctor",
            abstract: "Check the tools btfgen drives and the catalog it uses.",
            discussion: """
                The scratch row counts what killed builds left in <catalog>/.tmp (a killed .deb \
                build can leave hundreds of MB there until the next build); --clear-scratch \
                removes it the way the next build would: interrupted catalog writes are finished \
                first, and files of builds still running are left alone.
                """)

        @OptionGroup var catalogOptions: CatalogOptions

        @Flag(
            name: .customLong("clear-scratch"),
            help: "Remove what killed builds left in the catalog's scratch space (<catalog>/.tmp).")
        var clearScratch = false

        func run() throws {
            var problems = 0
            var rows: [[String]] = []
            // Every tool gets its row, whichever of them is missing.
            let probe = Toolchain.probeEach()
            switch probe.pahole {
            case .success(let pahole):
                let flags = probe.usable?.paholeFlags(parallel: true) ?? []
                rows.append([
                    "ok", "pahole", pahole.version.description, pahole.path, "flags: \(flags.joined(separator: " "))",
                ])
            case .failure(let e):
                rows.append(["error", "pahole", "-", "-", e.description])
                problems += 1
            }
            for (name, result, package) in [
                ("llvm-objcopy", probe.llvmObjcopy, Toolchain.llvmPackage),
                ("strip", probe.strip, Toolchain.stripPackage),
            ] {
                switch result {
                case .success(let tool?):
                    rows.append(["ok", name, tool.version.description, tool.path, ""])
                case .success(nil):
                    rows.append(["missing", name, "-", "-", "apt-get install \(package) (needed for --method objcopy)"])
                    problems += 1
                case .failure(let e):
                    rows.append(["error", name, "-", "-", e.description])
                    problems += 1
                }
            }
            if let method = probe.usable?.defaultMethod {
                rows.append(["ok", "method", method.rawValue, "", "default encoding method"])
            } else {
                rows.append(["error", "method", "-", "", "no encoding method without pahole (see its row)"])
            }
            let catalog = catalogOptions.resolved
            do {
                // Every entry's file against the sha256 its index records: a changed file would be
                // refused on use, so say so now, with both digests.
                let checked = try catalog.verifyAll()
                let bad = checked.compactMap(\.problem)
                for problem in bad { warn("\(problem)") }
                if bad.isEmpty {
                    rows.append([
                        "ok", "catalog", "\(checked.count) entries", catalog.root.path, "every file matches its sha256",
                    ])
                } else {
                    rows.append([
                        "error", "catalog", "\(checked.count) entries", catalog.root.path,
                        "\(bad.count) entr\(bad.count == 1 ? "y's file is" : "ies' files are") missing, changed or unreadable; see above for what to do",
                    ])
                    problems += 1
                }
            } catch {
                rows.append(["error", "catalog", "-", catalog.root.path, "\(error)"])
                problems += 1
            }
            let (scratchRow, scratchProblem) = scratch(catalog)
            rows.append(scratchRow)
            if scratchProblem { problems += 1 }
            print(table([["STATUS", "CHECK", "VERSION", "WHERE", "NOTE"]] + rows))
            if problems > 0 {
                warn("\(problems) problem\(problems == 1 ? "" : "s") found; see NOTE above")
                throw ExitCode.failure
            }
        }

        /// The scratch row (cleared first with --clear-scratch), and whether it is a problem.
        func scratch(_ catalog: Catalog) -> ([String], Bool) {
            let path = catalog.scratchURL.path
            var usage = catalog.scratchUsage()
            var cleared: Catalog.ScratchUsage? = nil
            if clearScratch && usage.staleFiles > 0 {
                do {
                    cleared = try catalog.clearScratch()
                    usage = catalog.scratchUsage()
                } catch {
                    return (["error", "scratch", formatBytes(Int(usage.staleBytes)), path, "\(error)"], true)
                }
            }
            let running =
                usage.liveFiles > 0
                ? "\(formatBytes(Int(usage.liveBytes))) in use by running btfgen (pid \(usage.livePIDs.map(String.init).joined(separator: ", ")))"
                : ""
            if usage.staleFiles > 0 {
                let writes =
                    usage.interruptedWrites > 0
                    ? " and \(usage.interruptedWrites) interrupted catalog write\(usage.interruptedWrites == 1 ? "" : "s") to finish"
                    : ""
                let note =
                    "\(usage.staleFiles) file\(usage.staleFiles == 1 ? "" : "s") left by killed builds\(writes); `btfgen doctor --clear-scratch` clears them (so does the next build)"
                return (
                    [
                        "stale", "scratch", formatBytes(Int(usage.staleBytes)), path,
                        [note, running].filter { !$0.isEmpty }.joined(separator: "; "),
                    ],
                    true
                )
            }
            if let cleared {
                let writes =
                    cleared.interruptedWrites > 0
                    ? ", finished \(cleared.interruptedWrites) interrupted catalog write\(cleared.interruptedWrites == 1 ? "" : "s")"
                    : ""
                let note = "cleared \(formatBytes(Int(cleared.staleBytes))) left by killed builds\(writes)"
                return (
                    [
                        "ok", "scratch", "cleared", path,
                        [note, running].filter { !$0.isEmpty }.joined(separator: "; "),
                    ], false
                )
            }
            return (
                ["ok", "scratch", usage.liveFiles > 0 ? formatBytes(Int(usage.liveBytes)) : "empty", path, running],
                false
            )
        }
    }
}
