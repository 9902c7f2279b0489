#!/usr/bin/env bash
# Boot an arm64 KERNEL (Image, or Debian's gzip-compressed vmlinuz) with INITRD under
# qemu-system-aarch64 -M virt (TCG: KVM does not work here, and the host is x86_64) and copy the
# serial console (PL011, ttyAMA0) to stdout. Cortex-A57 rather than `-cpu max`: TCG emulates
# max's pointer authentication in software and boots markedly slower, and nothing here needs it.
# The run is bounded by TIMEOUT seconds (default 300); when the guest prints its verdict line the
# host adds
#   BTFGEN-HOST: verdict-seconds=S     (QEMU start → verdict)
# Exit status: QEMU's (0 after the guest's `reboot -f` with -no-reboot), 124 on timeout.
# Usage: boot-arm64.sh KERNEL INITRD [KERNEL-PARAM...]   env: TIMEOUT, QEMU_MEM (default 512), QEMU_CPU
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
[ $# -ge 2 ] || die "usage: $0 KERNEL INITRD [KERNEL-PARAM...]"
kernel=$1; initrd=$2; shift 2
[ -f "$kernel" ] || die "no kernel at $kernel"
[ -f "$initrd" ] || die "no initramfs at $initrd"
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not found; apt-get install qemu-system-arm"
start=$(date +%s.%N)
set +e
timeout --kill-after=10 "${TIMEOUT:-300}" qemu-system-aarch64 -M virt -accel tcg -cpu "${QEMU_CPU:-cortex-a57}" \
    -smp 1 -m "${QEMU_MEM:-512}" -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyAMA0 panic=-1 quiet $*" \
    -display none -serial stdio -monitor none -no-reboot < /dev/null 2>&1 | tr -d '\r' | {
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case $line in
        "BTFGEN: verdict"*) echo "BTFGEN-HOST: verdict-seconds=$(echo "$(date +%s.%N) - $start" | bc)" ;;
        esac
    done
}
status=${PIPESTATUS[0]}
[ "$status" -eq 124 ] && echo "BTFGEN-HOST: timeout after ${TIMEOUT:-300} s: the guest never finished" >&2
exit "$status"
