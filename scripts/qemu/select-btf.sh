#!/usr/bin/env bash
# Host-side BTF selection for a guest that cannot run btfgen (the arm64 guest): btfgen on this
# host picks the BTF for the guest's kernel with its own selection code, from the identity the
# guest printed (init-arm64.sh, case identify: `BTFGEN: notes=<hex of /sys/kernel/notes>`), and
# writes it with --extract for the guest's loader (libbpf btf_custom_path).
# The guest's /sys/kernel/notes is rebuilt from the hex and bind-mounted over this host's
# /sys/kernel/notes in a private mount namespace (unshare -m; needs root), so btfgen reads the
# guest's build-id exactly where it reads a running kernel's. uname(2) stays the host's.
# Usage: select-btf.sh BTFGEN CONSOLE-LOG OUT.btf RESOLVE-ARG...
#   e.g. select-btf.sh ./btfgen boot1.log ours.btf --catalog kernels-test --kernel auto --force-catalog
# Prints the command it ran and btfgen's output; exits with btfgen's status.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -ge 3 ] || die "usage: $0 BTFGEN CONSOLE-LOG OUT.btf RESOLVE-ARG..."
bin=$1; log=$2; out=$3; shift 3
hex=$(sed -n 's/^BTFGEN: notes=\([0-9a-f]*\)$/\1/p' "$log" | tail -1)
[ -n "$hex" ] || die "$log has no 'BTFGEN: notes=' line; boot the guest with btfgen_case=identify first"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/btfgen-select.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf "$(echo "$hex" | sed 's/../\\x&/g')" > "$tmp/notes"
[ "$(od -An -v -tx1 "$tmp/notes" | tr -d ' \n')" = "$hex" ] || die "could not rebuild the notes from $log"
echo "+ btfgen resolve $* --extract $out   (guest's /sys/kernel/notes bind-mounted)"
set +e
unshare -m --propagation private sh -c 'mount --bind "$1" /sys/kernel/notes && shift && exec "$@"' \
    sh "$tmp/notes" "$bin" resolve "$@" --extract "$out" 2>&1
