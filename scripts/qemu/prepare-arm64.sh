#!/usr/bin/env bash
# The host side of the arm64 QEMU proof, made by btfgen itself, in WORKDIR:
#   kernels-test/     catalog: `btfgen build $BTFGEN_TEST_ARM64_VMLINUX` (the BTF-less arm64 test kernel)
#   kernels-debian/   catalog: `btfgen build $BTFGEN_DEBIAN_ARM64_VMLINUX` (Debian's cloud-arm64 -dbg vmlinux)
#   min-test/, min-debian/   `btfgen minimize` of each for the objects in bpf/arm64 (what a bundle ships)
# Catalog builds are skipped when the entry exists (btfgen build keeps an entry with the same build-id).
# Usage: prepare-arm64.sh WORKDIR   env: BTFGEN (the host's btfgen), BTFGEN_TEST_ARM64_VMLINUX,
#                                        BTFGEN_DEBIAN_ARM64_VMLINUX, [BPF_DIR (default: bpf/arm64)]
# Prints, one KEY=value a line, for NAME in TEST and DEBIAN:
#   NAME_BUILD_ID, NAME_ARCH (as btfgen recorded them), NAME_BTF_BYTES, NAME_BTF_TYPES (the full
#   catalog BTF), NAME_BUILD_SECONDS (btfgen build, wall), NAME_MIN_BYTES, NAME_MIN_TYPES
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -eq 1 ] || die "usage: $0 WORKDIR"
work=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${BTFGEN:?set BTFGEN to the host btfgen binary}
test_vmlinux=${BTFGEN_TEST_ARM64_VMLINUX:?set BTFGEN_TEST_ARM64_VMLINUX (scripts/build-test-kernel-arm64.sh prints it)}
debian_vmlinux=${BTFGEN_DEBIAN_ARM64_VMLINUX:?set BTFGEN_DEBIAN_ARM64_VMLINUX (scripts/fetch-debian-dbg.sh cloud-arm64 prints it)}
bpf=${BPF_DIR:-$repo/bpf/arm64}
ls "$bpf"/*.bpf.o >/dev/null 2>&1 || die "no *.bpf.o in $bpf; run make bpf"
mkdir -p "$work"
objects=(); for o in "$bpf"/*.bpf.o; do objects+=(--object "$o"); done
# json FIELD: the first value of FIELD in the JSON on stdin.
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d'"$1"')'; }
for name in test debian; do
    if [ $name = test ]; then vmlinux=$test_vmlinux; else vmlinux=$debian_vmlinux; fi
    upper=$(echo $name | tr a-z A-Z)
    started=$(date +%s.%N)
    "$bin" build "$vmlinux" --catalog "$work/kernels-$name" >&2
    echo "${upper}_BUILD_SECONDS=$(echo "$(date +%s.%N) - $started" | bc | sed 's/^\./0./')"
    entry=$("$bin" list --catalog "$work/kernels-$name" --json)
    echo "${upper}_BUILD_ID=$(echo "$entry" | json '["identity"]["buildID"]')"
    echo "${upper}_ARCH=$(echo "$entry" | json '["identity"]["arch"]')"
    echo "${upper}_BTF_BYTES=$(echo "$entry" | json '["size"]')"
    echo "${upper}_BTF_TYPES=$(echo "$entry" | json '["typeCount"]')"
    rm -rf "$work/min-$name"
    min=$("$bin" minimize --catalog "$work/kernels-$name" "${objects[@]}" -o "$work/min-$name" --json)
    echo "${upper}_MIN_BYTES=$(echo "$min" | json '["outputBytes"]')"
    echo "${upper}_MIN_TYPES=$(echo "$min" | json '["types"]')"
done
