// The commands as ArgumentParser sees them, in-process: what parses, what `validate()` refuses
// and with which words. The commands' work is in the libraries; these tests pin the surface.
import ArgumentParser
import Testing

@testable import Commands

/// A command line that ArgumentParser refused, with the message the user would see.
private struct Refused: Error, CustomStringConvertible {
    let description: String
}

/// Parse `arguments` as `btfgen` would; a refusal throws its message.
private func parse(_ arguments: [String]) throws -> any ParsableCommand {
    do { return try BTFGen.parseAsRoot(arguments) } catch {
        throw Refused(description: BTFGen.message(for: error))
    }
}

/// The message for a refused command line; nil when it parses.
private func refusal(_ arguments: [String]) -> String? {
    do {
        _ = try parse(arguments)
        return nil
    } catch { return "\(error)" }
}

@Suite struct ParsingTests {
    @Test func minimizeNeedsAnObjectAndOneKindOfInput() throws {
        #expect(refusal(["minimize", "-o", "out"]) == "give at least one --object FILE.bpf.o")
        #expect(
            refusal(["minimize", "--object", "a.bpf.o", "--catalog", "k", "--btf", "x.btf", "-o", "out"])
                == "give either --catalog or --btf, not both")
        #expect(refusal(["minimize", "--object", "a.bpf.o"])?.contains("--output") == true)
        let parsed = try parse([
            "minimize", "--object", "a.bpf.o", "--object", "b.bpf.o", "--btf", "x.btf", "-o", "out",
            "--compat", "libbpf-0.x", "--json",
        ])
        let m = try #require(parsed as? BTFGen.Minimize)
        #expect(m.objects == ["a.bpf.o", "b.bpf.o"])
        #expect(m.btfFiles == ["x.btf"])
        #expect(m.output == "out")
        #expect(m.compat.rawValue == "libbpf-0.x")
        #expect(m.json)
    }

    @Test func buildChecksJobsAndDistroBeforeAnyWork() throws {
        #expect(refusal(["build", "--jobs", "0", "vmlinux"]) == "--jobs must be at least 1")
        #expect(refusal(["build", "--distro-version", "12", "vmlinux"]) == "--distro-version needs --distro")
        #expect(refusal(["build"])?.contains("Missing expected argument") == true)
        #expect(refusal(["build", "--method", "bogus", "vmlinux"])?.contains("bogus") == true)
        let b = try #require(
            try parse(["build", "-j", "3", "--distro", "rhel", "--distro-version", "8", "a", "b"])
                as? BTFGen.Build)
        #expect(b.jobs == 3)
        #expect(b.inputs == ["a", "b"])
        #expect(b.distro == "rhel" && b.distroVersion == "8")
        #expect(b.parallel && !b.force, "pahole -j is the default; its output is canonical")
    }

    @Test func bundleNeedsAnObjectAndKnowsItsFormats() throws {
        #expect(refusal(["bundle", "-o", "b.tar.xz"]) == "give at least one --object FILE.bpf.o")
        #expect(refusal(["bundle", "--object", "a.o", "-o", "b", "--format", "zip"])?.contains("zip") == true)
        let b = try #require(
            try parse(["bundle", "--object", "a.o", "-o", "b", "--format", "oci", "--select", "rhel/8/*"])
                as? BTFGen.BundleCommand)
        #expect(b.format.rawValue == "oci")
        #expect(b.selections == ["rhel/8/*"])
    }

    @Test func catalogRemoveTakesOneOrMoreQueries() throws {
        #expect(refusal(["catalog", "remove"])?.contains("Missing expected argument") == true)
        let r = try #require(
            try parse(["catalog", "remove", "--catalog", "k", "6.1.0-13-amd64", "0123456789ab"])
                as? BTFGen.CatalogCommand.Remove)
        #expect(r.queries == ["6.1.0-13-amd64", "0123456789ab"])
        #expect(r.catalogOptions.catalog == "k")
    }

    @Test func unknownCommandsAndOptionsAreRefusedByName() {
        #expect(refusal(["frobnicate"])?.contains("frobnicate") == true)
        #expect(refusal(["list", "--bogus"])?.contains("--bogus") == true)
    }
}
