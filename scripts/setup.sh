#!/usr/bin/env bash
# Install every system package btfgen, its tests and its benchmarks need on Debian 12.
set -euo pipefail
need=(dwarves llvm clang binutils bpftool libbpf-dev libelf-dev libdw-dev zlib1g-dev libarchive-dev
      linux-source-6.1 busybox-static qemu-system-x86 skopeo umoci hyperfine
      xz-utils zstd gzip cpio rpm bc flex bison libssl-dev libelf-dev make gcc kmod file time
      dpkg-dev binutils python3 python3-yaml strace
      linux-libc-dev linux-libc-dev-arm64-cross
      libcurl4-openssl-dev liblzma-dev nginx apt-utils gnupg gpgv debian-archive-keyring
      libxml2 createrepo-c
      qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross util-linux)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }
