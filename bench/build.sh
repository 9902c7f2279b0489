#!/usr/bin/env bash
# btfgen build vs the bare tools run by hand on the same debuginfo vmlinux (default: Debian's
# linux-image-6.1.0-*-cloud-amd64-dbg, fetched and cached by scripts/fetch-debian-dbg.sh).
# Prints wall time (hyperfine, mean of N runs) and peak RSS (GNU time, max over the run incl.
# children) for each, the ratios btfgen / bare tool, where btfgen's own time goes (each step's
# share of the build over five fresh default builds, checked against the goal: btfgen's own work
# at most 5% of the build's wall time), the CPU view of the same builds (btfgen's own threads
# against pahole's, which a loaded machine distorts less than wall time), and how many distinct
# sha256s five runs of each encoder produced (reproducible = 1; btfgen's default, pahole -j, must
# also match its --no-parallel builds).
#   bench/build.sh [VMLINUX] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/scripts/lib.sh"
export PATH="/opt/swift/usr/bin:$PATH"
vmlinux="${1:-$(bash "$root/scripts/fetch-debian-dbg.sh" | sed -n 's/^VMLINUX=//p')}"
runs="${2:-3}"
[ -f "$vmlinux" ] || die "no vmlinux at '$vmlinux': give a debuginfo vmlinux, or nothing for the cached Debian one"
for t in hyperfine pahole llvm-objcopy strip /usr/bin/time python3; do command -v "$t" >/dev/null || die "$t missing: run scripts/setup.sh"; done
(cd "$root" && swift build -c release --product btfgen >&2)
btfgen="$root/.build/release/btfgen"
work=$(mktemp -d /tmp/btfgen-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The flags btfgen gives pahole, without -j: the bare baselines add -j themselves where they want it.
flags=$("$btfgen" doctor --catalog "$work/none" | awk '$2 == "pahole" { sub(/.*flags: /, ""); print; exit }' \
    | sed -E 's/(^| )-j( |$)/ /g; s/^ +| +$//g')
log "input $vmlinux ($(du -h "$vmlinux" | cut -f1)); pahole flags: $flags; $runs runs each; $(nproc) cores"

# The bare pipelines, exactly as a person would type them.
cat > "$work/bare-detached.sh" <<SH
pahole $flags --btf_encode_detached="$work/bare.btf" "$vmlinux"
SH
cat > "$work/bare-detached-j.sh" <<SH
pahole $flags -j --btf_encode_detached="$work/bare-j.btf" "$vmlinux"
SH
cat > "$work/bare-objcopy.sh" <<SH
cp "$vmlinux" "$work/copy" && pahole $flags -J "$work/copy" \
 && llvm-objcopy --only-section=.BTF --set-section-flags .BTF=alloc,readonly --strip-all "$work/copy" "$work/bare.o" \
 && strip -x "$work/bare.o" && rm -f "$work/copy"
SH
declare -A cmd=(
    [btfgen-default]="$btfgen build --force --catalog $work/cat-d $vmlinux"
    [btfgen-single]="$btfgen build --force --no-parallel --catalog $work/cat-s $vmlinux"
    [bare-detached]="sh $work/bare-detached.sh"
    [bare-detached-j]="sh $work/bare-detached-j.sh"
    [btfgen-objcopy]="$btfgen build --force --method objcopy --catalog $work/cat-o $vmlinux"
    [bare-objcopy]="sh $work/bare-objcopy.sh"
)
order=(btfgen-default bare-detached bare-detached-j btfgen-single btfgen-objcopy bare-objcopy)
args=()
for name in "${order[@]}"; do args+=(-n "$name" "${cmd[$name]}"); done
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/h.json" "${args[@]}" >&2

declare -A mean rss
for name in "${order[@]}"; do
    mean[$name]=$(python3 -c "import json,sys; r=[x for x in json.load(open('$work/h.json'))['results'] if x['command']=='$name'][0]; print('%.2f' % r['mean'])")
    /usr/bin/time -f '%M' -o "$work/rss" sh -c "${cmd[$name]}" >/dev/null 2>&1
    rss[$name]=$(( $(cat "$work/rss") / 1024 ))
done

# Five fresh builds of each encoder: how many different files came out?
declare -A distinct
for i in 1 2 3 4 5; do
    "$btfgen" build --json --catalog "$work/r-d$i" "$vmlinux" >"$work/r-d$i.json"
    "$btfgen" build --no-parallel --catalog "$work/r-s$i" "$vmlinux" >/dev/null
    sh "$work/bare-detached.sh" >/dev/null 2>&1 && cp "$work/bare.btf" "$work/r-bare$i.btf"
    sh "$work/bare-detached-j.sh" >/dev/null 2>&1 && cp "$work/bare-j.btf" "$work/r-barej$i.btf"
done
count() { sha256sum "$@" | cut -d' ' -f1 | sort -u | wc -l; }
distinct[btfgen-default]=$(count "$work"/r-d*/*/*/*/*.btf)
distinct[btfgen-single]=$(count "$work"/r-s*/*/*/*/*.btf)
both=$(count "$work"/r-d*/*/*/*/*.btf "$work"/r-s*/*/*/*/*.btf)
distinct[bare-detached]=$(count "$work"/r-bare[0-9].btf)
distinct[bare-detached-j]=$(count "$work"/r-barej[0-9].btf)


printf '\n%-18s %10s %12s %18s\n' tool "wall (s)" "peak RSS MB" "sha256s / 5 runs"
for name in "${order[@]}"; do printf '%-18s %10s %12s %18s\n' "$name" "${mean[$name]}" "${rss[$name]}" "${distinct[$name]:--}"; done
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "btfgen default  / bare pahole single-threaded: wall $(ratio "${mean[btfgen-default]}" "${mean[bare-detached]}")×  peak RSS $(ratio "${rss[btfgen-default]}" "${rss[bare-detached]}")×"
echo "btfgen default  / bare pahole -j:              wall $(ratio "${mean[btfgen-default]}" "${mean[bare-detached-j]}")×  peak RSS $(ratio "${rss[btfgen-default]}" "${rss[bare-detached-j]}")×"
echo "btfgen --no-parallel / bare single-threaded:  wall $(ratio "${mean[btfgen-single]}" "${mean[bare-detached]}")×  peak RSS $(ratio "${rss[btfgen-single]}" "${rss[bare-detached]}")×"
echo "bare pahole -j  / bare pahole single-threaded: wall $(ratio "${mean[bare-detached-j]}" "${mean[bare-detached]}")×"
echo "btfgen objcopy  / bare objcopy pipeline:       wall $(ratio "${mean[btfgen-objcopy]}" "${mean[bare-objcopy]}")×  peak RSS $(ratio "${rss[btfgen-objcopy]}" "${rss[bare-objcopy]}")×"
echo "distinct sha256s over the ten btfgen builds, default and --no-parallel together: $both"
echo "load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
python3 - "$work"/r-d[0-9].json <<'PY'
import json, statistics, sys
builds = [json.load(open(f))[0]["timings"] for f in sys.argv[1:]]
steps = [("read and identify the input", lambda t: t["ingest"]),
         ("canonical order", lambda t: t["canonicalize"] - t["functions"]),
         ("first definitions (DWARF)", lambda t: t["functions"]),
         ("libbpf check", lambda t: t["validate"]),
         ("native .BTF comparison", lambda t: t["native"]),
         ("sha256 and catalog insert", lambda t: t["store"])]
own = lambda t: sum(f(t) for _, f in steps)
total = lambda t: own(t) + t["encode"]
print("\nwhere a default build's wall time goes (median of %d fresh builds; min-max of the share):" % len(builds))
def row(name, f):
    shares = [100 * f(t) / total(t) for t in builds]
    print("  %-30s %8.3f s %6.1f%%   (%.1f-%.1f%%)" % (name, statistics.median(f(t) for t in builds),
          statistics.median(shares), min(shares), max(shares)))
row("pahole (external)", lambda t: t["encode"])
for name, f in steps: row(name, f)
row("btfgen's own work", own)
print("  read alongside pahole (hidden behind it): %.3f s wall, %.3f s CPU"
      % (statistics.median(t["alongside"] for t in builds), statistics.median(t["alongsideCPU"] for t in builds)))
cpu = [100 * t["ownCPU"] / (t["ownCPU"] + t["toolsCPU"]) for t in builds]
fg = [100 * (t["ownCPU"] - t["alongsideCPU"]) / (t["ownCPU"] + t["toolsCPU"]) for t in builds]
print("CPU (load-independent view): btfgen's own threads %.3f s (%.3f s alongside pahole), pahole %.3f s: btfgen %.1f%% of all CPU (%.1f-%.1f%%), %.1f%% outside the reading alongside pahole"
      % (statistics.median(t["ownCPU"] for t in builds), statistics.median(t["alongsideCPU"] for t in builds),
         statistics.median(t["toolsCPU"] for t in builds), statistics.median(cpu), min(cpu), max(cpu), statistics.median(fg)))
share = statistics.median(100 * own(t) / total(t) for t in builds)
print("goal: btfgen's own work at most 5%% of a default build's wall time: %.1f%% - %s"
      % (share, "met" if share <= 5 else "NOT met"))
PY
