#!/usr/bin/env bash
# Minimize speed: `btfgen minimize` over every kernel of a catalog in one process vs
# `bpftool gen min_core_btf` run once per kernel, on the same files; then checks that both
# produced byte-identical outputs.
#   bench/minimize.sh                 env: COPIES (kernels per source BTF, default 10), RUNS (default 5)
# Kernel BTFs: the host's, plus BTFGEN_DEBIAN_VMLINUX's .BTF and BTFGEN_TEST_VMLINUX's pahole BTF
# when those fixtures are set (see /tmp/fixtures.env). Objects: bpf/*.bpf.o and bpf/tests/*.bpf.o.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${BTFGEN_BENCH_SCRATCH:-.build}"
copies="${COPIES:-10}"
runs="${RUNS:-5}"
work="$(mktemp -d /tmp/btfgen-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

objects=( $(ls bpf/*.bpf.o bpf/tests/*.bpf.o 2>/dev/null || true) )
[ ${#objects[@]} -gt 0 ] || { echo "minimize.sh: no BPF objects: run \`make bpf\` first" >&2; exit 2; }

sources=()
[ -r /sys/kernel/btf/vmlinux ] && { cp /sys/kernel/btf/vmlinux "$work/host.btf"; sources+=("$work/host.btf"); }
if [ -n "${BTFGEN_DEBIAN_VMLINUX:-}" ] && [ -r "$BTFGEN_DEBIAN_VMLINUX" ]; then
    llvm-objcopy-14 --dump-section ".BTF=$work/debian.btf" "$BTFGEN_DEBIAN_VMLINUX" /dev/null 2>/dev/null || true
    [ -s "$work/debian.btf" ] && sources+=("$work/debian.btf")
fi
if [ -n "${BTFGEN_TEST_VMLINUX:-}" ] && [ -r "$BTFGEN_TEST_VMLINUX" ]; then
    pahole --btf_encode_detached="$work/testkernel.btf" "$BTFGEN_TEST_VMLINUX" >/dev/null && sources+=("$work/testkernel.btf")
fi
[ ${#sources[@]} -gt 0 ] || { echo "minimize.sh: no kernel BTF found" >&2; exit 2; }

mkdir -p "$work/catalog"
kernels=()
for s in "${sources[@]}"; do
    for i in $(seq 1 "$copies"); do
        k="$work/catalog/$(basename "$s" .btf)-$i.btf"
        cp "$s" "$k"
        kernels+=("$k")
    done
done

swift build -c release --scratch-path "$scratch" --product btfgen >&2
btfgen="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/btfgen"

objargs=""; for o in "${objects[@]}"; do objargs+=" --object $o"; done
btfargs=""; for k in "${kernels[@]}"; do btfargs+=" --btf $k"; done
cat > "$work/bpftool.sh" <<SH
for k in ${kernels[*]}; do bpftool gen min_core_btf "\$k" "$work/out-bpftool/\$(basename "\$k")" ${objects[*]} || exit 1; done
SH
mkdir -p "$work/out-bpftool" "$work/out-btfgen"

echo "minimize.sh: ${#kernels[@]} kernels (${#sources[@]} distinct BTFs x $copies), ${#objects[@]} objects" >&2
hyperfine --warmup 1 --runs "$runs" --export-json "$work/h.json" -N \
    "$btfgen minimize $objargs $btfargs -o $work/out-btfgen" \
    "bash $work/bpftool.sh" >&2

differ=0
for k in "${kernels[@]}"; do
    n="$(basename "$k")"
    cmp -s "$work/out-btfgen/$n" "$work/out-bpftool/$n" || { echo "minimize.sh: outputs differ for $n" >&2; differ=1; }
done
python3 - "$work/h.json" "${#kernels[@]}" "$differ" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
ours, theirs = r[0]["mean"], r[1]["mean"]
n = int(sys.argv[2])
same = "byte-identical outputs" if sys.argv[3] == "0" else "OUTPUTS DIFFER"
print(f"minimize {n} kernels: btfgen {ours*1000:.1f} ms total ({ours*1000/n:.2f} ms/kernel), "
      f"bpftool {theirs*1000:.1f} ms ({theirs*1000/n:.2f} ms/kernel): btfgen is {theirs/ours:.1f}x faster; {same}")
PY
exit $differ
