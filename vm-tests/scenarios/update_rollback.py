"""An installed machine is updated to version 2 of its image and rolled back
to version 1, both verified inside the machine (kiln node run) and in what
its agent reports."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:05"


def run(h, kiln_bin):
    s, image = kiln_site.prepare(h, kiln_bin)
    # Version 2: a changed release file and a new file.
    with open(os.path.join(image, "etc", "kiln-release"), "w") as f:
        f.write("small 2\n")
    with open(os.path.join(image, "etc", "only-in-v2"), "w") as f:
        f.write("v2\n")
    s.cli("image", "capture", "small", "--from-dir", image)
    s.cli("node", "add", "m1", "--mac", MAC, "--boot", "install")
    vm = harness.Vm(h, "m1", MAC, disk_size="1G")
    kiln_site.wait_installed_and_running(s, vm, "m1")

    def inside(command):
        return s.cli("node", "run", "m1", "-c", command).stdout

    out = s.cli("node", "update", "m1", "--to", "small@2").stdout
    harness.log(f"m1: {out.strip()}")
    if "updated small@1 -> small@2" not in out:
        raise harness.VmTestError(f"update said {out!r}")
    got = inside("cat /etc/kiln-release /etc/only-in-v2")
    if "small 2" not in got or "v2" not in got:
        raise harness.VmTestError(f"after the update the machine has {got!r}")
    s.wait_for("the agent to report small@2", lambda: (s.agent_znode("m1") or {}).get("image") == "small@2", 30)

    out = s.cli("node", "rollback", "m1").stdout
    harness.log(f"m1: {out.strip()}")
    got = inside("cat /etc/kiln-release; test -e /etc/only-in-v2 && echo STILL-THERE || echo gone")
    if "small 1" not in got or "gone" not in got:
        raise harness.VmTestError(f"after the rollback the machine has {got!r}")
    s.wait_for("the agent to report small@1", lambda: (s.agent_znode("m1") or {}).get("image") == "small@1", 30)
    vm.power_off()
