#!/usr/bin/env bash
# Fleet scale: `btfgen sync` of every amd64 kernel debuginfo package of Debian's reachable suites
# into one catalog, against the bare pipeline a person would run per package (curl, dpkg-deb | tar
# for the vmlinux, single-threaded pahole with btfgen's flags), then, for the objects in bpf/, the
# bundle of that catalog against (a) one solid tar.xz of `bpftool gen min_core_btf` files,
# (a') BTFHub's packaging (one <release>.btf.tar.xz of the full BTF per kernel) and (b) a tar.xz of
# the full BTFs, and `btfgen minimize` over the catalog against bpftool once per kernel.
# Heavy and slow (~70 GB streamed, never more than a few packages on disk): not run in CI.
#
#   bench/fleet.sh [--suites LIST] [--shard K/N] [--jobs N] [--sample K] [--nice N] [PHASE...]
#     --suites  comma-separated, default: bookworm,bookworm-security,bullseye,bullseye-security,trixie,trixie-security
#     --shard   only sync's K-th of N shares of the packages (its stable hash of the name): a
#               well-defined subset when the whole fleet does not fit in the time at hand
#     --jobs    sync --jobs (default 2)
#     --sample  run the bare baseline on every K-th offered package by name (default 1: all; what
#               the mirror does not serve is skipped); with K > 1 the ratio is against the sum over
#               the sampled packages sync built, scaled by bytes to all it built, and says so
#     --nice    niceness everything runs at (default 10: the machine is shared). Note that
#               btfgen's worker threads, and so its pahole children, may run at 0 whatever it is
#               started with (libdispatch sets each thread's priority from its QoS on Linux):
#               `ps -eLo pid,tid,ni,comm` shows it; give the baseline the same then, or its wall
#               times lose to contention what sync's do not (CPU time is fair either way)
#     PHASE     list sync baseline sizes minimize report (default: all, in that order)
#   env: BTFGEN_FLEET_DIR; RUNS, WARMUP: hyperfine's for the minimize phase (default 3, 1)
# State lives in $BTFGEN_FLEET_DIR (default $BTFGEN_CACHE/fleet): the catalog, each phase's
# measurements. A phase already measured is not re-run unless named (or its file removed); sync is
# incremental, so an interrupted sync resumes. Results: bench/results/fleet-<time>.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/scripts/lib.sh"
export PATH="/opt/swift/usr/bin:$PATH"

suites=bookworm,bookworm-security,bullseye,bullseye-security,trixie,trixie-security
shard="" jobs=2 sample=1 niceness=10 phases=()
while [ $# -gt 0 ]; do
    case "$1" in
    --suites) suites=$2; shift 2 ;;
    --shard) shard=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --nice) niceness=$2; shift 2 ;;
    list | sync | baseline | sizes | minimize | report) phases+=("$1"); shift ;;
    *) die "unknown argument '$1': see the usage at the top of bench/fleet.sh" ;;
    esac
done
explicit=${#phases[@]}
[ "$explicit" -gt 0 ] || phases=(list sync baseline sizes minimize report)
[[ "$sample" =~ ^[1-9][0-9]*$ ]] || die "--sample takes a positive integer, not '$sample'"
for t in curl dpkg-deb pahole bpftool hyperfine xz /usr/bin/time python3 gpgv; do
    command -v "$t" >/dev/null || die "$t missing: run scripts/setup.sh"
done
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || die "no Debian keyring: apt-get install debian-archive-keyring"

fleet="${BTFGEN_FLEET_DIR:-$BTFGEN_CACHE/fleet}"
case "$fleet/" in "$root"/*) die "BTFGEN_FLEET_DIR is inside the repository: put it under a cache directory" ;; esac
tag=$(echo "$suites${shard:+-shard-$shard}" | tr ',/' '+_')
state="$fleet/$tag"
catalog="$state/catalog"
mkdir -p "$state" "$root/bench/results"
nice=(nice -n "$niceness")

(cd "$root" && "${nice[@]}" swift build -c release --product btfgen >&2 && "${nice[@]}" make -s bpf >&2)
btfgen="$root/.build/release/btfgen"
objects=("$root"/bpf/*.bpf.o)
flags=$("$btfgen" doctor --catalog "$state/none" | awk '$2 == "pahole" { sub(/.*flags: /, ""); print; exit }' \
    | sed -E 's/(^| )-j( |$)/ /g; s/^ +| +$//g')

repos=()
IFS=, read -ra suite_list <<<"$suites"
for s in "${suite_list[@]}"; do
    case "$s" in
    *-security) repos+=("deb [arch=amd64] http://deb.debian.org/debian-security $s main") ;;
    *) repos+=("deb [arch=amd64] http://deb.debian.org/debian $s main") ;;
    esac
done
sync_args=(--catalog "$catalog" --match 'linux-image-*-dbg' --keyring /usr/share/keyrings/debian-archive-keyring.gpg
    ${shard:+--shard "$shard"} "${repos[@]}")

want() { # want PHASE FILE: run PHASE when asked for by name, or when FILE is missing
    local p
    for p in "${phases[@]}"; do [ "$p" = "$1" ] || continue; [ "$explicit" -gt 0 ] || [ ! -s "$2" ] && return 0; done
    return 1
}
# poll_disk FILE PATH...: every second, the bytes under PATHs; the maximum goes to FILE at the end.
poll_disk() {
    local out=$1 max=0 now
    shift
    while :; do
        # du fails on a path not made yet or a file deleted under it; awk %.0f keeps big sums integral (mawk %d saturates at 2^31).
        now=$(du -sb "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}' || true)
        [ "$now" -gt "$max" ] && { max=$now; echo "$max" >"$out"; }
        sleep 1
    done
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# list: what the repositories offer (a dry run: nothing downloaded but the signed indexes).
if want list "$state/packages.json"; then
    log "listing ${#repos[@]} suites (${suites})"
    "$btfgen" sync --dry-run --json "${sync_args[@]}" >"$state/packages.json.tmp"
    mv "$state/packages.json.tmp" "$state/packages.json"
fi
[ -s "$state/packages.json" ] || die "no package list in $state: run the list phase"
log "$(json "$state/packages.json" "'%d packages, %.1f GB' % (len(d), sum(p['package']['size'] for p in d) / 1e9)")"

# sync: the timed run, from an empty catalog. An interrupted run (no sync.done) is resumed by the
# next one, which sync's incrementality makes cheap; the report adds the runs up.
if want sync "$state/sync.done"; then
    [ -e "$state/sync.done" ] && { log "re-syncing from an empty catalog"; rm -rf "$catalog" "$state"/sync.*; }
    run=1; while [ -e "$state/sync.$run.wall" ]; do run=$((run + 1)); done
    log "btfgen sync --jobs $jobs into $catalog (nice -n $niceness), run $run"
    echo "$niceness" >"$state/sync.$run.nice"
    poll_disk "$state/sync.$run.disk" "$catalog" & poller=$!
    start=$(date +%s.%N)
    echo "running" >"$state/sync.$run.wall"
    set +e
    "${nice[@]}" /usr/bin/time -v -o "$state/sync.$run.time" "$btfgen" sync --json --jobs "$jobs" "${sync_args[@]}" \
        >"$state/sync.$run.json" 2> >(while IFS= read -r l; do echo "$(date +%s.%N) $l"; done >"$state/sync.$run.log")
    rc=$?
    set -e
    kill "$poller" 2>/dev/null || true
    python3 -c "print('%.1f' % ($(date +%s.%N) - $start))" >"$state/sync.$run.wall"
    log "sync exit $rc in $(cat "$state/sync.$run.wall") s"
    [ -s "$state/sync.$run.json" ] && touch "$state/sync.done"
fi

# baseline: per package, one at a time: download, extract the vmlinux, pahole, delete.
if want baseline "$state/baseline.tsv"; then
    scratch="$state/baseline-scratch"
    rm -rf "$scratch" && mkdir -p "$scratch"
    # Every K-th package offered, by name (the report keeps those sync built too).
    python3 - "$state/packages.json" "$sample" >"$state/baseline.todo" <<'PY'
import json, sys
d = sorted((o["package"] for o in json.load(open(sys.argv[1]))), key=lambda p: (p["name"], p["version"]))
for i, p in enumerate(d):
    if i % int(sys.argv[2]) == 0:
        print(p["name"], p["version"], p["size"], p["url"])
PY
    log "baseline on $(wc -l <"$state/baseline.todo") packages (every $sample-th by name), pahole $flags, nice -n $niceness"
    echo "$niceness" >"$state/baseline.nice"
    echo "$sample" >"$state/baseline.sample"
    poll_disk "$state/baseline.disk" "$scratch" & poller=$!
    printf 'name\tversion\tbytes\tdownload_s\textract_s\tpahole_s\tcpu_s\trss_kb\n' >"$state/baseline.tsv.tmp"
    # timed OUT CMD...: GNU time's wall, user+sys CPU (children included) and peak RSS of one step.
    timed() { local o=$1; shift; "${nice[@]}" /usr/bin/time -f '%e %U %S %M' -o "$o" "$@"; }
    while read -r name version size url; do
        if ! timed "$scratch/t1" curl -fsS -o "$scratch/p.deb" "$url"; then
            log "baseline: cannot fetch $url: skipped"
            continue
        fi
        mkdir -p "$scratch/x"
        timed "$scratch/t2" sh -c 'dpkg-deb --fsys-tarfile "$1" | tar -C "$2" -x --wildcards "./usr/lib/debug/boot/vmlinux-*"' \
            - "$scratch/p.deb" "$scratch/x"
        rm -f "$scratch/p.deb"
        vmlinux=$(ls "$scratch"/x/usr/lib/debug/boot/vmlinux-*)
        # shellcheck disable=SC2086
        timed "$scratch/t3" pahole $flags --btf_encode_detached="$scratch/out.btf" "$vmlinux" >/dev/null
        rm -rf "$scratch/x" "$scratch/out.btf"
        python3 - "$name" "$version" "$size" "$scratch"/t[123] <<'PY' | tee -a "$state/baseline.tsv.tmp" >&2
import sys
t = [open(f).read().split()[-4:] for f in sys.argv[4:]]
cpu = sum(float(u) + float(s) for _, u, s, _ in t)
print("\t".join(sys.argv[1:4] + [x[0] for x in t] + ["%.2f" % cpu, str(max(int(x[3]) for x in t))]))
PY
    done <"$state/baseline.todo"
    kill "$poller" 2>/dev/null || true
    rm -rf "$scratch"
    mv "$state/baseline.tsv.tmp" "$state/baseline.tsv"
fi

# sizes: ours vs (a), (a'), (b) over every kernel in the catalog.
if want sizes "$state/sizes.json"; then
    work=$(mktemp -d "$state/sizes.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mapfile -t paths < <(json "$catalog/index.json" "'\n'.join(e['path'] for e in d['entries'])")
    log "sizes over ${#paths[@]} kernels, objects: ${objects[*]##*/}"
    objargs=(); for o in "${objects[@]}"; do objargs+=(--object "$o"); done
    "${nice[@]}" "$btfgen" bundle --catalog "$catalog" "${objargs[@]}" -o "$work/ours.tar.xz" >&2
    mkdir -p "$work/a" "$work/a-prime" "$work/a-second" "$work/b"
    for p in "${paths[@]}"; do
        d=$(dirname "$p") f=$(basename "$p")
        mkdir -p "$work/a/$d" "$work/a-prime/$d" "$work/b/$d"
        "${nice[@]}" bpftool gen min_core_btf "$catalog/$p" "$work/a/$p" "${objects[@]}"
        cp "$catalog/$p" "$work/b/$p"
        # BTFHub's archive: <distro>/<version>/<arch>/<release>.btf.tar.xz holding <release>.btf.
        "${nice[@]}" tar -C "$catalog/$d" -cJf "$work/a-prime/${p%.btf}.btf.tar.xz" "$f"
        # The same packaging of the minimized files (what bench/bundle.sh calls (a')).
        mkdir -p "$work/a-second/$d"
        "${nice[@]}" tar -C "$work/a/$d" -cJf "$work/a-second/${p%.btf}.btf.tar.xz" "$f"
    done
    (cd "$work/a" && "${nice[@]}" tar -cJf "$work/a.tar.xz" .)
    (cd "$work/a" && XZ_OPT=-9e "${nice[@]}" tar -cJf "$work/a9.tar.xz" .)
    (cd "$work/b" && "${nice[@]}" tar -cJf "$work/b.tar.xz" .)
    blobs=$(tar -xOJf "$work/ours.tar.xz" manifest.json | python3 -c "import json,sys; print(len(json.load(sys.stdin)['blobs']['sizes']))")
    python3 - "$work" "${#paths[@]}" "$blobs" >"$state/sizes.json" <<'PY'
import json, os, sys
w, n, blobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = lambda f: os.path.getsize(os.path.join(w, f))
tree = lambda d: sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(w, d)) for f in fs)
ap, a2 = tree("a-prime"), tree("a-second")
full = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(w, "b")) for f in fs)
print(json.dumps({"kernels": n, "blobs": blobs, "ours": s("ours.tar.xz"), "a": s("a.tar.xz"), "a9": s("a9.tar.xz"),
                  "a_prime": ap, "a_second": a2, "b": s("b.tar.xz"), "full_raw": full}))
PY
    rm -rf "$work"
    trap - EXIT
fi

# minimize: btfgen over the whole catalog in one process vs bpftool once per kernel.
if want minimize "$state/minimize.json"; then
    work=$(mktemp -d "$state/minimize.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mapfile -t paths < <(json "$catalog/index.json" "'\n'.join(e['path'] for e in d['entries'])")
    objargs=(); for o in "${objects[@]}"; do objargs+=(--object "$o"); done
    mkdir -p "$work/ours" "$work/bpftool"
    printf '%s\n' "${paths[@]}" >"$work/paths"
    cat >"$work/bpftool.sh" <<SH
i=0; while read -r p; do i=\$((i + 1)); bpftool gen min_core_btf "$catalog/\$p" "$work/bpftool/\$i.btf" ${objects[*]} || exit 1; done <"$work/paths"
SH
    # The static binary (--static-swift-stdlib, what goes into images) beside the plain release build.
    static=$(cd "$root" && "${nice[@]}" bash scripts/build-static.sh)
    for b in ours:"$btfgen" static:"$static"; do
        printf '%q ' "${b#*:}" minimize --catalog "$catalog" -o "$work/${b%%:*}" "${objargs[@]}" >"$work/${b%%:*}.sh"
        echo ">/dev/null" >>"$work/${b%%:*}.sh"
    done
    # Steady state: every entry's type index file in place (btfgen build and sync write them).
    # Cold: the catalog as an older btfgen or a copy leaves it, without type index files or check
    # record: each run hashes every file and locates every record, and writes both again.
    log "minimize ${#paths[@]} kernels × ${#objects[@]} objects: btfgen vs bpftool per kernel (hyperfine, ${RUNS:-3} runs)"
    "${nice[@]}" hyperfine --style basic --warmup "${WARMUP:-1}" --runs "${RUNS:-3}" -N --export-json "$work/h.json" \
        --prepare true -n btfgen "bash $work/ours.sh" \
        --prepare true -n btfgen-static "bash $work/static.sh" \
        --prepare "rm -rf $catalog/.index $catalog/.verified" -n btfgen-cold "bash $work/ours.sh" \
        --prepare true -n bpftool "bash $work/bpftool.sh" >&2
    # Leave the catalog as a sync leaves it: with its type index files.
    bash "$work/ours.sh"
    # Same bytes? btfgen writes the catalog's layout; bpftool's outputs are numbered in order.
    differ=0 i=0
    for p in "${paths[@]}"; do
        i=$((i + 1))
        cmp -s "$work/ours/$p" "$work/bpftool/$i.btf" || differ=$((differ + 1))
    done
    python3 - "$work/h.json" "${#paths[@]}" "$differ" >"$state/minimize.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
print(json.dumps({"kernels": int(sys.argv[2]), "btfgen_s": r["btfgen"], "btfgen_static_s": r["btfgen-static"],
                  "btfgen_cold_s": r["btfgen-cold"], "bpftool_s": r["bpftool"], "differ": int(sys.argv[3])}))
PY
    rm -rf "$work"
    trap - EXIT
fi

# report: one table, with the ratios to the anchors side by side.
if want report /nonexistent; then
    out="$root/bench/results/fleet-$(date -u +%Y%m%dT%H%M%SZ).txt"
    python3 - "$state" "$suites" "${shard:-all}" "$jobs" "$sample" "$flags" "$(nproc)" <<'PY' | tee "$out"
import json, os, sys
st, suites, shard, jobs, sample, flags, cores = sys.argv[1:]
f = lambda n: os.path.join(st, n)
have = lambda n: os.path.exists(f(n)) and os.path.getsize(f(n)) > 0
gb = lambda b: "%.2f GB" % (b / 1e9)
offered = json.load(open(f("packages.json")))
print(f"fleet: suites {suites}, shard {shard}: {len(offered)} packages offered, "
      f"{gb(sum(o['package']['size'] for o in offered))}; {cores} cores shared")
nices = {n.split(".")[0] + ("" if n.count(".") == 1 else " run " + n.split(".")[1]): open(f(n)).read().strip()
         for n in sorted(os.listdir(st)) if n.endswith(".nice")}
print("started under nice -n: " + (", ".join(f"{k} {v}" for k, v in nices.items()) or "10 (sync run 1, before this was recorded)"))
print()
runs = sorted(int(n.split(".")[1]) for n in os.listdir(st) if n.startswith("sync.") and n.endswith(".wall"))
if runs:
    wall, cpu, rss, disk, got, kinds, interrupted = 0.0, 0.0, 0, 0, 0, {}, []
    idx = json.load(open(os.path.join(st, "catalog", "index.json")))
    for n in runs:
        w = open(f(f"sync.{n}.wall")).read().strip()
        if w == "running" and have(f"sync.{n}.time"):  # GNU time's h:mm:ss or m:ss.cc
            e = [l for l in open(f(f"sync.{n}.time")) if "Elapsed (wall clock)" in l]
            if e:
                w = 0.0
                for part in e[0].rsplit(": ", 1)[1].strip().split(":"): w = w * 60 + float(part)
        if w == "running":  # killed: up to its last stored package
            w = os.path.getmtime(os.path.join(st, "catalog", "index.json")) - os.path.getmtime(f(f"sync.{n}.wall"))
            interrupted.append(n)
        wall += float(w)
        if have(f"sync.{n}.time"):
            for l in open(f(f"sync.{n}.time")):
                if "Maximum resident" in l: rss = max(rss, int(l.split(": ")[1]))
                if "User time" in l or "System time" in l: cpu += float(l.split(": ")[1])
        if have(f"sync.{n}.disk"): disk = max(disk, int(open(f(f"sync.{n}.disk")).read()))
        if have(f"sync.{n}.json"):
            for o in json.load(open(f(f"sync.{n}.json"))):
                kinds[o["outcome"]] = kinds.get(o["outcome"], 0) + 1
                got += o["bytes"]
    rss /= 1024
    built = [e["package"] for e in idx["entries"] if e.get("package")]
    failed = idx.get("failures", [])
    built_bytes = sum(p["size"] for p in built)
    if interrupted:  # no JSON from a killed run: what it stored is what it fetched
        got = built_bytes + sum(x["package"]["size"] for x in failed if x["stage"] == "build")
    base = {}
    tsv = "baseline.tsv" if have("baseline.tsv") else "baseline.tsv.tmp"  # .tmp: a baseline still running
    if have(tsv):
        rows = [l.rstrip("\n").split("\t") for l in open(f(tsv))][1:]
        built_names = {(p["name"], p["version"]) for p in built}
        rows = [r for r in rows if (r[0], r[1]) in built_names]  # only packages sync built
    if have(tsv) and rows:
        s_bytes = sum(int(r[2]) for r in rows)
        s_time = sum(float(r[3]) + float(r[4]) + float(r[5]) for r in rows)
        scale = built_bytes / s_bytes
        base = dict(n=len(rows), time=s_time * scale, raw=s_time, rss=max(int(r[7]) for r in rows) / 1024,
                    cpu=sum(float(r[6]) for r in rows) * scale,
                    dl=sum(float(r[3]) for r in rows), ex=sum(float(r[4]) for r in rows),
                    pa=sum(float(r[5]) for r in rows), disk=int(open(f("baseline.disk")).read()) if have("baseline.disk") else 0,
                    exact=len(rows) == len(built), bytes=s_bytes, partial=tsv.endswith(".tmp"))
    r = lambda a, b: "%.2f×" % (a / b) if b else "-"
    print("%-44s %14s %14s %10s" % ("", "btfgen sync", "bare baseline", "sync/bare"))
    print("%-44s %14s %14s %10s" % ("wall time (s)", "%.0f" % wall, "%.0f" % base["time"] if base else "-",
                                   r(wall, base.get("time", 0))))
    print("%-44s %14s %14s %10s" % ("CPU time, user+sys (s)", "%.0f" % cpu, "%.0f" % base["cpu"] if base else "-",
                                   r(cpu, base.get("cpu", 0))))
    print("%-44s %14s %14s" % ("bytes downloaded", gb(got), gb(built_bytes) if base else "-"))
    print("%-44s %14s %14s %10s" % ("peak disk (catalog + scratch)", "%.2f GB" % (disk / 1e9),
                                   "%.2f GB" % (base["disk"] / 1e9) if base else "-", r(disk, base.get("disk", 0))))
    print("%-44s %14s %14s %10s" % ("peak RSS (largest process, MB)", "%.0f" % rss, "%.0f" % base["rss"] if base else "-",
                                   r(rss, base.get("rss", 0))))
    print(f"sync: --jobs {jobs}, {len(runs)} run(s){' (interrupted: ' + str(interrupted) + ')' if interrupted else ''}; "
          f"{len(built)} packages in the catalog ({gb(built_bytes)}), {len(idx['entries'])} kernels; outcomes {kinds}")
    why = {}  # one line per distinct reason, its URL cut out
    for x in failed:
        reason = " ".join(w for w in x["reason"].split() if "://" not in w)
        why.setdefault(f"{x['stage']}: {reason}", []).append(x["package"]["name"].removeprefix("linux-image-"))
    for reason, names in why.items():
        print(f"  FAILED {len(names)} ({reason}): {' '.join(names)}")
    if base:
        sample = open(f("baseline.sample")).read().strip() if have("baseline.sample") else sample
        if base["partial"]: print("baseline: INCOMPLETE (still running or interrupted): the rows measured so far")
        how = ("on exactly the synced packages" if base["exact"] else
               f"EXTRAPOLATED: measured on {base['n']} of the {len(built)} synced packages (every {sample}-th by name, "
               f"{gb(base['bytes'])}) in {base['raw']:.0f} s, scaled by bytes to the {gb(built_bytes)} sync built")
        print(f"baseline: curl + dpkg-deb|tar + pahole {flags} --btf_encode_detached, one package at a time, {how}; "
              f"of the measured time download {base['dl']:.0f} s, extract {base['ex']:.0f} s, pahole {base['pa']:.0f} s"
              f"  (goal: sync/bare ≤ 1.15×)")
print()
if have("sizes.json"):
    s = json.load(open(f("sizes.json")))
    print("%-66s %12s %12s" % (f"artifact ({s['kernels']} kernels; bpf/*.bpf.o)", "bytes", "vs ours"))
    for k, label in (("ours", f"ours: btfgen bundle ({s['blobs']} distinct blobs)"),
                     ("a", "(a)  solid tar.xz of bpftool min_core_btf files (xz -6)"),
                     ("a9", "(a)  same, XZ_OPT=-9e"),
                     ("a_prime", "(a') BTFHub: per-kernel <release>.btf.tar.xz, full BTF, summed"),
                     ("a_second", "(a\") BTFHub packaging of the min_core_btf files, summed"),
                     ("b", "(b)  one tar.xz of the full BTFs (xz -6)"),
                     ("full_raw", "     the full BTFs, uncompressed")):
        if k in s: print("%-66s %12d %11.1f×" % (label, s[k], s[k] / s["ours"]))
    print("goals: ours ≤ (a); (a')/ours ≥ 5×")
print()
if have("minimize.json"):
    m = json.load(open(f("minimize.json")))
    print(f"minimize {m['kernels']} kernels, bpftool once per kernel {m['bpftool_s'] * 1000:.0f} ms; "
          f"outputs differing from bpftool's: {m['differ']}  (goal: ≥ 40×)")
    for k, label in (("btfgen_s", "btfgen minimize (release build)"),
                     ("btfgen_static_s", "btfgen minimize (static build, as shipped in images)"),
                     ("btfgen_cold_s", "btfgen minimize, cold: no type index files, no check record")):
        if k in m: print("  %-62s %8.1f ms %7.1f×" % (label, m[k] * 1000, m["bpftool_s"] / m[k]))
PY
    log "results in $out"
fi
