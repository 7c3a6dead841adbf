"""Fault injection for the fake VMM: the plan's forms (TOML file, environment, REST PUT),
checked here on their own, and its effect on a vmm sandboxer whose VMM is the fake one
(those skip, saying so, until sim/ builds kuasar-fake-vmm)."""
import http.server
import json
import socketserver
import threading
import time
import tomllib

import pytest

import kuasar
from kuasar.faults import FAULTS_ENV, FakeVmmFaults


def test_fault_plan_as_toml_env_and_args(tmp_path):
    f = (FakeVmmFaults(tmp_path)
         .refuse("PUT", "/api/v1/vm.boot", status=500, message="no boot", times=1)
         .slow(path="/api/v1/vm.info", delay_ms=250)
         .crash_after(1500, "SIGSEGV").kill_agent_after(300).drop_channel_after(700)
         .hang_boot())
    doc = f.to_dict()
    assert doc == {
        "refuse": [{"method": "PUT", "path": "/api/v1/vm.boot", "times": 1, "status": 500,
                    "message": "no boot"}],
        "slow": [{"method": "*", "path": "/api/v1/vm.info", "delay_ms": 250, "times": -1}],
        "crash_after_ms": 1500, "crash_signal": "SIGSEGV", "kill_agent_after_ms": 300,
        "drop_channel_after_ms": 700, "hang_boot": True}
    env = f.env()
    path = tmp_path / "faults.toml"
    assert env == {FAULTS_ENV: str(path)} and f.args() == ["--faults", str(path)]
    assert tomllib.loads(path.read_text()) == {"faults": doc}
    assert FakeVmmFaults().clear().to_dict() == {"clear": True}
    assert tomllib.loads(FakeVmmFaults().to_toml()) == {"faults": {}}
    with pytest.raises(kuasar.InvalidArgument):
        FakeVmmFaults().slow(delay_ms=-1)


class _FaultApi(socketserver.UnixStreamServer):
    """A fake VMM's REST API socket that keeps what PUT /kuasar/faults sent."""

    def __init__(self, path, status=204):
        self.received, self.status = [], status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

        super().__init__(path, Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_fault_plan_is_sent_with_rest_put(tmp_path):
    api = _FaultApi(str(tmp_path / "api.sock"))
    try:
        status, _ = FakeVmmFaults().clear().refuse("PUT", "/vm.add-net").send(str(tmp_path / "api.sock"))
        assert status == 204
        assert api.received == [("/kuasar/faults", "application/json",
                                 {"clear": True, "refuse": [{"method": "PUT", "path": "/vm.add-net",
                                                             "times": -1}]})]
        api.status = 400
        with pytest.raises(kuasar.InvalidArgument, match="HTTP 400"):
            FakeVmmFaults().hang_boot().send(str(tmp_path / "api.sock"))
        api.status = 404
        with pytest.raises(kuasar.Unimplemented, match="HTTP 404"):
            FakeVmmFaults().hang_boot().send(str(tmp_path / "api.sock"))
    finally:
        api.shutdown()
        api.server_close()
    with pytest.raises(kuasar.Unavailable):
        FakeVmmFaults().hang_boot().send(str(tmp_path / "api.sock"), timeout=1)


# --- against the fake VMM (skipped until sim/ builds it) ---------------------------------

def fake_vmm_sandboxer(faults, backends=("cloud-hypervisor", "qemu"), **config):
    """A vmm sandboxer over the fake VMM with the plan in its environment, on the first of
    `backends` whose driver runs pods here; skips, saying why, when none does (the fake VMM
    binary alone is not enough: the sandboxer must drive that personality)."""
    from kuasar.pytest_plugin import why_no_sandboxer
    reasons = []
    for backend in backends:
        reason = why_no_sandboxer("vmm", backend, True)
        if reason is None:
            return kuasar.Sandboxer("vmm", backend=backend, fake_vmm=True, env=faults.env(),
                                    config={"vmm": {"agent_timeout_ms": 3000, **config}})
        reasons.append(reason)
    pytest.skip("; ".join(reasons))


@pytest.mark.needs_root
def test_hung_boot_fails_the_pod_start_and_leaves_nothing(fake_vmm_faults):
    with fake_vmm_sandboxer(fake_vmm_faults.hang_boot()) as sb:
        start = time.monotonic()
        with pytest.raises((kuasar.DeadlineExceeded, kuasar.Unavailable)):
            sb.pod("hung", network="host")
        assert time.monotonic() - start < 30
        assert sb.pods == [] and list((sb.state_dir / "sandboxes").glob("*")) == []


@pytest.mark.needs_root
def test_refused_boot_is_reported_with_the_vmms_error(fake_vmm_faults):
    faults = fake_vmm_faults.refuse("PUT", "/api/v1/vm.boot", status=500, message="injected")
    with fake_vmm_sandboxer(faults, backends=("cloud-hypervisor",)) as sb:  # a REST path
        with pytest.raises(kuasar.KuasarError, match="injected"):
            sb.pod("refused", network="host")


@pytest.mark.needs_root
def test_agent_death_stops_the_pod(fake_vmm_faults):
    with fake_vmm_sandboxer(fake_vmm_faults.kill_agent_after(1500)) as sb:
        with sb.pod("dies", network="host") as pod:
            result = sb.client.wait(pod.id, timeout=30)
            assert result["exit_status"] != 0
            assert pod.status()["state"] == "SANDBOX_NOTREADY"
