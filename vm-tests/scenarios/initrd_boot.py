"""The install environment boots under QEMU, loads its modules and gets an
address by DHCP on a private boot network (kiln.mode=rescue: no server)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

QUICK = True


def run(h, kiln_bin):
    version, tree = harness.kernel_tree()
    initrd = os.path.join(h.work, "initrd.kiln")
    harness.run([os.path.join(kiln_bin, "server", "kiln"), "initrd", "build", "--quiet",
                 "--modules", tree, "--out", initrd,
                 "--agent", os.path.join(kiln_bin, "agent", "kiln-agent")])
    harness.dnsmasq_plain(h)
    vm = harness.Vm(h, "m1", "52:54:00:6b:00:01",
                    kernel=os.path.join(tree, "boot", "vmlinuz-" + version), initrd=initrd,
                    append="console=ttyS0 kiln.mode=rescue")
    vm.console.wait_for(r"kiln-init: install environment up", 90)
    vm.console.wait_for(r"kiln-init: loaded \d+ (of \d+ )?modules", 60)
    m = vm.console.wait_for(r"kiln-init: network up on (\w+): (10\.213\.0\.\d+)/24", 60,
                            fail_patterns=[r"no DHCP answer"])
    harness.log(f"m1: {m.group(1)} got {m.group(2)}")
    vm.console.wait_for(r"starting a shell on the console", 30)
    vm.power_off()
