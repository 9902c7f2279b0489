#!/usr/bin/env bash
# The arm64 guest's userland, from Debian's own arm64 packages (read through the private arm64
# apt configuration of lib.sh's apt_for, never the system's sources): busybox-static for the
# shell, and the static libraries (libbpf.a, libelf.a, libz.a) and headers the guest's C loader
# links against. Each package is unpacked with dpkg-deb -x into one sysroot. Cached under
# $BTFGEN_CACHE/arm64-userland/<hash of the package versions>/; prints one per line:
#   SYSROOT=/…/sysroot    BUSYBOX=/…/sysroot/bin/busybox    PACKAGES=busybox-static=1:1.35… …
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
packages=(busybox-static libbpf-dev libelf-dev zlib1g-dev)
apt_for arm64
pinned=()
for p in "${packages[@]}"; do
    v=$(apt-cache "${apt_opts[@]}" policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "apt knows no arm64 version of $p (lists under $BTFGEN_CACHE/apt-arm64)"
    pinned+=("$p=$v")
done
dir="$BTFGEN_CACHE/arm64-userland/$(printf '%s\n' "${pinned[@]}" | sha256sum | cut -c1-12)"
if [ ! -x "$dir/sysroot/bin/busybox" ]; then
    log "downloading the arm64 guest userland: ${pinned[*]}"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial/debs" "$dir.partial/sysroot"
    (cd "$dir.partial/debs" && apt-get "${apt_opts[@]}" download -q "${pinned[@]}" >&2) \
        || die "apt-get download ${pinned[*]} failed; refresh the lists (rm -rf $BTFGEN_CACHE/apt-arm64) and re-run"
    for deb in "$dir.partial"/debs/*.deb; do dpkg-deb -x "$deb" "$dir.partial/sysroot"; done
    file -L "$dir.partial/sysroot/bin/busybox" | grep -q "ARM aarch64.*statically linked" \
        || die "busybox-static:arm64 did not unpack a static aarch64 busybox"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
fi
echo "SYSROOT=$dir/sysroot"
echo "BUSYBOX=$dir/sysroot/bin/busybox"
echo "PACKAGES=${pinned[*]}"
