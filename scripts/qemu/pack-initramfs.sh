#!/usr/bin/env bash
# Pack the initramfs of the QEMU proof: busybox-static, a static btfgen with the shared libraries
# ldd names (libbpf, libelf, libz, libc), the BPF objects as installed (/usr/share/btfgen/bpf),
# the actor (scripts/qemu/actor.c, static), a plain libbpf loader (plain_loader.c), catalogs under /kernels/NAME, and scripts/qemu/init.sh.
# Bundles go under /bundles/NAME.tar.xz (the guest copies one to the default bundle path on request).
# Usage: pack-initramfs.sh OUT.cpio.gz BTFGEN BPF-DIR NAME=CATALOG-DIR... [@NAME=BUNDLE-FILE...]
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -ge 4 ] || die "usage: $0 OUT.cpio.gz BTFGEN BPF-DIR NAME=CATALOG-DIR..."
out=$1; btfgen=$2; bpf=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox) || die "busybox not found; apt-get install busybox-static"
file -L "$busybox" | grep -q "statically linked" || die "$busybox is not static; apt-get install busybox-static"
ls "$bpf"/*.bpf.o >/dev/null 2>&1 || die "no *.bpf.o in $bpf; run make bpf"

stage=$(mktemp -d "${TMPDIR:-/tmp}/btfgen-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,usr/bin,usr/share/btfgen/bpf,dev,proc,sys,tmp,kernels,bundles,etc}
cp "$busybox" "$stage/bin/busybox"
cp "$btfgen" "$stage/usr/bin/btfgen"
cp "$bpf"/*.bpf.o "$stage/usr/share/btfgen/bpf/"
cc -O2 -static -o "$stage/usr/bin/actor" "$here/actor.c"
# A libbpf loader with no btf_custom_path (the `install` case); it needs only libraries btfgen's ldd copies below.
cc -O2 -Wall -I"$here/../../bpf/include" -o "$stage/usr/bin/plain_loader" "$here/plain_loader.c" -lbpf
cp "$here/init.sh" "$stage/init" && chmod 755 "$stage/init"
# The shared libraries of the static-stdlib btfgen, at the paths its loader expects.
ldd "$btfgen" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | while read -r lib; do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
done
for pair in "$@"; do
    name=${pair%%=*}; dir=${pair#*=}
    if [ "${name#@}" != "$name" ]; then
        [ -f "$dir" ] || die "no bundle at $dir"
        cp "$dir" "$stage/bundles/${name#@}.tar.xz"
        continue
    fi
    [ -f "$dir/index.json" ] || die "$dir has no index.json (not a catalog)"
    mkdir -p "$stage/kernels/$name"
    (cd "$dir" && find . -path ./.tmp -prune -o -path ./.lock -prune -o -type f -print | cpio -pdm --quiet "$stage/kernels/$name")
done
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
log "packed $(du -h "$out" | cut -f1) initramfs: $out"
