"""Fault injection for the fake VMM (sim/, docs/fake-vmm.md): refuse or slow its API
calls, hang the guest's boot, crash the VMM, kill the guest agent, drop its channel.

A FakeVmmFaults is only a description; it reaches the fake VMM one of two ways:

* at start: as a TOML file with a [faults] table, which the fake VMM reads through
  ``--faults FILE`` or its environment twin KUASAR_FAKE_VMM_FAULTS. A sandboxer passes its
  environment to the VMMs it starts, so::

      faults = FakeVmmFaults(tmp_path).hang_boot()
      with kuasar.Sandboxer("vmm", backend="cloud-hypervisor", fake_vmm=True,
                            env=faults.env()) as sb: ...

* while it runs: ``faults.send(api_socket)``, a REST ``PUT /kuasar/faults`` with the same
  document as JSON on the VMM's API socket (the cloud-hypervisor and firecracker
  personalities). ``{"clear": true}`` (clear()) first resets what was set.

The schema (sim/common/fault_plan.h): refuse = [{method, path, status, message, times}],
slow = [{method, path, delay_ms, times}], hang_boot, crash_after_ms, crash_signal,
kill_agent_after_ms, drop_channel_after_ms. `method` is an HTTP method or "*"; `path` a
REST path or QMP command, or "*"; times = -1 means every call.
"""
from __future__ import annotations

import http.client
import json
import os
import pathlib
import socket
import tempfile
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _toml, errors

FAULTS_ENV = "KUASAR_FAKE_VMM_FAULTS"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class FakeVmmFaults:
    """A fault plan for the fake VMM, built with chained calls::

        FakeVmmFaults().refuse("PUT", "/api/v1/vm.boot", status=500).slow(delay_ms=200)
    """

    def __init__(self, work_dir: Union[str, os.PathLike, None] = None):
        self.work_dir = pathlib.Path(work_dir) if work_dir is not None else None
        self._refuse: List[Dict[str, Any]] = []
        self._slow: List[Dict[str, Any]] = []
        self._plan: Dict[str, Any] = {}
        self._clear = False
        self.path: Optional[pathlib.Path] = None

    # --- building ----------------------------------------------------------------------
    def refuse(self, method: str = "*", path: str = "*", *, status: int = 0, message: str = "",
               times: int = -1) -> "FakeVmmFaults":
        """Answer matching API calls with an error (status 0: the VMM's usual one)."""
        rule: Dict[str, Any] = {"method": method, "path": path, "times": times}
        if status:
            rule["status"] = status
        if message:
            rule["message"] = message
        self._refuse.append(rule)
        return self

    def slow(self, method: str = "*", path: str = "*", *, delay_ms: int,
             times: int = -1) -> "FakeVmmFaults":
        """Delay matching API calls by delay_ms."""
        if delay_ms < 0:
            raise errors.InvalidArgument("delay_ms must be >= 0")
        self._slow.append({"method": method, "path": path, "delay_ms": delay_ms, "times": times})
        return self

    def hang_boot(self) -> "FakeVmmFaults":
        """The guest never reaches init: no agent ever answers."""
        self._plan["hang_boot"] = True
        return self

    def crash_after(self, ms: int, signal: Union[int, str] = "SIGKILL") -> "FakeVmmFaults":
        """The VMM process dies by `signal` this long after the plan is armed."""
        self._plan["crash_after_ms"] = ms
        self._plan["crash_signal"] = signal
        return self

    def kill_agent_after(self, ms: int) -> "FakeVmmFaults":
        """SIGKILL the guest agent this long after it started."""
        self._plan["kill_agent_after_ms"] = ms
        return self

    def drop_channel_after(self, ms: int) -> "FakeVmmFaults":
        """Close the agent's side of its channel after ms."""
        self._plan["drop_channel_after_ms"] = ms
        return self

    def clear(self) -> "FakeVmmFaults":
        """Reset the VMM's plan before applying this one (REST only; a file starts clean)."""
        self._clear = True
        return self

    # --- forms -------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """The JSON document of PUT /kuasar/faults (keys in the order the VMM applies them)."""
        doc: Dict[str, Any] = {}
        if self._clear:
            doc["clear"] = True
        if self._refuse:
            doc["refuse"] = [dict(r) for r in self._refuse]
        if self._slow:
            doc["slow"] = [dict(r) for r in self._slow]
        doc.update(self._plan)
        return doc

    def to_toml(self) -> str:
        """The [faults] table for a model or --faults file."""
        doc = {k: v for k, v in self.to_dict().items() if k != "clear"}
        return _toml.dumps({"faults": doc}) if doc else "[faults]\n"

    def write(self, path: Union[str, os.PathLike, None] = None) -> pathlib.Path:
        """Writes the [faults] TOML (to `path`, or faults.toml in work_dir or a temp dir)."""
        if path is None:
            d = self.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="kfault."))
            path = d / "faults.toml"
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.to_toml())
        return self.path

    def env(self) -> Dict[str, str]:
        """{"KUASAR_FAKE_VMM_FAULTS": <file>}: the environment that gives every fake VMM
        started with it this plan (writes the file if not yet written)."""
        return {FAULTS_ENV: str(self.path or self.write())}

    def args(self) -> List[str]:
        """["--faults", <file>]: the fake VMM's own flag for the same."""
        return ["--faults", str(self.path or self.write())]

    def send(self, api_socket: str, timeout: float = 10.0) -> Tuple[int, str]:
        """PUT /kuasar/faults to a running fake VMM's REST API (unix socket); returns
        (status, body). A status outside 2xx raises: 400 as InvalidArgument, 404 as
        Unimplemented (a personality without the fault API), others as Unavailable."""
        body = json.dumps(self.to_dict())
        conn = _UnixHTTPConnection(api_socket, timeout)
        try:
            conn.request("PUT", "/kuasar/faults", body=body,
                         headers={"Content-Type": "application/json", "Accept": "application/json"})
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            raise errors.Unavailable(f"PUT /kuasar/faults on {api_socket}: {e}") from None
        finally:
            conn.close()
        if 200 <= resp.status < 300:
            return resp.status, text
        what = f"PUT /kuasar/faults on {api_socket}: HTTP {resp.status}: {text.strip()}"
        if resp.status == 400:
            raise errors.InvalidArgument(what)
        if resp.status in (404, 405):
            raise errors.Unimplemented(what)
        raise errors.Unavailable(what)

    def __repr__(self) -> str:
        return f"FakeVmmFaults({self.to_dict()})"
