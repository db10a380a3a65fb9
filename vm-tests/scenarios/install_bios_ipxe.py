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
    version, tree = harness.kernel_tree()
    initrd, image = kiln_site.build_small_image(h, kiln_bin, version, tree)
    space = os.path.join(h.work, "space")
    kiln_site.write_space(space)
    s = kiln_site.Site(h, kiln_bin, initrd, version, tree, space)
    s.cli("image", "capture", "small", "--from-dir", image)
    s.cli("node", "add", "m1", "--mac", MAC, "--boot", "install")

    vm = harness.Vm(h, "m1", MAC, disk_size="1G")
    vm.console.wait_for(r"kiln-init: install environment up", 120)
    vm.console.wait_for(r"kiln-init: kiln-agent install", 90, fail_patterns=[r"no DHCP answer"])
    vm.console.wait_for(r"==> done: installed small@1", 300, fail_patterns=[r"==> FAILED"])
    harness.log("m1: installed; rebooting from its disk")
    vm.console.wait_for(r"kiln-init: booting the installed system", 120,
                        fail_patterns=[r"root device .* not found", r"cannot mount"])
    vm.console.wait_for(r"kiln-system: small 1 up", 60)
    agent = s.wait_for("the installed system's agent", lambda: s.agent_znode("m1"), 120)
    harness.log(f"m1: agent reports {agent}")
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
