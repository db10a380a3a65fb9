"""The VM test harness: a private boot network inside a network namespace
of its own, a `kiln serve` inside it, and QEMU machines booting from it.

Everything a run creates lives under one work directory and one network
namespace; Harness.close() stops every process by its pid and removes the
namespace. Nothing here sends traffic outside the namespace: the bridge and
its addresses exist only inside it.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("KILN_VM_CACHE", "/var/cache/kiln-vm")

# The boot network, private to the namespace.
NET_PREFIX = "10.213.0"
SERVER_IP = NET_PREFIX + ".1"
ULA = "fd6b:696c:6e00::1/64"


class VmTestError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, check=True, netns=None, **kw):
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise VmTestError(f"{' '.join(cmd)} exited with {r.returncode}: {r.stderr.strip()}")
    return r


def kernel_tree():
    """Fetches (once, cached) Debian's kernel; returns (version, tree)."""
    v = run([os.path.join(ROOT, "vm-tests/lib/fetch-kernel")]).stdout.strip()
    return v, os.path.join(CACHE, "kernel", v)


def accelerator():
    """TCG unless a probe proves KVM boots a real guest here (FACTS.md:
    the nested KVM module on these machines cannot boot Linux)."""
    want = os.environ.get("KILN_VM_ACCEL", "tcg")
    return want if want in ("tcg", "kvm") else "tcg"


class Netns:
    """A network namespace with a bridge and private addresses."""

    def __init__(self, name):
        self.name = name
        self.taps = []
        run(["ip", "netns", "add", name])
        self.exec(["ip", "link", "set", "lo", "up"])
        self.exec(["ip", "link", "add", "kbr0", "type", "bridge"])
        self.exec(["ip", "addr", "add", SERVER_IP + "/24", "dev", "kbr0"])
        self.exec(["ip", "-6", "addr", "add", ULA, "dev", "kbr0", "nodad"])
        self.exec(["ip", "link", "set", "kbr0", "up"])

    def exec(self, cmd, check=True):
        return run(cmd, check=check, netns=self.name)

    def add_tap(self):
        tap = f"ktap{len(self.taps)}"
        self.exec(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
        self.exec(["ip", "link", "set", tap, "master", "kbr0"])
        self.exec(["ip", "link", "set", tap, "up"])
        self.taps.append(tap)
        return tap

    def close(self):
        run(["ip", "netns", "del", self.name], check=False)


class Process:
    """A child process whose output goes to a file, stopped by its pid."""

    def __init__(self, argv, log_path, netns=None, env=None):
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Console:
    """Reads a machine's serial log as it grows."""

    def __init__(self, path):
        self.path = path
        self.pos = 0

    def text(self):
        try:
            with open(self.path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern, timeout, fail_patterns=(), since_start=False):
        """Waits for a regex after the last match; returns the match."""
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        fails = [re.compile(p) for p in fail_patterns]
        while True:
            text = self.text()
            start = 0 if since_start else self.pos
            m = rx.search(text, start)
            if m:
                self.pos = m.end()
                return m
            for f in fails:
                fm = f.search(text, start)
                if fm:
                    raise VmTestError(f"console shows {fm.group(0)!r} while waiting for {pattern!r}:\n"
                                      + tail(text))
            if time.time() > deadline:
                raise VmTestError(f"no {pattern!r} on the console after {timeout} s:\n" + tail(text))
            time.sleep(0.2)


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


class Vm:
    """A QEMU machine on a tap of the boot network, with an empty disk."""

    def __init__(self, harness, name, mac, disk_size="2G", firmware="bios", memory=1024,
                 kernel=None, initrd=None, append=None, nic="virtio-net-pci", nic_rom=True):
        self.h = harness
        self.name = name
        self.mac = mac
        self.dir = os.path.join(harness.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.disk = os.path.join(self.dir, "disk.qcow2")
        self.console_path = os.path.join(self.dir, "console.log")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        run(["qemu-img", "create", "-q", "-f", "qcow2", self.disk, disk_size])
        self.tap = harness.netns.add_tap()
        argv = ["qemu-system-x86_64", "-name", name, "-accel", accelerator(), "-cpu", "max",
                "-m", str(memory), "-smp", "1", "-display", "none", "-no-user-config",
                "-serial", "file:" + self.console_path,
                "-qmp", f"unix:{self.qmp_path},server,nowait",
                "-drive", f"file={self.disk},if=virtio,format=qcow2,cache=unsafe",
                "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
                "-device", f"{nic},netdev=n0,mac={mac}" + ("" if nic_rom else ",romfile="),
                "-boot", "order=nc"]
        if firmware == "uefi":
            vars_copy = os.path.join(self.dir, "OVMF_VARS.fd")
            shutil.copy("/usr/share/OVMF/OVMF_VARS_4M.fd", vars_copy)
            argv += ["-machine", "q35",
                     "-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                     "-drive", f"if=pflash,format=raw,file={vars_copy}",
                     "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"]
        if kernel:
            argv += ["-kernel", kernel, "-initrd", initrd, "-append", append or "console=ttyS0"]
        self.argv = argv
        self.console = Console(self.console_path)
        self.proc = Process(argv, os.path.join(self.dir, "qemu.log"), netns=harness.netns.name)
        harness.processes.append(self.proc)
        log(f"{name}: qemu pid {self.proc.pid}, mac {mac}, {firmware}, accel {accelerator()}")

    def qmp(self, command, **args):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.qmp_path)
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        for cmd in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": args}):
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "event" not in reply:
                    break
        s.close()
        return reply

    def power_on(self):
        """Starts the machine again after power_off, with the same disk."""
        # QEMU starts the serial file afresh; remove it first so that a wait
        # right after this cannot match the previous boot's text.
        if os.path.exists(self.console_path):
            os.remove(self.console_path)
        self.console.pos = 0
        self.proc = Process(self.argv, os.path.join(self.dir, "qemu.log"), netns=self.h.netns.name)
        self.h.processes.append(self.proc)
        log(f"{self.name}: powered on again, qemu pid {self.proc.pid}")

    def power_off(self):
        """Pulls the plug."""
        try:
            self.qmp("quit")
        except OSError:
            pass
        self.proc.stop()


class Harness:
    """One test run: work dir, namespace, processes; closes them all."""

    def __init__(self, name="vm"):
        self.work = tempfile.mkdtemp(prefix=f"kiln-{name}-")
        self.netns = Netns(f"kiln-{name}-{os.getpid()}")
        self.processes = []
        self.keep = bool(os.environ.get("KILN_VM_KEEP"))

    def start(self, argv, name, env=None):
        p = Process(argv, os.path.join(self.work, name + ".log"), netns=self.netns.name, env=env)
        self.processes.append(p)
        return p

    def close(self, failed=False):
        for p in reversed(self.processes):
            p.stop()
        self.netns.close()
        if failed or self.keep:
            log(f"logs kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def dnsmasq_plain(h, boot_file=None):
    """A plain dnsmasq handing out addresses on the boot network (for tests
    of the install environment on its own)."""
    conf = os.path.join(h.work, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write(f"""port=0
interface=kbr0
bind-interfaces
dhcp-range={NET_PREFIX}.100,{NET_PREFIX}.200,255.255.255.0,1h
dhcp-leasefile={h.work}/leases
no-ping
log-dhcp
enable-ra
dhcp-range=::,constructor:kbr0,ra-only
""")
    return h.start(["dnsmasq", "--keep-in-foreground", "--no-daemon", "-C", conf,
                    "--pid-file=" + os.path.join(h.work, "dnsmasq.pid")], "dnsmasq")
