#!/usr/bin/env bash
# Pack the initramfs of the arm64 QEMU proof: Debian's busybox-static:arm64, the actor
# (scripts/qemu/actor.c) and the plain libbpf loader (plain_loader.c) cross-compiled with
# aarch64-linux-gnu-gcc and linked statically against Debian's arm64 libbpf.a, libelf.a and libz.a
# (fetch-arm64-userland.sh), the arm64 BPF objects (bpf/arm64, `make bpf`) at
# /usr/share/btfgen/bpf, each BTF file given as /btf/NAME, and scripts/qemu/init-arm64.sh as /init.
# Usage: pack-initramfs-arm64.sh OUT.cpio.gz BPF-ARM64-DIR [NAME=BTF-FILE...]
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -ge 2 ] || die "usage: $0 OUT.cpio.gz BPF-ARM64-DIR [NAME=BTF-FILE...]"
out=$1; bpf=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
cc=aarch64-linux-gnu-gcc
command -v "$cc" >/dev/null || die "$cc not found; apt-get install gcc-aarch64-linux-gnu"
ls "$bpf"/*.bpf.o >/dev/null 2>&1 || die "no *.bpf.o in $bpf; run make bpf"
file "$bpf"/*.bpf.o | grep -qv "eBPF" && die "$bpf holds a file that is not an eBPF object"
userland=$(bash "$here/fetch-arm64-userland.sh")
sysroot=$(printf '%s\n' "$userland" | sed -n 's/^SYSROOT=//p')
busybox=$(printf '%s\n' "$userland" | sed -n 's/^BUSYBOX=//p')

stage=$(mktemp -d "${TMPDIR:-/tmp}/btfgen-initramfs-arm64.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,usr/bin,usr/share/btfgen/bpf,dev,proc,sys,tmp,btf}
cp "$busybox" "$stage/bin/busybox"
cp "$bpf"/*.bpf.o "$stage/usr/share/btfgen/bpf/"
"$cc" -O2 -static -o "$stage/usr/bin/actor" "$here/actor.c"
"$cc" -O2 -Wall -static -I"$sysroot/usr/include" -I"$here/../../bpf/include" -o "$stage/usr/bin/plain_loader" \
    "$here/plain_loader.c" -L"$sysroot/usr/lib/aarch64-linux-gnu" -lbpf -lelf -lz
cp "$here/init-arm64.sh" "$stage/init" && chmod 755 "$stage/init"
for pair in "$@"; do
    name=${pair%%=*}; file=${pair#*=}
    [ -f "$file" ] || die "no BTF file at $file"
    cp "$file" "$stage/btf/$name"
done
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
log "packed $(du -h "$out" | cut -f1) arm64 initramfs: $out"
