#!/usr/bin/env bash
# Fetch Debian's real debuginfo kernel (linux-image-<abi>-<flavour>-dbg) into the cache and print
# the paths of the .deb and of its extracted vmlinux, one per line:
#   DEB=/…/linux-image-6.1.0-54-cloud-amd64-dbg_6.1.164-1_amd64.deb
#   VMLINUX=/…/vmlinux-6.1.0-54-cloud-amd64
#   RELEASE=6.1.0-54-cloud-amd64
# Usage: scripts/fetch-debian-dbg.sh [FLAVOUR]   (default: cloud-amd64; also amd64, rt-amd64)
# The newest ABI apt knows is used unless BTFGEN_DBG_PACKAGE names one package exactly.
# Cached under $BTFGEN_CACHE/debian-dbg/<package>_<version>/; nothing is fetched when present.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
flavour="${1:-cloud-amd64}"

pkg="${BTFGEN_DBG_PACKAGE:-}"
if [ -z "$pkg" ]; then
    apt_ready
    pkg=$(apt-cache pkgnames linux-image-6.1.0- | grep -E "^linux-image-6\.1\.0-[0-9]+-${flavour}-dbg\$" \
          | sort -t- -k4,4n | tail -1)
    [ -n "$pkg" ] || { apt-get update -qq >&2; pkg=$(apt-cache pkgnames linux-image-6.1.0- \
          | grep -E "^linux-image-6\.1\.0-[0-9]+-${flavour}-dbg\$" | sort -t- -k4,4n | tail -1); }
    [ -n "$pkg" ] || die "no linux-image-6.1.0-*-${flavour}-dbg package known to apt; check /etc/apt/sources.list"
fi
version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
[ -n "$version" ] && [ "$version" != "(none)" ] || { apt-get update -qq >&2; version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}'); }
[ -n "$version" ] && [ "$version" != "(none)" ] || die "apt knows no version of $pkg"
release="${pkg#linux-image-}"; release="${release%-dbg}"
dir="$BTFGEN_CACHE/debian-dbg/${pkg}_${version}"
deb=$(ls "$dir"/*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    log "downloading $pkg $version (~280 MB) into $dir"
    mkdir -p "$dir.partial" && rm -f "$dir.partial"/*.deb
    (cd "$dir.partial" && apt-get download -q "$pkg=$version" >&2)
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    deb=$(ls "$dir"/*.deb | head -1)
fi
vmlinux="$dir/vmlinux-$release"
if [ ! -s "$vmlinux" ]; then
    log "extracting vmlinux-$release from $(basename "$deb")"
    tmp=$(mktemp -d "$dir/extract.XXXXXX")
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./usr/lib/debug/boot/vmlinux-$release"
    mv "$tmp/usr/lib/debug/boot/vmlinux-$release" "$vmlinux.tmp" && mv "$vmlinux.tmp" "$vmlinux"
    rm -rf "$tmp"
fi
echo "DEB=$deb"
echo "VMLINUX=$vmlinux"
echo "RELEASE=$release"
