#!/bin/busybox sh
# /init of the btfgen proof initramfs. The case comes from the kernel command line:
#   btfgen_case=trace   attach (auto) with catalog btfgen_catalog, run the actor, print its events
#   btfgen_case=refuse  attach (auto) with catalog btfgen_catalog, which must refuse: print why
#   btfgen_case=install `btfgen install` from catalog btfgen_catalog, then a plain libbpf loader
#                       (no btf_custom_path) traces the actor; then `btfgen uninstall`
#   btfgen_flags=a,b    extra attach flags, comma-separated (e.g. --force-catalog)
#   btfgen_bundle=NAME  install /bundles/NAME.tar.xz at the default bundle path first
# Every line meant for the host starts with "BTFGEN: "; the last is "BTFGEN: verdict …". The guest
# then ends with `reboot -f` (a tinyconfig kernel has no ACPI, so poweroff would only halt).
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
case=$(arg btfgen_case)
catalog=/kernels/$(arg btfgen_catalog)
flags=$(arg btfgen_flags | tr ',' ' ')
# What the proof is about: the default selection, spelled out, unless the case names a kernel.
case " $flags " in *" --kernel "*) ;; *) flags="--kernel auto $flags" ;; esac
say() { echo "BTFGEN: $*"; }
finish() { say "verdict $*"; sync; reboot -f; sleep 30; }

bundle=$(arg btfgen_bundle)
[ -n "$bundle" ] && cp "/bundles/$bundle.tar.xz" /usr/share/btfgen/bundle.tar.xz
say "case=$case release=$(uname -r) catalog=$catalog flags=$flags bundle=$bundle"
if [ -e /sys/kernel/btf/vmlinux ]; then say "native_btf=yes"; else say "native_btf=no"; fi
btfgen resolve --catalog "$catalog" $flags 2>&1 | sed 's/^/BTFGEN: resolve: /'

if [ "$case" = refuse ]; then
    btfgen attach --catalog "$catalog" $flags --count 0 > /tmp/out 2> /tmp/err
    status=$?
    sed 's/^/BTFGEN: attach-stderr: /' /tmp/err
    say "attach-exit=$status"
    finish "refuse-done"
fi

if [ "$case" = install ]; then
    btfgen install --catalog "$catalog" $flags > /tmp/out 2> /tmp/err
    say "install-exit=$?"
    sed 's/^/BTFGEN: install: /' /tmp/out /tmp/err
    ls /boot 2>/dev/null | sed 's/^/BTFGEN: boot-file: /'
    loader="plain_loader /usr/share/btfgen/bpf/task_rename.bpf.o /usr/share/btfgen/bpf/unlinkat.bpf.o"
else
    loader="btfgen attach --catalog $catalog $flags --json"
fi
$loader > /tmp/events 2> /tmp/err &
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
if [ "$case" = install ]; then
    btfgen uninstall 2>&1 | sed 's/^/BTFGEN: uninstall: /'
    ls /boot 2>/dev/null | sed 's/^/BTFGEN: boot-file-after: /'
fi
finish "trace-done"
