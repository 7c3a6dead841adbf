"""The scenario harness from Python: run a scenario through CRI against one target
(run_cri_scenario, the C++ runner behind kuasar-harness) or spread its pods over several
nodes (run_distributed), with results as objects and as plain dicts (to_dict()).

A scenario file may list the nodes to spread over, after its [scenario] table::

    [scenario]
    name = "spread-9"
    pods = 9
    mode = "parallel"

    [[nodes]]
    name = "n1"
    endpoint = "10.254.3.2:10010"     # containerd's CRI: "IP:PORT" or "unix:///path"
    handler = "kuasar-runc"           # the runtime handler (RuntimeClass) there
    # work_dir = "/tmp/n1"            # where pod logs go: must be readable here
    # management = ["kuasar-sandboxer"], per_pod = ["kuasar-holder"]   # PSS sets

    scenario, nodes = load_scenario("spread.toml")
    result = run_distributed(scenario, nodes)
    print(result.to_dict()["startup_ms"]["p50"], result.failures)

Pods are dealt round-robin (pod i goes to node i mod N) and each node runs its share with
the scenario's mode, all nodes at once; the merged result keeps each pod's node.
"""
from __future__ import annotations

import copy
import dataclasses
import pathlib
import re
import tempfile
import threading
import time
import tomllib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import errors
from ._loader import native

_n = native()
Scenario = _n.Scenario
CriTarget = _n.CriTarget
ProcessMatcher = _n.ProcessMatcher
RunResult = _n.RunResult
PodResult = _n.PodResult
run_cri_scenario = _n.run_cri_scenario
write_json_lines = _n.write_json_lines
read_json_lines = _n.read_json_lines
markdown_summary = _n.markdown_summary
summarize = _n.summarize

_NODE_KEYS = {"name", "endpoint", "handler", "work_dir", "management", "per_pod",
              "management_scope", "per_pod_scope"}


@dataclasses.dataclass
class NodeSpec:
    """One node of a distributed run: its CRI endpoint and runtime handler."""

    name: str
    endpoint: str
    handler: str
    work_dir: str = ""
    management: List[str] = dataclasses.field(default_factory=list)
    per_pod: List[str] = dataclasses.field(default_factory=list)
    management_scope: str = ""
    per_pod_scope: str = ""

    def target(self, work_dir: str) -> Any:
        return CriTarget(self.name, self.endpoint, self.handler, self.work_dir or work_dir,
                         ProcessMatcher(self.management, self.management_scope),
                         ProcessMatcher(self.per_pod, self.per_pod_scope))


def _split_nodes(text: str) -> str:
    """The text with every [[nodes]] table blanked out (lines kept, so the C++ parser's
    line numbers still point into the file)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if re.match(r"^\[\[\s*nodes\s*\]\]", s):
            skipping = True
        elif s.startswith("["):
            skipping = False
        out.append("\n" if skipping else line)
    return "".join(out)


def parse_scenario(text: str, source: str = "<string>") -> Tuple[Any, List[NodeSpec]]:
    """A Scenario (checked by the C++ parser: errors are InvalidArgument naming the key)
    and its [[nodes]], if any."""
    scenario = Scenario.parse(_split_nodes(text), source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise errors.InvalidArgument(f"{source}: {e}") from None
    nodes = []
    for i, n in enumerate(doc.get("nodes", [])):
        unknown = set(n) - _NODE_KEYS
        if unknown:
            raise errors.InvalidArgument(f"{source}: nodes[{i}]: unknown keys {sorted(unknown)}")
        for key in ("name", "endpoint", "handler"):
            if not isinstance(n.get(key), str) or not n[key]:
                raise errors.InvalidArgument(f"{source}: nodes[{i}].{key} is required")
        nodes.append(NodeSpec(**n))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise errors.InvalidArgument(f"{source}: node names repeat: {names}")
    return scenario, nodes


def load_scenario(path: str) -> Tuple[Any, List[NodeSpec]]:
    return parse_scenario(pathlib.Path(path).read_text(), str(path))


@dataclasses.dataclass
class DistributedResult:
    """A scenario spread over nodes: each node's RunResult and the merged view."""

    scenario: Any
    nodes: List[NodeSpec]
    runs: Dict[str, Any]           # node name -> RunResult
    errors: Dict[str, str]         # node name -> why its run failed as a whole
    offsets_ms: Dict[str, float]   # node name -> its run's start after the first node's
    wall_ms: float

    @property
    def pods(self) -> List[Dict[str, Any]]:
        """Every pod's result dict, with its node and its index in the whole scenario."""
        n = len(self.nodes)
        out = []
        for k, node in enumerate(self.nodes):
            run = self.runs.get(node.name)
            if run is None:
                continue
            for p in run.pods:
                d = p.to_dict()
                d["node"] = node.name
                d["node_index"] = d["index"]
                d["index"] = d["index"] * n + k
                d["began_ms"] = d["began_ms"] + self.offsets_ms.get(node.name, 0.0)
                out.append(d)
        return sorted(out, key=lambda d: d["index"])

    @property
    def failures(self) -> int:
        missing = sum(self.share(k) for k, n in enumerate(self.nodes) if n.name in self.errors)
        return missing + sum(r.failures for r in self.runs.values())

    def share(self, k: int) -> int:
        """How many of the scenario's pods node k runs."""
        return len(range(k, self.scenario.pods, len(self.nodes)))

    def startup_summary(self) -> Dict[str, float]:
        return summarize([p["startup_ms"] for p in self.pods if "error" not in p])

    def to_dict(self) -> Dict[str, Any]:
        pods = self.pods
        ok = [p for p in pods if "error" not in p]
        return {
            "scenario": self.scenario.to_dict(),
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
            "wall_ms": self.wall_ms,
            "failures": self.failures,
            "startup_ms": summarize([p["startup_ms"] for p in ok]),
            "first_output_ms": summarize([p["first_output_total_ms"] for p in ok]),
            "pods": pods,
            "per_node": {name: run.to_dict() for name, run in self.runs.items()},
            "errors": dict(self.errors),
        }


def run_distributed(scenario: Any, nodes: Sequence[NodeSpec], *,
                    work_dir: Optional[str] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> DistributedResult:
    """Runs `scenario` with its pods dealt round-robin over `nodes`, all nodes at once
    (one thread each; the runs release the GIL). A node whose whole run fails (say its
    warm-up pod) is reported in .errors and its pods count as failures."""
    nodes = list(nodes)
    if not nodes:
        raise errors.InvalidArgument("run_distributed needs at least one node")
    work = work_dir or tempfile.mkdtemp(prefix="kuasar-dist.", dir="/tmp")
    runs: Dict[str, Any] = {}
    failed: Dict[str, str] = {}
    starts: Dict[str, float] = {}
    done = [0]
    lock = threading.Lock()

    def on_progress(_d: int, _t: int) -> None:
        with lock:
            done[0] += 1
            n = done[0]
        if progress is not None:
            progress(n, scenario.pods)

    def run(k: int, node: NodeSpec) -> None:
        share = copy.copy(scenario)
        share.pods = len(range(k, scenario.pods, len(nodes)))
        if share.pods == 0:
            return
        target = node.target(str(pathlib.Path(work) / node.name))
        starts[node.name] = time.monotonic()
        try:
            runs[node.name] = run_cri_scenario(share, target, on_progress)
        except errors.KuasarError as e:
            failed[node.name] = str(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(k, n), name=f"kuasar-node-{n.name}")
               for k, n in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = min(starts.values(), default=t0)
    offsets = {name: (s - first) * 1000 for name, s in starts.items()}
    wall = max((offsets[name] + r.wall_ms for name, r in runs.items()), default=0.0)
    return DistributedResult(scenario, nodes, runs, failed, offsets, wall)
