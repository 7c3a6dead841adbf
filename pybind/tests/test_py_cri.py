"""CRI from Python against a throw-away containerd 2.x wired to the runc sandboxer (the
plugin's `containerd` fixture), and the harness run through it."""
import json
import time

import pytest

import kuasar
try:
    from kuasar import harness
except ImportError as e:  # kuasar._native is not built: say so
    pytest.skip(str(e), allow_module_level=True)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_containerd]


def wait_state(cri, cid, state, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        s = cri.container_status(cid)["status"]
        if s["state"] == state or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def test_cri_pod_and_container_lifecycle(containerd):
    cri = containerd.cri
    v = cri.version()
    assert v["runtime_name"] == "containerd" and v["runtime_version"].startswith("v2.")
    pod = containerd.run_pod("cri-life")
    status = cri.pod_sandbox_status(pod)["status"]
    assert status["state"] == "SANDBOX_READY" and status["network"]["ip"].startswith("10.")
    assert any(p["id"] == pod for p in cri.list_pod_sandbox())
    cid = containerd.run_container(pod, "cri-life", "main",
                                   ["sh", "-c", "echo cri-hello; exec sleep 3600"])
    assert wait_state(cri, cid, "CONTAINER_RUNNING")["state"] == "CONTAINER_RUNNING"
    r = cri.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 4"], timeout=10)
    assert (r.exit_code, r.stdout, r.stderr) == (4, b"out\n", b"err\n")
    stats = cri.container_stats(cid)["stats"]
    assert int(stats["memory"]["working_set_bytes"]["value"]) > 0
    assert [c["id"] for c in cri.list_containers({"pod_sandbox_id": pod})] == [cid]
    deadline = time.monotonic() + 10
    while "cri-hello" not in containerd.log_of("cri-life", "main") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "stdout F cri-hello" in containerd.log_of("cri-life", "main")
    cri.stop_container(cid, timeout=5)
    assert cri.container_status(cid)["status"]["state"] == "CONTAINER_EXITED"
    cri.remove_container(cid)
    cri.stop_pod_sandbox(pod)
    cri.remove_pod_sandbox(pod)
    with pytest.raises(kuasar.NotFound):
        cri.pod_sandbox_status(pod)


def test_cri_generic_calls_and_typed_errors(containerd):
    cri = containerd.cri
    assert "ImageFsInfo" in kuasar.CriClient.method_names()
    fs = cri.call("ImageFsInfo")
    assert fs["image_filesystems"][0]["fs_id"]["mountpoint"].startswith(str(containerd.env.dir))
    images = cri.call("ListImages")["images"]
    assert any("docker.io/library/busybox:kuasar" in i["repo_tags"] for i in images)
    with pytest.raises(kuasar.NotFound):
        cri.container_status("f" * 64)
    with pytest.raises(kuasar.InvalidArgument, match="ContainerConfig"):
        cri.create_container("x", {"no_such_field": 1}, {})
    with pytest.raises(kuasar.KuasarError) as e:
        cri.run_pod_sandbox(containerd.pod_config("nohandler"), "no-such-handler")
    assert "no-such-handler" in e.value.message


def test_harness_runs_a_scenario_through_cri(containerd, tmp_path):
    scenario = harness.Scenario.parse(
        '[scenario]\nname = "py-3"\npods = 3\nmode = "parallel"\nwarmup_pods = 1\n'
        'pss_at = [1, 3]\n', "py-3.toml")
    target = containerd.spec(str(tmp_path / "work")).target(str(tmp_path / "work"))
    seen = []
    result = harness.run_cri_scenario(scenario, target, lambda d, t: seen.append((d, t)))
    assert result.failures == 0, [p.error for p in result.pods]
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    assert len(result.pods) == 3 and all(p.ok and p.startup_ms > 0 for p in result.pods)
    d = result.to_dict()
    json.dumps(d)
    assert d["startup_ms"]["n"] == 3 and d["startup_ms"]["p50"] > 0
    assert d["pss"][-1]["management"]["processes"] == 1  # the one sandboxer
    harness.write_json_lines(result, str(tmp_path / "r.jsonl"))
    again = harness.read_json_lines(str(tmp_path / "r.jsonl"))
    assert [p.startup_ms for p in again.pods] == [p.startup_ms for p in result.pods]
    assert "py-3" in harness.markdown_summary([result])
    assert containerd.cri.list_pod_sandbox() == []  # remove_after
