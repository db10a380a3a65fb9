"""A BIOS machine with an empty disk boots from kiln over iPXE (DHCP from
kiln's dnsmasq, the iPXE script over HTTP), installs the small image, reboots
into it from its disk (EXTLINUX), and the installed system's kiln-agent
daemon reports in with the image version it runs."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = True
MAC = "52:54:00:6b:00:02"


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin)
    s.cli("node", "add", "m1", "--mac", MAC, "--boot", "install")

    vm = harness.Vm(h, "m1", MAC, disk_size="1G")
    vm.console.wait_for(r"kiln-init: install environment up", 120)
    vm.console.wait_for(r"kiln-init: kiln-agent install", 90, fail_patterns=[r"no DHCP answer"])
    agent = kiln_site.wait_installed_and_running(s, vm, "m1")
    if agent.get("mode") != "daemon" or agent.get("image") != "small@1" or agent.get("hostname") != "m1":
        raise harness.VmTestError(f"unexpected agent znode {agent}")
    node = s.get("/api/v1/nodes/m1")
    if node["state"] != "installed" or node["boot"] != "localboot":
        raise harness.VmTestError(f"node m1 is {node['state']} / {node['boot']}")
    phases = [e["phase"] for e in s.events("m1") if e["kind"] == "phase"]
    want = ["plan", "partition", "format", "mount", "image", "files", "scripts", "bootloader", "finish"]
    if phases != want:
        raise harness.VmTestError(f"phases {phases}, want {want}")
    vm.power_off()
