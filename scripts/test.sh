#!/usr/bin/env bash
# Run btfgen's whole test suite, the way CI does:
#   1. install system packages (scripts/setup.sh),
#   2. fetch Debian's real debuginfo kernel and build the BTF-less 6.1 test kernel (both cached
#      under $BTFGEN_CACHE, keyed by version; rebuilt only when absent),
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

step "fixtures (cache: $BTFGEN_CACHE)"
while IFS='=' read -r key value; do
    case "$key" in
        DEB) export BTFGEN_DEBIAN_DEB="$value" ;;
        VMLINUX) export BTFGEN_DEBIAN_VMLINUX="$value" ;;
        RELEASE) export BTFGEN_DEBIAN_RELEASE="$value" ;;
    esac
done < <(bash "$here/fetch-debian-dbg.sh")
while IFS='=' read -r key value; do
    case "$key" in
        VMLINUX) export BTFGEN_TEST_VMLINUX="$value" ;;
        BZIMAGE) export BTFGEN_TEST_BZIMAGE="$value" ;;
        RELEASE) export BTFGEN_TEST_RELEASE="$value" ;;
    esac
done < <(bash "$here/build-test-kernel.sh")
if [ -f "$here/fetch-debian-image.sh" ]; then
    while IFS='=' read -r key value; do
        case "$key" in
            VMLINUZ) export BTFGEN_DEBIAN_VMLINUZ="$value" ;;
            RELEASE) [ "$value" = "$BTFGEN_DEBIAN_RELEASE" ] || die "Debian image $value does not match the -dbg package $BTFGEN_DEBIAN_RELEASE" ;;
        esac
    done < <(bash "$here/fetch-debian-image.sh" "$BTFGEN_DEBIAN_RELEASE" "$(dpkg-deb -f "$BTFGEN_DEBIAN_DEB" Version)")
fi
export BTFGEN_REQUIRE_FIXTURES=1
env | grep '^BTFGEN_' | sort >&2

step "BPF objects and the Swift package"
make -s bpf
swift build --build-tests
if [ -f "$here/build-static.sh" ]; then
    step "static btfgen for the QEMU guests"
    BTFGEN_STATIC_BIN=$(bash "$here/build-static.sh")
    export BTFGEN_STATIC_BIN
fi

step "swift test"
swift test --skip-build "$@"

if [ $# -eq 0 ] && [ -f "$here/fuzz.sh" ]; then
    step "fuzz (bounded)"
    bash "$here/fuzz.sh" "${BTFGEN_FUZZ_SECONDS:-60}"
fi

if [ -n "${BTFGEN_LINT:-1}" ] && swift format --version >/dev/null 2>&1; then
    step "swift format lint (advisory)"
    swift format lint --recursive Sources Tests Package.swift 2>&1 | tail -20 >&2 || true
fi

log "all tests passed in $(( $(date +%s) - started )) s"
