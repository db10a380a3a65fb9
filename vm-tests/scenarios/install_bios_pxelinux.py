"""The vendor-PXE path: a BIOS machine boots PXELINUX and fetches everything
over kiln's TFTP server (kiln serve --bios-loader pxelinux.0): pxelinux.0,
its per-MAC config, the kernel and the install environment. No iPXE script
is asked for. The machine installs the small image, reboots, PXELINUX's
per-MAC config now says LOCALBOOT, and the installed system's kiln-agent
daemon reports in."""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:0f"


def tftp_sent(log_text, name):
    """kiln's "tftp sent" lines for one file."""
    return [line for line in log_text.splitlines()
            if " tftp sent " in line and re.search(rf"\bfile={re.escape(name)}(\s|$)", line)]


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin, serve_args=["--bios-loader", "pxelinux.0"])
    s.cli("node", "add", "p1", "--mac", MAC, "--boot", "install")

    vm = harness.Vm(h, "p1", MAC, disk_size="1G")
    vm.console.wait_for(r"kiln-init: install environment up", 180)
    vm.console.wait_for(r"kiln-init: kiln-agent install", 90, fail_patterns=[r"no DHCP answer"])
    agent = kiln_site.wait_installed_and_running(s, vm, "p1")
    if agent.get("mode") != "daemon" or agent.get("image") != "small@1" or agent.get("hostname") != "p1":
        raise harness.VmTestError(f"unexpected agent znode {agent}")
    node = s.get("/api/v1/nodes/p1")
    if node["state"] != "installed" or node["boot"] != "localboot":
        raise harness.VmTestError(f"node p1 is {node['state']} / {node['boot']}")

    log_text = s.proc.output()
    config = "pxelinux.cfg/01-" + MAC.replace(":", "-")
    for name in ("pxelinux.0", "ldlinux.c32", "kiln/vmlinuz", "kiln/initrd.img"):
        sent = tftp_sent(log_text, name)
        if not sent:
            raise harness.VmTestError(f"kiln's log has no TFTP transfer of {name}:\n" + harness.tail(log_text))
        harness.log(f"p1: {sent[0]}")
    # The per-MAC config twice: install, then (after the reboot) localboot.
    if len(tftp_sent(log_text, config)) < 2:
        raise harness.VmTestError(f"{config} was not read at both boots:\n" + harness.tail(log_text))
    rendered = [line for line in log_text.splitlines() if "config rendered" in line]
    if not any("via=pxelinux" in line and "target=install" in line for line in rendered) or \
            not any("via=pxelinux" in line and "target=localboot" in line for line in rendered):
        raise harness.VmTestError("PXELINUX did not get both the install and the localboot config:\n"
                                  + "\n".join(rendered))
    if any("via=ipxe" in line for line in rendered):
        raise harness.VmTestError("an iPXE script was rendered on the PXELINUX path:\n" + "\n".join(rendered))
    vm.power_off()
