#!/usr/bin/env bash
# Boot KERNEL with INITRD under QEMU (TCG: KVM does not work here) and copy the serial console to
# stdout. Extra kernel parameters pick the guest's case (see init.sh). The run is bounded by
# TIMEOUT seconds (default 600); when the guest prints its verdict line the host adds
#   BTFGEN-HOST: verdict-seconds=S     (QEMU start → verdict)
# Exit status: QEMU's (0 after the guest's `reboot -f` with -no-reboot), 124 on timeout.
# Usage: boot.sh KERNEL INITRD [KERNEL-PARAM...]   env: TIMEOUT, QEMU_MEM (default 1024)
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -ge 2 ] || die "usage: $0 KERNEL INITRD [KERNEL-PARAM...]"
kernel=$1; initrd=$2; shift 2
[ -f "$kernel" ] || die "no kernel at $kernel"
[ -f "$initrd" ] || die "no initramfs at $initrd"
start=$(date +%s.%N)
set +e
timeout --kill-after=10 "${TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m "${QEMU_MEM:-1024}" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet $*" \
    -display none -serial stdio -monitor none -no-reboot < /dev/null 2>&1 | tr -d '\r' | {
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case $line in
        "BTFGEN: verdict"*) echo "BTFGEN-HOST: verdict-seconds=$(echo "$(date +%s.%N) - $start" | bc)" ;;
        esac
    done
}
status=${PIPESTATUS[0]}
exit "$status"
