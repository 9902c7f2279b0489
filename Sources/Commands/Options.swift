import ArgumentParser
import Catalog
import FoundationEssentials
import SystemSupport

/// `--catalog`, shared by every command that reads or writes the catalog.
public struct CatalogOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Catalog directory (default: $BTFGEN_CATALOG, else ./kernels).", valueName: "dir"))
    public var catalog: String?

    public init() {}

    public var resolved: Catalog { Catalog(root: Catalog.resolveRoot(catalog)) }
}

/// Print one line to stderr.
func warn(_ message: String) {
    writeStandardError("btfgen: \(message)\n")
}

/// A failure already explained to the user on stderr: exit non-zero without ArgumentParser's usage text.
struct Reported: Error {}

/// Run `body`; any error becomes one line on stderr and exit status 1.
func reporting<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch is Reported {
        throw ExitCode.failure
    } catch {
        warn(describe(error))
        throw ExitCode.failure
    }
}

/// Human-readable byte counts.
func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20 { return "\(fixed(Double(n) / Double(1 << 20), digits: 1)) MiB" }
    if n >= 1 << 10 { return "\(fixed(Double(n) / Double(1 << 10), digits: 1)) KiB" }
    return "\(n) B"
}

/// Pretty, key-sorted JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
