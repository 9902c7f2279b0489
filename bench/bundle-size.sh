#!/usr/bin/env bash
# Bundle bytes against (a), one solid tar.xz of `bpftool gen min_core_btf` files named
# <distro>/<ver>/<arch>/<release>.btf, on a catalog of real kernels, and what each part of our
# bundle costs: every part is priced as the bytes the bundle loses when the part is taken out
# and the rest packed again the same way (ustar, xz as btfgen does it). Formats 3 (whole build-ids
# and sums) and 2 (a member per blob, xz -9 through libarchive), as btfgen wrote bundles before,
# are packed again from the same kernels, and format 4 once more with the blobs as bpftool gives
# them instead of in name order.
#   bench/bundle-size.sh CATALOG      (read only; copied, since reading a catalog records checks)
#   BTFGEN=path/to/btfgen to use a built one (default: swift build --product btfgen)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
[ $# -eq 1 ] && [ -f "$1/index.json" ] || {
    echo "usage: bench/bundle-size.sh CATALOG (a btfgen catalog directory, with index.json)" >&2
    exit 2
}
export PATH="/opt/swift/usr/bin:$PATH"
if [ -z "${BTFGEN:-}" ]; then
    (cd "$root" && nice swift build --product btfgen >&2)
    BTFGEN="$root/.build/debug/btfgen"
fi
(cd "$root" && make -s bpf >&2)
objects=("$root/bpf/task_rename.bpf.o" "$root/bpf/unlinkat.bpf.o" "$root/bpf/exec.bpf.o")
work=$(mktemp -d /tmp/btfgen-bundle-size.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$1" "$work/catalog"
catalog="$work/catalog"

objargs=()
for o in "${objects[@]}"; do objargs+=(--object "$o"); done
"$BTFGEN" bundle --catalog "$catalog" "${objargs[@]}" -o "$work/ours.tar.xz" >&2

mapfile -t paths < <(python3 -c "import json,sys; [print(e['path']) for e in json.load(open(sys.argv[1]))['entries']]" "$catalog/index.json")
for p in "${paths[@]}"; do
    mkdir -p "$work/a/$(dirname "$p")"
    bpftool gen min_core_btf "$catalog/$p" "$work/a/$p" "${objects[@]}"
done
# Member order, owners and times fixed, so (a) does not move from run to run (readdir order alone
# moves it by 100 bytes); tar's default xz (-6) as (a) is defined, and xz -9e beside it.
fixed=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
tar "${fixed[@]}" -C "$work/a" -cJf "$work/a.tar.xz" .
XZ_OPT=-9e tar "${fixed[@]}" -C "$work/a" -cJf "$work/a9e.tar.xz" .

python3 - "$work/ours.tar.xz" "$work/a.tar.xz" "${#paths[@]}" "$work/a9e.tar.xz" "$catalog/index.json" "$work/a" "${objects[@]}" <<'PY'
import copy, hashlib, io, json, lzma, os, sys, tarfile
ours, a, n, a9e, index, adir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
objects = sys.argv[7:]
with tarfile.open(ours) as t:
    names = t.getnames()
    manifest = t.extractfile('manifest.json').read()
    payload = t.extractfile('blobs').read()
assert names == ['manifest.json', 'blobs'], names
m = json.loads(manifest)
assert m['format'] == 4, m['format']

def tarball(members):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            else:
                ti.size, ti.mode = len(data), 0o644
            ti.uid = ti.gid = ti.mtime = 0
            ti.uname = ti.gname = ''
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    # btfgen pads only to the tar record (two zero blocks end it), python to 10 KiB: cut that.
    end = sum(512 + (len(d or b'') + 511) // 512 * 512 for _, d in members) + 1024
    return raw.getvalue()[:end]

def pack(members):
    return xz(tarball(members))

SETTINGS = [(p, lc, pb) for p in (9, 9 | lzma.PRESET_EXTREME) for lc, pb in ((3, 2), (0, 0))]
def xz(data, form=lzma.FORMAT_XZ):
    # As btfgen's ArchiveWriter .xzSmallest: the smallest of preset 9 and 9e, lc 3 pb 2 and lc 0 pb 0.
    return min(len(lzma.compress(data, format=form, check=lzma.CHECK_CRC64 if form == lzma.FORMAT_XZ else -1,
                                 filters=[{'id': lzma.FILTER_LZMA2, 'preset': p, 'lc': lc, 'lp': 0, 'pb': pb}]))
               for p, lc, pb in SETTINGS)

def dumps(m):
    return json.dumps(m, sort_keys=True, separators=(',', ':'))

def v4(m, payload, selfsum=True):
    m = dict(m); m.pop('sha256', None)
    j = dumps(m)
    if selfsum:
        j = j[:-1] + ',"sha256":"' + hashlib.sha256(j[:-1].encode() + payload).hexdigest() + '"}'
    return pack([('manifest.json', (j + '\n').encode()), ('blobs', payload)])

blobs, offset = [], 0
for size in m['blobs']['sizes']:
    blobs.append(payload[offset:offset + size]); offset += size
digests = [hashlib.sha256(b).hexdigest() for b in blobs]

# Whole build-ids from the catalog, whole object sums from the files: what formats 2 and 3 recorded.
whole_id = {}
for e in json.load(open(index))['entries']:
    i = e['identity']
    if i.get('buildID'): whole_id[(i['distro'], i['distroVersion'], i['arch'], i['release'])] = i['buildID']
whole_sum = {}
for o in objects:
    d = hashlib.sha256(open(o, 'rb').read()).hexdigest(); whole_sum[d[:16]] = d
m3 = copy.deepcopy(m); m3['format'] = 3; m3.pop('sha256', None)
for g in m3['kernels']:
    for r in g['k']:
        if r[1]: r[1] = whole_id[(g['distro'], g['version'], g['arch'], r[0])]
for o in m3['objects']: o['sha256'] = whole_sum[o['sha256']]
m3['blobs'] = {'sha256': hashlib.sha256(payload).hexdigest(), 'sizes': m['blobs']['sizes']}
j3 = dumps(m3)
j3 = j3[:-1] + ',"sha256":"' + hashlib.sha256(j3[:-1].encode()).hexdigest() + '"}'
size3 = pack([('manifest.json', (j3 + '\n').encode()), ('blobs', payload)])

# Format 2 from the same kernels and blobs.
kernels = []
for g in m3['kernels']:
    for release, build_id, blob in g['k']:
        k = dict(release=release, arch=g['arch'], distro=g['distro'], distroVersion=g['version'], blob=digests[blob])
        if build_id: k['buildID'] = build_id
        if g.get('pahole'): k['pahole'] = g['pahole']
        kernels.append(k)
kernels.sort(key=lambda k: (k['distro'], k['distroVersion'], k['arch'], k['release'], k.get('buildID', '')))
v2 = dict(format=2, btfgen=m['btfgen'], compat=m['compat'], objects=m3['objects'], kernels=kernels,
          blobs={d: len(b) for d, b in zip(digests, blobs)})
v2json = (dumps(v2) + '\n').encode()
def pack9(members):
    return len(lzma.compress(tarball(members), format=lzma.FORMAT_XZ, preset=9))
size2 = pack9([('manifest.json', v2json), ('blobs/', None), ('blobs/sha256/', None)]
             + [('blobs/sha256/' + d, b) for d, b in sorted(zip(digests, blobs))])

# Format 4 with the blobs as bpftool (and `btfgen minimize`) gives them, not in name order.
raw = set()
for r, _, fs in os.walk(adir):
    for f in fs: raw.add(open(os.path.join(r, f), 'rb').read())
raw = sorted(raw, key=lambda b: (len(b), b))
rawnum = {hashlib.sha256(b).hexdigest(): i for i, b in enumerate(raw)}
mr = copy.deepcopy(m); mr['blobs'] = {'sizes': [len(b) for b in raw]}
by_kernel = {}
for r, _, fs in os.walk(adir):
    for f in fs:
        rel = os.path.relpath(os.path.join(r, f), adir).split('/')
        by_kernel[(rel[0], rel[1], rel[2], f[:-len('.btf')])] = rawnum[hashlib.sha256(open(os.path.join(r, f), 'rb').read()).hexdigest()]
for g in mr['kernels']:
    for r in g['k']: r[2] = by_kernel[(g['distro'], g['version'], g['arch'], r[0])]
size_raw_order = v4(mr, b''.join(raw))

actual, size_a = os.path.getsize(ours), os.path.getsize(a)
repacked = v4(m, payload)
def without(change, payload=payload, selfsum=True):
    c = copy.deepcopy(m); change(c)
    return repacked - v4(c, payload, selfsum)
def no_ids(c):
    for g in c['kernels']:
        for r in g['k']: r[1] = None
def no_rows(c): c['kernels'] = []
def no_blobs(c): c['blobs']['sizes'] = []
def no_object_sums(c):
    for o in c['objects']: o['sha256'] = ''
ids = without(no_ids)
rows = without(no_rows)
blob_part = without(no_blobs, payload=b'')
objsums = without(no_object_sums)
sums = without(lambda c: None, selfsum=False)
frame = pack([('manifest.json', b''), ('blobs', b'')])
id_count = sum(1 for g in m['kernels'] for r in g['k'] if r[1])
id_bytes = sum(len(r[1]) // 2 for g in m['kernels'] for r in g['k'] if r[1])
print(f"\n{n} kernels, {len(blobs)} distinct blobs ({len(payload)} bytes; {len(raw)} distinct as bpftool gives them), {len(m['objects'])} objects")
print(f"{'ours, format 4':60s} {actual:8d}")
print(f"{'ours, format 4, blobs as bpftool gives them (not name order)':60s} {size_raw_order:8d}")
print(f"{'ours, format 3 (whole build-ids and sums, same blobs)':60s} {size3:8d}")
print(f"{'ours, format 2 (same blobs, packed as before)':60s} {size2:8d}")
print(f"{'(a) tar.xz of bpftool min_core_btf files':60s} {size_a:8d}")
print(f"{'(a) with xz -9e':60s} {os.path.getsize(a9e):8d}")
print(f"format 4 - (a): {actual - size_a:+d} bytes ({actual / size_a:.2f}x (a)); format 3 / format 4: {size3 / actual:.2f}x")
print(f"\nwhat format 4's bytes pay for (re-packed here: {repacked} bytes)")
print(f"  {'build-id prefixes (%d, %d bytes of entropy)' % (id_count, id_bytes):50s} {ids:6d}  {ids / max(id_count, 1):.1f} B each")
print(f"  {'rest of the rows (releases, blob numbers, groups)':50s} {rows - ids:6d}")
print(f"  {'blobs (member and sizes)':50s} {blob_part:6d}  xz of the blobs alone {xz(payload)}")
print(f"  {'object sha256 prefixes':50s} {objsums:6d}")
print(f"  {'integrity: one sha256 over manifest and blobs':50s} {sums:6d}")
print(f"  {'tar + xz framing (two empty members)':50s} {frame:6d}")
print(f"  {'the rest (format, btfgen, compat, keys)':50s} {repacked - ids - (rows - ids) - blob_part - objsums - sums - frame:6d}")
PY
