"""A UEFI machine (q35 + OVMF, Secure Boot off) with an empty disk boots from
kiln with the firmware's own PXE client (QEMU's iPXE option ROM is disabled,
so it behaves like real firmware): DHCP from kiln's dnsmasq, ipxe.efi over
kiln's TFTP server, the iPXE script over HTTP. The agent installs onto GPT
with an EFI system partition and puts GRUB at the ESP's removable-media path
(no NVRAM entry); the machine reboots, kiln answers localboot, the firmware
boots GRUB from the disk, and the installed system's kiln-agent daemon
reports in with its image. kiln's log must show the TFTP options the
firmware negotiated."""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import kiln_site  # noqa: E402

QUICK = False
MAC = "52:54:00:6b:00:0e"


def run(h, kiln_bin):
    s, _ = kiln_site.prepare(h, kiln_bin)
    s.cli("node", "add", "u1", "--mac", MAC, "--boot", "install")

    vm = harness.Vm(h, "u1", MAC, disk_size="1G", firmware="uefi", nic_rom=False)
    harness.log(f"u1: OVMF with its own PXE client, accelerator {harness.accelerator()}")
    vm.console.wait_for(r"kiln-init: install environment up", 240)
    vm.console.wait_for(r"kiln-init: kiln-agent install", 90, fail_patterns=[r"no DHCP answer"])
    agent = kiln_site.wait_installed_and_running(s, vm, "u1")
    if agent.get("mode") != "daemon" or agent.get("image") != "small@1" or agent.get("hostname") != "u1":
        raise harness.VmTestError(f"unexpected agent znode {agent}")
    node = s.get("/api/v1/nodes/u1")
    if node["state"] != "installed" or node["boot"] != "localboot":
        raise harness.VmTestError(f"node u1 is {node['state']} / {node['boot']}")
    events = s.events("u1")
    phases = [e["phase"] for e in events if e["kind"] == "phase"]
    want = ["plan", "partition", "format", "mount", "image", "files", "scripts", "bootloader", "finish"]
    if phases != want:
        raise harness.VmTestError(f"phases {phases}, want {want}")
    said = " | ".join(e.get("message", "") for e in events if e.get("phase") == "bootloader")
    if "installing GRUB for UEFI" not in said:
        raise harness.VmTestError(f"the bootloader phase said {said!r}, not GRUB for UEFI")

    # The firmware's TFTP fetch of ipxe.efi, with the options it negotiated.
    log_text = s.proc.output()
    sent = [line for line in log_text.splitlines()
            if re.search(r" tftp sent ", line) and "ipxe.efi" in line]
    if not sent:
        raise harness.VmTestError("kiln's log has no completed TFTP transfer of ipxe.efi:\n"
                                  + harness.tail(log_text))
    harness.log(f"u1: firmware TFTP: {sent[0]}")
    blksize = re.search(r"\bblksize=(\d+)", sent[0])
    if not blksize or int(blksize.group(1)) <= 512 or "requested=" not in sent[0]:
        raise harness.VmTestError(f"the firmware negotiated no TFTP block size: {sent[0]}")
    if "windowsize" not in sent[0].split("requested=", 1)[1]:
        raise harness.VmTestError(f"EDK2 asked for no windowsize: {sent[0]}")
    vm.power_off()
