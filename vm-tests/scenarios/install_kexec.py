"""REBOOT = "kexec": a BIOS machine installs the small image and starts the
installed kernel straight from the install environment by kexec, without a
firmware reset, a second PXE round or the boot loader; the installed system
reports in all the same, and the boot loader was installed for later boots
(a power cycle then boots from the disk through EXTLINUX)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:0b"


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin, reboot="kexec")
    s.cli("node", "add", "m1", "--mac", MAC, "--boot", "install")

    vm = harness.Vm(h, "m1", MAC, disk_size="1G")
    vm.console.wait_for(r"for kexec: the installed system starts without a firmware reboot", 300,
                        fail_patterns=[r"==> FAILED", r"reboots through its firmware instead"])
    vm.console.wait_for(r"kiln-agent: starting the installed system by kexec", 120,
                        fail_patterns=[r"rebooting through the firmware"])
    vm.console.wait_for(r"kexec_core: Starting new kernel", 60)
    vm.console.wait_for(r"kiln-init: booting the installed system", 120,
                        fail_patterns=[r"root device .* not found", r"cannot mount"])
    vm.console.wait_for(r"kiln-system: small 1 up", 60)
    agent = s.wait_for("m1's agent", lambda: s.agent_znode("m1"), 120)
    if agent.get("image") != "small@1":
        raise harness.VmTestError(f"unexpected agent znode {agent}")
    # No reset between the install and the installed system: the kernel
    # says "Restarting system" when it hands back to the firmware.
    if "reboot: Restarting system" in vm.console.text():
        raise harness.VmTestError("the machine reset through its firmware instead of kexec")
    # A power cycle boots the disk through the boot loader that was installed.
    vm.power_off()
    vm.power_on()
    vm.console.wait_for(r"kiln-init: booting the installed system", 180)
    vm.console.wait_for(r"kiln-system: small 1 up", 60)
    vm.power_off()
