"""200 pod create/delete cycles from Python leave nothing behind: no process, fd or thread in
this process or in the sandboxer, no holder, mount, network namespace, state file or
cgroup."""
import os
import pathlib

import pytest

pytestmark = pytest.mark.needs_root

CYCLES = int(os.environ.get("KUASAR_LEAK_CYCLES", "200"))


def children_of(pid):
    out = []
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{e}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(e))
    return out


def snapshot(sb):
    mine = str(sb.dir)
    holders = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        holders += "kuasar-holder" in cmd and mine in cmd
    # This test's cgroups only (other runs on the machine have theirs): the pods' own
    # (kuasar-<pod id>) and their containers' (kuasar-py/<sandboxer dir>-<pod>.<name>).
    cgroups = 0
    for root in pathlib.Path("/sys/fs/cgroup").iterdir():
        for pattern in ("kuasar/kuasar-leak-*", "kuasar/kuasar-warm-*",
                        f"kuasar-py/{sb.dir.name}-*"):
            cgroups += sum(1 for p in root.glob(pattern) if p.is_dir())
    return {
        "py_fds": len(os.listdir("/proc/self/fd")),
        "py_threads": len(os.listdir("/proc/self/task")),
        "py_children": len(children_of(os.getpid())),
        "sandboxer_fds": len(os.listdir(f"/proc/{sb.pid}/fd")),
        "sandboxer_threads": len(os.listdir(f"/proc/{sb.pid}/task")),
        "sandboxer_children": len(children_of(sb.pid)),
        "holders": holders,
        "mounts": sum(1 for line in open("/proc/self/mountinfo") if mine in line),
        "records": len(list((sb.state_dir / "records").glob("*.json")))
        if (sb.state_dir / "records").is_dir() else 0,
        "pod_dirs": len(list((sb.dir / "pods").iterdir())) if (sb.dir / "pods").is_dir() else 0,
        "cgroups": cgroups,
    }


def cycle(sb, i, with_container, namespaces):
    with sb.pod(f"leak-{i}") as pod:
        namespaces.append(pod.netns.path)
        if with_container:
            c = pod.run(["/testinit", "print", str(i)])
            assert c.wait(30) == 0 and c.logs() == f"{i}\n"


def test_pod_cycles_leak_nothing(sandboxer):
    # Warm up: lazily made threads, channels and caches exist before the baseline.
    namespaces = []
    for i in range(3):
        cycle(sandboxer, f"warm-{i}", True, namespaces)
    before = snapshot(sandboxer)
    for i in range(CYCLES):
        cycle(sandboxer, i, i % 10 == 0, namespaces)
    after = snapshot(sandboxer)
    assert after == before, f"before {before}\nafter  {after}"
    assert len(set(namespaces)) == CYCLES + 3
    assert [n for n in namespaces if os.path.exists(n)] == []
    assert before["holders"] == 0 and before["records"] == 0 and before["pod_dirs"] == 0
