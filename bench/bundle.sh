#!/usr/bin/env bash
# Bundle size against the ways people ship BTF today, on a catalog of real kernels: every Debian
# 6.1 -dbg kernel in the cache (fetch more with BTFGEN_DBG_PACKAGE=… scripts/fetch-debian-dbg.sh)
# plus the BTF-less test kernel. For the raw_tp programs in bpf/:
#   ours  btfgen bundle (format 3: each distinct blob once, one tar.xz; bench/bundle-size.sh prices its parts)
#   (a)   a tar.xz of per-kernel `bpftool gen min_core_btf` files in BTFHub's layout
#   (a')  BTFHub's own packaging of those: one <release>.btf.tar.xz per kernel (sum of sizes)
#   (b)   a tar.xz of the full BTFs
# and the time to make ours vs running bpftool once per kernel.
#   bench/bundle.sh [CATALOG]     (default: $BTFGEN_CACHE/bench-catalog, built when absent)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/scripts/lib.sh"
export PATH="/opt/swift/usr/bin:$PATH"
(cd "$root" && swift build -c release --product btfgen >&2 && make -s bpf >&2)
btfgen="$root/.build/release/btfgen"
objects=("$root/bpf/task_rename.bpf.o" "$root/bpf/unlinkat.bpf.o" "$root/bpf/exec.bpf.o")
catalog="${1:-$BTFGEN_CACHE/bench-catalog}"
if [ -z "${1:-}" ]; then
    inputs=($(ls "$BTFGEN_CACHE"/debian-dbg/*/vmlinux-* 2>/dev/null | grep -v "\.tmp$" || true))
    [ ${#inputs[@]} -gt 0 ] || inputs=("$(bash "$root/scripts/fetch-debian-dbg.sh" | sed -n 's/^VMLINUX=//p')")
    inputs+=("$(bash "$root/scripts/build-test-kernel.sh" | sed -n 's/^VMLINUX=//p')")
    log "catalog $catalog from ${#inputs[@]} kernels (builds only what is missing)"
    "$btfgen" build --jobs 2 --catalog "$catalog" "${inputs[@]}" | grep -E '^(stored|already)' >&2
fi
work=$(mktemp -d /tmp/btfgen-bundle-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mapfile -t paths < <(python3 -c "import json,sys; [print(e['path']) for e in json.load(open('$catalog/index.json'))['entries']]")
n=${#paths[@]}
log "$n kernels"

ours="$work/ours.tar.xz"
objargs=(); for o in "${objects[@]}"; do objargs+=(--object "$o"); done
"$btfgen" bundle --catalog "$catalog" "${objargs[@]}" -o "$ours" >&2

mkdir -p "$work/a" "$work/a-prime" "$work/b"
for p in "${paths[@]}"; do
    mkdir -p "$work/a/$(dirname "$p")" "$work/a-prime/$(dirname "$p")" "$work/b/$(dirname "$p")"
    bpftool gen min_core_btf "$catalog/$p" "$work/a/$p" "${objects[@]}"
    cp "$catalog/$p" "$work/b/$p"
    tar -C "$work/a/$(dirname "$p")" -cJf "$work/a-prime/${p%.btf}.btf.tar.xz" "$(basename "$p")"
done
tar -C "$work/a" -cJf "$work/a.tar.xz" .
tar -C "$work/b" -cJf "$work/b.tar.xz" .
size() { stat -c %s "$1"; }
s_ours=$(size "$ours"); s_a=$(size "$work/a.tar.xz"); s_b=$(size "$work/b.tar.xz")
s_ap=$(find "$work/a-prime" -name '*.tar.xz' -printf '%s\n' | awk '{s+=$1} END {print s}')
blobs=$(tar -xOJf "$ours" manifest.json | python3 -c "import json,sys; print(len(json.load(sys.stdin)['blobs']['sizes']))")

# Same kept types? (set equality of type names+kinds, per kernel, via bpftool's own dump)
same=0
tar -C "$work" -xJf "$ours"
for p in "${paths[@]}"; do
    # The kernel's blob (formats 3 and 4: blob n of the blobs member), cut out to a file for bpftool.
    python3 - "$work/manifest.json" "$work/blobs" "$catalog/index.json" "$p" "$work/ours.btf" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); payload = open(sys.argv[2], 'rb').read(); idx = json.load(open(sys.argv[3]))
i = [x for x in idx['entries'] if x['path'] == sys.argv[4]][0]['identity']
n = [r[2] for g in m['kernels'] if (g['distro'], g['version'], g['arch']) == (i['distro'], i['distroVersion'], i['arch'])
     for r in g['k'] if r[0] == i['release']][0]
sizes = m['blobs']['sizes']
open(sys.argv[5], 'wb').write(payload[sum(sizes[:n]):sum(sizes[:n + 1])])
PY
    a=$(bpftool btf dump file "$work/a/$p" | grep -oE "^\[[0-9]+\] [A-Z_0-9]+ '[^']*'" | cut -d' ' -f2- | sort | md5sum)
    b=$(bpftool btf dump file "$work/ours.btf" | grep -oE "^\[[0-9]+\] [A-Z_0-9]+ '[^']*'" | cut -d' ' -f2- | sort | md5sum)
    [ "$a" = "$b" ] && same=$((same + 1))
done

t_ours=$(python3 - "$btfgen" "$catalog" "$work/t.tar.xz" "${objects[@]}" <<'PY'
import subprocess, sys, time
btfgen, catalog, out, objs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
args = [btfgen, "bundle", "--force", "--catalog", catalog, "-o", out] + sum([["--object", o] for o in objs], [])
best = min((lambda t0: (subprocess.run(args, check=True, capture_output=True), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
print("%.3f" % best)
PY
)
t_bpftool=$(python3 - "$catalog" "$work/x" "${paths[@]}" -- "${objects[@]}" <<'PY'
import os, subprocess, sys, time
catalog, out = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]; i = rest.index("--"); paths, objs = rest[:i], rest[i+1:]
os.makedirs(out, exist_ok=True)
def once():
    t0 = time.perf_counter()
    for j, p in enumerate(paths):
        subprocess.run(["bpftool", "gen", "min_core_btf", f"{catalog}/{p}", f"{out}/{j}.btf"] + objs, check=True, capture_output=True)
    return time.perf_counter() - t0
print("%.3f" % min(once() for _ in range(3)))
PY
)
ratio() { python3 -c "print('%.1f' % ($1 / $2))"; }
printf '\n%-52s %10s\n' "artifact ($n kernels, ${#objects[@]} objects)" bytes
printf '%-52s %10s\n' "ours: btfgen bundle ($blobs distinct blobs)" "$s_ours"
printf '%-52s %10s\n' "(a)  tar.xz of bpftool min_core_btf files" "$s_a"
printf '%-52s %10s\n' "(a') BTFHub packaging: per-kernel .btf.tar.xz, summed" "$s_ap"
printf '%-52s %10s\n' "(b)  tar.xz of the full BTFs" "$s_b"
echo
echo "size ratio (a)/ours:  $(ratio "$s_a" "$s_ours")×"
echo "size ratio (a')/ours: $(ratio "$s_ap" "$s_ours")×"
echo "size ratio (b)/ours:  $(ratio "$s_b" "$s_ours")×"
echo "same kept types as bpftool: $same of $n kernels"
echo "time: btfgen bundle ${t_ours} s vs bpftool once per kernel ${t_bpftool} s → $(ratio "$t_bpftool" "$t_ours")× faster"
