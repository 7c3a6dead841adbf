"""The vmm sandboxer with real QEMU (TCG here: no KVM) under real containerd 2.x, driven with
crictl as a kubelet would. Each pod is a microVM booted from the guest image (Debian cloud
kernel + initramfs with vmm-task as PID 1); the guest cannot see host paths, so the
sandboxer shares each container's rootfs and config.json through virtio-fs and carries
stdio over the agent's channel (backend/guest_paths.h). A few VM boots, each ~5 s."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from support.containerd_env import BUSYBOX_IMAGE, ContainerdEnv, missing_requirements
from support.sandboxer_proc import SandboxerProcess

HANDLER = "kuasar-vmm"
ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KUASAR_BUILD_DIR", ROOT / "build" / "ci"))
GUEST = pathlib.Path(os.environ.get("KUASAR_GUEST_DIR", BUILD / "guest"))  # kuasar-guest-image
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"


def _missing():
    why = missing_requirements()
    if not os.access(QEMU, os.X_OK):
        why.append("qemu-system-x86_64 missing (ci/install-vm-deps)")
    if not os.access(VIRTIOFSD, os.X_OK):
        why.append(f"{VIRTIOFSD} missing (qemu-system-x86 7.x)")
    if (GUEST / "MISSING").exists():
        why.append(f"guest image incomplete: {(GUEST / 'MISSING').read_text().strip()}")
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


class Stack:
    """containerd + the vmm sandboxer (QEMU driver, real guest)."""

    def __init__(self, work: pathlib.Path):
        self.work = work
        (work / "sb").mkdir()
        extra = (f'[hypervisor]\ndriver = "qemu"\npath = "{QEMU}"\n'
                 f'kernel_path = "{GUEST / "vmlinuz"}"\ninitrd_path = "{GUEST / "initramfs.img"}"\n'
                 f'kvm_probe_cache = "{work / "kvm-probe.json"}"\n'
                 f'[vmm]\nguest_sees_host_paths = false\nagent_timeout_ms = 120000\n')
        self.sandboxer = SandboxerProcess(BUILD / "bin", "vmm", work_dir=str(work / "sb"),
                                          extra_config=extra)
        self.env = ContainerdEnv(sandboxer_name=HANDLER, sandboxer_socket=self.sandboxer.socket,
                                 handler=HANDLER)

    def __enter__(self):
        self.env.start()
        self.sandboxer.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
        self.sandboxer.start()
        return self

    def __exit__(self, *exc):
        try:
            self.env.crictl("rmp", "-fa", timeout=180)
        finally:
            self.env.stop()
            self.sandboxer.cleanup()

    def ok(self, *args, timeout=180) -> str:
        r = self.env.crictl(*args, timeout=timeout)
        assert r.returncode == 0, (f"crictl {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}\n"
                                   f"--- sandboxer\n{self.sandboxer.tail_log()}\n"
                                   f"--- containerd\n{self.env.tail_log(30)}")
        return r.stdout.strip()

    def pod(self, name: str, host_network: bool = True) -> str:
        linux = {"security_context": {"namespace_options": {"network": 2}}} if host_network else {}
        cfg = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
               "log_directory": str(self.work / "logs" / name), "linux": linux}
        (self.work / f"{name}.pod.json").write_text(json.dumps(cfg))
        t0 = time.monotonic()
        pod = self.ok("runp", "--runtime", HANDLER, str(self.work / f"{name}.pod.json"))
        print(f"VMQ_TIMING runp {name} {time.monotonic() - t0:.2f}s")
        return pod

    def container(self, pod_id: str, pod_name: str, name: str, command, start=True) -> str:
        cfg = {"metadata": {"name": name}, "image": {"image": BUSYBOX_IMAGE},
               "command": command, "log_path": f"{name}.log", "linux": {}}
        path = self.work / f"{pod_name}.{name}.json"
        path.write_text(json.dumps(cfg))
        cid = self.ok("create", pod_id, str(path), str(self.work / f"{pod_name}.pod.json"))
        if start:
            self.ok("start", cid)
        return cid

    def inspect(self, cid: str) -> dict:
        return json.loads(self.ok("inspect", cid))

    def wait_state(self, cid: str, state: str, timeout=60) -> dict:
        deadline = time.time() + timeout
        while True:
            info = self.inspect(cid)
            if info["status"]["state"] == state or time.time() > deadline:
                return info
            time.sleep(0.2)

    def wait_logs(self, cid: str, text: str, timeout=30) -> str:
        """stdout + stderr of `crictl logs` (it splits them again) once `text` shows."""
        deadline = time.time() + timeout
        while True:
            r = self.env.crictl("logs", cid)
            out = (r.stdout + r.stderr).strip()
            if text in out or time.time() > deadline:
                return out
            time.sleep(0.2)

    def shared_dir(self, pod_id: str) -> pathlib.Path:
        return self.sandboxer.state_dir / "sandboxes" / pod_id / "shared"

    def mounts_under(self, path: pathlib.Path) -> list:
        prefix = str(path)
        with open("/proc/self/mountinfo") as f:
            return [l.split()[4] for l in f if l.split()[4].startswith(prefix)]


@pytest.fixture(scope="module")
def stack():
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvq.", dir="/tmp"))  # short socket paths
    try:
        with Stack(work) as s:
            yield s
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_pod_in_a_vm_runs_busybox(stack):
    pod = stack.pod("vm1")
    status = json.loads(stack.ok("inspectp", pod))["status"]
    assert status["state"] == "SANDBOX_READY"
    main = stack.container(pod, "vm1", "main",
                           ["sh", "-c", "echo kuasar-vm-hello; echo to-stderr >&2; exec sleep 3600"])
    assert stack.wait_state(main, "CONTAINER_RUNNING")["status"]["state"] == "CONTAINER_RUNNING"
    logs = stack.wait_logs(main, "to-stderr")
    assert "kuasar-vm-hello" in logs and "to-stderr" in logs, logs
    # It runs in the guest: another kernel, another boot.
    assert stack.ok("exec", main, "uname", "-r") != os.uname().release
    host_boot = pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    guest_boot = stack.ok("exec", main, "cat", "/proc/sys/kernel/random/boot_id")
    assert guest_boot != host_boot
    # The rootfs is containerd's image, shared through virtio-fs, and writable.
    assert stack.ok("exec", main, "sh", "-c", "echo w > /written && cat /written") == "w"
    assert stack.ok("exec", main, "echo", "hi-exec") == "hi-exec"
    # An exec's exit code and stderr.
    r = stack.env.crictl("exec", main, "sh", "-c", "echo err-out >&2; exit 3")
    assert r.returncode != 0 and "err-out" in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert "exit code 3" in r.stderr, r.stderr
    # stdin reaches an exec'd process and its end ends it (CloseIO through the stream).
    r = subprocess.run([stack.env.tool("crictl"), "--runtime-endpoint", stack.env.endpoint,
                        "exec", "-i", main, "cat"], input="piped-in\n" + "x" * 100000 + "\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "piped-in\n" + "x" * 100000 + "\n", r.stderr[-2000:]

    # A second container in the same VM; one that exits with a code.
    second = stack.container(pod, "vm1", "second", ["sleep", "3600"])
    assert stack.ok("exec", second, "cat", "/proc/sys/kernel/random/boot_id") == guest_boot
    exits = stack.container(pod, "vm1", "exits", ["sh", "-c", "echo bye; exit 7"])
    info = stack.wait_state(exits, "CONTAINER_EXITED")
    assert info["status"]["state"] == "CONTAINER_EXITED" and info["status"]["exitCode"] == 7, info
    assert stack.wait_logs(exits, "bye") == "bye"

    shared = stack.shared_dir(pod)
    assert (shared / main / "rootfs").is_dir()
    assert any(m.startswith(str(shared / main)) for m in stack.mounts_under(shared))
    stack.ok("stop", main)
    assert stack.inspect(main)["status"]["state"] == "CONTAINER_EXITED"
    stack.ok("rm", main)
    stack.ok("rm", exits)
    # Deleting a container removes its shared copy (rootfs unmounted on the host).
    assert not (shared / main).exists()
    assert not [m for m in stack.mounts_under(shared) if m.startswith(str(shared / main))]
    stack.ok("stopp", pod)
    stack.ok("rmp", pod)
    assert stack.env.crictl("inspectp", pod).returncode != 0
    assert stack.mounts_under(shared.parent) == []
    assert not shared.parent.exists()


def test_pod_network_is_reachable_from_the_host(stack):
    pod = stack.pod("vmnet", host_network=False)
    ip = json.loads(stack.ok("inspectp", pod))["status"]["network"]["ip"]
    assert re.match(r"10\.\d+\.\d+\.\d+", ip), ip
    web = stack.container(pod, "vmnet", "web",
                          ["sh", "-c", "mkdir -p /www && echo from-the-vm > /www/index.html && "
                           "exec httpd -f -p 8080 -h /www"])
    stack.wait_state(web, "CONTAINER_RUNNING")
    deadline = time.time() + 30
    body, err = None, None
    while time.time() < deadline:
        try:
            body = urllib.request.urlopen(f"http://{ip}:8080/", timeout=3).read().decode()
            break
        except OSError as e:
            err = e
            time.sleep(0.5)
    assert body == "from-the-vm\n", f"{err}\n{stack.sandboxer.tail_log()}"
    assert ip in stack.ok("exec", web, "ip", "-4", "addr", "show", "eth0")
    # QEMU served that tap with CAP_NET_ADMIN as its only capability (vmm_capabilities'
    # default), no_new_privs set: all the rest of root's power was dropped at exec.
    status = qemu_status_of(pod)
    assert int(status["CapEff"], 16) == 1 << 12, status
    assert int(status["CapBnd"], 16) == 1 << 12, status
    assert status["NoNewPrivs"] == "1", status
    stack.ok("rmp", "-f", pod)


def qemu_status_of(pod: str) -> dict:
    """/proc/PID/status of the QEMU running `pod` (its command line names the pod)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if not cmd[0].endswith(b"qemu-system-x86_64") or not any(pod.encode() in a for a in cmd):
                continue
            lines = pathlib.Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        return dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    raise AssertionError(f"no qemu-system-x86_64 process names pod {pod}")
