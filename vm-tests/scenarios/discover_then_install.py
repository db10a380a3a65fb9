"""A machine kiln has never heard of boots: kiln records it and boots it to
discover, its agent registers its facts, a class rule classifies it from
them (QEMU's DMI makes it VIRTUAL), and once the operator adds it for
install it installs on its next boot."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:04"


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin)
    vm = harness.Vm(h, "unknown", MAC, disk_size="1G")
    vm.console.wait_for(r"kiln-init: kiln-agent discover", 180, fail_patterns=[r"no DHCP answer"])

    def discovered():
        nodes = json.loads(s.cli("node", "ls", "--json").stdout)["nodes"]
        for n in nodes:
            if MAC in n.get("macs", []) and n.get("facts", {}).get("schema") == 1:
                return n
        return None

    node = s.wait_for("the machine to register its facts", discovered, 120)
    harness.log(f"discovered {node['id']} ({node['state']}): {node['facts']['dmi'].get('sys_vendor')} "
                f"{node['facts']['dmi'].get('product_name')}, {node['facts']['cpu'].get('threads')} CPU(s)")
    s.cli("node", "add", "m1", "--mac", MAC, "--boot", "install")  # adopts it, facts and all
    plan = json.loads(s.cli("plan", "m1", "--json").stdout)
    if "VIRTUAL" not in plan["classes"]:
        raise harness.VmTestError(f"m1's classes are {plan['classes']}: the DMI facts did not classify it")
    # It reboots after discovery and now installs.
    kiln_site.wait_installed_and_running(s, vm, "m1")
    vm.power_off()
