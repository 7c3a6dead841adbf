"""Soak: pod create/delete churn on the fake VMM (Cloud Hypervisor personality, no modelled
latency) with random faults injected into about one pod in five (the VMM crashes, the
agent is killed, the agent channel drops, or its API refuses vm.boot), sampling the
sandboxer's fds, threads, RSS and children as it goes. At the end they must be back where
they started and nothing of any pod may be left. KUASAR_SOAK_CYCLES sets the length (CI:
200; docs/reliability.md quotes a 1,000-cycle run); a run stops after 10 minutes."""
import os
import random
import time

import pytest

import kuasar
from kuasar.faults import FAULTS_ENV, FakeVmmFaults
from test_py_leaks import children_of

pytestmark = pytest.mark.needs_root

CYCLES = int(os.environ.get("KUASAR_SOAK_CYCLES", "200"))
BUDGET_S = 600


def sample(sb):
    with open(f"/proc/{sb.pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return {"fds": len(os.listdir(f"/proc/{sb.pid}/fd")),
            "threads": len(os.listdir(f"/proc/{sb.pid}/task")),
            "children": len(children_of(sb.pid)), "rss_kib": rss}


def vmm_processes(sb) -> int:
    mine = str(sb.dir).encode()
    n = 0
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{e}/cmdline", "rb").read()
        except OSError:
            continue
        n += (b"fake-vmm" in cmd or b"vmm-task" in cmd or b"cloud-hypervisor" in cmd) and mine in cmd
    return n


def one_cycle(sb, i, rng, outcomes, faults_file):
    """One pod made and removed; the fake VMM it starts reads `faults_file` (the plan for
    this pod, written just before)."""
    fault = rng.choice([None] * 16 + ["crash", "kill_agent", "drop_channel", "refuse_boot"])
    faults = FakeVmmFaults()
    if fault == "refuse_boot":
        faults.refuse("PUT", "/api/v1/vm.boot", status=500, message="soak")
    elif fault == "crash":
        faults.crash_after(rng.randint(0, 300))
    elif fault == "kill_agent":
        faults.kill_agent_after(rng.randint(0, 300))
    elif fault == "drop_channel":
        faults.drop_channel_after(rng.randint(0, 300))
    faults.write(faults_file)
    try:
        with sb.pod(f"soak-{i}", network="host") as pod:
            if rng.random() < 0.2:
                pod.status(verbose=True)
        outcomes[fault or "ok"] = outcomes.get(fault or "ok", 0) + 1
    except kuasar.KuasarError as e:
        # A fault may fail the pod's start (a clear error) or end it early: either way it
        # must be gone afterwards.
        outcomes[f"{fault}:error"] = outcomes.get(f"{fault}:error", 0) + 1
        if fault is None:
            raise AssertionError(f"cycle {i} failed without a fault: {e}")


def test_churn_with_random_faults_leaves_the_sandboxer_flat(tmp_path):
    try:
        why = kuasar.sandboxer.probe("vmm", backend="cloud-hypervisor", fake_vmm=True)
    except ImportError as e:
        why = str(e)
    if why:
        pytest.skip(why)
    faults_file = tmp_path / "faults.toml"
    FakeVmmFaults().write(faults_file)
    env = {"KUASAR_FAKE_VMM_MODEL": str(kuasar.paths.fixtures_dir() / "sim" / "ci-fast.toml"),
           FAULTS_ENV: str(faults_file)}
    rng = random.Random(int(os.environ.get("KUASAR_SOAK_SEED", "1")))
    outcomes = {}
    with kuasar.Sandboxer("vmm", backend="cloud-hypervisor", fake_vmm=True, env=env) as sb:
        for i in range(5):  # warm-up: lazily made threads and caches
            one_cycle(sb, f"warm-{i}", random.Random(i), {}, faults_file)
        before = sample(sb)
        samples = [before]
        start = time.monotonic()
        done = 0
        for i in range(CYCLES):
            if time.monotonic() - start > BUDGET_S:
                break
            one_cycle(sb, i, rng, outcomes, faults_file)
            done += 1
            if i % 50 == 0:
                samples.append(sample(sb))
        time.sleep(1)  # exits reported on the io thread settle
        after = sample(sb)
        elapsed = time.monotonic() - start
        print(f"\nsoak: {done} cycles in {elapsed:.0f} s; outcomes {outcomes}")
        print(f"soak: before {before} after {after}; max fds {max(s['fds'] for s in samples)}, "
              f"max threads {max(s['threads'] for s in samples)}, "
              f"max rss {max(s['rss_kib'] for s in samples)} KiB")
        assert done >= min(CYCLES, 100), "the soak ran too few cycles in its time budget"
        assert after["fds"] == before["fds"], (before, after)
        assert after["threads"] == before["threads"], (before, after)
        assert after["children"] == 0 and vmm_processes(sb) == 0
        # RSS may settle a little higher (allocator arenas); growth per cycle is the leak.
        assert after["rss_kib"] - before["rss_kib"] < 8 * 1024, (before, after)
        assert list((sb.state_dir / "records").glob("*.json")) == []
        assert sum(v for k, v in outcomes.items() if k != "ok" and not k.endswith(":error")) + \
            sum(v for k, v in outcomes.items() if k.endswith(":error")) > 0, "no fault was injected"
