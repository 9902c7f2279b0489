// swift-tools-version: 6.0
// btfgen: make CO-RE BPF programs portable to kernels that ship no BTF.
import PackageDescription

let package = Package(
    name: "btfgen",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "btfgen", targets: ["btfgen"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(
            name: "CLibArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]),
        // liblzma (libarchive's own xz library), for xz settings libarchive does not expose.
        .systemLibrary(
            name: "CLZMA", pkgConfig: "liblzma",
            providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(
            name: "CLibBPF", pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev", "libelf-dev"])]),
        // libcurl's headers only: `btfgen sync` loads libcurl.so.4 at run time (see its shim.h).
        .systemLibrary(name: "CLibCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // libxml2's streaming reader, declared in its shim.h: `btfgen sync` loads libxml2.so.2 at run time.
        .systemLibrary(name: "CLibXML2", providers: [.apt(["libxml2"])]),

        // Pure Swift, no Foundation: ELF containers (and, beside it, the BTF engine).
        .target(name: "ELF"),
        // The BTF engine: wire format, .BTF.ext, CO-RE resolution, minimizer. Pure Swift.
        .target(name: "BTF", dependencies: ["ELF"]),
        // What FoundationEssentials leaves out: trimming, padding, printf numbers, stderr, threads,
        // and Foundation's wording of file system errors.
        .target(name: "SystemSupport"),
        // Kernel identity: images on disk and the running kernel.
        .target(name: "Kernel", dependencies: ["ELF", "SystemSupport"]),
        // getrandom, getentropy, arc4random and syscall(SYS_getrandom) that never wait for the
        // kernel's entropy (the Swift runtime's hash seed would block at early boot before 5.4).
        .target(name: "CNonBlockingRandom"),
        // fork/exec of helper tools with a parent-death signal (a few lines of C).
        .target(name: "CSpawn"),
        // External tools (pahole, llvm-objcopy, strip) driven with argument arrays.
        .target(name: "Toolchain", dependencies: ["CSpawn", "SystemSupport"]),
        // User inputs: plain, compressed or packaged vmlinux, read through libarchive.
        .target(name: "Ingest", dependencies: ["CLibArchive", "CLZMA", "Kernel", "SystemSupport"]),
        // The per-kernel BTF catalog: layout, index, locking, atomic writes.
        .target(
            name: "Catalog",
            dependencies: ["BTF", "Kernel", "SystemSupport", .product(name: "Crypto", package: "swift-crypto")]),
        // Bundles of minimized BTF for deployment images (tar.xz and OCI layout).
        .target(name: "Bundle", dependencies: ["Catalog", "Ingest", "Kernel", "SystemSupport"]),
        // The only module that talks to libbpf: its BTF parser (the build's oracle), CO-RE
        // relocation by libbpf, and trace sessions (open, load, attach, read events).
        .target(name: "LibBPF", dependencies: ["CLibBPF", "SystemSupport"]),
        // DWARF vmlinux -> validated BTF -> catalog entry. The build side: Builder and Deploy never
        // import each other, so building BTF links no selection or installation, and deploying
        // links no build pipeline.
        .target(
            name: "Builder",
            dependencies: [
                "BTF", "ELF", "Kernel", "Toolchain", "Ingest", "Catalog", "LibBPF", "SystemSupport",
            ]),
        // On the target: which BTF matches the running kernel (catalog, bundle, native), its
        // verification, install where the host's libbpf looks, preflight and default paths.
        .target(
            name: "Deploy",
            dependencies: [
                "BTF", "ELF", "Kernel", "Catalog", "Bundle", "LibBPF", "SystemSupport",
            ]),
        // Kernel BTF cut down to what a set of BPF objects needs, one kernel per core (minimize, bundle).
        .target(name: "Minimize", dependencies: ["BTF", "Catalog", "Kernel", "SystemSupport"]),
        // `btfgen sync`: package repositories (apt, rpm-md) → verified downloads → builds, incrementally.
        .target(
            name: "Sync",
            dependencies: [
                "CLibCurl", "CLibXML2", "Builder", "Catalog", "Ingest", "Kernel", "Toolchain", "SystemSupport",
            ]),
        // Command-line parsing only.
        .target(
            name: "Commands",
            dependencies: [
                "ELF", "Kernel", "Toolchain", "Ingest", "Catalog", "LibBPF", "Deploy", "Builder", "BTF",
                "Bundle", "Minimize", "Sync", "SystemSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "btfgen", dependencies: ["Commands", "CNonBlockingRandom"]),

        .target(name: "TestSupport", dependencies: ["BTF"], path: "Tests/TestSupport"),
        .testTarget(
            name: "BuildTests",
            dependencies: [
                "TestSupport", "BTF", "ELF", "Kernel", "Toolchain", "Ingest", "Catalog", "LibBPF", "Builder",
            ], exclude: ["Fixtures"]),
        .testTarget(name: "SyncTests", dependencies: ["TestSupport", "Sync", "Catalog"], exclude: ["Fixtures"]),
        .testTarget(
            name: "BundleTests",
            dependencies: [
                "TestSupport", "BTF", "Bundle", "Catalog", "ELF", "Kernel", "LibBPF", "Deploy",
            ]),
        .executableTarget(name: "btf-fuzz", dependencies: ["BTF"], path: "Sources/BTFFuzz"),
        .executableTarget(name: "btfgen-bench", dependencies: ["BTF", "ELF", "LibBPF"], path: "bench/btf-bench"),
        .testTarget(name: "BTFTests", dependencies: ["BTF", "ELF", "LibBPF", "Catalog", "Kernel", "TestSupport"]),
        .testTarget(
            name: "DeployTests",
            dependencies: [
                "TestSupport", "BTF", "ELF", "Kernel", "Catalog", "Bundle", "LibBPF", "Deploy", "CLibBPF",
            ]),
        // Commands parsed and validated in-process, and the libraries behind them (minimize, build sizing).
        .testTarget(
            name: "CommandTests",
            dependencies: [
                "TestSupport", "Commands", "Minimize", "Builder", "Catalog", "BTF", "Kernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
    ]
)
