#!/usr/bin/env bash
# Build a Linux 6.1 kernel from Debian's linux-source-6.1 with DWARF and WITHOUT BTF: the
# BTF-less test kernel that `btfgen build` and the QEMU attach tests use. Cached under
# $BTFGEN_CACHE/test-kernel/<source version>-<config hash>/ (rebuilt only when absent); prints
#   VMLINUX=/…/vmlinux   BZIMAGE=/…/bzImage   RELEASE=6.1.x
# one per line. About 6 minutes on 2 cores the first time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/kernel/btfless.config"
tarball=/usr/src/linux-source-6.1.tar.xz
if [ ! -f "$tarball" ]; then
    apt_ready
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source-6.1 >&2
fi
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key="${srcver}-$(cat "$fragment" "$0" | sha256sum | cut -c1-12)"
out="$BTFGEN_CACHE/test-kernel/$key"
if [ ! -s "$out/vmlinux" ] || [ ! -s "$out/bzImage" ]; then
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
    rm -rf "$out" && mv "$out.partial" "$out"
    cd / && rm -rf "$work"
fi
echo "VMLINUX=$out/vmlinux"
echo "BZIMAGE=$out/bzImage"
echo "RELEASE=$(cat "$out/release")"
