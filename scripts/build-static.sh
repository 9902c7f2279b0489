#!/usr/bin/env bash
# Build btfgen with the Swift runtime and Foundation linked in (--static-swift-stdlib), so the
# binary runs on a machine or initramfs without a Swift toolchain: only libbpf, libelf, libz and
# libc stay shared (scripts/qemu/pack-initramfs.sh copies them by ldd). Prints the binary's path.
# Usage: scripts/build-static.sh   (scratch: .build-static, release configuration)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
log "building static btfgen (release, --static-swift-stdlib) in .build-static"
swift build -c release --static-swift-stdlib --scratch-path .build-static --product btfgen >&2
bin="$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/btfgen"
[ -x "$bin" ] || die "no binary at $bin after the build"
if ldd "$bin" | grep -q libswift; then die "$bin still links the Swift runtime dynamically"; fi
echo "$bin"
