#!/usr/bin/env bash
# Everything the QEMU proof boots, in WORKDIR:
#   kernels-test/    catalog: BTF built by `btfgen build $BTFGEN_TEST_VMLINUX` (the BTF-less kernel)
#   kernels-other/   the same entry with another build-id: what a same-release, different build
#                    looks like (distros reuse uname -r); attach must refuse it
#   kernels-min/     kernels-test with its BTF minimized for the objects in bpf/ (`btfgen minimize`
#                    when this btfgen has it, else `bpftool gen min_core_btf`): what ships to a fleet
#   test-bundle.tar.xz, other-bundle.tar.xz   `btfgen bundle` of kernels-test / kernels-other
#   kernels-debian/  catalog: BTF built from Debian's -dbg vmlinux ($BTFGEN_DEBIAN_VMLINUX, optional)
#   initramfs.cpio.gz
# Catalog builds are skipped when the entry exists (btfgen build keeps an entry with the same build-id).
# Usage: prepare.sh WORKDIR    env: BTFGEN_STATIC_BIN (static btfgen), BTFGEN_TEST_VMLINUX,
#                                   [BTFGEN_DEBIAN_VMLINUX], [BPF_DIR (default: bpf/ of this checkout)]
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -eq 1 ] || die "usage: $0 WORKDIR"
work=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${BTFGEN_STATIC_BIN:?set BTFGEN_STATIC_BIN to the binary scripts/build-static.sh prints}
vmlinux=${BTFGEN_TEST_VMLINUX:?set BTFGEN_TEST_VMLINUX (scripts/build-test-kernel.sh prints it)}
bpf=${BPF_DIR:-$repo/bpf}
mkdir -p "$work"

"$bin" build "$vmlinux" --catalog "$work/kernels-test" >&2
id=$("$bin" list --catalog "$work/kernels-test" --json | sed -n 's/.*"buildID" *: *"\([0-9a-f]*\)".*/\1/p' | head -1)
[ -n "$id" ] || die "the test kernel's entry has no build-id"
# Another build of the same release: flip every hex digit of the build-id (never equal to itself).
other=$(echo "$id" | tr '0123456789abcdef' 'fedcba9876543210')
rm -rf "$work/kernels-other" && cp -a "$work/kernels-test" "$work/kernels-other"
sed -i "s/$id/$other/" "$work/kernels-other/index.json"
grep -q "$other" "$work/kernels-other/index.json" || die "could not rewrite the build-id in kernels-other"

# The minimized catalog: same index, each BTF file cut down, sha256/size/typeCount rewritten.
rel=$(sed -n 's/.*"path" *: *"\([^"]*\)".*/\1/p' "$work/kernels-test/index.json" | head -1)
rm -rf "$work/kernels-min" && cp -a "$work/kernels-test" "$work/kernels-min"
full="$work/kernels-test/$rel"; small="$work/kernels-min/$rel"
if "$bin" minimize --help 2>/dev/null | grep -q "USAGE: btfgen minimize"; then
    minimizer="btfgen minimize"
    objects=(); for o in "$bpf"/*.bpf.o; do objects+=(--object "$o"); done
    "$bin" minimize --btf "$full" -o "$work/min-out" "${objects[@]}" >&2
    mv "$work/min-out/$(basename "$full")" "$small" && rm -rf "$work/min-out"
else
    minimizer="bpftool gen min_core_btf"
    bpftool gen min_core_btf "$full" "$small" "$bpf"/*.bpf.o >&2
fi
old_sha=$(sed -n 's/.*"sha256" *: *"\([0-9a-f]*\)".*/\1/p' "$work/kernels-min/index.json" | head -1)
new_sha=$(sha256sum "$small" | cut -c1-64)
size=$(stat -c %s "$small")
types=$(bpftool btf dump file "$small" | grep -c '^\[')
sed -i -e "s/$old_sha/$new_sha/" -e "s/\"size\" *: *[0-9]*/\"size\" : $size/" \
    -e "s/\"typeCount\" *: *[0-9]*/\"typeCount\" : $types/" "$work/kernels-min/index.json"

# A bundle of the test kernel (and the other build): what an image ships instead of a catalog.
bundle_objects=(); for o in "$bpf"/*.bpf.o; do bundle_objects+=(--object "$o"); done
"$bin" bundle --catalog "$work/kernels-test" "${bundle_objects[@]}" -o "$work/test-bundle.tar.xz" --force >&2
"$bin" bundle --catalog "$work/kernels-other" "${bundle_objects[@]}" -o "$work/other-bundle.tar.xz" --force >&2

catalogs=("test=$work/kernels-test" "other=$work/kernels-other" "min=$work/kernels-min"
          "@test=$work/test-bundle.tar.xz" "@other=$work/other-bundle.tar.xz")
if [ -n "${BTFGEN_DEBIAN_VMLINUX:-}" ]; then
    "$bin" build "$BTFGEN_DEBIAN_VMLINUX" --catalog "$work/kernels-debian" >&2
    catalogs+=("debian=$work/kernels-debian")
fi
"$here/pack-initramfs.sh" "$work/initramfs.cpio.gz" "$bin" "$bpf" "${catalogs[@]}"
echo "INITRAMFS=$work/initramfs.cpio.gz"
echo "TEST_BUILD_ID=$id"
echo "OTHER_BUILD_ID=$other"
echo "MIN_BTF_BYTES=$size"
echo "MIN_BTF_TYPES=$types"
echo "MINIMIZER=$minimizer"
