#!/usr/bin/env python3
"""Runs benchmark scenarios against kuasar sandboxers and their baselines, in one run.

A private containerd 2.x (pybind/tests/support/containerd_env.py) gets one runtime handler
per target; each scenario runs against each target in turn, through CRI, with
kuasar-harness; then one report compares them (summary.md, CDF plots, result JSON lines).

    harness/bench.py --build build/release --out build/bench \\
        --scenarios fixtures/scenarios/serial-100.toml fixtures/scenarios/parallel-100.toml \\
        --targets runc-shim kuasar-runc
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pybind" / "tests"))
from support.containerd_env import ContainerdEnv  # noqa: E402
from support.sandboxer_proc import SandboxerProcess  # noqa: E402

# target -> (runtime handler, management process names, per-pod process names)
TARGETS = {
    "runc-shim": ("runc", ["containerd-shim-runc-v2"], ["pause"]),
    "kuasar-runc": ("kuasar-runc", ["kuasar-sandboxer"], ["kuasar-holder"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "build" / "bench"))
    ap.add_argument("--scenarios", nargs="+", required=True)
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    args = ap.parse_args()
    bin_dir = pathlib.Path(args.build) / "bin"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown targets {unknown}; known: {list(TARGETS)}")

    results = []
    sandboxer = SandboxerProcess(bin_dir, "runc")
    env = ContainerdEnv(sandboxer_name="kuasar-runc", sandboxer_socket=sandboxer.socket,
                        handler="kuasar-runc")
    with env:
        sandboxer.containerd_ttrpc = str(env.dir / "c.sock.ttrpc")
        sandboxer.start()
        work = pathlib.Path(tempfile.mkdtemp(prefix="kb.", dir="/tmp"))
        try:
            for scenario in args.scenarios:
                name = pathlib.Path(scenario).stem
                for target in args.targets:
                    handler, mgmt, per_pod = TARGETS[target]
                    scope = str(sandboxer.dir) if target.startswith("kuasar") else str(env.dir)
                    result = out / f"{name}.{target}.jsonl"
                    cmd = [str(bin_dir / "kuasar-harness"), "run", "--scenario", scenario,
                           "--endpoint", env.endpoint, "--handler", handler, "--label", target,
                           "--work-dir", str(work / target), "--management", ",".join(mgmt),
                           "--management-scope", scope, "--per-pod", ",".join(per_pod),
                           "--out", str(result)]
                    if target.startswith("kuasar"):
                        cmd += ["--per-pod-scope", scope]
                    print(f"== {name} on {target}", flush=True)
                    r = subprocess.run(cmd)
                    if r.returncode not in (0, 3):
                        print(sandboxer.tail_log(40), file=sys.stderr)
                        return r.returncode
                    results.append(str(result))
            env.crictl("rmp", "-fa", timeout=600)
        finally:
            sandboxer.cleanup()
            shutil.rmtree(work, ignore_errors=True)
    report = subprocess.run([str(bin_dir / "kuasar-harness"), "report", "--out", str(out), *results])
    return report.returncode


if __name__ == "__main__":
    sys.exit(main())
