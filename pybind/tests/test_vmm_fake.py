"""The vmm sandboxer end to end under real containerd 2.x, on the fake VMM (sim/): each
pod is a kuasar-fake-vmm process playing a VMM (its real control API) with the real guest
agent vmm-task as PID 1 of fresh namespaces; containers really run, with runc, under the
agent. Driven with crictl as a kubelet would. Also the one-shim-per-pod baseline
(containerd-shim-kuasar-vmm-v2) over the same fake VMM, 100 pods per personality, and the
multi-sandbox colocation test (runc, vmm and wasm pods under one containerd)."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kuasar.containerd import sandbox_handler_config, shim_handler_config
from kuasar.sandboxer import fake_vmm_toml
from support.containerd_env import ROOT, ContainerdEnv, missing_requirements
from support.sandboxer_proc import SandboxerProcess
from test_runc_sandboxer import exec_with_tty

BUSYBOX = "docker.io/library/busybox:kuasar"
CI_FAST = ROOT / "fixtures" / "sim" / "ci-fast.toml"
PERSONALITIES = {  # driver -> the fake VMM's name for it
    "cloud-hypervisor": "cloud-hypervisor",
    "firecracker": "firecracker",
    "stratovirt": "stratovirt",
    "qemu": "qemu-system-x86_64",
}

_why = missing_requirements()
pytestmark = [pytest.mark.containerd, pytest.mark.skipif(bool(_why), reason="; ".join(_why))]


def vmm_config(bin_dir: pathlib.Path, driver: str, work: pathlib.Path) -> str:
    return fake_vmm_toml(bin_dir, driver, work, agent_timeout_ms=30000)


def pids_of(name: str, marker: str = ""):
    out = []
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{e}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0].decode(errors="replace")) == name and \
                marker.encode() in b"\0".join(argv):
            out.append(int(e))
    return out


class Stack:
    """containerd + vmm sandboxers (one per driver) + the shim baseline handler."""

    def __init__(self, bin_dir: pathlib.Path, work: pathlib.Path, drivers, fast: bool):
        bin_dir = bin_dir.resolve()
        self.bin_dir, self.work = bin_dir, work
        env = {"KUASAR_FAKE_VMM_MODEL": str(CI_FAST)} if fast else {}
        self.sandboxers = {}
        for d in drivers:
            (work / d).mkdir()
            self.sandboxers[d] = SandboxerProcess(bin_dir, "vmm", work_dir=str(work / d),
                                                  extra_config=vmm_config(bin_dir, d, work / d),
                                                  env=env)
        first = drivers[0]
        extra = "".join(sandbox_handler_config(f"kuasar-vmm-{d}", self.sandboxers[d].socket)
                        for d in drivers[1:])
        # The baseline: one containerd-shim-kuasar-vmm-v2 per pod over the first driver.
        (work / "shim").mkdir()
        shim_cfg = work / "shim" / "shim.toml"
        shim_cfg.write_text(f'[sandboxer]\nkind = "vmm"\nstate_dir = "{work / "shim" / "state"}"\n'
                            f'listen = "{work / "shim" / "unused.sock"}"\n'
                            + vmm_config(bin_dir, first, work / "shim"))
        extra += shim_handler_config("kuasar-vmm-shim", str(bin_dir / "containerd-shim-kuasar-vmm-v2"))
        self.env = ContainerdEnv(sandboxer_name=f"kuasar-vmm-{first}",
                                 sandboxer_socket=self.sandboxers[first].socket,
                                 handler=f"kuasar-vmm-{first}", extra_config=extra,
                                 env={"KUASAR_SHIM_CONFIG": str(shim_cfg), **env})

    def __enter__(self):
        self.env.start()
        for sb in self.sandboxers.values():
            sb.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
            sb.start()
        return self

    def __exit__(self, *exc):
        try:
            self.env.crictl("rmp", "-fa", timeout=600)
        finally:
            self.env.stop()
            for sb in self.sandboxers.values():
                sb.cleanup()

    def ok(self, *args, timeout=120) -> str:
        r = self.env.crictl(*args, timeout=timeout)
        if r.returncode != 0:
            logs = "\n".join(f"--- sandboxer {d}\n{sb.tail_log(30)}" for d, sb in self.sandboxers.items())
            raise AssertionError(f"crictl {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}\n"
                                 f"{logs}\n--- containerd\n{self.env.tail_log(30)}")
        return r.stdout.strip()

    def pod(self, name: str, handler: str) -> str:
        cfg = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
               "log_directory": str(self.work / "logs" / name), "linux": {}}
        path = self.work / f"{name}.pod.json"
        path.write_text(json.dumps(cfg))
        return self.ok("runp", "--runtime", handler, str(path))

    def container(self, pod_id: str, pod_name: str, name: str, command, start=True) -> str:
        cfg = {"metadata": {"name": name}, "image": {"image": BUSYBOX}, "command": list(command),
               "log_path": f"{name}.log", "linux": {}}
        path = self.work / f"{pod_name}.{name}.json"
        path.write_text(json.dumps(cfg))
        cid = self.ok("create", pod_id, str(path), str(self.work / f"{pod_name}.pod.json"))
        if start:
            self.ok("start", cid)
        return cid

    def wait_state(self, cid: str, state: str, timeout=60) -> dict:
        deadline = time.time() + timeout
        while True:
            info = json.loads(self.ok("inspect", cid))
            if info["status"]["state"] == state or time.time() > deadline:
                return info
            time.sleep(0.1)

    def logs(self, cid: str) -> str:
        r = self.env.crictl("logs", cid)
        return r.stdout + r.stderr


@pytest.fixture(scope="module")
def stack(kuasar_bin, tmp_path_factory):
    for b in ("kuasar-fake-vmm", "vmm-task", "containerd-shim-kuasar-vmm-v2"):
        kuasar_bin(b)
    bin_dir = kuasar_bin("kuasar-sandboxer").parent
    # A short dir: the pods' unix sockets live under it (107-byte limit).
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvm.", dir="/tmp"))
    with Stack(bin_dir, work, list(PERSONALITIES), fast=False) as s:
        yield s
    shutil.rmtree(work, ignore_errors=True)


def handler(driver: str, stack) -> str:
    return f"kuasar-vmm-{driver}"


def lifecycle(stack, handler_name: str, name: str):
    pod = stack.pod(name, handler_name)
    status = json.loads(stack.ok("inspectp", pod))["status"]
    assert status["state"] == "SANDBOX_READY"
    cid = stack.container(pod, name, "main", ["sh", "-c", "echo hello from $(hostname); sleep 3600"])
    deadline = time.time() + 20
    while "hello from" not in stack.logs(cid) and time.time() < deadline:
        time.sleep(0.1)
    assert "hello from" in stack.logs(cid)
    assert stack.ok("exec", cid, "echo", "exec-ok") == "exec-ok"
    assert "tty-ok" in exec_with_tty(stack, cid, "echo", "tty-ok")
    # A second container shares the VM (the same pid namespace as the agent's).
    side = stack.container(pod, name, "side", ["sh", "-c", "exit 7"])
    assert stack.wait_state(side, "CONTAINER_EXITED")["status"]["exitCode"] == 7
    stack.ok("stop", "-t", "2", cid)
    assert stack.wait_state(cid, "CONTAINER_EXITED")["status"]["exitCode"] in (137, 143)
    stack.ok("stopp", pod)
    assert json.loads(stack.ok("inspectp", pod))["status"]["state"] == "SANDBOX_NOTREADY"
    stack.ok("rmp", pod)
    return pod


E2E_DRIVERS = list(PERSONALITIES)


@pytest.mark.parametrize("driver", E2E_DRIVERS)
def test_pod_lifecycle_on_each_fake_vmm(stack, driver):
    before = len(pids_of("kuasar-fake-vmm")) + len(pids_of(PERSONALITIES[driver]))
    lifecycle(stack, handler(driver, stack), f"life-{driver}")
    after = len(pids_of("kuasar-fake-vmm")) + len(pids_of(PERSONALITIES[driver]))
    assert after == before, "the pod's fake VMM outlived rmp"


def test_shim_baseline_runs_the_same_pod_with_one_shim_per_pod(stack):
    shims_before = pids_of("containerd-shim-kuasar-vmm-v2")
    pod = stack.pod("shim-pod", "kuasar-vmm-shim")
    shims = [p for p in pids_of("containerd-shim-kuasar-vmm-v2") if p not in shims_before]
    assert len(shims) == 1, "one shim process per pod"
    cid = stack.container(pod, "shim-pod", "main", ["sh", "-c", "echo via-shim; sleep 3600"])
    deadline = time.time() + 20
    while "via-shim" not in stack.logs(cid) and time.time() < deadline:
        time.sleep(0.1)
    assert "via-shim" in stack.logs(cid)
    assert stack.ok("exec", cid, "echo", "exec-ok") == "exec-ok"
    stack.ok("rmp", "-f", pod)
    deadline = time.time() + 15
    while any(os.path.exists(f"/proc/{p}") for p in shims) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{p}") for p in shims), "the shim outlived its pod"


def test_vmm_crash_marks_the_pod_not_ready(stack):
    pod = stack.pod("crash", handler("cloud-hypervisor", stack))
    out = subprocess.run([str(stack.bin_dir / "kuasarctl"), "-a",
                          stack.sandboxers["cloud-hypervisor"].socket, "status", pod],
                         capture_output=True, text=True, check=True).stdout
    vmm_pid = int(json.loads(out)["pid"])
    assert os.path.basename(os.readlink(f"/proc/{vmm_pid}/exe")) == "kuasar-fake-vmm"
    os.kill(vmm_pid, signal.SIGKILL)
    deadline = time.time() + 20
    state = None
    while time.time() < deadline:
        state = json.loads(stack.ok("inspectp", pod))["status"]["state"]
        if state == "SANDBOX_NOTREADY":
            break
        time.sleep(0.2)
    assert state == "SANDBOX_NOTREADY"
    stack.ok("rmp", "-f", pod)


def test_sandboxer_restart_keeps_vm_pods_running(stack):
    pod = stack.pod("restart", handler("cloud-hypervisor", stack))
    cid = stack.container(pod, "restart", "main", ["sleep", "3600"])
    sb = stack.sandboxers["cloud-hypervisor"]
    sb.kill9()
    sb.start()
    assert json.loads(stack.ok("inspectp", pod))["status"]["state"] == "SANDBOX_READY"
    assert stack.ok("exec", cid, "echo", "still-here") == "still-here"
    stack.ok("rmp", "-f", pod)


@pytest.fixture(scope="module")
def fast_stack(kuasar_bin, tmp_path_factory):
    for b in ("kuasar-fake-vmm", "vmm-task", "containerd-shim-kuasar-vmm-v2"):
        kuasar_bin(b)
    bin_dir = kuasar_bin("kuasar-sandboxer").parent
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvm.", dir="/tmp"))
    with Stack(bin_dir, work, list(PERSONALITIES), fast=True) as s:
        yield s
    shutil.rmtree(work, ignore_errors=True)


PODS = int(os.environ.get("KUASAR_VMM_PODS", "100"))


@pytest.mark.parametrize("driver", list(PERSONALITIES))
def test_hundred_pods_per_personality_reach_ready_and_leave_nothing(fast_stack, driver):
    """Issue 5's load check: 100 pods on one fake VMM personality (no modelled latency, so
    the sandboxer, drivers and agents are what is measured), created 8 at a time through
    containerd, all SANDBOX_READY, then removed with no VMM, agent or record left."""
    sb = fast_stack.sandboxers[driver]
    name = PERSONALITIES[driver]

    def make(i):
        return fast_stack.pod(f"many-{driver[:4]}-{i}", handler(driver, fast_stack))

    with ThreadPoolExecutor(8) as ex:
        pods = list(ex.map(make, range(PODS)))
    ready = sum(json.loads(fast_stack.ok("inspectp", p))["status"]["state"] == "SANDBOX_READY"
                for p in pods)
    assert ready == PODS
    assert len(pids_of(name, str(sb.dir))) == PODS, "one VMM per pod"
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda p: fast_stack.ok("rmp", "-f", p), pods))
    deadline = time.time() + 30
    while (pids_of(name, str(sb.dir)) or pids_of("vmm-task", str(sb.dir))) and time.time() < deadline:
        time.sleep(0.2)
    assert pids_of(name, str(sb.dir)) == [] and pids_of("vmm-task", str(sb.dir)) == []
    assert list((sb.state_dir / "records").glob("*.json")) == []
