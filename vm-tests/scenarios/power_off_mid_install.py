"""A machine loses power in the middle of its install: its node is marked
lost when its agent's heartbeats stop, and its next boot installs it
cleanly."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:06"


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin)
    s.cli("node", "add", "m1", "--mac", MAC, "--boot", "install")
    vm = harness.Vm(h, "m1", MAC, disk_size="1G")
    vm.console.wait_for(r"==> format: making filesystems", 240, fail_patterns=[r"==> FAILED"])
    harness.log("m1: pulling the plug mid-install")
    vm.power_off()
    node = s.wait_for("m1 to be marked lost", lambda: (s.get("/api/v1/nodes/m1") or {}).get("state") == "lost"
                      and s.get("/api/v1/nodes/m1"), 60)
    harness.log(f"m1: {node['state']}: {node.get('message', '')}")
    vm.power_on()
    kiln_site.wait_installed_and_running(s, vm, "m1")
    if s.get("/api/v1/nodes/m1")["state"] != "installed":
        raise harness.VmTestError("m1 is not installed after its second boot")
    vm.power_off()
