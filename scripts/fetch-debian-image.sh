#!/usr/bin/env bash
# Fetch Debian's bootable kernel that matches a -dbg package: linux-image-<abi>-<flavour>-unsigned
# at the same version, and extract its vmlinuz. Cached like scripts/fetch-debian-dbg.sh, under
# $BTFGEN_CACHE/debian-image/<package>_<version>/. Prints one per line:
#   DEB=/…/linux-image-6.1.0-56-cloud-amd64-unsigned_6.1.192-2_amd64.deb
#   VMLINUZ=/…/vmlinuz-6.1.0-56-cloud-amd64
#   RELEASE=6.1.0-56-cloud-amd64
# Usage: scripts/fetch-debian-image.sh [RELEASE [VERSION]]
#   default: the release and version of the -dbg package scripts/fetch-debian-dbg.sh fetches
#   (so the booted kernel is exactly the one whose DWARF the catalog BTF was built from).
# The release's suffix is the Debian architecture (…-cloud-amd64, …-cloud-arm64); another than the
# host's is read from the private apt configuration lib.sh's apt_for keeps under $BTFGEN_CACHE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
release="${1:-}"
version="${2:-}"
if [ -z "$release" ]; then
    dbg=$("$(dirname "$0")/fetch-debian-dbg.sh")
    release=$(printf '%s\n' "$dbg" | sed -n 's/^RELEASE=//p')
    deb=$(printf '%s\n' "$dbg" | sed -n 's/^DEB=//p')
    version=$(dpkg-deb -f "$deb" Version)
fi
[ -n "$release" ] || die "no release to fetch"
arch="${release##*-}"
case "$arch" in amd64|arm64) ;; *) die "release $release does not end in a Debian architecture (amd64, arm64)";; esac
pkg="linux-image-${release}-unsigned"
apt_opts=()
if [ -z "$version" ]; then
    apt_for "$arch"
    version=$(apt-cache "${apt_opts[@]}" policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
fi
[ -n "$version" ] && [ "$version" != "(none)" ] || die "apt knows no version of $pkg"
dir="$BTFGEN_CACHE/debian-image/${pkg}_${version}"
deb=$(ls "$dir"/*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    log "downloading $pkg $version (~27 MB) into $dir"
    apt_for "$arch"
    mkdir -p "$dir.partial" && rm -f "$dir.partial"/*.deb
    (cd "$dir.partial" && apt-get "${apt_opts[@]}" download -q "$pkg=$version" >&2) \
        || die "apt-get download $pkg=$version failed; the -dbg and image packages must be at the same version"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    deb=$(ls "$dir"/*.deb | head -1)
fi
vmlinuz="$dir/vmlinuz-$release"
if [ ! -s "$vmlinuz" ]; then
    tmp=$(mktemp -d "$dir/extract.XXXXXX")
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./boot/vmlinuz-$release"
    mv "$tmp/boot/vmlinuz-$release" "$vmlinuz.tmp" && mv "$vmlinuz.tmp" "$vmlinuz"
    rm -rf "$tmp"
fi
echo "DEB=$deb"
echo "VMLINUZ=$vmlinuz"
echo "RELEASE=$release"
