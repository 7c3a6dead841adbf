"""A distributed run on this machine: three nodes, each a containerd 2.x + runc sandboxer in
its own network namespace with its own address, reached over TCP (containerd's gRPC TCP
listener serving CRI); a scenario file lists them and the harness spreads its pods."""
import concurrent.futures
import json
import os

import pytest

import kuasar
try:
    from kuasar import harness
except ImportError as e:  # kuasar._native is not built: say so
    pytest.skip(str(e), allow_module_level=True)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_containerd]


@pytest.fixture(scope="module")
def nodes():
    from kuasar.pytest_plugin import why_no_sandboxer
    reason = why_no_sandboxer("runc")
    if reason:
        pytest.skip(reason)
    made = [kuasar.Node(kind="runc", name=f"n{i}", netns=True) for i in range(3)]
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda n: n.start(), made))
        yield made
    finally:
        for n in made:
            n.stop()


def test_nodes_are_separate_and_answer_cri_over_tcp(nodes):
    addresses = {n.address for n in nodes}
    assert len(addresses) == 3
    inodes = set()
    for n in nodes:
        assert n.endpoint == f"{n.address}:10010"
        assert n.cri.version()["runtime_name"] == "containerd"
        # containerd runs in the node's namespace, not the host's
        inodes.add(os.stat(f"/proc/{n.env.proc.pid}/ns/net").st_ino)
        pod = n.run_pod("probe")
        ip = n.cri.pod_sandbox_status(pod)["status"]["network"]["ip"]
        assert ip.startswith("10.")
        n.cri.stop_pod_sandbox(pod)
        n.cri.remove_pod_sandbox(pod)
    inodes.add(os.stat("/proc/self/ns/net").st_ino)
    assert len(inodes) == 4


def test_scenario_spreads_pods_over_three_nodes(nodes, tmp_path):
    lines = ['[scenario]', 'name = "spread-9"', 'pods = 9', 'mode = "parallel"',
             'warmup_pods = 1', 'pss_at = [3]', '']
    for n in nodes:
        s = n.spec(str(tmp_path / n.name))
        lines += ['[[nodes]]', f'name = "{s.name}"', f'endpoint = "{s.endpoint}"',
                  f'handler = "{s.handler}"', f'work_dir = "{s.work_dir}"',
                  'management = ["kuasar-sandboxer"]', f'management_scope = "{s.management_scope}"',
                  '']
    (tmp_path / "spread.toml").write_text("\n".join(lines))
    scenario, specs = harness.load_scenario(str(tmp_path / "spread.toml"))
    assert [s.endpoint for s in specs] == [n.endpoint for n in nodes]
    progress = []
    result = harness.run_distributed(scenario, specs, progress=lambda d, t: progress.append(d))
    assert result.errors == {} and result.failures == 0, result.to_dict()["pods"]
    pods = result.pods
    assert [p["index"] for p in pods] == list(range(9))
    assert [p["node"] for p in pods] == ["n0", "n1", "n2"] * 3
    assert sorted(progress) == list(range(1, 10))
    for name, run in result.runs.items():
        assert len(run.pods) == 3 and run.failures == 0
        assert run.pss[-1].management.processes == 1  # that node's own sandboxer
    d = result.to_dict()
    json.dumps(d)
    assert d["startup_ms"]["n"] == 9 and d["wall_ms"] > 0 and set(d["per_node"]) == {"n0", "n1", "n2"}
    for n in nodes:
        assert n.cri.list_pod_sandbox() == []


def test_a_node_that_is_down_counts_its_pods_as_failures(nodes, tmp_path):
    scenario = harness.Scenario.parse('[scenario]\npods = 4\nmode = "serial"\nwarmup_pods = 1\n'
                                      'timeout_s = 5\n', "down.toml")
    specs = [nodes[0].spec(str(tmp_path / "a")),
             harness.NodeSpec(name="gone", endpoint="127.0.0.1:1", handler="kuasar-runc")]
    result = harness.run_distributed(scenario, specs)
    assert set(result.errors) == {"gone"} and "warm-up" in result.errors["gone"]
    assert result.failures == 2 and len(result.pods) == 2
