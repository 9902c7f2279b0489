#!/usr/bin/env bash
# The main job on a default input: fetch Debian 12's real debuginfo kernel package
# (linux-image-6.1.0-*-cloud-amd64-dbg, cached), build its BTF into the catalog (kernels/ unless
# BTFGEN_CATALOG says otherwise) straight from the .deb, and show what was stored.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
cd "$root"
export PATH="/opt/swift/usr/bin:$PATH"

bash "$here/setup.sh"
swift build -c release --product btfgen >&2
btfgen="$root/.build/release/btfgen"
deb=$(bash "$here/fetch-debian-dbg.sh" "${1:-cloud-amd64}" | sed -n 's/^DEB=//p')
log "btfgen build $(basename "$deb")"
"$btfgen" build "$deb"
"$btfgen" list
