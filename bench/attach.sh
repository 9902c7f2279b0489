#!/usr/bin/env bash
# Time from start to attached: `btfgen attach --count 0` (choose the BTF, open, load, attach the
# three raw_tp programs, open the perf buffers, exit) against bench/attach_loader.c, a bare C
# libbpf loader doing the same with no BTF selection — printed as a ratio, for the native BTF and
# for --btf pointing at a copy of it. Then the boot-to-verdict time of each QEMU proof case
# (skipped unless the fixtures are set; BENCH_QEMU=0 skips them too).
# Needs root, hyperfine, make bpf. Env: BTFGEN_BIN (default: the release build of
# scripts/build-static.sh), RUNS (default 30); for QEMU: BTFGEN_TEST_BZIMAGE, BTFGEN_TEST_VMLINUX,
# BTFGEN_TEST_TWIN_BZIMAGE, BTFGEN_TEST_TWIN_VMLINUX (scripts/build-test-kernel.sh), optionally
# BTFGEN_DEBIAN_VMLINUX, BTFGEN_DEBIAN_VMLINUZ, BTFGEN_DEBIAN_RELEASE.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ "$(id -u)" = 0 ] || die "needs root (BPF)"
command -v hyperfine >/dev/null || die "hyperfine not found; apt-get install hyperfine"
make -s bpf
objects=(bpf/*.bpf.o)
bin=${BTFGEN_BIN:-$(scripts/build-static.sh)}
out=bench/results
mkdir -p "$out"
loader="$out/attach_loader"
cc -O2 -o "$loader" bench/attach_loader.c -lbpf -lelf -lz
copy="$out/vmlinux.btf"
cp /sys/kernel/btf/vmlinux "$copy"
btfgen_objects=()
for o in "${objects[@]}"; do btfgen_objects+=(--object "$o"); done

ratio() { # name csv (hyperfine --export-csv: command,mean,stddev,…; btfgen first)
    awk -F, -v name="$1" 'NR == 2 {bm = $2; bs = $3} NR == 3 {cm = $2; cs = $3}
        END {printf "%-14s btfgen %7.1f ms ± %4.1f   C libbpf %7.1f ms ± %4.1f   ratio %.2fx\n",
             name, bm * 1000, bs * 1000, cm * 1000, cs * 1000, bm / cm}' "$2"
}

runs=${RUNS:-30}
hyperfine -N --warmup 3 --runs "$runs" --export-csv "$out/attach-native.csv" \
    -n btfgen "$bin attach --count 0 ${btfgen_objects[*]}" \
    -n c-libbpf "$loader ${objects[*]}" >&2
hyperfine -N --warmup 3 --runs "$runs" --export-csv "$out/attach-btf-file.csv" \
    -n btfgen "$bin attach --count 0 --btf $copy ${btfgen_objects[*]}" \
    -n c-libbpf "$loader --btf $copy ${objects[*]}" >&2

echo "start → attached ($(uname -r), ${#objects[@]} objects, 3 raw_tp programs, $runs runs)"
ratio "native BTF" "$out/attach-native.csv"
ratio "--btf copy" "$out/attach-btf-file.csv"

if [ "${BENCH_QEMU:-1}" = 0 ] || [ -z "${BTFGEN_TEST_BZIMAGE:-}" ] || [ -z "${BTFGEN_TEST_VMLINUX:-}" ] \
    || [ -z "${BTFGEN_TEST_TWIN_BZIMAGE:-}" ] || [ -z "${BTFGEN_TEST_TWIN_VMLINUX:-}" ]; then
    echo "QEMU cases skipped (set BTFGEN_TEST_BZIMAGE, BTFGEN_TEST_VMLINUX and their TWIN_ pair; BENCH_QEMU=0 skips)"
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/btfgen-bench-qemu.XXXXXX")
trap 'rm -rf "$work"' EXIT
debian=()
if [ -n "${BTFGEN_DEBIAN_VMLINUX:-}" ] && [ -n "${BTFGEN_DEBIAN_VMLINUZ:-}" ]; then debian=(yes); else export BTFGEN_DEBIAN_VMLINUX=; fi
BTFGEN_STATIC_BIN="$bin" scripts/qemu/prepare.sh "$work" > "$work/prepared" 2>/dev/null
initrd=$(sed -n 's/^INITRAMFS=//p' "$work/prepared")
boot() { # label kernel params...
    local label=$1 kernel=$2; shift 2
    local s
    s=$(scripts/qemu/boot.sh "$kernel" "$initrd" "$@" | sed -n 's/^BTFGEN-HOST: verdict-seconds=//p')
    if [ -n "$s" ]; then printf '%-48s %.1f s\n' "$label" "$s"; else printf '%-48s no verdict\n' "$label"; fi
}
echo "QEMU (TCG, 1 vCPU) boot → verdict"
boot "test kernel, auto by build-id, events" "$BTFGEN_TEST_BZIMAGE" btfgen_case=trace btfgen_catalog=test
boot "test kernel, minimized BTF (bundle), events" "$BTFGEN_TEST_BZIMAGE" btfgen_case=trace btfgen_catalog=none btfgen_bundle=test
boot "test kernel, other build refused" "$BTFGEN_TEST_BZIMAGE" btfgen_case=refuse btfgen_catalog=other
boot "twin kernel, test kernel's build refused" "$BTFGEN_TEST_TWIN_BZIMAGE" btfgen_case=refuse btfgen_catalog=test
if [ ${#debian[@]} -gt 0 ]; then
    boot "test kernel, Debian BTF forced: caught" "$BTFGEN_TEST_BZIMAGE" btfgen_case=trace btfgen_catalog=debian \
        "btfgen_flags=--kernel,${BTFGEN_DEBIAN_RELEASE},--force"
    boot "Debian 6.1 cloud, catalog BTF, events" "$BTFGEN_DEBIAN_VMLINUZ" btfgen_case=trace btfgen_catalog=debian \
        btfgen_flags=--force-catalog
fi
