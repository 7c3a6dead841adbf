"""Crash safety: the sandboxer is SIGKILLed at every step of Create/Start/Stop/Shutdown
(KUASAR_FAULT_POINT makes it kill itself there), restarted, and every sandbox must end
fully running and recovered, or consistently created/stopped, or fully gone, with nothing
leaked once it is shut down. Runs for the runc sandboxer and for the vmm sandboxer on the
fake VMM (Cloud Hypervisor: hybrid vsock; QEMU: virtio-serial through the TaskBridge).
The tables in docs/reliability.md come from this test."""
import json
import os
import pathlib
import subprocess

import pytest

# The controller's points, reached by every kind: (fault point, the steps that reach it).
CONTROLLER_POINTS = [
    ("atomic_file.before_fsync", ["create"]),
    ("create.after_record", ["create"]),
    ("create.after_backend", ["create"]),
    ("start.after_record", ["create", "start"]),
    ("start.after_backend", ["create", "start"]),
    ("stop.after_record", ["create", "start", "stop"]),
    ("stop.after_backend", ["create", "start", "stop"]),
    ("shutdown.after_stop", ["create", "start", "shutdown"]),
    ("shutdown.after_cleanup", ["create", "start", "stop", "shutdown"]),
]
RUNC_POINTS = [("runc.start.after_holder", ["create", "start"])]
VMM_POINTS = [
    ("vmm.start.before_launch", ["create", "start"]),
    ("vmm.start.after_launch", ["create", "start"]),
    ("vmm.start.after_agent_setup", ["create", "start"]),
    ("vmm.stop.after_agent_shutdown", ["create", "start", "stop"]),
    ("vmm.cleanup.after_vm_kill", ["create", "start", "stop", "shutdown"]),
]
# (kind, fake-VMM driver or None, point, steps)
CASES = [("runc", None, p, s) for p, s in CONTROLLER_POINTS + RUNC_POINTS] + [
    ("vmm", driver, p, s) for driver in ("cloud-hypervisor", "qemu")
    for p, s in CONTROLLER_POINTS + VMM_POINTS]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, cgroups)")


def ctl(kuasar_bin, sb, *args):
    return subprocess.run([str(kuasar_bin("kuasarctl")), "-a", sb.socket, "--timeout", "10",
                           *args], capture_output=True, text=True, timeout=60)


def pod_processes(sb):
    """What runs a pod of this sandboxer: holders (runc), the fake VMM and its guest agent
    (vmm); recognised by the sandboxer's temp dir on their command line."""
    names = ("kuasar-holder", "fake-vmm", "vmm-task", "cloud-hypervisor", "qemu-system")
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        n += any(name in cmd for name in names) and str(sb.dir) in cmd
    return n


def leftovers(sb, sid):
    st = sb.state_dir
    out = {}
    if pod_processes(sb):
        out["processes"] = pod_processes(sb)
    for sub in ("sandboxes", "s"):
        d = st / sub
        if d.exists() and any(d.iterdir()):
            out[sub] = [p.name for p in d.iterdir()]
    recs = list((st / "records").glob("*.json")) if (st / "records").exists() else []
    if recs:
        out["records"] = [p.name for p in recs]
    mounts = [line.split()[4] for line in open("/proc/self/mountinfo") if str(sb.dir) in line]
    if mounts:
        out["mounts"] = mounts
    cg = pathlib.Path(f"/sys/fs/cgroup/memory/kuasar/kuasar-{sid}")
    if cg.exists():
        out["cgroup"] = str(cg)
    return out


@pytest.mark.parametrize("kind,driver,point,steps", CASES,
                         ids=[f"{k}-{d}-{p}" if d else f"{k}-{p}" for k, d, p, _ in CASES])
def test_crash_at_each_step_recovers_or_cleans(kuasar_bin, kind, driver, point, steps, tmp_path):
    from support.sandboxer_proc import SandboxerProcess
    sid = "crash-" + point.replace(".", "-").replace("_", "-")
    bin_dir = kuasar_bin("kuasar-sandboxer").parent
    extra, env = "", {"KUASAR_FAULT_POINT": point}
    if kind == "vmm":
        import kuasar
        from kuasar.sandboxer import fake_vmm_toml
        if not (bin_dir / "fake-vmm").is_dir():
            pytest.skip(f"no fake VMM links in {bin_dir} (build the kuasar-fake-vmm target)")
        extra = fake_vmm_toml(bin_dir, driver, tmp_path, agent_timeout_ms=15000)
        env["KUASAR_FAKE_VMM_MODEL"] = str(kuasar.paths.fixtures_dir() / "sim" / "ci-fast.toml")
    sb = SandboxerProcess(bin_dir, kind, env=env, extra_config=extra)
    try:
        sb.start()
        crashed_at = None
        for step in steps:
            r = ctl(kuasar_bin, sb, step, sid)
            if sb.proc.poll() is not None:
                crashed_at = step
                break
            assert r.returncode == 0, f"{step}: {r.stderr}\n{sb.tail_log()}"
        assert crashed_at is not None, f"fault point {point} was never reached\n{sb.tail_log()}"
        assert sb.proc.returncode == -9
        sb.env = {k: v for k, v in env.items() if k != "KUASAR_FAULT_POINT"}
        sb.start()
        status = ctl(kuasar_bin, sb, "status", sid)
        if status.returncode != 0:
            assert "NOT_FOUND" in status.stderr
            outcome = "gone"
        else:
            state = json.loads(status.stdout)["state"]
            if state == "SANDBOX_READY":
                assert pod_processes(sb) >= 1, "ready but nothing of the pod runs"
                outcome = "running, recovered"
            else:
                assert pod_processes(sb) == 0, f"not ready yet {pod_processes(sb)} pod processes run"
                info = json.loads(status.stdout).get("info", {})
                outcome = info.get("kuasar.state", "not ready")
            ctl(kuasar_bin, sb, "stop", sid)
            r = ctl(kuasar_bin, sb, "shutdown", sid)
            assert r.returncode == 0, r.stderr
        assert leftovers(sb, sid) == {}, f"after {point}: {leftovers(sb, sid)}"
        row = {"kind": kind, "driver": driver, "point": point, "crashed_in": crashed_at,
               "outcome": outcome}
        print("CRASH-TABLE", json.dumps(row))
        (tmp_path / "row.json").write_text(json.dumps(row))
    finally:
        sb.cleanup()
