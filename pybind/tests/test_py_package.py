"""The Python package itself: typed errors, the native module's error mapping and GIL
release, scenarios (with and without nodes), bundles and the TOML writer. Only the
native module is needed (no root, no sandboxer)."""
import json
import pickle
import threading
import time
import tomllib

import pytest

import kuasar
from kuasar import _toml, bundle, errors

@pytest.fixture(scope="module")
def nat():
    try:
        return kuasar._native
    except ImportError as e:
        pytest.skip(str(e))


def test_every_status_code_has_its_typed_exception():
    builtin = {errors.InvalidArgument: ValueError, errors.NotFound: LookupError,
               errors.DeadlineExceeded: TimeoutError, errors.Unimplemented: NotImplementedError}
    for code in errors.StatusCode:
        if code == errors.StatusCode.OK:
            continue
        e = errors.from_status(int(code), f"message {code.name}")
        assert isinstance(e, kuasar.KuasarError) and isinstance(e, RuntimeError)
        assert e.code == code and e.code_name == code.name and e.message == f"message {code.name}"
        assert type(e).__name__.lower() == code.name.replace("_", "").lower()
        assert str(e) == f"{code.name}: message {code.name}"
        if type(e) in builtin:
            assert isinstance(e, builtin[type(e)])
        again = pickle.loads(pickle.dumps(e))  # pytest-xdist ships exceptions between workers
        assert type(again) is type(e) and again.code == e.code and again.message == e.message
    assert isinstance(errors.from_status(99, "odd"), errors.Unknown)


def test_native_failures_raise_typed_exceptions_with_code_and_message(nat, tmp_path):
    with pytest.raises(kuasar.InvalidArgument) as e:
        nat.Scenario.parse('[scenario]\npods = "many"\n', "bad.toml")
    assert e.value.code == errors.StatusCode.INVALID_ARGUMENT and "pods" in e.value.message
    with pytest.raises(kuasar.NotFound, match="no unary method \"Nope\""):
        nat.CriClient("unix:///nonexistent.sock").call("Nope", {})
    with pytest.raises(kuasar.InvalidArgument, match="expected ttrpc"):
        nat.TaskClient.connect("tcp://1.2.3.4:5")
    with pytest.raises(kuasar.Unavailable, match="connect"):
        nat.TaskClient.connect(f"ttrpc+unix://{tmp_path}/none.sock", 0.2)
    with pytest.raises(kuasar.Unavailable):
        nat.SandboxClient(str(tmp_path / "none.sock")).create("p", timeout=2)
    with pytest.raises(kuasar.InvalidArgument, match="PodSandboxConfig"):
        nat.SandboxClient(str(tmp_path / "none.sock")).create("p", pod_config={"bogus": 1})


def test_blocking_calls_release_the_gil(nat, tmp_path):
    # wait_ready polls a socket nobody serves for 1.5 s inside gRPC; meanwhile this thread
    # must keep running Python.
    client = nat.SandboxClient(str(tmp_path / "nobody.sock"))
    t = threading.Thread(target=client.wait_ready, args=(1.5,))
    start = time.monotonic()
    t.start()
    spins = 0
    while t.is_alive() and time.monotonic() - start < 1.0:
        spins += 1
    t.join()
    assert time.monotonic() - start >= 1.4
    assert spins > 10000, f"main thread starved: {spins} loop turns in 1 s"


def test_scenario_loads_from_the_fixtures_and_converts_to_a_dict(nat):
    from kuasar.paths import fixtures_dir
    s = nat.Scenario.load(str(fixtures_dir() / "scenarios" / "serial-20.toml"))
    assert (s.name, s.pods, s.mode, s.pss_at) == ("serial-20", 20, "serial", [1, 5, 10, 20])
    d = s.to_dict()
    assert d["pods"] == 20 and d["mode"] == "serial" and d["command"][0] == "sh"
    json.dumps(d)
    s.mode = "groups"
    s.group_size = 5
    assert s.to_dict()["mode"] == "groups"
    with pytest.raises(kuasar.InvalidArgument, match="not serial, parallel or groups"):
        s.mode = "sideways"


def test_scenario_nodes_are_parsed_and_errors_keep_line_numbers(nat):
    from kuasar.harness import parse_scenario
    text = ('[scenario]\nname = "spread"\npods = 6\nmode = "parallel"\n\n'
            '[[nodes]]\nname = "a"\nendpoint = "10.0.0.2:10010"\nhandler = "kuasar-runc"\n\n'
            '[[nodes]]\nname = "b"\nendpoint = "unix:///run/c.sock"\nhandler = "kuasar-runc"\n'
            'management = ["kuasar-sandboxer"]\n')
    scenario, nodes = parse_scenario(text, "spread.toml")
    assert scenario.pods == 6 and scenario.mode == "parallel"
    assert [n.name for n in nodes] == ["a", "b"] and nodes[1].management == ["kuasar-sandboxer"]
    with pytest.raises(kuasar.InvalidArgument, match="spread.toml:4"):
        parse_scenario(text.replace('mode = "parallel"', "mode = parallel"), "spread.toml")
    with pytest.raises(kuasar.InvalidArgument, match="unknown keys"):
        parse_scenario(text + 'colour = "red"\n', "spread.toml")
    with pytest.raises(kuasar.InvalidArgument, match="nodes\\[1\\].endpoint is required"):
        parse_scenario(text.replace('endpoint = "unix:///run/c.sock"\n', ""), "spread.toml")


def test_toml_writer_round_trips():
    doc = {"sandboxer": {"kind": "vmm", "worker_threads": 4},
           "hypervisor": {"path": "/x y/\"q\"", "vcpus": 2, "debug": True, "memory": 1.5,
                          "extra_args": ["-a", "b"]},
           "faults": {"refuse": [{"method": "PUT", "path": "/api/v1/vm.boot", "times": -1}]},
           "a": {"b": {"c": 1}}}
    assert tomllib.loads(_toml.dumps(doc)) == doc
    merged = _toml.merge({"hypervisor": {"driver": "qemu", "vcpus": 1}},
                         {"hypervisor": {"vcpus": 2}, "vmm": {"x": 1}})
    assert merged == {"hypervisor": {"driver": "qemu", "vcpus": 2}, "vmm": {"x": 1}}


def test_bundles_join_the_pods_namespaces(tmp_path):
    lower = tmp_path / "lower"
    lower.mkdir()
    mounts = bundle.write_bundle(tmp_path / "b", container_id="p.c", args=["/testinit", "pid"],
                                 env={"FOO": "bar"}, sandbox_pid=4242, memory_limit=1 << 20,
                                 rootfs=lower)
    spec = json.loads((tmp_path / "b" / "config.json").read_text())
    ns = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert ns == {"mount": None, "ipc": "/proc/4242/ns/ipc", "uts": "/proc/4242/ns/uts",
                  "network": "/proc/4242/ns/net", "pid": None}
    assert spec["process"]["args"] == ["/testinit", "pid"] and "FOO=bar" in spec["process"]["env"]
    assert spec["linux"]["resources"]["memory"] == {"limit": 1 << 20}
    assert spec["linux"]["cgroupsPath"] == "/kuasar-py/p.c"
    assert mounts[0]["type"] == "overlay" and f"lowerdir={lower}" in mounts[0]["options"]
    shared = bundle.write_bundle(tmp_path / "s", container_id="p.d", args=["x"], sandbox_pid=7,
                                 share_pid=True, rootfs=lower)
    del shared
    spec = json.loads((tmp_path / "s" / "config.json").read_text())
    assert {"type": "pid", "path": "/proc/7/ns/pid"} in spec["linux"]["namespaces"]
    with pytest.raises(ValueError):
        bundle.process_spec([])
