// Sharded `btfgen sync` for real: N processes of the built binary at once against one loopback
// repository, each into its own catalog, merged by `btfgen catalog merge`, give the catalog one
// process gives. Then the same through the shipped CI files (scripts/ci, scripts/k8s): their
// YAML is parsed by PyYAML and the shell scripts they hold are run as the engines run them, with
// the variables the engines set, so a typo in a shipped file fails here.
import Foundation
import Synchronization
import TestSupport
import Testing

/// PyYAML, to read the shipped workflow and manifests as the engines would.
let pyYAML = Requirement("PyYAML", remedy: "apt-get install python3-yaml (scripts/setup.sh does)") {
    (try? runProcess("python3", ["-c", "import yaml"]).status) == 0
}

@Suite(
    .serialized,
    .requires(
        .tool("nginx"), .tool("apt-ftparchive"), .tool("dpkg-deb"), .tool("gpg"), .tool("gpgv"), .tool("gcc"),
        .tool("xz"), .tool("python3"), pyYAML))
struct ShardedSyncTests {
    /// A repository of `releases` plus one package that holds no vmlinux (it fails to build and is
    /// recorded as a failure), with the one-process sync of it to compare against.
    private func serve(_ releases: [Int], broken: Int) throws -> (ServedRepository, whole: String) {
        let served = try ServedRepository(kernels: releases.map { ("6.1.0-\($0)-amd64", $0) })
        try served.repo.addKernel(release: "6.1.0-\(broken)-amd64", variant: broken, withVmlinux: false)
        try served.repo.publish()
        let whole = served.dir.file("whole")
        let r = try served.sync(whole)
        try #require(r.status == 1, "the broken package did not fail the one-process sync: \(r.stderr)")
        try #require(try catalogEntries(whole).count == releases.count)
        try #require(try catalogFailures(whole).count == 1)
        return (served, whole)
    }

    /// A catalog as the comparison sees it: each entry and failure record without the time it
    /// was made, every file checked against its sha256 by sha256sum.
    private func contents(_ catalog: String) throws -> (entries: [String], failures: [String]) {
        func canonical(_ object: [String: Any], dropping key: String) throws -> String {
            var o = object
            o[key] = nil
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
        var entries: [String] = []
        for e in try catalogEntries(catalog) {
            let path = try #require(e["path"] as? String)
            #expect(try sha256sum(catalog + "/" + path) == e["sha256"] as? String, "\(catalog)/\(path)")
            entries.append(try canonical(e, dropping: "builtAt"))
        }
        let failures = try catalogFailures(catalog).map { try canonical($0, dropping: "failedAt") }
        return (entries.sorted(), failures.sorted())
    }

    private func expectSame(_ merged: String, as whole: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let a = try contents(merged), b = try contents(whole)
        #expect(a.entries == b.entries, "entries differ from the one-process sync", sourceLocation: sourceLocation)
        #expect(a.failures == b.failures, "failure records differ", sourceLocation: sourceLocation)
        #expect(!a.entries.isEmpty && a.failures.count == 1, sourceLocation: sourceLocation)
    }

    /// A directory with `btfgen` (the one under test) for PATH, as the image of the CI files has it.
    private func binDirectory(_ dir: ScratchDirectory) throws -> String {
        let bin = dir.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin + "/btfgen", withDestinationPath: Repo.btfgen)
        return bin
    }

    private func pathWith(_ bin: String) -> String {
        bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    /// Every YAML document of a shipped file, as PyYAML reads it (through JSON).
    private func yamlDocuments(_ relative: String) throws -> [[String: Any]] {
        let path = Repo.root.appendingPathComponent(relative).path
        let r = try runProcess(
            "python3",
            [
                "-c", "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
                path,
            ])
        try #require(r.status == 0, "\(relative) is not valid YAML: \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    /// Run `body` for 0..<count at once, each on its own thread.
    private func concurrently<T: Sendable>(_ count: Int, _ body: @Sendable @escaping (Int) throws -> T) throws -> [T] {
        let results = Mutex([Result<T, any Error>?](repeating: nil, count: count))
        DispatchQueue.concurrentPerform(iterations: count) { i in
            let r = Result { try body(i) }
            results.withLock { $0[i] = r }
        }
        return try results.withLock { $0 }.map { try $0!.get() }
    }

    @Test func threeShardProcessesAtOnceMergedEqualOneSync() throws {
        // Package names chosen so every shard of three has work (FNV-1a of the name mod 3).
        let (served, whole) = try serve([60, 61, 62, 63, 64, 65], broken: 96)
        defer { served.close() }
        let shards = (1...3).map { served.dir.file("shard\($0)") }
        let line = served.line, keyring = served.repo.keyring
        let results = try concurrently(3) { i in
            try btfgen(["sync", line, "--shard", "\(i + 1)/3", "--catalog", shards[i], "--keyring", keyring])
        }
        var owners: [String: Int] = [:]
        for (i, r) in results.enumerated() {
            let broken = try catalogFailures(shards[i]).count == 1
            #expect(r.status == (broken ? 1 : 0), "shard \(i + 1): \(r.stderr)")
            let built = try builtPackages(shards[i])
            #expect(!built.isEmpty, "shard \(i + 1)/3 built nothing: the partition is not spreading")
            for name in built.keys { owners[name, default: 0] += 1 }
        }
        #expect(owners.values.allSatisfy { $0 == 1 }, "a package was built by two shards: \(owners)")
        // Each package was fetched once over all shards.
        #expect(served.nginx.debRequests().count == 2 * 7, "\(served.nginx.debRequests())")

        let merged = served.dir.file("merged")
        let r = try btfgen(["catalog", "merge"] + shards + ["--catalog", merged])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("6 added, 0 already present, 0 conflicts, 1 failure record merged"), "\(r.stdout)")
        try expectSame(merged, as: whole)
        // The merged catalog carries the package records: a sync into it fetches nothing.
        let before = served.nginx.debRequests().count
        let again = try served.sync(merged)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(served.nginx.debRequests().count == before, "a sync into the merged catalog downloaded again")
    }

    @Test func theGitHubActionsWorkflowShardsAndMerges() throws {
        // Shard 3/3 gets no package: its artifact holds no catalog, only the listing.
        let (served, whole) = try serve([62, 63, 65], broken: 97)
        defer { served.close() }
        let workflow = try #require(try yamlDocuments("scripts/ci/github-actions-sync.yml").first)
        let env = try #require(workflow["env"] as? [String: Any]).mapValues { "\($0)" }
        let shards = try #require(Int(env["SHARDS"] ?? ""), "SHARDS is not a number")
        let shell = ((workflow["defaults"] as? [String: Any])?["run"] as? [String: Any])?["shell"] as? String
        #expect(shell == "bash")
        let jobs = try #require(workflow["jobs"] as? [String: [String: Any]])
        let sync = try #require(jobs["sync"]), merge = try #require(jobs["merge"])
        let matrix = try #require((sync["strategy"] as? [String: Any])?["matrix"] as? [String: Any])
        #expect(matrix["shard"] as? [Int] == Array(1...shards), "the matrix does not match SHARDS")
        #expect(merge["needs"] as? String == "sync")

        let bin = try binDirectory(served.dir)
        var environment = env
        environment["BTFGEN_SOURCE"] =
            "deb [arch=amd64 signed-by=\(served.repo.keyring)] \(served.nginx.url) bookworm main"
        environment["PATH"] = pathWith(bin)
        environment["CI"] = "true"
        environment["GITHUB_ACTIONS"] = "true"
        nonisolated(unsafe) let syncSteps = try #require(sync["steps"] as? [[String: Any]])
        let mergeSteps = try #require(merge["steps"] as? [[String: Any]])
        let caches = served.dir.file("caches")
        /// One workflow run: every shard's sync job at once, then the merge job; the runner's
        /// caches persist from run to run as GitHub's do.
        func workflowRun(_ id: Int) throws -> (runner: WorkflowRunner, merged: String, failure: String?) {
            let runner = WorkflowRunner(
                environment: environment, artifacts: served.dir.file("artifacts-\(id)"), caches: caches, runID: "\(id)")
            let workspaces = (1...shards).map { served.dir.file("run\(id)-sync-\($0)") }
            let outcomes = try concurrently(shards) { i in
                try runner.run(job: "sync", steps: syncSteps, matrix: ["shard": "\(i + 1)"], workspace: workspaces[i])
            }
            for (i, failure) in outcomes.enumerated() {
                #expect(failure == nil, "run \(id), sync job of shard \(i + 1): \(failure!)")
            }
            let merged = served.dir.file("run\(id)-merge")
            return (runner, merged, try runner.run(job: "merge", steps: mergeSteps, matrix: [:], workspace: merged))
        }

        let first = try workflowRun(1001)
        #expect(first.failure == nil, "merge job: \(first.failure ?? "")")
        let uploaded = try FileManager.default.contentsOfDirectory(atPath: first.runner.artifacts).sorted()
        #expect(uploaded == ["btfgen-catalog"] + (1...shards).map { "btfgen-shard-\($0)" })
        #expect(FileManager.default.fileExists(atPath: first.runner.artifacts + "/btfgen-catalog/index.json"))
        #expect(!FileManager.default.fileExists(atPath: first.runner.artifacts + "/btfgen-shard-3/catalog"))
        try expectSame(first.merged + "/catalog", as: whole)

        // The next run, one package later: only that one is downloaded (into the shard that was
        // empty), and the merged catalog is the one-process sync's again.
        try served.repo.addKernel(release: "6.1.0-64-amd64", variant: 64)
        try served.repo.publish()
        let fetched = served.nginx.debRequests().count
        let second = try workflowRun(1002)
        #expect(second.failure == nil, "merge job: \(second.failure ?? "")")
        #expect(
            served.nginx.debRequests().dropFirst(fetched) == ["linux-image-6.1.0-64-amd64-dbg_6.1.999-1_amd64.deb"],
            "\(served.nginx.debRequests().dropFirst(fetched))")
        _ = try served.sync(whole)
        try expectSame(second.merged + "/catalog", as: whole)

        // A shard that never uploaded stops the merge, naming it.
        try FileManager.default.removeItem(atPath: second.runner.artifacts + "/btfgen-shard-2")
        let short = try second.runner.run(
            job: "merge", steps: mergeSteps, matrix: [:], workspace: served.dir.file("run1002-merge-again"))
        #expect(short?.contains("shard 2/3 uploaded no catalog") == true, "\(short ?? "the merge passed")")
    }

    @Test func theKubernetesIndexedJobShardsAndTheMergeJobMerges() throws {
        // Shard 1/3 gets no package: its directory exists and holds no index.
        let (served, whole) = try serve([60, 61, 62, 63], broken: 96)
        defer { served.close() }
        let documents = try yamlDocuments("scripts/k8s/sync-indexed-job.yaml")
        let claim = try #require(documents.first { $0["kind"] as? String == "PersistentVolumeClaim" })
        let claimName = try #require((claim["metadata"] as? [String: Any])?["name"] as? String)
        #expect(((claim["spec"] as? [String: Any])?["accessModes"] as? [String]) == ["ReadWriteMany"])
        let job = try #require(documents.first { $0["kind"] as? String == "Job" })
        let spec = try #require(job["spec"] as? [String: Any])
        #expect(spec["completionMode"] as? String == "Indexed")
        let syncPod = try PodSpec(job: job, claim: claimName)
        let shards = try #require(Int(syncPod.environment["SHARDS"] ?? ""), "SHARDS is not a number")
        #expect(spec["completions"] as? Int == shards && spec["parallelism"] as? Int == shards)
        let mergeJob = try #require(try yamlDocuments("scripts/k8s/merge-job.yaml").first)
        let mergePod = try PodSpec(job: mergeJob, claim: claimName)
        #expect(mergePod.environment["SHARDS"] == syncPod.environment["SHARDS"])
        #expect(mergePod.mountPath == syncPod.mountPath)

        // The shared volume: a scratch directory where the pods would mount the claim.
        let volume = served.dir.file("volume")
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        let bin = try binDirectory(served.dir)
        let overrides = [
            "BTFGEN_SOURCE": "deb [arch=amd64 signed-by=\(served.repo.keyring)] \(served.nginx.url) bookworm main",
            "PATH": pathWith(bin), "CATALOGS": volume,
        ]
        func runShards() throws {
            let results = try concurrently(shards) { i in
                try syncPod.run(overrides.merging(["JOB_COMPLETION_INDEX": "\(i)"]) { $1 })
            }
            for (i, r) in results.enumerated() { #expect(r.status == 0, "pod \(i): \(r.stderr)") }
        }
        try runShards()
        #expect(FileManager.default.fileExists(atPath: volume + "/shards/1"))
        #expect(!FileManager.default.fileExists(atPath: volume + "/shards/1/index.json"))
        let merged = try mergePod.run(overrides)
        #expect(merged.status == 0, "merge pod: \(merged.stderr)")
        try expectSame(volume + "/catalog", as: whole)

        // The next run, on the same volume: nothing is downloaded again, nothing changes.
        let fetched = served.nginx.debRequests().count
        let index = try Data(contentsOf: URL(fileURLWithPath: volume + "/catalog/index.json"))
        try runShards()
        #expect(served.nginx.debRequests().count == fetched, "the second run downloaded again")
        let again = try mergePod.run(overrides)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("0 added, 4 already present"), "\(again.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: volume + "/catalog/index.json")) == index)

        // A shard that never ran stops the merge, naming it.
        try FileManager.default.removeItem(atPath: volume + "/shards/3")
        let short = try mergePod.run(overrides)
        #expect(short.status != 0)
        #expect(short.stderr.contains("shard 3/3 never ran"), "\(short.stderr)")
    }
}

/// The one container of a Job's pod: its command, environment and where it mounts the claim.
struct PodSpec {
    let command: [String]
    let environment: [String: String]
    let mountPath: String

    init(job: [String: Any], claim: String) throws {
        let spec = try #require(
            ((job["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let containers = try #require(spec["containers"] as? [[String: Any]])
        try #require(containers.count == 1)
        let container = containers[0]
        command = (container["command"] as? [String] ?? []) + (container["args"] as? [String] ?? [])
        try #require(!command.isEmpty)
        var env: [String: String] = [:]
        for variable in container["env"] as? [[String: Any]] ?? [] {
            env[try #require(variable["name"] as? String)] = try #require(variable["value"] as? String)
        }
        environment = env
        let volumes = try #require(spec["volumes"] as? [[String: Any]])
        let volume = try #require(
            volumes.first { ($0["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String == claim })
        let mount = try #require(
            (container["volumeMounts"] as? [[String: Any]])?.first {
                $0["name"] as? String == volume["name"] as? String
            })
        mountPath = try #require(mount["mountPath"] as? String)
        // The scripts find the volume through $CATALOGS, which the tests point elsewhere.
        try #require(env["CATALOGS"] == mountPath, "CATALOGS is not where the claim is mounted")
    }

    /// Run the container's command here, with its env and `overrides` (what the pod would see).
    func run(_ overrides: [String: String]) throws -> ProcessResult {
        let env = environment.merging(overrides) { $1 }
        return try runProcess(command[0], Array(command.dropFirst()), environment: env)
    }
}

/// A GitHub Actions runner for the steps the shipped workflow uses: `run:` scripts as the runner
/// runs them (bash --noprofile --norc -eo pipefail, in the workspace, `${{ matrix.* }}` put in),
/// actions/upload-artifact and download-artifact by their documented layout, and actions/cache
/// restore and save (an exact key, else the newest key starting with a restore-key; a saved key
/// is never overwritten).
struct WorkflowRunner: Sendable {
    let environment: [String: String]
    let artifacts: String
    let caches: String
    let runID: String

    /// Run a job's steps; nil when every step passed, else what failed.
    func run(job: String, steps: [[String: Any]], matrix: [String: String], workspace: String) throws -> String? {
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        func substitute(_ text: String) throws -> String {
            var out = text
            for (key, value) in matrix { out = out.replacing("${{ matrix.\(key) }}", with: value) }
            for (key, value) in environment { out = out.replacing("${{ env.\(key) }}", with: value) }
            return out.replacing("${{ github.run_id }}", with: runID)
        }
        for (n, step) in steps.enumerated() {
            let name = step["name"] as? String ?? "step \(n + 1)"
            if let script = step["run"] as? String {
                let text = try substitute(script)
                try #require(!text.contains("${{"), "\(job)/\(name): an expression the test runner does not set")
                let file = workspace + "/.step-\(n).sh"
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                let r = try runProcess(
                    "bash", ["--noprofile", "--norc", "-eo", "pipefail", file], environment: environment,
                    currentDirectory: workspace)
                if r.status != 0 { return "\(name) exited \(r.status): \(r.stderr)" }
                continue
            }
            let uses = try #require(step["uses"] as? String, "\(job)/\(name): neither run nor uses")
            let with = (step["with"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
            switch uses {
            case _ where uses.hasPrefix("actions/cache/restore@"):
                let key = try substitute(try #require(with["key"])), path = try substitute(try #require(with["path"]))
                let prefixes = try (with["restore-keys"] ?? "").split(separator: "\n").map {
                    try substitute(String($0))
                }
                let saved = ((try? FileManager.default.contentsOfDirectory(atPath: caches)) ?? []).sorted()
                let hit = saved.contains(key) ? key : saved.last { k in prefixes.contains { k.hasPrefix($0) } }
                guard let hit else { continue }
                let target = workspace + "/" + path
                try FileManager.default.createDirectory(
                    atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: caches + "/" + hit, toPath: target)
            case _ where uses.hasPrefix("actions/cache/save@"):
                let key = try substitute(try #require(with["key"])), path = try substitute(try #require(with["path"]))
                try FileManager.default.createDirectory(atPath: caches, withIntermediateDirectories: true)
                guard !FileManager.default.fileExists(atPath: caches + "/" + key) else { continue }
                try FileManager.default.copyItem(atPath: workspace + "/" + path, toPath: caches + "/" + key)
            case _ where uses.hasPrefix("actions/upload-artifact@"):
                let artifact = try substitute(try #require(with["name"]))
                let path = try substitute(try #require(with["path"]))
                try copyFiles(from: workspace + "/" + path, to: artifacts + "/" + artifact)
            case _ where uses.hasPrefix("actions/download-artifact@"):
                let pattern = try #require(with["pattern"]), path = try #require(with["path"])
                for artifact in try FileManager.default.contentsOfDirectory(atPath: artifacts)
                where fnmatch(pattern, artifact, 0) == 0 {
                    // Without merge-multiple, each artifact lands in PATH/<its name>/.
                    try copyFiles(from: artifacts + "/" + artifact, to: workspace + "/" + path + "/" + artifact)
                }
            default:
                Issue.record("\(job)/\(name): the test runner does not know \(uses)")
                return "unknown action \(uses)"
            }
        }
        return nil
    }

    /// Copy the regular files below `source` as upload-artifact@v4 keeps them: no empty
    /// directories, no hidden files (include-hidden-files is off).
    private func copyFiles(from source: String, to destination: String) throws {
        let walker = try #require(FileManager.default.enumerator(atPath: source))
        while let relative = walker.nextObject() as? String {
            if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: source + "/" + relative, isDirectory: &isDirectory),
                !isDirectory.boolValue
            else { continue }
            let target = destination + "/" + relative
            try FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: source + "/" + relative, toPath: target)
        }
    }
}
