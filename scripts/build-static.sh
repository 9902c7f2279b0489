#!/usr/bin/env bash
# Build btfgen with the Swift runtime and FoundationEssentials linked in (--static-swift-stdlib), so
# the binary runs on a machine or initramfs without a Swift toolchain: only libbpf, libelf, libz and
# libc stay shared (scripts/qemu/pack-initramfs.sh copies them by ldd). btfgen's modules import
# FoundationEssentials, never Foundation: the full Foundation would bring ICU's 37 MB of data and
# slow every start. Prints the binary's path.
# Usage: scripts/build-static.sh   (scratch: .build-static, release configuration)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
log "building static btfgen (release, --static-swift-stdlib) in .build-static"
swift build -c release --static-swift-stdlib --scratch-path .build-static --product btfgen >&2
bin="$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/btfgen"
[ -x "$bin" ] || die "no binary at $bin after the build"
if ldd "$bin" | grep -q libswift; then die "$bin still links the Swift runtime dynamically"; fi
# grep -c reads all of nm's output (an early exit would fail the pipeline under pipefail).
if nm "$bin" | grep -c -e ' ucol_' -e '\$s10Foundation' -e '\$s31FoundationInternationalization' >/dev/null; then
    die "$bin links Foundation and ICU: a module of the btfgen product imports Foundation instead of FoundationEssentials"
fi
echo "$bin"
