#!/usr/bin/env bash
# btfgen build vs the bare tools run by hand on the same debuginfo vmlinux (default: Debian's
# linux-image-6.1.0-*-cloud-amd64-dbg, fetched and cached by scripts/fetch-debian-dbg.sh).
# Prints wall time (hyperfine, mean of N runs) and peak RSS (GNU time, max over the run incl.
# children) for each, and the ratios btfgen / bare tool.
#   bench/build.sh [VMLINUX] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/scripts/lib.sh"
export PATH="/opt/swift/usr/bin:$PATH"
vmlinux="${1:-$(bash "$root/scripts/fetch-debian-dbg.sh" | sed -n 's/^VMLINUX=//p')}"
runs="${2:-3}"
for t in hyperfine pahole llvm-objcopy strip /usr/bin/time; do command -v "$t" >/dev/null || die "$t missing: run scripts/setup.sh"; done
(cd "$root" && swift build -c release --product btfgen >&2)
btfgen="$root/.build/release/btfgen"
work=$(mktemp -d /tmp/btfgen-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
flags=$("$btfgen" doctor --catalog "$work/none" | awk '$2 == "pahole" { sub(/.*flags: /, ""); print; exit }')
log "input $vmlinux ($(du -h "$vmlinux" | cut -f1)); pahole flags: $flags; $runs runs each"

# The bare pipelines, exactly as a person would type them.
cat > "$work/bare-detached.sh" <<SH
pahole $flags --btf_encode_detached="$work/bare.btf" "$vmlinux"
SH
cat > "$work/bare-objcopy.sh" <<SH
cp "$vmlinux" "$work/copy" && pahole $flags -J "$work/copy" \
 && llvm-objcopy --only-section=.BTF --set-section-flags .BTF=alloc,readonly --strip-all "$work/copy" "$work/bare.o" \
 && strip -x "$work/bare.o" && rm -f "$work/copy"
SH
declare -A cmd=(
    [btfgen-detached]="$btfgen build --force --method detached --catalog $work/cat-d $vmlinux"
    [bare-detached]="sh $work/bare-detached.sh"
    [btfgen-objcopy]="$btfgen build --force --method objcopy --catalog $work/cat-o $vmlinux"
    [bare-objcopy]="sh $work/bare-objcopy.sh"
)
order=(btfgen-detached bare-detached btfgen-objcopy bare-objcopy)
args=()
for name in "${order[@]}"; do args+=(-n "$name" "${cmd[$name]}"); done
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/h.json" "${args[@]}" >&2

declare -A mean rss
for name in "${order[@]}"; do
    mean[$name]=$(python3 -c "import json,sys; r=[x for x in json.load(open('$work/h.json'))['results'] if x['command']=='$name'][0]; print('%.2f' % r['mean'])")
    /usr/bin/time -f '%M' -o "$work/rss" sh -c "${cmd[$name]}" >/dev/null 2>&1
    rss[$name]=$(( $(cat "$work/rss") / 1024 ))
done
printf '\n%-18s %10s %12s\n' tool "wall (s)" "peak RSS MB"
for name in "${order[@]}"; do printf '%-18s %10s %12s\n' "$name" "${mean[$name]}" "${rss[$name]}"; done
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "ratio btfgen/bare (detached): wall $(ratio "${mean[btfgen-detached]}" "${mean[bare-detached]}")×  peak RSS $(ratio "${rss[btfgen-detached]}" "${rss[bare-detached]}")×"
echo "ratio btfgen/bare (objcopy):  wall $(ratio "${mean[btfgen-objcopy]}" "${mean[bare-objcopy]}")×  peak RSS $(ratio "${rss[btfgen-objcopy]}" "${rss[bare-objcopy]}")×"
echo "btfgen default (detached) vs the seed-004 pipeline by hand: wall $(ratio "${mean[btfgen-detached]}" "${mean[bare-objcopy]}")×"
