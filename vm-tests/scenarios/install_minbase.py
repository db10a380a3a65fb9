"""A BIOS machine installs a Debian 12 minbase golden image (debootstrap,
cached between runs, made bootable with the small image's kernel, initrd,
init and kiln-agent): the full-size install of the --full run. The installed
system reports in with minbase@1, and a command run inside it through its
agent shows Debian's own files and packages."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:10"


def run(h, kiln_bin):
    s, tree = kiln_site.prepare(h, kiln_bin, image_release="minbase 1", image="minbase")
    with open(os.path.join(tree, "etc", "debian_version")) as f:
        debian_version = f.read().strip()
    s.cli("node", "add", "d1", "--mac", MAC, "--boot", "install")

    vm = harness.Vm(h, "d1", MAC, disk_size="2G")
    vm.console.wait_for(r"kiln-init: install environment up", 120)
    vm.console.wait_for(r"kiln-init: kiln-agent install", 90, fail_patterns=[r"no DHCP answer"])
    agent = kiln_site.wait_installed_and_running(s, vm, "d1", image="minbase@1", release="minbase 1")
    if agent.get("mode") != "daemon" or agent.get("image") != "minbase@1" or agent.get("hostname") != "d1":
        raise harness.VmTestError(f"unexpected agent znode {agent}")
    node = s.get("/api/v1/nodes/d1")
    if node["state"] != "installed" or node["boot"] != "localboot":
        raise harness.VmTestError(f"node d1 is {node['state']} / {node['boot']}")

    got = s.cli("node", "run", "d1", "-c",
                "cat /etc/debian_version; dpkg-query -W -f '${Package}\\n' dpkg apt; cat /etc/kiln-mark").stdout
    harness.log(f"d1: inside: {got.strip()!r}")
    for want in (debian_version, "dpkg", "apt", "installed by kiln as d1"):
        if want not in got:
            raise harness.VmTestError(f"inside the machine {want!r} is missing: {got!r}")
    vm.power_off()
