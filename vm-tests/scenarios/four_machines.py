"""Four machines install at once from one kiln server."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin)
    vms = []
    t0 = time.time()
    for n in range(4):
        name, mac = f"m{n + 1}", f"52:54:00:6b:01:{n + 1:02x}"
        s.cli("node", "add", name, "--mac", mac, "--boot", "install")
        vms.append((name, harness.Vm(h, name, mac, disk_size="1G", memory=768)))
    for name, vm in vms:
        kiln_site.wait_installed_and_running(s, vm, name)
    harness.log(f"four machines installed and running in {time.time() - t0:.0f} s")
    for name, vm in vms:
        if s.get(f"/api/v1/nodes/{name}")["state"] != "installed":
            raise harness.VmTestError(f"{name} is not installed")
        vm.power_off()
