#!/usr/bin/env bash
# Run btfgen's whole test suite, the way CI does:
#   1. install system packages (scripts/setup.sh),
#   2. fetch Debian's real debuginfo kernels (x86_64 and arm64) and build the BTF-less 6.1 test
#      kernel and its twin (all cached under $BTFGEN_CACHE, keyed by version; rebuilt only when absent),
#   3. compile the BPF objects in bpf/ and the Swift package,
#   4. run every Swift test with the fixtures promised (a missing one fails instead of skipping),
#   5. run the bounded fuzz pass and the QEMU boots the test suite relies on, when present.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter BuildTests]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
cd "$root"
export PATH="/opt/swift/usr/bin:$PATH"

started=$(date +%s)
step() { log "── $*"; }

step "system packages"
bash "$here/setup.sh"

# fixture PREFIX KEY... -- SCRIPT [ARG...]: run a fixture script (its failure stops the run) and
# export each KEY=value line it prints as BTFGEN_<PREFIX>_<KEY>.
fixture() {
    local prefix=$1 keys=() out key value k
    shift
    while [ "$1" != -- ]; do keys+=("$1"); shift; done
    shift
    out=$(bash "$@")
    while IFS='=' read -r key value; do
        for k in "${keys[@]}"; do
            if [ "$key" = "$k" ]; then export "BTFGEN_${prefix}_${key}=$value"; fi
        done
    done <<< "$out"
}

step "fixtures (cache: $BTFGEN_CACHE)"
fixture DEBIAN DEB VMLINUX RELEASE -- "$here/fetch-debian-dbg.sh"
fixture TEST VMLINUX BZIMAGE RELEASE TWIN_VMLINUX TWIN_BZIMAGE -- "$here/build-test-kernel.sh"
# The bootable image of exactly the kernel whose -dbg package was fetched.
fixture DEBIAN VMLINUZ -- "$here/fetch-debian-image.sh" "$BTFGEN_DEBIAN_RELEASE" "$(dpkg-deb -f "$BTFGEN_DEBIAN_DEB" Version)"
# arm64: Debian's cloud-arm64 -dbg kernel (read through a private arm64 apt configuration) and
# its bootable image, for building and minimizing arm64 BTF on this x86_64 host.
fixture DEBIAN_ARM64 DEB VMLINUX RELEASE -- "$here/fetch-debian-dbg.sh" cloud-arm64
fixture DEBIAN_ARM64 VMLINUZ -- "$here/fetch-debian-image.sh" "$BTFGEN_DEBIAN_ARM64_RELEASE" \
    "$(dpkg-deb -f "$BTFGEN_DEBIAN_ARM64_DEB" Version)"
# Debian's generic arm64 flavour too (arm servers and boards; an 804 MB package).
fixture DEBIAN_ARM64_GENERIC DEB VMLINUX RELEASE -- "$here/fetch-debian-dbg.sh" arm64
# arm64: the BTF-less arm64 6.1 test kernel, cross-compiled, for the arm64 QEMU proof.
fixture TEST_ARM64 VMLINUX IMAGE RELEASE BUILD_SECONDS -- "$here/build-test-kernel-arm64.sh"
fixture OLD LIBBPF0 UNAVAILABLE -- "$here/fetch-old-libbpf.sh"
export BTFGEN_REQUIRE_FIXTURES=1
env | grep '^BTFGEN_' | sort >&2

step "swift format lint --strict"
# Formatting is part of the build: `make format` rewrites the tree the way this check wants it.
if ! swift format lint --strict --recursive Sources Tests Package.swift bench/btf-bench; then
    echo "── lint failed: run \`make format\` and commit the result" >&2
    exit 1
fi

step "BPF objects and the Swift package"
make -s bpf
swift build --build-tests
step "static btfgen for the QEMU guests"
BTFGEN_STATIC_BIN=$(bash "$here/build-static.sh")
export BTFGEN_STATIC_BIN

step "swift test"
# CI shows only the end of this output, so repeat what failed there.
results=$(mktemp /tmp/btfgen-test-results.XXXXXX)
trap 'rm -f "$results"' EXIT
if ! swift test --skip-build "$@" 2>&1 | tee "$results"; then
    echo "── failed:" >&2
    grep -E '✘|error:|Expectation failed|recorded an issue' "$results" | cut -c1-600 | head -40 >&2
    exit 1
fi

if [ $# -eq 0 ]; then
    step "fuzz (bounded)"
    bash "$here/fuzz.sh" "${BTFGEN_FUZZ_SECONDS:-60}"
fi

log "all tests passed in $(( $(date +%s) - started )) s"
