// `btfgen bundle --format oci`: an OCI image layout (image-spec v1.0) whose single layer holds
// the bundle at /usr/share/btfgen/bundle.tar.xz, so a Dockerfile can `COPY --from` it and a
// registry can store it. Everything is reproducible: an uncompressed tar layer (the bundle is
// already xz), fixed times and owners, no `created` timestamp, key-sorted JSON.
import Catalog
import FoundationEssentials
import Ingest
import Kernel

#if canImport(Glibc)
    import Glibc
#endif

public enum OCILayout {
    public static let layerMediaType = "application/vnd.oci.image.layer.v1.tar"
    public static let configMediaType = "application/vnd.oci.image.config.v1+json"
    public static let manifestMediaType = "application/vnd.oci.image.manifest.v1+json"
    public static let indexMediaType = "application/vnd.oci.image.index.v1+json"

    struct Descriptor: Codable {
        var mediaType: String
        var digest: String
        var size: Int
        var annotations: [String: String]?
        var platform: Platform?
    }
    struct Platform: Codable { var architecture: String; var os: String }
    struct RootFS: Codable { var type = "layers"; var diff_ids: [String] }
    struct ImageConfig: Codable { var Labels: [String: String] }
    struct Config: Codable {
        var architecture: String
        var os = "linux"
        var config: ImageConfig
        var rootfs: RootFS
    }
    struct Manifest: Codable {
        var schemaVersion = 2
        var mediaType = OCILayout.manifestMediaType
        var config: Descriptor
        var layers: [Descriptor]
        var annotations: [String: String]
    }
    struct Index: Codable {
        var schemaVersion = 2
        var mediaType = OCILayout.indexMediaType
        var manifests: [Descriptor]
    }

    /// The OCI platforms of a bundle: its kernels' architectures in OCI's spelling (`arm64`
    /// kernels → `arm64`, `x86_64` → `amd64`), sorted, so that a pull for the target's platform
    /// finds it. A bundle with no kernels is labelled `amd64`, the platform of most fleets.
    public static func architectures(of manifest: BundleManifest) -> [String] {
        let archs = Set(manifest.kernels.map { KernelArch.ociArchitecture(of: $0.arch) })
        return archs.isEmpty ? [KernelArch.ociArchitecture(of: "x86_64")] : archs.sorted()
    }

    /// Write the layout into `directory` (created; must not exist). `tag` names the image;
    /// `architecture` (OCI's spelling) defaults to the kernels' own, `architectures(of:)`. A bundle
    /// whose kernels span several architectures is one multi-platform image: `tag` names an image
    /// index with one manifest per platform, all sharing the one layer (stored once), so
    /// `docker pull --platform linux/arm64` or `skopeo copy --override-arch arm64` gets it for
    /// either, and a single-platform bundle keeps the plain one-manifest layout.
    public static func write(
        bundle: String, manifest: BundleManifest, to directory: String, tag: String = "latest",
        architecture: String? = nil
    ) throws {
        let platforms = architecture.map { [$0] } ?? Self.architectures(of: manifest)
        guard !FileManager.default.fileExists(atPath: directory) else { throw BundleError.exists(path: directory) }
        let temp = temporarySibling(of: directory)
        try? FileManager.default.removeItem(atPath: temp)
        do {
            try FileManager.default.createDirectory(atPath: temp + "/blobs/sha256", withIntermediateDirectories: true)
            func store(_ bytes: [UInt8]) throws -> (String, Int) {
                let digest = bytes.withUnsafeBytes { SHA256.hex($0) }
                try writeFileDurably(Data(bytes), to: URL(fileURLWithPath: temp + "/blobs/sha256/" + digest))
                return ("sha256:" + digest, bytes.count)
            }
            // The layer: the bundle at its fixed path, with its parent directories.
            let layerPath = temp + "/layer.tar"
            let bundleBytes = try Data(contentsOf: URL(fileURLWithPath: bundle))
            let writer = try ArchiveWriter(path: layerPath, compression: .none)
            var prefix = ""
            for component in Bundle.imagePath.split(separator: "/").dropLast() {
                prefix += component + "/"
                try writer.addDirectory(prefix)
            }
            try writer.addFile(Bundle.imagePath, contents: [UInt8](bundleBytes))
            try writer.finish()
            let layerBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: layerPath)))
            try FileManager.default.removeItem(atPath: layerPath)
            let (layerDigest, layerSize) = try store(layerBytes)

            let labels = [
                "org.opencontainers.image.title": "btfgen BTF bundle",
                "io.btfgen.bundle.path": "/" + Bundle.imagePath,
                "io.btfgen.bundle.kernels": String(manifest.kernels.count),
                "io.btfgen.bundle.compat": manifest.compat,
                "io.btfgen.version": manifest.btfgen,
            ]
            var platformManifests: [Descriptor] = []
            for architecture in platforms {
                let config = Config(
                    architecture: architecture, config: ImageConfig(Labels: labels),
                    rootfs: RootFS(diff_ids: [layerDigest]))
                let (configDigest, configSize) = try store(try encode(config))
                let imageManifest = Manifest(
                    config: Descriptor(mediaType: configMediaType, digest: configDigest, size: configSize),
                    layers: [Descriptor(mediaType: layerMediaType, digest: layerDigest, size: layerSize)],
                    annotations: labels)
                let (manifestDigest, manifestSize) = try store(try encode(imageManifest))
                platformManifests.append(
                    Descriptor(
                        mediaType: manifestMediaType, digest: manifestDigest, size: manifestSize,
                        platform: Platform(architecture: architecture, os: "linux")))
            }
            let tagged = ["org.opencontainers.image.ref.name": tag]
            let index: Index
            if platformManifests.count == 1 {
                var only = platformManifests[0]
                only.annotations = tagged
                index = Index(manifests: [only])
            } else {
                let (platformsDigest, platformsSize) = try store(try encode(Index(manifests: platformManifests)))
                index = Index(manifests: [
                    Descriptor(
                        mediaType: indexMediaType, digest: platformsDigest, size: platformsSize, annotations: tagged)
                ])
            }
            try writeFileDurably(Data(try encode(index)), to: URL(fileURLWithPath: temp + "/index.json"))
            try writeFileDurably(
                Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: URL(fileURLWithPath: temp + "/oci-layout"))
            guard rename(temp, directory) == 0 else {
                throw CatalogError.ioFailure(path: directory, operation: "renaming into", errno: errno)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(value))
    }
}
