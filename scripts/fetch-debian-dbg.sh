#!/usr/bin/env bash
# Fetch Debian's real debuginfo kernel (linux-image-<abi>-<flavour>-dbg) into the cache and print
# the paths of the .deb and of its extracted vmlinux, one per line:
#   DEB=/…/linux-image-6.1.0-54-cloud-amd64-dbg_6.1.164-1_amd64.deb
#   VMLINUX=/…/vmlinux-6.1.0-54-cloud-amd64
#   RELEASE=6.1.0-54-cloud-amd64
# Usage: scripts/fetch-debian-dbg.sh [FLAVOUR]   (default: cloud-amd64; also amd64, rt-amd64,
#        cloud-arm64, arm64, rt-arm64)
# The flavour's suffix is the Debian architecture. Another architecture than the host's is read
# from a private apt configuration under $BTFGEN_CACHE/apt-<arch> (lib.sh's apt_for), so the
# system's apt sources stay untouched.
# The newest ABI apt knows is used unless BTFGEN_DBG_PACKAGE names one package exactly.
# Cached under $BTFGEN_CACHE/debian-dbg/<package>_<version>/; nothing is fetched when present.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
flavour="${1:-cloud-amd64}"
arch="${flavour##*-}"
case "$arch" in amd64|arm64) ;; *) die "flavour $flavour does not end in a Debian architecture (amd64, arm64)";; esac
apt_for "$arch"
# The system's lists may be stale or absent; the private ones were fetched by apt_for.
refresh() { if [ ${#apt_opts[@]} -eq 0 ]; then apt-get update -qq >&2; else apt-get "${apt_opts[@]}" update -qq >&2; fi; }

pkg="${BTFGEN_DBG_PACKAGE:-}"
newest() {
    apt-cache "${apt_opts[@]}" pkgnames linux-image-6.1.0- | grep -E "^linux-image-6\.1\.0-[0-9]+-${flavour}-dbg\$" \
        | sort -t- -k4,4n | tail -1
}
if [ -z "$pkg" ]; then
    pkg=$(newest)
    [ -n "$pkg" ] || { refresh; pkg=$(newest); }
    [ -n "$pkg" ] || die "no linux-image-6.1.0-*-${flavour}-dbg package known to apt; check the $arch sources"
fi
candidate() { apt-cache "${apt_opts[@]}" policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
version=$(candidate)
[ -n "$version" ] && [ "$version" != "(none)" ] || { refresh; version=$(candidate); }
[ -n "$version" ] && [ "$version" != "(none)" ] || die "apt knows no version of $pkg"
release="${pkg#linux-image-}"; release="${release%-dbg}"
dir="$BTFGEN_CACHE/debian-dbg/${pkg}_${version}"
deb=$(ls "$dir"/*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    log "downloading $pkg $version (~280 MB) into $dir"
    mkdir -p "$dir.partial" && rm -f "$dir.partial"/*.deb
    (cd "$dir.partial" && apt-get "${apt_opts[@]}" download -q "$pkg=$version" >&2) \
        || die "apt-get download $pkg=$version failed; if the mirror has moved on, refresh the lists" \
               "(apt-get update, or for $arch: rm -rf $BTFGEN_CACHE/apt-$arch) and re-run"
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
