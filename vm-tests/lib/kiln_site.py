"""A kiln site inside the harness's boot network: the install environment
built with `kiln initrd build`, a small golden image made from it (busybox,
the kernel and its modules, kiln-agent, and an init that reports in), a
config space, and `kiln serve` with its supervised dnsmasq answering DHCP on
the private bridge. Shared by the scenarios and scripts/demo."""

import json
import os
import shutil
import subprocess
import time

import harness

PORT = 8080
URL = f"http://{harness.SERVER_IP}:{PORT}"

# The installed small system's PID 1 (its initrd loaded the disk and NIC
# drivers): the kernel filesystems, DHCP, then the agent daemon for as long as the machine runs.
SYSTEM_INIT = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -o remount,rw / 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run 2>/dev/null
mount -t tmpfs tmpfs /tmp 2>/dev/null
say() { echo "kiln-system: $*" > /dev/console; }
[ -s /etc/hostname ] && hostname -F /etc/hostname
say "$(cat /etc/kiln-release) up on $(uname -r) as $(hostname)"
ip link set lo up
for dev in /sys/class/net/*; do
    name="${dev##*/}"
    [ "$name" = lo ] && continue
    ip link set "$name" up
    if udhcpc -i "$name" -n -q -t 5 -T 2 -s /etc/kiln/udhcpc.sh >/dev/null 2>&1; then
        say "network up on $name: $(ip -4 -o addr show dev "$name" | awk '{print $4}')"
        break
    fi
done
while true; do
    kiln-agent daemon > /dev/console 2>&1
    sleep 5
done
"""


def make_system(img, release):
    """Makes an image tree boot as a kiln test system: SYSTEM_INIT as PID 1
    and the release it reports."""
    init = os.path.join(img, "sbin", "init")
    if os.path.lexists(init):
        os.remove(init)
    with open(init, "w") as f:
        f.write(SYSTEM_INIT)
    os.chmod(init, 0o755)
    with open(os.path.join(img, "etc", "kiln-release"), "w") as f:
        f.write(release + "\n")


def build_small_image(h, kiln_bin, version, tree, release="small 1"):
    """The install environment and a small golden image made from it:
    returns (initrd path, image tree)."""
    kiln = os.path.join(kiln_bin, "server", "kiln")
    initrd = os.path.join(h.work, "initrd.kiln")
    harness.run([kiln, "initrd", "build", "--quiet", "--modules", tree, "--out", initrd,
                 "--agent", os.path.join(kiln_bin, "agent", "kiln-agent")])
    img = os.path.join(h.work, "small")
    os.makedirs(img)
    subprocess.run(f"zstd -dc '{initrd}' | cpio -idm --quiet", shell=True, cwd=img, check=True)
    os.remove(os.path.join(img, "init"))
    make_system(img, release)
    os.makedirs(os.path.join(img, "boot"), exist_ok=True)
    shutil.copy(os.path.join(tree, "boot", "vmlinuz-" + version), os.path.join(img, "boot", "vmlinuz-" + version))
    write_boot_initrd(img, initrd, version, os.path.join(img, "boot", "initrd.img-" + version))
    return initrd, img


# What the installed system's initrd loads: the test machines' disk and NIC
# (virtio), and ext4.
BOOT_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "crc32c_intel", "crc32c_generic", "ext4")


def write_boot_initrd(img, initrd, version, out):
    """The small image's own initrd, as a distribution's would be: only what
    finds and mounts the root filesystem (busybox, the install
    environment's /init, which hands over to the root's init when booted
    with root=, and BOOT_MODULES), 2 MB instead of the install
    environment's 18: under TCG the installed system's boot unpacked those
    18 MB in 4-5 s (memory that held translated code is slow to rewrite). Taken from the image tree, which is the
    unpacked install environment."""
    kdir = os.path.join("lib", "modules", version)
    deps = {}
    with open(os.path.join(img, kdir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path.strip()] = rest.split()
    by_name = {os.path.basename(p).split(".ko")[0].replace("-", "_"): p for p in deps}
    order = []

    def visit(path):
        if path in order:
            return
        for d in reversed(deps.get(path, [])):
            visit(d)
        order.append(path)
    for name in BOOT_MODULES:
        if name in by_name and os.path.exists(os.path.join(img, kdir, by_name[name])):
            visit(by_name[name])
    stage = img + ".boot-initrd"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    subprocess.run(f"zstd -dc '{initrd}' | cpio -idm --quiet init", shell=True, cwd=stage, check=True)
    for rel in ["bin", "sbin", "usr/bin", "usr/sbin", "linuxrc"]:
        src = os.path.join(img, rel)
        if os.path.isdir(src) and not os.path.islink(src):
            # busybox and its applet links only
            os.makedirs(os.path.join(stage, rel), exist_ok=True)
            for n in os.listdir(src):
                p = os.path.join(src, n)
                if os.path.islink(p) and os.readlink(p).endswith("busybox"):
                    os.symlink(os.readlink(p), os.path.join(stage, rel, n))
        elif os.path.lexists(src):
            os.makedirs(os.path.dirname(os.path.join(stage, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(stage, rel), follow_symlinks=False)
    shutil.copy2(os.path.join(img, "bin", "busybox"), os.path.join(stage, "bin", "busybox"))
    os.makedirs(os.path.join(stage, "etc", "kiln"))
    with open(os.path.join(stage, "etc", "kiln", "modules"), "w") as f:
        f.write("".join(p + "\n" for p in order))
    for p in order + ["modules.dep"]:
        os.makedirs(os.path.dirname(os.path.join(stage, kdir, p)), exist_ok=True)
        shutil.copy2(os.path.join(img, kdir, p), os.path.join(stage, kdir, p))
    for d in ["dev", "proc", "sys", "run", "tmp", "mnt", "newroot"]:
        os.makedirs(os.path.join(stage, d), exist_ok=True)
    subprocess.run(f"find . | cpio -o -H newc --quiet | zstd -q -19 -T0 > '{out}'", shell=True,
                   cwd=stage, check=True)
    shutil.rmtree(stage)


def overlay_missing(src, root):
    """Copies every entry of src into root that root does not have yet,
    through root's own directory symlinks (Debian's merged /usr: bin ->
    usr/bin); never replaces what root holds."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        dest_dir = os.path.realpath(os.path.join(root, rel))
        if not dest_dir.startswith(os.path.realpath(root)):
            raise harness.VmTestError(f"{rel} leaves the image root")
        for name in dirnames + filenames:
            s_path, d_path = os.path.join(dirpath, name), os.path.join(dest_dir, name)
            if os.path.lexists(d_path):
                continue
            if os.path.islink(s_path):
                os.symlink(os.readlink(s_path), d_path)
            elif os.path.isdir(s_path):
                os.makedirs(d_path)
                shutil.copystat(s_path, d_path)
            else:
                shutil.copy2(s_path, d_path)


def build_minbase_image(h, small, release="minbase 1"):
    """A Debian 12 minbase golden image (scripts/minbase, debootstrap, cached
    between runs) that boots the way the small one does: its kernel,
    install-environment initrd, NIC modules, kiln-agent with its libraries
    and the busybox applets minbase lacks are added from the small image,
    never over a file of Debian's; /sbin/init is the small system's."""
    cached = harness.run([os.path.join(harness.ROOT, "scripts", "minbase")]).stdout.strip()
    img = os.path.join(h.work, "minbase")
    harness.run(["cp", "-a", cached, img])
    overlay_missing(small, img)
    make_system(img, release)
    return img


def write_space(path, image="small@1", reboot="firmware"):
    """A config space for the small image: BIOS layout on the first disk, an
    ESP added for UEFI machines (class UEFI, from the facts)."""
    def put(rel, text, mode=0o644):
        p = os.path.join(path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
    put("classes.list", "DEFAULT every node\nVIRTUAL a virtual machine (its DMI says QEMU)\n"
                        "UEFI a machine that boots by UEFI\nLAST after every other class\n")
    put("class/10-virtual.lua", 'if facts.dmi and facts.dmi.sys_vendor == "QEMU" then add("VIRTUAL") end\n')
    put("class/20-uefi.lua", 'if facts.firmware and facts.firmware.type == "uefi" then add("UEFI") end\n')
    put("vars/DEFAULT.lua", f'IMAGE = "{image}"\nCONSOLE = "ttyS0"\nHOSTNAME = node.hostname\n'
                            + (f'REBOOT = "{reboot}"\n' if reboot != "firmware" else ""))
    put("disk/DEFAULT", "disk os on=smallest table=gpt\n"
                        "  part bios size=1M type=bios\n"
                        "  part root size=rest fs=ext4 mount=/ options=noatime\n")
    # UEFI machines: the same disk role with an EFI system partition, where
    # the agent puts GRUB (EFI/BOOT/BOOTX64.EFI) and its grub.cfg.
    put("disk/UEFI", "disk os on=smallest table=gpt\n"
                     "  part esp size=64M type=esp mount=/boot/efi options=umask=0077\n"
                     "  part root size=rest fs=ext4 mount=/ options=noatime\n")
    put("files/etc/hostname/DEFAULT", "${HOSTNAME}\n")
    put("files/etc/hostname/DEFAULT.attrs", "subst=yes\n")
    put("scripts/DEFAULT/10-mark", "#!/bin/sh\nset -eu\necho \"installed by kiln as $KILN_NODE\" > /etc/kiln-mark\n",
        0o755)


class Site:
    """`kiln serve` on the boot network with DHCP, the boot files, a space."""

    def __init__(self, h, kiln_bin, initrd, version, tree, space, serve_args=()):
        self.h = h
        self.kiln = os.path.join(kiln_bin, "server", "kiln")
        self.data = os.path.join(h.work, "data")
        boot = os.path.join(self.data, "boot", "kiln")
        os.makedirs(boot)
        shutil.copy(os.path.join(tree, "boot", "vmlinuz-" + version), os.path.join(boot, "vmlinuz"))
        shutil.copy(initrd, os.path.join(boot, "initrd.img"))
        self.proc = h.start([self.kiln, "serve", "--data", self.data, "--listen", f"{harness.SERVER_IP}:{PORT}",
                             "--interface", "kbr0", "--dhcp", "full",
                             "--dhcp-range", f"{harness.NET_PREFIX}.100,{harness.NET_PREFIX}.200,255.255.255.0,1h",
                             "--space", space, "--kernel-args", os.environ.get("KILN_VM_KERNEL_ARGS", "console=ttyS0"), *serve_args], "kiln")
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(self.data, "serve.json")):
            if time.time() > deadline or not self.proc.running():
                raise harness.VmTestError("kiln serve did not start:\n" + harness.tail(self.proc.output()))
            time.sleep(0.1)
        with open(os.path.join(self.data, "admin.token")) as f:
            self.token = f.read().strip()

    def cli(self, *args, check=True):
        """Runs the kiln CLI against the server (inside the namespace)."""
        r = harness.run([self.kiln, *args, "--server", URL, "--token", self.token], check=check,
                        netns=self.h.netns.name)
        return r

    def get(self, path):
        r = harness.run(["curl", "-sf", "-H", f"Authorization: Bearer {self.token}", URL + path], check=False,
                        netns=self.h.netns.name)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def wait_for(self, what, fn, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.5)
        raise harness.VmTestError(f"timed out after {timeout} s waiting for {what}")

    def agent_znode(self, node):
        z = self.get(f"/api/v1/coord/data/kiln/nodes/{node}/agent")
        if not z:
            return None
        return json.loads(z.get("data", "{}"))

    def events(self, node):
        e = self.get(f"/api/v1/nodes/{node}/events")
        return [x["event"] for x in e["events"]] if e else []


def prepare(h, kiln_bin, image_release="small 1", serve_args=(), image="small", reboot="firmware"):
    """The usual start of a scenario: kernel, install environment, the
    golden image captured as <image>@1 (image "small", or "minbase": Debian
    12 minbase made bootable the same way), the space and the server
    (serve_args: more `kiln serve` flags; reboot: the REBOOT variable,
    "firmware" or "kexec"). Returns (site, image tree)."""
    version, tree = harness.kernel_tree()
    initrd, tree_dir = build_small_image(h, kiln_bin, version, tree, release=image_release)
    if image == "minbase":
        tree_dir = build_minbase_image(h, tree_dir, release=image_release)
    space = os.path.join(h.work, "space")
    write_space(space, image=f"{image}@1", reboot=reboot)
    s = Site(h, kiln_bin, initrd, version, tree, space, serve_args)
    s.cli("image", "capture", image, "--from-dir", tree_dir)
    return s, tree_dir


def wait_installed_and_running(s, vm, name, image="small@1", release="small 1"):
    """Follows a machine from its install to its installed system reporting
    in; returns the agent znode's data."""
    vm.console.wait_for(rf"==> done: installed {image}", 300, fail_patterns=[r"==> FAILED"])
    harness.log(f"{name}: installed; rebooting from its disk")
    vm.console.wait_for(r"kiln-init: booting the installed system", 120,
                        fail_patterns=[r"root device .* not found", r"cannot mount"])
    vm.console.wait_for(rf"kiln-system: {release} up", 60)
    agent = s.wait_for(f"{name}'s agent", lambda: s.agent_znode(name), 120)
    harness.log(f"{name}: agent reports {agent}")
    return agent
