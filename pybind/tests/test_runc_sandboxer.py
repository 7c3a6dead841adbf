"""The runc sandboxer end to end under real containerd 2.x, driven with crictl as a kubelet
would: pods are kuasar holders (no pause container, no shim per pod), containers run under
runc/crun, the Task API is served by the one sandboxer process."""
import json
import os
import pathlib
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from support.containerd_env import BUSYBOX_IMAGE, ContainerdEnv, missing_requirements
from support.sandboxer_proc import SandboxerProcess

HANDLER = "kuasar-runc"
_why = missing_requirements()
pytestmark = [pytest.mark.containerd, pytest.mark.skipif(bool(_why), reason="; ".join(_why))]


class Stack:
    """containerd + the runc sandboxer, wired as docs/containerd.md describes."""

    def __init__(self, bin_dir, work):
        self.work = work
        self.sandboxer = SandboxerProcess(bin_dir, "runc", work_dir=str(work / "sb"))
        (work / "sb").mkdir()
        self.env = ContainerdEnv(sandboxer_name=HANDLER, sandboxer_socket=self.sandboxer.socket,
                                 handler=HANDLER)

    def __enter__(self):
        self.env.start()
        self.sandboxer.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
        self.sandboxer.start()
        return self

    def __exit__(self, *exc):
        try:
            self.env.crictl("rmp", "-fa", timeout=120)
        finally:
            self.env.stop()
            self.sandboxer.cleanup()

    def ok(self, *args, timeout=120) -> str:
        r = self.env.crictl(*args, timeout=timeout)
        assert r.returncode == 0, (f"crictl {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}\n"
                                   f"--- sandboxer\n{self.sandboxer.tail_log()}\n"
                                   f"--- containerd\n{self.env.tail_log(30)}")
        return r.stdout.strip()

    def pod(self, name: str, **extra) -> str:
        cfg = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
               "log_directory": str(self.work / "logs" / name), "linux": {}}
        cfg.update(extra)
        path = self.work / f"{name}.pod.json"
        path.write_text(json.dumps(cfg))
        return self.ok("runp", "--runtime", HANDLER, str(path))

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

    def wait_state(self, cid: str, state: str, timeout=20) -> dict:
        deadline = time.time() + timeout
        while True:
            info = self.inspect(cid)
            if info["status"]["state"] == state or time.time() > deadline:
                return info
            time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(kuasar_bin, tmp_path_factory):
    bin_dir = kuasar_bin("kuasar-sandboxer").parent
    with Stack(bin_dir, tmp_path_factory.mktemp("runc")) as s:
        yield s


def exec_with_tty(stack, cid, *cmd) -> str:
    """crictl exec -it needs a terminal on its side: give it one."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([stack.env.tool("crictl"), "--runtime-endpoint", stack.env.endpoint,
                             "exec", "-it", cid, *cmd], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    assert proc.returncode == 0, out
    return out.decode(errors="replace")


def test_pod_lifecycle_logs_exec_stats(stack):
    pod = stack.pod("life")
    status = json.loads(stack.ok("inspectp", pod))["status"]
    assert status["state"] == "SANDBOX_READY"
    assert re.match(r"10\.\d+\.\d+\.\d+", status["network"]["ip"]), status["network"]
    cid = stack.container(pod, "life", "main", ["sh", "-c", "echo kuasar-hello; exec sleep 3600"])
    assert stack.wait_state(cid, "CONTAINER_RUNNING")["status"]["state"] == "CONTAINER_RUNNING"
    deadline = time.time() + 10
    while "kuasar-hello" not in stack.ok("logs", cid) and time.time() < deadline:
        time.sleep(0.1)
    assert stack.ok("logs", cid) == "kuasar-hello"
    assert stack.ok("exec", cid, "echo", "hi-exec") == "hi-exec"
    # stdin reaches an exec'd process and its EOF ends it (Task.CloseIO)
    r = subprocess.run([stack.env.tool("crictl"), "--runtime-endpoint", stack.env.endpoint,
                        "exec", "-i", cid, "cat"], input="piped-in\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == "piped-in\n", r.stderr
    out = exec_with_tty(stack, cid, "sh", "-c", "tty; echo tty-ok")
    assert "/dev/pts/" in out and "tty-ok" in out
    stats = json.loads(stack.ok("stats", "-o", "json", cid))["stats"][0]
    assert int(stats["memory"]["workingSetBytes"]["value"]) > 0
    assert "usageCoreNanoSeconds" in stats["cpu"]
    stack.ok("stop", cid)
    assert stack.inspect(cid)["status"]["state"] == "CONTAINER_EXITED"
    stack.ok("rm", cid)
    stack.ok("stopp", pod)
    stack.ok("rmp", pod)
    assert stack.env.crictl("inspectp", pod).returncode != 0


def test_exit_code_is_reported(stack):
    pod = stack.pod("exitcode")
    cid = stack.container(pod, "exitcode", "c", ["sh", "-c", "exit 7"])
    info = stack.wait_state(cid, "CONTAINER_EXITED")
    assert info["status"]["state"] == "CONTAINER_EXITED"
    assert info["status"]["exitCode"] == 7
    stack.ok("rmp", "-f", pod)


def test_two_containers_share_the_pod_network(stack):
    pod = stack.pod("two")
    a = stack.container(pod, "two", "a", ["sleep", "3600"])
    b = stack.container(pod, "two", "b", ["sleep", "3600"])
    net_a = stack.ok("exec", a, "readlink", "/proc/self/ns/net")
    net_b = stack.ok("exec", b, "readlink", "/proc/self/ns/net")
    assert net_a == net_b and net_a.startswith("net:[")
    # A server in one container is reachable from the other on localhost.
    stack.ok("exec", a, "sh", "-c", "mkdir -p /www && echo shared-net > /www/index.html && "
             "httpd -p 8080 -h /www")
    assert stack.ok("exec", b, "wget", "-qO-", "http://127.0.0.1:8080/") == "shared-net"
    # hostname and IPC are the pod's too
    assert stack.ok("exec", a, "readlink", "/proc/self/ns/uts") == \
        stack.ok("exec", b, "readlink", "/proc/self/ns/uts")
    stack.ok("rmp", "-f", pod)


def test_bad_requests_get_clear_errors(stack):
    r = stack.env.crictl("create", "0" * 64, str(stack.work / "nope.json"),
                         str(stack.work / "nope.json"))
    assert r.returncode != 0
    pod = stack.pod("bad")
    r = stack.env.crictl("exec", "f" * 64, "true")
    assert r.returncode != 0 and "not found" in (r.stdout + r.stderr).lower()
    # A container whose command does not exist fails to start with the runtime's reason,
    # and the pod keeps working.
    cid = stack.container(pod, "bad", "missing", ["/does/not/exist"], start=False)
    r = stack.env.crictl("start", cid)
    assert r.returncode != 0 and "exist" in (r.stdout + r.stderr)
    ok = stack.container(pod, "bad", "ok", ["sleep", "3600"])
    assert stack.ok("exec", ok, "echo", "alive") == "alive"
    stack.ok("rmp", "-f", pod)


def test_sandboxer_crash_is_recovered(stack):
    pod = stack.pod("recover")
    keep = stack.container(pod, "recover", "keep", ["sleep", "3600"])
    dies = stack.container(pod, "recover", "dies", ["sleep", "3600"])
    dies_pid = stack.inspect(dies)["info"]["pid"]
    stack.sandboxer.kill9()
    os.kill(dies_pid, signal.SIGKILL)  # exits while the sandboxer is down
    time.sleep(0.3)
    stack.sandboxer.start()
    info = stack.wait_state(dies, "CONTAINER_EXITED")
    assert info["status"]["state"] == "CONTAINER_EXITED"
    assert info["status"]["exitCode"] == 137
    assert stack.ok("exec", keep, "echo", "still-here") == "still-here"
    stack.ok("stop", keep)
    stack.ok("rmp", "-f", pod)


def count_state(stack):
    sb = stack.sandboxer.pid()
    fds = len(os.listdir(f"/proc/{sb}/fd"))
    threads = len(os.listdir(f"/proc/{sb}/task"))
    mine = str(stack.sandboxer.dir)
    holders = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        holders += "kuasar-holder" in cmdline and mine in cmdline
    mounts = sum(1 for line in open("/proc/self/mountinfo") if str(stack.sandboxer.dir) in line)
    cgroups = len(list(pathlib.Path("/sys/fs/cgroup/memory/kuasar").glob("kuasar-*")))
    return {"fds": fds, "threads": threads, "holders": holders, "mounts": mounts, "cgroups": cgroups}


def test_create_delete_cycles_leak_nothing(stack):
    # Warm up once so lazily created threads and connections exist before the baseline.
    pod = stack.pod("warm")
    stack.container(pod, "warm", "c", ["true"])
    stack.ok("rmp", "-f", pod)
    before = count_state(stack)
    for i in range(50):
        pod = stack.pod(f"cycle{i}")
        stack.container(pod, f"cycle{i}", "c", ["sh", "-c", "echo x"])
        stack.ok("stopp", pod)
        stack.ok("rmp", pod)
    time.sleep(0.5)
    after = count_state(stack)
    assert after == before, f"before {before} after {after}"
    assert list((stack.sandboxer.state_dir / "sandboxes").iterdir()) == []
    assert list((stack.sandboxer.state_dir / "records").glob("*.json")) == []


# critest v1.37.0 on this machine (docs/compat.md): containerd's own runc shim passes 106 and
# fails 2 (an upstream-pinned image digest; busybox's built-in ls defeats MaskedPaths); the
# kuasar runc sandboxer must pass at least as many and fail nothing else.
KUASAR_CRITEST_BASELINE_PASSED = 106
KNOWN_ENVIRONMENT_FAILURES = {
    "[k8s.io] Security Context bucket runtime should support MaskedPaths",
    "[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]",
}


@pytest.mark.critest
def test_critest_against_kuasar_runc(kuasar_bin, tmp_path):
    from test_containerd_env import _count, _shm_ids
    shm_before = _shm_ids()
    with Stack(kuasar_bin("kuasar-sandboxer").parent, tmp_path) as s:
        report = tmp_path / "critest.json"
        cmd = s.env.critest_command("--runtime-handler", HANDLER, "--ginkgo.no-color",
                                    f"--ginkgo.json-report={report}")
        with open(tmp_path / "critest.log", "w") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path, timeout=1800)
        sandboxer_log = s.sandboxer.tail_log(40)
    for shmid in _shm_ids() - shm_before:
        subprocess.run(["ipcrm", "-m", shmid], capture_output=True)
    assert report.exists(), (tmp_path / "critest.log").read_text()[-3000:]
    counts = _count(report)
    print(f"critest kuasar-runc: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    unexpected = set(counts["failed_specs"]) - KNOWN_ENVIRONMENT_FAILURES
    assert not unexpected, f"{unexpected}\n{sandboxer_log}"
    assert counts["passed"] >= KUASAR_CRITEST_BASELINE_PASSED
