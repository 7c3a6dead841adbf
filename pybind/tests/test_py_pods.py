"""Pods and containers through the package's high-level API, as a user writes them: one
sandboxer per test (the plugin's `sandboxer` and `pod` fixtures), containers from bundles
the package makes over the test rootfs, every sandbox kind that can run here."""
import os
import signal
import time
from pathlib import Path

import pytest

import kuasar

pytestmark = pytest.mark.needs_root

# One entry per sandbox kind and backend; those that cannot run pods here skip, saying why.
KINDS = [
    pytest.param("runc", id="runc"),
    pytest.param({"kind": "vmm", "backend": "qemu"}, id="vmm-qemu"),
    pytest.param({"kind": "vmm", "backend": "cloud-hypervisor", "fake_vmm": True},
                 id="vmm-fake-clh"),
    pytest.param({"kind": "vmm", "backend": "firecracker", "fake_vmm": True}, id="vmm-fake-fc"),
    pytest.param("wasm", id="wasm"),
]


@pytest.mark.parametrize("sandboxer", KINDS, indirect=True)
def test_pod_lifecycle_on_each_sandboxer(sandboxer):
    with sandboxer.pod("life") as pod:
        status = pod.status()
        assert status["state"] == "SANDBOX_READY" and status["sandbox_id"] == "life"
        assert pod.address.startswith("ttrpc+") and pod.pid > 0
        if sandboxer.kind != "wasm":  # wasm containers run WASI modules, not /testinit
            c = pod.run(["/testinit", "print", "hello", "pod"])
            assert c.wait(timeout=60) == 0
            assert c.logs() == "hello pod\n"
            c.remove()
        pod.stop()
        assert pod.status()["state"] == "SANDBOX_NOTREADY"
    with pytest.raises(kuasar.NotFound):
        sandboxer.client.status("life")
    assert not (sandboxer.dir / "pods" / "life").exists()


def test_logs_and_exit_codes(pod):
    out = pod.run(["/testinit", "print", "to", "stdout"], name="out")
    err = pod.run(["/testinit", "stderr", "to", "stderr"], name="err")
    code = pod.run(["/testinit", "exit", "7"], name="code")
    assert (out.wait(30), err.wait(30), code.wait(30)) == (0, 0, 7)
    assert out.logs() == "to stdout\n" and err.logs() == "to stderr\n" and code.logs() == ""
    assert code.state()["status"] == "STOPPED" and code.state()["exit_status"] == 7


def test_exec_gives_output_exit_code_and_stdin(pod):
    c = pod.run(["/testinit", "sleep", "inf"], env={"GREETING": "hi"})
    r = c.exec(["/testinit", "print", "from", "exec"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "from exec\n", "")
    assert c.exec(["/testinit", "stderr", "oops"]).stderr == "oops\n"
    assert c.exec(["/testinit", "exit", "3"]).exit_code == 3
    with pytest.raises(kuasar.FailedPrecondition, match="exit code 3"):
        c.exec(["/testinit", "exit", "3"]).check()
    assert c.exec(["/testinit", "echo-stdin"], input="line one\nline two\n").stdout == \
        "line one\nline two\n"
    assert c.exec(["/testinit", "env", "GREETING"]).stdout == "hi\n"
    assert c.exec(["/testinit", "env", "X"], env={"X": "y"}).stdout == "y\n"


def test_exec_past_its_timeout_is_killed(pod):
    c = pod.run(["/testinit", "sleep", "inf"])
    start = time.monotonic()
    with pytest.raises(kuasar.DeadlineExceeded, match="did not finish"):
        c.exec(["/testinit", "sleep", "inf"], timeout=0.5)
    assert time.monotonic() - start < 10
    assert c.exec(["/testinit", "print", "still", "here"]).stdout == "still here\n"


def test_stats_and_pids(pod):
    c = pod.run(["/testinit", "alloc", "8"])
    c.wait_for_log("allocated")
    stats = c.stats()
    assert stats["type"].startswith("io.containerd.cgroups.v")
    m = stats["metrics"]
    usage = m["memory"]["usage"]["usage"] if "usage" in m["memory"] else m["memory"]["usage"]
    assert int(usage) >= 8 << 20
    assert c.pid in c.pids()


def test_stop_is_sigterm_then_sigkill(pod):
    polite = pod.run(["/testinit", "sleep", "inf"], name="polite")
    stubborn = pod.run(["/testinit", "ignore-term"], name="stubborn")
    stubborn.wait_for_log("ready")
    assert polite.stop(timeout=10) == 128 + signal.SIGTERM
    start = time.monotonic()
    assert stubborn.stop(timeout=0.5) == 128 + signal.SIGKILL
    assert time.monotonic() - start < 10


def test_memory_limit_is_enforced(pod):
    c = pod.run(["/testinit", "alloc", "64"], memory_limit=16 << 20)
    assert c.wait(timeout=30) == 128 + signal.SIGKILL
    assert "allocated" not in c.logs()


def test_containers_share_the_pods_namespaces_and_hostname(sandboxer):
    with sandboxer.pod("shared", hostname="web-1") as pod:
        a = pod.run(["/testinit", "sleep", "inf"], name="a")
        b = pod.run(["/testinit", "sleep", "inf"], name="b")
        for ns in ("net", "uts", "ipc"):
            link = ["readlink", f"/proc/self/ns/{ns}"]
            assert a.exec(link).stdout == b.exec(link).stdout == \
                os.readlink(f"/proc/{pod.pid}/ns/{ns}") + "\n"
        # pid: each container its own (CRI's pid=CONTAINER), init is PID 1 there
        assert a.exec(["readlink", "/proc/self/ns/pid"]).stdout != \
            b.exec(["readlink", "/proc/self/ns/pid"]).stdout
        assert a.exec(["/testinit", "hostname"]).stdout == "web-1\n"
        # "private" network: a namespace of the pod's own with only loopback
        links = a.exec(["ip", "-o", "link"]).stdout
        assert ": lo:" in links and len(links.strip().splitlines()) == 1
        assert pod.netns is not None and os.path.exists(pod.netns.path)
        netns = pod.netns.path
    assert not os.path.exists(netns)


def test_shared_pid_namespace(sandboxer):
    with sandboxer.pod("pidshare", share_pid=True) as pod:
        a = pod.run(["/testinit", "sleep", "inf"], name="a")
        b = pod.run(["/testinit", "sleep", "inf"], name="b")
        assert a.exec(["readlink", "/proc/self/ns/pid"]).stdout == \
            b.exec(["readlink", "/proc/self/ns/pid"]).stdout
        assert "sleep" in b.exec(["ps"]).stdout


def test_sandboxer_crash_keeps_pods_and_their_task_connections(sandboxer):
    with sandboxer.pod("survivor") as pod:
        c = pod.run(["/testinit", "sleep", "inf"])
        sandboxer.kill9()
        sandboxer.restart()
        assert pod.status()["state"] == "SANDBOX_READY"
        assert c.exec(["/testinit", "print", "alive"]).stdout == "alive\n"
        assert c.stop() == 128 + signal.SIGTERM


def test_pods_are_removed_when_the_body_raises(kuasar_binary):
    kuasar_binary("kuasar-sandboxer")
    with pytest.raises(ValueError, match="boom"):
        with kuasar.Sandboxer(kind="runc") as sb:
            with sb.pod("doomed") as pod:
                pod.run(["/testinit", "sleep", "inf"])
                holder, netns, work = pod.pid, pod.netns.path, sb.dir
                raise ValueError("boom")
    assert not os.path.exists(f"/proc/{holder}") or _zombie(holder)
    assert not os.path.exists(netns) and not work.exists()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_cleanup_after_a_failing_test(pytester, monkeypatch):
    """A test using the plugin's fixtures fails mid-way: the fixtures still remove its pod,
    containers, network namespace and the sandboxer's dir."""
    from kuasar.pytest_plugin import why_no_sandboxer
    reason = why_no_sandboxer("runc")
    if reason:
        pytest.skip(reason)  # the inner test would only skip
    monkeypatch.setenv("PYTHONPATH", str(Path(kuasar.__file__).parent.parent))
    record = pytester.path / "record.txt"
    pytester.makepyfile(f"""
        def test_fails(sandboxer, pod):
            c = pod.run(["/testinit", "sleep", "inf"])
            with open({str(record)!r}, "w") as f:
                f.write(f"{{pod.pid}} {{c.pid}} {{pod.netns.path}} {{sandboxer.dir}} {{sandboxer.pid}}")
            assert False, "this test fails on purpose"
    """)
    result = pytester.runpytest_subprocess("-p", "kuasar.pytest_plugin", "-q")
    result.assert_outcomes(failed=1)
    holder, container, netns, work, sandboxer_pid = record.read_text().split()
    for pid in (holder, container, sandboxer_pid):
        assert _zombie(int(pid)), f"process {pid} left running"
    assert not os.path.exists(netns) and not os.path.exists(work)
