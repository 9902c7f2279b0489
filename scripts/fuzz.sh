#!/usr/bin/env bash
# Fuzz the BTF engine for SECONDS (default 60): a seeded mutation loop over real BTF and BPF
# objects (Sources/BTFFuzz), built with AddressSanitizer so an out-of-bounds read is a crash.
#   scripts/fuzz.sh [SECONDS]         env: BTFGEN_FUZZ_SEED (default: time), BTFGEN_FUZZ_BTF (extra BTF files)
# Needs `make bpf` first. Exit status: 0 clean, 1 findings (saved under $scratch/findings/), 2 setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
seed="${BTFGEN_FUZZ_SEED:-$(date +%s)}"
scratch="${BTFGEN_FUZZ_SCRATCH:-.build-fuzz}"

objects=( $(ls bpf/*.bpf.o bpf/tests/*.bpf.o 2>/dev/null || true) )
if [ "${#objects[@]}" -eq 0 ]; then
    echo "fuzz.sh: no BPF objects: run \`make bpf\` first" >&2
    exit 2
fi
kernels=()
[ -r /sys/kernel/btf/vmlinux ] && kernels+=(/sys/kernel/btf/vmlinux)
for f in ${BTFGEN_FUZZ_BTF:-}; do kernels+=("$f"); done

swift build -c release --scratch-path "$scratch" --product btf-fuzz -Xswiftc -sanitize=address >&2
bin="$(swift build -c release --scratch-path "$scratch" --product btf-fuzz -Xswiftc -sanitize=address --show-bin-path)/btf-fuzz"
echo "fuzz.sh: ${seconds}s, seed $seed, ${#objects[@]} objects, ${#kernels[@]} kernel BTFs" >&2
set +e
ASAN_OPTIONS=detect_leaks=0 "$bin" --seconds "$seconds" --seed "$seed" --out "$scratch/findings" "${objects[@]}" "${kernels[@]}"
status=$?
set -e
if [ $status -gt 2 ]; then
    echo "fuzz.sh: the fuzzer crashed (status $status, seed $seed): reproduce with BTFGEN_FUZZ_SEED=$seed" >&2
    exit 1
fi
exit $status
