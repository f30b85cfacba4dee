#!/bin/busybox sh
# /init of the crash_hotplug test guests (first kernel and capture kernel alike).
# It mounts the pseudo file systems, says which kernel it is, and hands the console to a shell that
# the host harness drives (commands framed by printf markers, see tests/harness/src/qemu.rs).
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
if [ -e /proc/vmcore ]; then role=capture; else role=first; fi
stty -F /dev/console -echo 2>/dev/null
# Only emergency messages on the console from here on, so command output stays clean;
# everything is still in dmesg (and the panic messages still reach the console).
dmesg -n 1
echo "@@READY $role $(cut -d' ' -f1 /proc/uptime)"
export PS1= PS2=
exec sh
