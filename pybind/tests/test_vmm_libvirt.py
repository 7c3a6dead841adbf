"""The vmm sandboxer with driver = "libvirt" under real containerd 2.x: each pod is the
guest image booted as a transient libvirt domain (TCG) on a libvirtd this module starts
itself, in its own mount namespace (as runtime/sandboxers/vmm/libvirt/testing/
private_libvirtd.h does: directories of a temp dir bind-mounted over /etc/libvirt,
/run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt), so the host's libvirt
is neither read nor touched. Pods only, host network: that libvirtd's virtiofsd does not see
the bind mounts the sandboxer makes later for container rootfs where the host's / is a
private mount (it is here), and taps inside a pod netns are refused by the driver
(docs/hypervisors.md). Checks runp -> READY, the domain's QEMU, sandboxer kill -9 and restart
(Recover by UUID), stopp/rmp, and nothing left."""
import ctypes
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from support.containerd_env import ContainerdEnv, missing_requirements
from support.sandboxer_proc import SandboxerProcess

HANDLER = "kuasar-vmm"
ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KUASAR_BUILD_DIR", ROOT / "build" / "ci")).resolve()
GUEST = pathlib.Path(os.environ.get("KUASAR_GUEST_DIR", BUILD / "guest")).resolve()  # the image
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
LIBVIRTD = "/usr/sbin/libvirtd"
MOUNTS = [("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
          ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt")]
QEMU_CONF = ('stdio_handler = "file"\ncgroup_controllers = [ ]\nnamespaces = [ ]\n'
             'security_driver = "none"\n')
CLONE_NEWNS, MS_BIND, MS_REC, MS_SLAVE = 0x00020000, 4096, 16384, 1 << 19


def _missing():
    why = missing_requirements()
    if os.geteuid() != 0:
        why.append("needs root (a private libvirtd)")
    if not os.access(LIBVIRTD, os.X_OK):
        why.append(f"{LIBVIRTD} missing (ci/install-vm-deps)")
    if not os.access(QEMU, os.X_OK):
        why.append("qemu-system-x86_64 missing (ci/install-vm-deps)")
    for f in ("vmlinuz", "initramfs.img"):
        if not (GUEST / f).exists():
            why.append(f"guest image {GUEST / f} missing (ninja kuasar-guest-image)")
    if (GUEST / "manifest.txt").exists() and "placeholder" in (GUEST / "manifest.txt").read_text():
        why.append("the guest image holds the placeholder agent, not vmm-task")
    for exe in ("kuasar-sandboxer", "kuasarctl"):
        if not (BUILD / "bin" / exe).exists():
            why.append(f"{exe} not built in {BUILD} (set KUASAR_BUILD_DIR)")
    return why


_why = _missing()
pytestmark = [pytest.mark.containerd, pytest.mark.skipif(bool(_why), reason="; ".join(_why))]


class PrivateLibvirtd:
    """libvirtd in its own mount namespace, config and state under `root`."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.socket = root / "sock" / "libvirt-sock"
        self.uri = f"qemu:///system?socket={self.socket}"
        self.log = root / "libvirtd.log"
        self.proc = None

    def _enter_namespace(self):  # in the forked child, before exec
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount / rslave")
        for name, target in MOUNTS:
            if libc.mount(str(self.root / name).encode(), target.encode(), None, MS_BIND,
                          None) != 0:
                raise OSError(ctypes.get_errno(), f"bind mount over {target}")

    def start(self):
        for name, target in MOUNTS:
            (self.root / name).mkdir(mode=0o700)
            os.makedirs(target, exist_ok=True)
        (self.root / "sock").mkdir(mode=0o700)
        (self.root / "etc" / "libvirtd.conf").write_text(
            f'unix_sock_dir = "{self.root / "sock"}"\nunix_sock_rw_perms = "0700"\n'
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\nlog_outputs = "3:stderr"\n')
        (self.root / "etc" / "qemu.conf").write_text(QEMU_CONF)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [LIBVIRTD, "--config", "/etc/libvirt/libvirtd.conf",
                 "--pid-file", str(self.root / "libvirtd.pid")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=self._enter_namespace)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return f"libvirtd exited with {self.proc.returncode}: {self.tail()}"
            if self.socket.exists():
                return None
            time.sleep(0.1)
        return f"libvirtd's socket did not appear in 30 s: {self.tail()}"

    def tail(self, lines=8) -> str:
        try:
            return " | ".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Stack:
    """A private libvirtd + containerd + the vmm sandboxer (libvirt driver)."""

    def __init__(self, work: pathlib.Path):
        self.work = work
        (work / "lv").mkdir()
        (work / "sb").mkdir()
        self.libvirtd = PrivateLibvirtd(work / "lv")
        extra = (f'[hypervisor]\ndriver = "libvirt"\nuri = "{self.libvirtd.uri}"\n'
                 f'path = "{QEMU}"\naccel = "tcg"\n'
                 f'kernel_path = "{GUEST / "vmlinuz"}"\ninitrd_path = "{GUEST / "initramfs.img"}"\n'
                 f'[vmm]\nguest_sees_host_paths = false\nmirror_network = false\n'
                 f'agent_timeout_ms = 120000\n')
        self.sandboxer = SandboxerProcess(BUILD / "bin", "vmm", work_dir=str(work / "sb"),
                                          extra_config=extra)
        self.env = ContainerdEnv(sandboxer_name=HANDLER, sandboxer_socket=self.sandboxer.socket,
                                 handler=HANDLER)

    def __enter__(self):
        why = self.libvirtd.start()
        if why:
            self.libvirtd.stop()
            pytest.skip(f"libvirtd cannot run here: {why}")
        try:
            self.env.start()
            self.sandboxer.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
            self.sandboxer.start()
        except BaseException:
            self._teardown()  # no daemon of ours outlives a failed start
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.env.crictl("rmp", "-fa", timeout=180)
        finally:
            self._teardown()

    def _teardown(self):
        try:
            self.env.stop()
        finally:
            try:
                self.sandboxer.cleanup()
            finally:
                self.libvirtd.stop()

    def ok(self, *args, timeout=180) -> str:
        r = self.env.crictl(*args, timeout=timeout)
        assert r.returncode == 0, (f"crictl {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}\n"
                                   f"--- sandboxer\n{self.sandboxer.tail_log()}\n"
                                   f"--- libvirtd\n{self.libvirtd.tail()}\n"
                                   f"--- containerd\n{self.env.tail_log(30)}")
        return r.stdout.strip()

    def pod(self, name: str) -> str:
        cfg = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
               "log_directory": str(self.work / "logs" / name),
               "linux": {"security_context": {"namespace_options": {"network": 2}}}}
        (self.work / f"{name}.pod.json").write_text(json.dumps(cfg))
        t0 = time.monotonic()
        pod = self.ok("runp", "--runtime", HANDLER, str(self.work / f"{name}.pod.json"))
        print(f"LIBVIRT_TIMING runp {name} {time.monotonic() - t0:.2f}s")
        return pod


def qemu_pids(pod: str) -> list:
    """QEMU processes of the pod's domain (libvirt names it guest=kuasar-<id>)."""
    out = []
    for p in pathlib.Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if f"guest=kuasar-{pod}".encode() in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


@pytest.fixture(scope="module")
def stack():
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvl.", dir="/tmp"))  # short socket paths
    try:
        with Stack(work) as s:
            yield s
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_pod_runs_as_a_libvirt_domain_and_survives_a_sandboxer_restart(stack):
    pod = stack.pod("lv1")
    assert json.loads(stack.ok("inspectp", pod))["status"]["state"] == "SANDBOX_READY"
    pids = qemu_pids(pod)
    assert len(pids) == 1, pids
    # The sandboxer goes away without stopping anything; the domain must outlive it.
    stack.sandboxer.kill9()
    assert qemu_pids(pod) == pids
    stack.sandboxer.start()
    assert json.loads(stack.ok("inspectp", pod))["status"]["state"] == "SANDBOX_READY"
    assert "reattached" in stack.sandboxer.tail_log(400) or \
        "op=recover vmm=libvirt" in stack.sandboxer.tail_log(400), stack.sandboxer.tail_log()
    stack.ok("stopp", pod)
    deadline = time.time() + 30
    while qemu_pids(pod) and time.time() < deadline:
        time.sleep(0.2)
    assert qemu_pids(pod) == []
    stack.ok("rmp", pod)
    assert stack.env.crictl("inspectp", pod).returncode != 0
    assert not (stack.sandboxer.state_dir / "sandboxes" / pod).exists()
