#!/usr/bin/env bash
# Parse speed: btfgen's BTF engine vs libbpf's btf__parse on the host's vmlinux BTF (and any
# BTF files given), in one process, min of N runs each, file reading included on both sides.
#   bench/btf-parse.sh [FILE...]      env: ITERATIONS (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${BTFGEN_BENCH_SCRATCH:-.build}"
swift build -c release --scratch-path "$scratch" --product btfgen-bench >&2
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/btfgen-bench"
files=("$@")
[ ${#files[@]} -eq 0 ] && files=(/sys/kernel/btf/vmlinux)
for f in "${files[@]}"; do
    "$bin" parse "$f" "${ITERATIONS:-50}"
done
