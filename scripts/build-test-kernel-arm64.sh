#!/usr/bin/env bash
# Build an arm64 Linux 6.1 kernel from Debian's linux-source-6.1 with Debian's cross compiler
# (gcc-aarch64-linux-gnu), with DWARF and WITHOUT BTF: the arm64 counterpart of
# scripts/build-test-kernel.sh, booted by the arm64 QEMU proof (qemu-system-aarch64 -M virt).
# Cached under $BTFGEN_CACHE/test-kernel-arm64/<source version>-<config hash>/ (rebuilt only when
# absent); prints
#   VMLINUX=/…/vmlinux   IMAGE=/…/Image   RELEASE=6.1.x   BUILD_SECONDS=S (of the build that made it)
# one per line. About 6 minutes on 2 cores the first time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/kernel/btfless-arm64.config"
tarball=/usr/src/linux-source-6.1.tar.xz
cross=aarch64-linux-gnu-
command -v "${cross}gcc" >/dev/null || die "${cross}gcc not found; apt-get install gcc-aarch64-linux-gnu"
if [ ! -f "$tarball" ]; then
    apt_ready
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source-6.1 >&2
fi
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
gccver=$(dpkg-query -W -f='${Version}' gcc-aarch64-linux-gnu)
key="${srcver}-$(printf '%s\n' "$gccver" | cat - "$fragment" "$0" | sha256sum | cut -c1-12)"
out="$BTFGEN_CACHE/test-kernel-arm64/$key"
if [ ! -s "$out/vmlinux" ] || [ ! -s "$out/Image" ]; then
    log "building BTF-less arm64 test kernel $key (first time: several minutes)"
    started=$(date +%s)
    work="$BTFGEN_CACHE/test-kernel-arm64/build-$key"
    rm -rf "$work" && mkdir -p "$work"
    tar -xJf "$tarball" -C "$work" --strip-components=1
    cd "$work"
    mk() { make -s ARCH=arm64 CROSS_COMPILE="$cross" "$@"; }
    mk tinyconfig >&2
    ARCH=arm64 ./scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
    mk olddefconfig >&2
    # merge_config may silently drop a symbol whose dependencies are unmet: check the ones we need.
    for sym in 64BIT BPF_SYSCALL BPF_EVENTS DEBUG_INFO BLK_DEV_INITRD SERIAL_AMBA_PL011_CONSOLE; do
        grep -q "^CONFIG_${sym}=y" .config || die "kernel config lost CONFIG_${sym}; see $work/.config"
    done
    grep -q '^CONFIG_DEBUG_INFO_BTF=y' .config && die "kernel config enabled DEBUG_INFO_BTF; it must stay off"
    mk -j"$(( $(nproc) + 1 ))" Image >&2
    mkdir -p "$out.partial"
    cp vmlinux "$out.partial/vmlinux"
    cp arch/arm64/boot/Image "$out.partial/Image"
    mk kernelrelease > "$out.partial/release"
    cp .config "$out.partial/config"
    echo $(( $(date +%s) - started )) > "$out.partial/build-seconds"
    rm -rf "$out" && mv "$out.partial" "$out"
    cd / && rm -rf "$work"
fi
echo "VMLINUX=$out/vmlinux"
echo "IMAGE=$out/Image"
echo "RELEASE=$(cat "$out/release")"
echo "BUILD_SECONDS=$(cat "$out/build-seconds")"
