"""Crash safety: the sandboxer is SIGKILLed at every step of Create/Start/Stop/Shutdown
(KUASAR_FAULT_POINT makes it kill itself there), restarted, and every sandbox must end
fully running and recovered, or consistently created/stopped, or fully gone, with nothing
leaked once it is shut down. The table in docs/reliability.md comes from this test."""
import json
import os
import pathlib
import subprocess

import pytest

# (fault point, the lifecycle steps that reach it)
POINTS = [
    ("atomic_file.before_fsync", ["create"]),
    ("create.after_record", ["create"]),
    ("create.after_backend", ["create"]),
    ("start.after_record", ["create", "start"]),
    ("runc.start.after_holder", ["create", "start"]),
    ("start.after_backend", ["create", "start"]),
    ("stop.after_record", ["create", "start", "stop"]),
    ("stop.after_backend", ["create", "start", "stop"]),
    ("shutdown.after_stop", ["create", "start", "shutdown"]),
    ("shutdown.after_cleanup", ["create", "start", "stop", "shutdown"]),
]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, cgroups)")


def ctl(kuasar_bin, sb, *args):
    return subprocess.run([str(kuasar_bin("kuasarctl")), "-a", sb.socket, "--timeout", "10",
                           *args], capture_output=True, text=True, timeout=60)


def holders_of(sb):
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        n += "kuasar-holder" in cmd and str(sb.dir) in cmd
    return n


def leftovers(sb, sid):
    st = sb.state_dir
    out = {}
    if holders_of(sb):
        out["holders"] = holders_of(sb)
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


@pytest.mark.parametrize("point,steps", POINTS, ids=[p for p, _ in POINTS])
def test_crash_at_each_step_recovers_or_cleans(kuasar_bin, point, steps, tmp_path):
    from support.sandboxer_proc import SandboxerProcess
    sid = "crash-" + point.replace(".", "-").replace("_", "-")
    sb = SandboxerProcess(kuasar_bin("kuasar-sandboxer").parent, "runc",
                          env={"KUASAR_FAULT_POINT": point})
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
        sb.env = {}
        sb.start()
        status = ctl(kuasar_bin, sb, "status", sid)
        if status.returncode != 0:
            assert "NOT_FOUND" in status.stderr
            outcome = "gone"
        else:
            state = json.loads(status.stdout)["state"]
            if state == "SANDBOX_READY":
                assert holders_of(sb) >= 1, "ready but no holder"
                outcome = "running, recovered"
            else:
                assert holders_of(sb) == 0, "not ready yet a holder runs"
                info = json.loads(status.stdout).get("info", {})
                outcome = info.get("kuasar.state", "not ready")
            ctl(kuasar_bin, sb, "stop", sid)
            r = ctl(kuasar_bin, sb, "shutdown", sid)
            assert r.returncode == 0, r.stderr
        assert leftovers(sb, sid) == {}, f"after {point}: {leftovers(sb, sid)}"
        row = {"point": point, "crashed_in": crashed_at, "outcome": outcome}
        print("CRASH-TABLE", json.dumps(row))
        (tmp_path / "row.json").write_text(json.dumps(row))
    finally:
        sb.cleanup()
