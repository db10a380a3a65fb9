#include "agent/initrd/init_script.h"

namespace kiln::initrd {

std::string InitScript() {
  return R"INIT(#!/bin/sh
# kiln install environment. Written by `kiln initrd build`.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /mnt /var/log /var/lib/kiln
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp

say() { echo "kiln-init: $*" > /dev/console; }
say "install environment up (kernel $(uname -r))"

# Drivers for the devices this machine has, filesystems and their helpers,
# dependencies first; if the agent cannot tell, every module carried.
if command -v kiln-agent > /dev/null && loaded="$(kiln-agent load-modules 2>/dev/console)"; then
    say "$loaded"
else
    kver="$(uname -r)"
    while read -r mod; do
        [ -n "$mod" ] && insmod "/lib/modules/$kver/$mod" 2>/dev/null
    done < /etc/kiln/modules
    say "loaded $(wc -l < /etc/kiln/modules) modules"
fi

server=""; token=""; mode=""; node=""; debug=""; bootif=""; root=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        root=*) root="${arg#root=}" ;;
        kiln.server=*) server="${arg#kiln.server=}" ;;
        kiln.token=*) token="${arg#kiln.token=}" ;;
        kiln.mode=*) mode="${arg#kiln.mode=}" ;;
        kiln.node=*) node="${arg#kiln.node=}" ;;
        kiln.debug=*) debug="${arg#kiln.debug=}" ;;
        BOOTIF=*) bootif="${arg#BOOTIF=}" ;;
    esac
done

rescue() {
    say "starting a shell on the console; 'reboot -f' restarts the machine"
    setsid sh -c 'exec sh </dev/console >/dev/console 2>&1'
    reboot -f
}

# Booted from an installed disk (the boot loader passes root=, no kiln.mode):
# this initrd only finds the root filesystem and hands over to its init.
if [ -z "$mode" ] && [ -n "$root" ]; then
    dev=""
    for i in $(seq 1 100); do
        case "$root" in
            UUID=*|LABEL=*) dev="$(findfs "$root" 2>/dev/null)" ;;
            *) [ -b "$root" ] && dev="$root" ;;
        esac
        [ -n "$dev" ] && break
        sleep 0.1
    done
    if [ -z "$dev" ]; then
        say "root device $root not found"
        rescue
    fi
    mkdir -p /newroot
    if ! mount -o ro "$dev" /newroot; then
        say "cannot mount $dev ($root)"
        rescue
    fi
    say "booting the installed system on $dev"
    for fs in dev proc sys run tmp; do
        if [ -d "/newroot/$fs" ]; then mount --move "/$fs" "/newroot/$fs"; else umount -l "/$fs"; fi
    done
    exec switch_root /newroot /sbin/init
fi
[ -z "$mode" ] && mode=install

# The boot interface first (BOOTIF=01-aa-bb-cc-dd-ee-ff), then the others.
want=""
if [ -n "$bootif" ]; then
    want="$(echo "${bootif#01-}" | tr '-' ':' | tr 'A-F' 'a-f')"
fi
ip link set lo up
ifaces=""
for dev in /sys/class/net/*; do
    name="${dev##*/}"
    [ "$name" = lo ] && continue
    mac="$(cat "$dev/address" 2>/dev/null)"
    if [ -n "$want" ] && [ "$mac" = "$want" ]; then
        ifaces="$name $ifaces"
    else
        ifaces="$ifaces $name"
    fi
done
up=""
for tries in 1 2 3; do
    for name in $ifaces; do
        ip link set "$name" up
        if udhcpc -i "$name" -n -q -t 4 -T 2 -s /etc/kiln/udhcpc.sh >/dev/null 2>&1; then
            up="$name"; break 2
        fi
    done
done
if [ -z "$up" ]; then
    say "no DHCP answer on any interface ($ifaces)"
else
    say "network up on $up: $(ip -4 -o addr show dev "$up" | awk '{print $4}')"
fi

case "$mode" in
    rescue) rescue ;;
    install|discover)
        if [ -z "$server" ]; then
            say "no kiln.server= on the kernel command line"
            rescue
        fi
        set -- "$mode" --server "$server"
        [ -n "$token" ] && set -- "$@" --token "$token"
        [ -n "$node" ] && set -- "$@" --node "$node"
        [ -n "$up" ] && set -- "$@" --interface "$up"
        say "kiln-agent $mode --server $server"
        kiln-agent "$@" > /dev/console 2>&1
        rc=$?
        say "kiln-agent exited with $rc"
        if [ "$rc" -ne 0 ] && [ -n "$debug" ]; then rescue; fi
        if [ "$rc" -ne 0 ]; then
            say "install failed; the server has the log. Rebooting in 30 s (kiln.debug=1 for a shell)"
            sleep 30
        fi
        reboot -f
        ;;
    *) say "unknown kiln.mode=$mode"; rescue ;;
esac
)INIT";
}

std::string UdhcpcScript() {
  return R"UDHCPC(#!/bin/sh
# udhcpc hook: configure the interface from the lease.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip -4 addr add "$ip/${mask:-24}" dev "$interface"
        if [ -n "$router" ]; then
            for r in $router; do ip -4 route add default via "$r" dev "$interface"; break; done
        fi
        : > /etc/resolv.conf
        [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
        [ -n "$siaddr" ] && echo "$siaddr" > /run/kiln-next-server
        ;;
esac
exit 0
)UDHCPC";
}

}  // namespace kiln::initrd
