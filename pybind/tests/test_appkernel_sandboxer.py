"""The App Kernel sandboxer end to end under real containerd 2.x, driven with crictl: each
pod is a kuasar holder (the pod's network namespace) plus one gVisor Sentry (a runsc sandbox
container), and every container of the pod joins that Sentry (docs/appkernel.md). Skips with
the exact reason when runsc is missing or cannot run a container here (probed once)."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from support.containerd_env import BUSYBOX_IMAGE, ContainerdEnv, missing_requirements
from support.sandboxer_proc import SandboxerProcess

HANDLER = "kuasar-appkernel"
TOOLS = pathlib.Path(os.environ.get("KUASAR_TOOLS", "/opt/kuasar-tools/bin"))
RUNSC = os.environ.get("KUASAR_RUNSC") or str(TOOLS / "runsc")


def runsc_problem() -> str:
    """'' if runsc runs a trivial container here, else why not (its own words)."""
    if not os.access(RUNSC, os.X_OK):
        return f"runsc not installed at {RUNSC} (run ci/install-go-tools)"
    work = tempfile.mkdtemp(prefix="ak-probe.", dir="/tmp")
    try:
        # TMPDIR: `runsc do` makes its bundle (and a null-netns pin) there, not in /tmp.
        r = subprocess.run([RUNSC, "--root", work + "/root", "--network=none",
                            "--debug-log", work + "/log/", "do", "/bin/true"],
                           cwd=work, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env={**os.environ, "TMPDIR": work})
        if r.returncode != 0:
            # The sandbox's own reason is in its log ("FATAL ERROR: ..."), not on stderr.
            fatal = [line.split("FATAL ERROR:", 1)[1].strip()
                     for f in sorted(pathlib.Path(work, "log").glob("*"))
                     for line in f.read_text(errors="replace").splitlines() if "FATAL ERROR:" in line]
            why = fatal[0] if fatal else (r.stderr or r.stdout).strip()[-400:]
            return f"runsc cannot run a container here: {why}"
        return ""
    except subprocess.TimeoutExpired:
        return "runsc cannot run a container here: `runsc do /bin/true` timed out after 60 s"
    finally:
        for pin in pathlib.Path(work).glob("**/null-netns"):
            while subprocess.run(["umount", "-l", str(pin)], capture_output=True).returncode == 0:
                pass
        shutil.rmtree(work, ignore_errors=True)


def _missing():
    why = missing_requirements()
    if not why:
        p = runsc_problem()
        if p:
            why.append(p)
    return why


_why = _missing()
pytestmark = [pytest.mark.containerd, pytest.mark.skipif(bool(_why), reason="; ".join(_why))]


class Stack:
    """containerd + the appkernel sandboxer."""

    def __init__(self, bin_dir, work):
        self.work = work
        (work / "sb").mkdir()
        self.sandboxer = SandboxerProcess(bin_dir, "appkernel", work_dir=str(work / "sb"),
                                          extra_config=f'[appkernel]\nruntime = "{RUNSC}"\n')
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

    def pod(self, name: str) -> str:
        cfg = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
               "log_directory": str(self.work / "logs" / name), "linux": {}}
        path = self.work / f"{name}.pod.json"
        path.write_text(json.dumps(cfg))
        return self.ok("runp", "--runtime", HANDLER, str(path))

    def container(self, pod_id, pod_name, name, args, start=True) -> str:
        cfg = {"metadata": {"name": name}, "image": {"image": BUSYBOX_IMAGE}, "command": list(args),
               "log_path": f"{name}.log", "linux": {}}
        path = self.work / f"{pod_name}.{name}.json"
        path.write_text(json.dumps(cfg))
        cid = self.ok("create", pod_id, str(path), str(self.work / f"{pod_name}.pod.json"))
        if start:
            self.ok("start", cid)
        return cid

    def wait_state(self, cid: str, state: str, timeout=30) -> dict:
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
    kuasar_bin("kuasar-appkernel-wait")
    kuasar_bin("kuasar-appkernel-pause")
    bin_dir = kuasar_bin("kuasar-sandboxer").parent
    # A short dir: the pods' unix sockets live under it (107-byte limit).
    work = pathlib.Path(tempfile.mkdtemp(prefix="ak.", dir="/tmp"))
    try:
        with Stack(bin_dir, work) as s:
            yield s
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sentry_pids(pod_id: str):
    out = []
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{e}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0] == b"runsc-sandbox" and argv[-2:-1] != [] and pod_id.encode() in argv:
            out.append(int(e))
    return out


def test_busybox_runs_under_gvisor(stack):
    t0 = time.time()
    pod = stack.pod("ak1")
    pod_ms = (time.time() - t0) * 1000
    assert len(sentry_pids(pod)) == 1, "one Sentry per pod"
    cid = stack.container(pod, "ak1", "c", ["sh", "-c", "echo hello from $(uname -r); exit 3"])
    info = stack.wait_state(cid, "CONTAINER_EXITED")
    assert info["status"]["exitCode"] == 3, info["status"]
    # uname -r inside gVisor reports the Sentry's emulated kernel, not the host's.
    assert "gvisor" in stack.logs(cid) or "4.4.0" in stack.logs(cid) or \
        stack.logs(cid).startswith("hello from "), stack.logs(cid)
    assert os.uname().release not in stack.logs(cid), stack.logs(cid)
    print(f"appkernel pod start {pod_ms:.0f} ms")


def test_exec_logs_stop_rmp_in_one_sentry(stack):
    pod = stack.pod("ak2")
    sleeper = stack.container(pod, "ak2", "sleeper", ["sleep", "1000"])
    second = stack.container(pod, "ak2", "second", ["sh", "-c", "echo second; sleep 1000"])
    assert len(sentry_pids(pod)) == 1, "both containers share the pod's Sentry"
    r = stack.env.crictl("exec", sleeper, "sh", "-c", "echo exec-out; exit 5")
    assert "exec-out" in r.stdout and "exit code 5" in r.stderr, (r.returncode, r.stdout, r.stderr)
    deadline = time.time() + 10
    while "second" not in stack.logs(second) and time.time() < deadline:
        time.sleep(0.1)
    assert "second" in stack.logs(second)
    stack.ok("stop", sleeper)
    info = stack.wait_state(sleeper, "CONTAINER_EXITED")
    assert info["status"]["exitCode"] in (137, 143), info["status"]
    stack.ok("stopp", pod)
    stack.ok("rmp", pod)
    assert sentry_pids(pod) == [], "rmp leaves no Sentry behind"
