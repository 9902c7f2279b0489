#!/usr/bin/env bash
# Build a Linux 6.1 kernel from Debian's linux-source-6.1 with DWARF and WITHOUT BTF: the
# BTF-less test kernel that `btfgen build` and the QEMU attach tests use, and its twin: the same
# tree rebuilt with scripts/kernel/twin.config on top, so `uname -r` is the same and the build-id
# is not (another build of the same release). Cached under
# $BTFGEN_CACHE/test-kernel/<source version>-<config hash>/ (rebuilt only when absent); prints
#   VMLINUX=/…/vmlinux   BZIMAGE=/…/bzImage   RELEASE=6.1.x
#   TWIN_VMLINUX=/…/twin/vmlinux   TWIN_BZIMAGE=/…/twin/bzImage
# one per line. About 6 minutes on 2 cores the first time, plus a minute or two for the twin
# (only the files that read the changed option are recompiled before the relink).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/kernel/btfless.config"
twin_fragment="$here/kernel/twin.config"
tarball=/usr/src/linux-source-6.1.tar.xz
if [ ! -f "$tarball" ]; then
    apt_ready
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source-6.1 >&2
fi
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key="${srcver}-$(cat "$fragment" "$twin_fragment" "$0" | sha256sum | cut -c1-12)"
out="$BTFGEN_CACHE/test-kernel/$key"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: *//p' | head -1; }
if [ ! -s "$out/vmlinux" ] || [ ! -s "$out/bzImage" ] || [ ! -s "$out/twin/vmlinux" ] || [ ! -s "$out/twin/bzImage" ]; then
    log "building BTF-less test kernel $key (first time: several minutes)"
    work="$BTFGEN_CACHE/test-kernel/build-$key"
    rm -rf "$work" && mkdir -p "$work"
    tar -xJf "$tarball" -C "$work" --strip-components=1
    cd "$work"
    make -s tinyconfig >&2
    ./scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
    make -s olddefconfig >&2
    # merge_config may silently drop a symbol whose dependencies are unmet: check the ones we need.
    for sym in BPF_SYSCALL BPF_EVENTS DEBUG_INFO BLK_DEV_INITRD SERIAL_8250_CONSOLE; do
        grep -q "^CONFIG_${sym}=y" .config || die "kernel config lost CONFIG_${sym}; see $work/.config"
    done
    grep -q '^CONFIG_DEBUG_INFO_BTF=y' .config && die "kernel config enabled DEBUG_INFO_BTF; it must stay off"
    make -s -j"$(( $(nproc) + 1 ))" bzImage >&2
    mkdir -p "$out.partial"
    cp vmlinux "$out.partial/vmlinux"
    cp arch/x86/boot/bzImage "$out.partial/bzImage"
    make -s kernelrelease > "$out.partial/release"
    cp .config "$out.partial/config"
    # The twin: the same tree with the twin fragment merged in and built again.
    log "building its twin (same release, another build-id)"
    ./scripts/kconfig/merge_config.sh -m .config "$twin_fragment" >/dev/null
    make -s olddefconfig >&2
    grep -qxF "$(grep '^CONFIG_' "$twin_fragment")" .config || die "kernel config lost the twin's option; see $work/.config"
    make -s -j"$(( $(nproc) + 1 ))" bzImage >&2
    mkdir -p "$out.partial/twin"
    cp vmlinux "$out.partial/twin/vmlinux"
    cp arch/x86/boot/bzImage "$out.partial/twin/bzImage"
    make -s kernelrelease > "$out.partial/twin/release"
    cp .config "$out.partial/twin/config"
    cmp -s "$out.partial/release" "$out.partial/twin/release" \
        || die "the twin's release $(cat "$out.partial/twin/release") differs from $(cat "$out.partial/release")"
    [ -n "$(build_id "$out.partial/vmlinux")" ] && [ "$(build_id "$out.partial/vmlinux")" != "$(build_id "$out.partial/twin/vmlinux")" ] \
        || die "the twin has the same build-id as the test kernel (or none); see $work"
    rm -rf "$out" && mv "$out.partial" "$out"
    cd / && rm -rf "$work"
fi
echo "VMLINUX=$out/vmlinux"
echo "BZIMAGE=$out/bzImage"
echo "RELEASE=$(cat "$out/release")"
echo "TWIN_VMLINUX=$out/twin/vmlinux"
echo "TWIN_BZIMAGE=$out/twin/bzImage"
