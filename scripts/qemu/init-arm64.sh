#!/bin/busybox sh
# /init of the arm64 proof initramfs (pack-initramfs-arm64.sh). btfgen itself does not run here
# (no Swift toolchain for aarch64 Linux on the build host): the host selects the BTF, this guest
# only reports who it is and runs a plain libbpf loader with the file it is given. The case comes
# from the kernel command line:
#   btfgen_case=identify  print the kernel's identity: release, machine, /sys/kernel/notes as hex
#   btfgen_case=trace     plain_loader --btf /btf/<btfgen_btf> attaches the raw_tp programs, the
#                         actor renames itself and unlinks a file, the events are printed
# Every line meant for the host starts with "BTFGEN: "; the last is "BTFGEN: verdict …". The guest
# then ends with `reboot -f` (PSCI reset; QEMU runs with -no-reboot, so it exits).
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
say() { echo "BTFGEN: $*"; }
finish() { say "verdict $*"; sync; reboot -f; sleep 30; }
case=$(arg btfgen_case)
say "case=$case release=$(uname -r) machine=$(uname -m)"
if [ -e /sys/kernel/btf/vmlinux ]; then say "native_btf=yes"; else say "native_btf=no"; fi

if [ "$case" = identify ]; then
    say "notes=$(hexdump -v -e '1/1 "%02x"' /sys/kernel/notes)"
    finish "identify-done"
fi

btf=/btf/$(arg btfgen_btf)
[ -f "$btf" ] || { say "no BTF file $btf"; finish "trace-done"; }
say "btf=$btf bytes=$(wc -c < "$btf")"
plain_loader --btf "$btf" /usr/share/btfgen/bpf/*.bpf.o > /tmp/events 2> /tmp/err &
pid=$!
i=0
while ! grep -q "attached" /tmp/err; do
    if ! kill -0 $pid 2>/dev/null || [ $i -ge 600 ]; then
        sed 's/^/BTFGEN: attach-stderr: /' /tmp/err
        say "attach-failed"
        finish "trace-done"
    fi
    sleep 0.2
    i=$((i + 1))
done
/usr/bin/actor btfgen-probe /tmp/unlink-me > /tmp/actor 2>&1
say "$(cat /tmp/actor)"
sleep 2
kill -TERM $pid
wait $pid
status=$?
sed 's/^/BTFGEN: attach-stderr: /' /tmp/err
sed 's/^/BTFGEN: event /' /tmp/events
say "attach-exit=$status"
finish "trace-done"
