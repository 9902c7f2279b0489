// What `btfgen sync` adds to the catalog: the repository package behind each entry, and a record
// of each package that could not be built. Both go through the same locked, journaled index write
// as entries (`commit`), so a failure record is never lost to a concurrent build.
import FoundationEssentials
import Kernel

/// A package in a repository, identified the way its index names it.
public struct SourcePackage: Codable, Hashable, Sendable {
    public var name: String
    public var version: String
    /// As the repository names it: Debian's `amd64`, `arm64`; rpm's `x86_64`, `aarch64`.
    public var architecture: String
    /// SHA256 of the package file, as the repository's index gives it.
    public var sha256: String
    public var size: Int
    /// Where it was fetched from.
    public var url: String

    public init(name: String, version: String, architecture: String, sha256: String, size: Int, url: String) {
        self.name = name
        self.version = version
        self.architecture = architecture
        self.sha256 = sha256
        self.size = size
        self.url = url
    }

    /// Same package and version: what one failure record stands for. The name alone is not
    /// enough: rpm repositories offer every version of `kernel-debuginfo` under that one name.
    public func isSameVersion(as other: SourcePackage) -> Bool {
        name == other.name && version == other.version && architecture == other.architecture
    }

    /// Same package file: name, version and digest agree (the URL may move between mirrors).
    public func isSameFile(as other: SourcePackage) -> Bool {
        name == other.name && version == other.version && sha256 == other.sha256
    }
}

/// A repository package that did not become an entry, and why.
public struct FailureRecord: Codable, Hashable, Sendable {
    /// Where it failed: `download` and `verify` are retried by the next sync; `build` only with
    /// `--retry-failed` or once the tool versions differ.
    public enum Stage: String, Codable, Sendable { case download, verify, build }
    public var package: SourcePackage
    public var stage: Stage
    public var reason: String
    /// `pahole` and `btfgen` versions of the failing run.
    public var pahole: String
    public var btfgen: String
    /// ISO 8601 UTC.
    public var failedAt: String

    public init(package: SourcePackage, stage: Stage, reason: String, pahole: String, btfgen: String, failedAt: String)
    {
        self.package = package
        self.stage = stage
        self.reason = reason
        self.pahole = pahole
        self.btfgen = btfgen
        self.failedAt = failedAt
    }
}

extension Catalog {
    /// The failure records in the index.
    public func failures() throws -> [FailureRecord] { try index().failures }

    /// Record (or replace) the failure of `record.package`, under the lock.
    public func recordFailure(_ record: FailureRecord) throws {
        try prepare()
        try withLock {
            try recoverInterruptedWrites()
            var index = try index()
            index.failures.removeAll { $0.package.isSameVersion(as: record.package) }
            index.failures.append(record)
            try commit(index)
        }
    }

    /// Note that the entry with `buildID` came from `package`, and drop that package's failure
    /// record (it built after all). Used when a sync finds a kernel already catalogued by
    /// `btfgen build`, so the next sync skips it without downloading.
    public func recordPackage(_ package: SourcePackage, buildID: BuildID?) throws {
        try prepare()
        try withLock {
            try recoverInterruptedWrites()
            var index = try index()
            if let buildID, let i = index.entries.firstIndex(where: { $0.identity.buildID == buildID }) {
                index.entries[i].package = package
            }
            index.failures.removeAll { $0.package.isSameVersion(as: package) }
            try commit(index)
        }
    }
}
