#!/usr/bin/env bash
# Everything the QEMU proof boots, in WORKDIR, made by btfgen itself:
#   kernels-test/    catalog: `btfgen build $BTFGEN_TEST_VMLINUX` (the BTF-less kernel)
#   kernels-other/   catalog: `btfgen build $BTFGEN_TEST_TWIN_VMLINUX`, the test kernel's twin (same
#                    release, another build: distros reuse uname -r); attach must refuse it
#   test-bundle.tar.xz, other-bundle.tar.xz   `btfgen bundle` of kernels-test / kernels-other for the
#                    objects in bpf/: minimized BTF, what an image ships to a fleet
#   min/             `btfgen minimize` of kernels-test for the same objects: the types the test bundle
#                    must hold for the test kernel (MIN_BTF below; the bundle holds them in name order)
#   kernels-debian/  catalog: `btfgen build $BTFGEN_DEBIAN_VMLINUX` (Debian's -dbg vmlinux, optional)
#   initramfs.cpio.gz
# Catalog builds are skipped when the entry exists (btfgen build keeps an entry with the same build-id).
# Usage: prepare.sh WORKDIR    env: BTFGEN_STATIC_BIN (static btfgen), BTFGEN_TEST_VMLINUX,
#                                   BTFGEN_TEST_TWIN_VMLINUX, [BTFGEN_DEBIAN_VMLINUX],
#                                   [BPF_DIR (default: bpf/ of this checkout)]
# Prints INITRAMFS, TEST_BUILD_ID, OTHER_BUILD_ID (the build-ids btfgen recorded), MIN_BTF (the file),
# MIN_BTF_BYTES, MIN_BTF_TYPES, MIN_BTF_SHA256, one KEY=value a line.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -eq 1 ] || die "usage: $0 WORKDIR"
work=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${BTFGEN_STATIC_BIN:?set BTFGEN_STATIC_BIN to the binary scripts/build-static.sh prints}
vmlinux=${BTFGEN_TEST_VMLINUX:?set BTFGEN_TEST_VMLINUX (scripts/build-test-kernel.sh prints it)}
twin=${BTFGEN_TEST_TWIN_VMLINUX:?set BTFGEN_TEST_TWIN_VMLINUX (scripts/build-test-kernel.sh prints it as TWIN_VMLINUX)}
bpf=${BPF_DIR:-$repo/bpf}
mkdir -p "$work"
objects=(); for o in "$bpf"/*.bpf.o; do objects+=(--object "$o"); done

# build_id CATALOG: the build-id of the catalog's only entry, as btfgen recorded it.
build_id() {
    "$bin" list --catalog "$1" --json | sed -n 's/.*"buildID" *: *"\([0-9a-f]*\)".*/\1/p' | head -1
}
"$bin" build "$vmlinux" --catalog "$work/kernels-test" >&2
"$bin" build "$twin" --catalog "$work/kernels-other" >&2
id=$(build_id "$work/kernels-test")
other=$(build_id "$work/kernels-other")
[ -n "$id" ] && [ -n "$other" ] || die "a test kernel's entry has no build-id"
[ "$id" != "$other" ] || die "the twin $twin has the test kernel's build-id $id; rebuild it (scripts/build-test-kernel.sh)"

# Bundles: what an image ships instead of a catalog.
"$bin" bundle --catalog "$work/kernels-test" "${objects[@]}" -o "$work/test-bundle.tar.xz" --force >&2
"$bin" bundle --catalog "$work/kernels-other" "${objects[@]}" -o "$work/other-bundle.tar.xz" --force >&2
# The test kernel's BTF minimized for the same objects: its size and digest, which the guest must
# find as the test bundle's blob.
rm -rf "$work/min"
min=$("$bin" minimize --catalog "$work/kernels-test" "${objects[@]}" -o "$work/min" --json)
field() { echo "$min" | sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^,\"}]*\)\"\{0,1\}.*/\1/p" | head -1; }
small=$(field output)
[ -f "$small" ] || die "btfgen minimize wrote no output: $min"

catalogs=("test=$work/kernels-test" "other=$work/kernels-other"
          "@test=$work/test-bundle.tar.xz" "@other=$work/other-bundle.tar.xz")
if [ -n "${BTFGEN_DEBIAN_VMLINUX:-}" ]; then
    "$bin" build "$BTFGEN_DEBIAN_VMLINUX" --catalog "$work/kernels-debian" >&2
    catalogs+=("debian=$work/kernels-debian")
fi
"$here/pack-initramfs.sh" "$work/initramfs.cpio.gz" "$bin" "$bpf" "${catalogs[@]}"
echo "INITRAMFS=$work/initramfs.cpio.gz"
echo "TEST_BUILD_ID=$id"
echo "OTHER_BUILD_ID=$other"
echo "MIN_BTF=$small"
echo "MIN_BTF_BYTES=$(field outputBytes)"
echo "MIN_BTF_TYPES=$(field types)"
echo "MIN_BTF_SHA256=$(sha256sum "$small" | cut -c1-64)"
