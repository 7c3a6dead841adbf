"""The wasm sandboxer end to end under real containerd 2.x, driven with crictl as a kubelet
would: pods are kuasar holders, each container is a kuasar-wasm-run process running a WASI
module from an OCI image (fixtures/wasm) with Wasmtime, the Task API is served by the one
sandboxer process. Also: 100 wasm pods started in parallel, with the time it took and the
sandboxer's PSS before and after (docs/wasm.md quotes these numbers)."""
import json
import os
import pathlib
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.containerd_env import ROOT, ContainerdEnv, images_dir, missing_requirements
from support.sandboxer_proc import SandboxerProcess

HANDLER = "kuasar-wasm"
WASM_IMAGE = "docker.io/kuasar/wasm-testinit:fixture"
IMAGE_BUILDER = ROOT / "fixtures" / "wasm" / "build-wasm-images.sh"
WASMTIME_LIB = pathlib.Path(os.environ.get("KUASAR_WASMTIME_DIR", "/opt/kuasar-wasm")) / "lib" / "libwasmtime.so"


def _wasm_missing():
    why = missing_requirements()
    if not WASMTIME_LIB.exists():
        why.append(f"Wasmtime C API not installed at {WASMTIME_LIB} (run ci/install-wasm-deps)")
    if subprocess.run(["sh", "-c", "command -v wat2wasm"], capture_output=True).returncode != 0:
        why.append("wat2wasm missing (apt-get install wabt)")
    return why


_why = _wasm_missing()
pytestmark = [pytest.mark.containerd, pytest.mark.skipif(bool(_why), reason="; ".join(_why))]


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def pids_named(name: str, marker: str):
    """Pids whose argv[0] ends with `name` and whose command line contains `marker`."""
    out = []
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{e}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].decode(errors="replace").endswith(name) and \
                marker.encode() in b"\0".join(argv):
            out.append(int(e))
    return out


class Stack:
    """containerd + the wasm sandboxer, wired as docs/wasm.md describes."""

    def __init__(self, bin_dir, work):
        self.work = work
        (work / "sb").mkdir()
        self.sandboxer = SandboxerProcess(bin_dir, "wasm", work_dir=str(work / "sb"),
                                          extra_config=f'[wasm]\nlibrary = "{WASMTIME_LIB}"\n')
        self.env = ContainerdEnv(sandboxer_name=HANDLER, sandboxer_socket=self.sandboxer.socket,
                                 handler=HANDLER)

    def __enter__(self):
        self.env.start()
        self.sandboxer.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
        self.sandboxer.start()
        out = images_dir()
        subprocess.run([str(IMAGE_BUILDER), str(out)], check=True)
        self.env.import_image(out / "wasm.tar")
        self.env.wait_images([WASM_IMAGE])
        return self

    def __exit__(self, *exc):
        try:
            self.env.crictl("rmp", "-fa", timeout=300)
        finally:
            self.env.stop()
            self.sandboxer.cleanup()

    def ok(self, *args, timeout=120) -> str:
        r = self.env.crictl(*args, timeout=timeout)
        assert r.returncode == 0, (f"crictl {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}\n"
                                   f"--- sandboxer\n{self.sandboxer.tail_log()}\n"
                                   f"--- containerd\n{self.env.tail_log(30)}")
        return r.stdout.strip()

    def pod_config(self, name: str) -> pathlib.Path:
        cfg = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
               "log_directory": str(self.work / "logs" / name), "linux": {}}
        path = self.work / f"{name}.pod.json"
        path.write_text(json.dumps(cfg))
        return path

    def container_config(self, pod_name: str, name: str, args, envs=None, resources=None):
        cfg = {"metadata": {"name": name}, "image": {"image": WASM_IMAGE}, "args": list(args),
               "envs": [{"key": k, "value": v} for k, v in (envs or {}).items()],
               "log_path": f"{name}.log", "linux": {"resources": resources or {}}}
        path = self.work / f"{pod_name}.{name}.json"
        path.write_text(json.dumps(cfg))
        return path

    def pod(self, name: str) -> str:
        return self.ok("runp", "--runtime", HANDLER, str(self.pod_config(name)))

    def container(self, pod_id, pod_name, name, args, start=True, **kw) -> str:
        cid = self.ok("create", pod_id, str(self.container_config(pod_name, name, args, **kw)),
                      str(self.work / f"{pod_name}.pod.json"))
        if start:
            self.ok("start", cid)
        return cid

    def inspect(self, cid: str) -> dict:
        return json.loads(self.ok("inspect", cid))

    def wait_state(self, cid: str, state: str, timeout=30) -> dict:
        deadline = time.time() + timeout
        while True:
            info = self.inspect(cid)
            if info["status"]["state"] == state or time.time() > deadline:
                return info
            time.sleep(0.1)

    def logs(self, cid: str) -> str:
        r = self.env.crictl("logs", cid)
        return r.stdout + r.stderr


@pytest.fixture(scope="module")
def stack(kuasar_bin, tmp_path_factory):
    kuasar_bin("kuasar-wasm-run")
    bin_dir = kuasar_bin("kuasar-sandboxer").parent
    with Stack(bin_dir, tmp_path_factory.mktemp("wasm")) as s:
        yield s


def test_module_prints_args_and_env(stack):
    pod = stack.pod("hello")
    status = json.loads(stack.ok("inspectp", pod))["status"]
    assert status["state"] == "SANDBOX_READY"
    cid = stack.container(pod, "hello", "c", ["hello", "from", "crictl"],
                          envs={"GREETING": "wasm-pod"})
    info = stack.wait_state(cid, "CONTAINER_EXITED")
    assert info["status"]["exitCode"] == 0, stack.logs(cid)
    assert stack.logs(cid) == "hello from wasm\nargs: from crictl\nGREETING=wasm-pod\n"
    stack.ok("rmp", "-f", pod)


def test_exit_code_and_files_from_the_image(stack):
    pod = stack.pod("files")
    code = stack.container(pod, "files", "exit", ["exit", "7"])
    assert stack.wait_state(code, "CONTAINER_EXITED")["status"]["exitCode"] == 7
    cat = stack.container(pod, "files", "cat", ["cat", "/etc/msg"])
    assert stack.wait_state(cat, "CONTAINER_EXITED")["status"]["exitCode"] == 0
    assert stack.logs(cat) == "hello from the wasm image\n"
    stack.ok("rmp", "-f", pod)


def test_stop_kills_a_looping_module(stack):
    pod = stack.pod("loop")
    cid = stack.container(pod, "loop", "spin", ["loop"])
    assert stack.wait_state(cid, "CONTAINER_RUNNING")["status"]["state"] == "CONTAINER_RUNNING"
    pid = stack.inspect(cid)["info"]["pid"]
    assert os.readlink(f"/proc/{pid}/exe").endswith("kuasar-wasm-run")
    stack.ok("stop", "-t", "2", cid)
    info = stack.inspect(cid)
    assert info["status"]["state"] == "CONTAINER_EXITED"
    assert info["status"]["exitCode"] in (137, 143)  # SIGTERM, or SIGKILL after the grace
    # exec has no meaning for a WASI module: a clear error.
    sleeper = stack.container(pod, "loop", "sleeper", ["sleep", "0"])
    r = stack.env.crictl("exec", sleeper, "/testinit.wasm", "hello")
    assert r.returncode != 0 and "not supported" in r.stdout + r.stderr
    stack.ok("rmp", "-f", pod)


def test_memory_limit_fails_the_module_cleanly(stack):
    pod = stack.pod("mem")
    cid = stack.container(pod, "mem", "alloc", ["alloc"],
                          resources={"memory_limit_in_bytes": 16 << 20})
    info = stack.wait_state(cid, "CONTAINER_EXITED")
    assert info["status"]["exitCode"] == 134, stack.logs(cid)  # a trap, not an OOM kill
    assert "memory.grow failed after 15 MiB" in stack.logs(cid)
    stack.ok("rmp", "-f", pod)


def test_cpu_quota_holds_a_loop_to_its_share(stack):
    pod = stack.pod("cpu")
    cid = stack.container(pod, "cpu", "spin", ["loop"],
                          resources={"cpu_quota": 20000, "cpu_period": 100000})
    stack.wait_state(cid, "CONTAINER_RUNNING")
    time.sleep(0.5)

    def usage():
        st = json.loads(stack.ok("stats", "-o", "json", cid))["stats"][0]
        return int(st["cpu"]["usageCoreNanoSeconds"]["value"]), time.monotonic()

    u0, t0 = usage()
    time.sleep(2)
    u1, t1 = usage()
    share = (u1 - u0) / 1e9 / (t1 - t0)
    print(f"wasm loop under a 20% CPU quota used {share:.2f} CPU")
    assert 0.05 < share < 0.35, share
    stack.ok("rmp", "-f", pod)


def test_bad_module_is_a_clear_error(stack):
    pod = stack.pod("bad")
    cid = stack.container(pod, "bad", "works", ["exit", "3"], start=False)
    # The image's entrypoint, overridden by a module that is not in the image.
    cfg = stack.container_config("bad", "missing", [])
    doc = json.loads(cfg.read_text())
    doc["command"] = ["/nope.wasm"]
    cfg.write_text(json.dumps(doc))
    missing = stack.ok("create", pod, str(cfg), str(stack.work / "bad.pod.json"))
    r = stack.env.crictl("start", missing)
    assert r.returncode != 0 and "/nope.wasm not found" in r.stdout + r.stderr
    # The pod still runs modules.
    stack.ok("start", cid)
    assert stack.wait_state(cid, "CONTAINER_EXITED")["status"]["exitCode"] == 3
    stack.ok("rmp", "-f", pod)


def test_100_pods_in_parallel(stack, capsys):
    # Warm up: the first pod pays for lazily made threads, connections and page cache.
    warm = stack.pod("warm")
    stack.container(warm, "warm", "c", ["sleep", "0"])
    stack.ok("rmp", "-f", warm)
    sb = stack.sandboxer.pid()
    pss_before = pss_kib(sb)
    n = 100
    jobs = []
    for i in range(n):
        name = f"par{i}"
        jobs.append((stack.pod_config(name), stack.container_config(name, "c", ["sleep", "0"])))

    def run(job):
        pod_cfg, ctr_cfg = job
        t = time.monotonic()
        r = stack.env.crictl("run", "--no-pull", "--runtime", HANDLER, str(ctr_cfg), str(pod_cfg),
                             timeout=600)
        return r, time.monotonic() - t

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(run, jobs))
    total = time.monotonic() - start
    failed = [r.stderr for r, _ in results if r.returncode != 0]
    assert not failed, f"{len(failed)} failed, first: {failed[0]}\n{stack.sandboxer.tail_log()}"
    # Every module is running (sleeping in poll_oneoff) in its own runner.
    ps = json.loads(stack.ok("ps", "-o", "json", "--state", "Running"))["containers"]
    assert len(ps) >= n
    pss_after = pss_kib(sb)
    marker = str(stack.sandboxer.state_dir)
    runners = pids_named("kuasar-wasm-run", marker)
    holders = pids_named("kuasar-holder", marker)
    runner_pss = [pss_kib(p) for p in runners]
    holder_pss = [pss_kib(p) for p in holders]
    lat = sorted(d for _, d in results)
    q = statistics.quantiles(lat, n=100)
    report = {
        "pods": n, "total_s": round(total, 2),
        "per_pod_s": {"p50": round(q[49], 3), "p90": round(q[89], 3), "p99": round(q[98], 3)},
        "sandboxer_pss_kib": {"before": pss_before, "after": pss_after,
                              "per_pod": round((pss_after - pss_before) / n, 1)},
        "runner_pss_kib": {"count": len(runners),
                           "mean": round(statistics.mean(runner_pss), 1) if runner_pss else 0},
        "holder_pss_kib": {"count": len(holders),
                           "mean": round(statistics.mean(holder_pss), 1) if holder_pss else 0},
    }
    out = pathlib.Path(os.environ.get("KUASAR_BUILD_DIR", ROOT / "build" / "ci")).parent / "test-logs"
    out.mkdir(parents=True, exist_ok=True)
    (out / "wasm-100-pods.json").write_text(json.dumps(report, indent=1) + "\n")
    with capsys.disabled():
        print(f"\nwasm sandboxer, 100 pods in parallel: {json.dumps(report)}")
    assert len(runners) >= n
    stack.ok("rmp", "-fa", timeout=600)
    assert pids_named("kuasar-wasm-run", marker) == []
