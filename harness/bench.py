#!/usr/bin/env python3
"""Runs benchmark scenarios against kuasar sandboxers and their baselines, in one run.

A private containerd 2.x (kuasar.containerd.ContainerdEnv) gets one runtime handler per
target; each scenario runs against each target in turn, through CRI, with kuasar-harness;
then one report compares them (summary.md, CDF plots, result JSON lines).

Targets:
  kuasar-vmm   the vmm sandboxer (one process for every pod) on the fake VMM
               (Cloud Hypervisor personality by default: --vmm-driver)
  vmm-shim     the Kata process model over the same fake VMM and guest agent:
               containerd-shim-kuasar-vmm-v2, one shim process per pod, plus a pause
               container per pod (containerd's "podsandbox" sandboxer)
  kuasar-runc  the runc sandboxer
  runc-shim    containerd's own containerd-shim-runc-v2 (one shim per pod + pause)

    harness/bench.py --build build/release --out build/bench \\
        --scenarios fixtures/scenarios/serial-100.toml fixtures/scenarios/parallel-100.toml \\
        --targets vmm-shim kuasar-vmm runc-shim kuasar-runc
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pybind"))
from kuasar.containerd import (ContainerdEnv, sandbox_handler_config,  # noqa: E402
                               shim_handler_config)
from kuasar.sandboxer import SandboxerProcess, fake_vmm_toml as vmm_toml  # noqa: E402

VMM_PERSONALITY = {"cloud-hypervisor": "cloud-hypervisor", "firecracker": "firecracker",
                   "stratovirt": "stratovirt", "qemu": "qemu-system-x86_64"}
SHIM = "containerd-shim-kuasar-vmm-v2"


class Bench:
    """The sandboxers, shim config and containerd the chosen targets need."""

    def __init__(self, bin_dir: pathlib.Path, targets, driver: str, work: pathlib.Path):
        self.bin_dir, self.targets, self.work = bin_dir, targets, work
        self.personality = VMM_PERSONALITY[driver]
        self.sandboxers = {}
        if "kuasar-runc" in targets:
            (work / "runc").mkdir()
            self.sandboxers["kuasar-runc"] = SandboxerProcess(bin_dir, "runc", work_dir=str(work / "runc"))
        if "kuasar-vmm" in targets:
            (work / "vmm").mkdir()
            self.sandboxers["kuasar-vmm"] = SandboxerProcess(
                bin_dir, "vmm", work_dir=str(work / "vmm"),
                extra_config=vmm_toml(bin_dir, driver, work / "vmm"))
        env, extra = {}, ""
        if "vmm-shim" in targets:
            shim_dir = work / "shim"
            shim_dir.mkdir()
            cfg = shim_dir / "shim.toml"
            cfg.write_text(f'[sandboxer]\nkind = "vmm"\nstate_dir = "{shim_dir / "state"}"\n'
                           f'listen = "{shim_dir / "unused.sock"}"\n' + vmm_toml(bin_dir, driver, shim_dir))
            env["KUASAR_SHIM_CONFIG"] = str(cfg)
            extra += shim_handler_config("vmm-shim", str(bin_dir / SHIM))
        names = list(self.sandboxers)
        for name in names[1:]:
            extra += sandbox_handler_config(name, self.sandboxers[name].socket)
        first = names[0] if names else None
        self.env = ContainerdEnv(sandboxer_name=first,
                                 sandboxer_socket=self.sandboxers[first].socket if first else None,
                                 handler=first or "kuasar", extra_config=extra, env=env)

    def __enter__(self):
        self.env.start()
        for sb in self.sandboxers.values():
            sb.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
            sb.start()
        return self

    def __exit__(self, *exc):
        try:
            self.env.crictl("rmp", "-fa", timeout=900)
        finally:
            self.env.stop()
            for sb in self.sandboxers.values():
                sb.cleanup()

    def harness_args(self, target: str):
        """(handler, management names, management scope, per-pod names, per-pod scope)."""
        vm = [self.personality, "vmm-task"]
        if target == "kuasar-vmm":
            scope = str(self.sandboxers[target].dir)
            return target, ["kuasar-sandboxer"], scope, vm, scope
        if target == "vmm-shim":
            return target, [SHIM], str(self.env.dir), vm, str(self.work / "shim")
        if target == "kuasar-runc":
            scope = str(self.sandboxers[target].dir)
            return target, ["kuasar-sandboxer"], scope, ["kuasar-holder"], scope
        if target == "runc-shim":
            return "runc", ["containerd-shim-runc-v2"], str(self.env.dir), ["pause"], ""
        raise ValueError(target)

    def tail_logs(self) -> str:
        return "\n".join(f"--- {n}\n{sb.tail_log(40)}" for n, sb in self.sandboxers.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "build" / "bench"))
    ap.add_argument("--scenarios", nargs="+", required=True)
    ap.add_argument("--targets", nargs="+", default=["vmm-shim", "kuasar-vmm", "runc-shim", "kuasar-runc"])
    ap.add_argument("--vmm-driver", default="cloud-hypervisor", choices=list(VMM_PERSONALITY))
    args = ap.parse_args()
    known = {"kuasar-vmm", "vmm-shim", "kuasar-runc", "runc-shim"}
    unknown = [t for t in args.targets if t not in known]
    if unknown:
        ap.error(f"unknown targets {unknown}; known: {sorted(known)}")
    bin_dir = pathlib.Path(args.build).resolve() / "bin"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results = []
    work = pathlib.Path(tempfile.mkdtemp(prefix="kb.", dir="/tmp"))
    try:
        with Bench(bin_dir, args.targets, args.vmm_driver, work) as bench:
            for scenario in args.scenarios:
                name = pathlib.Path(scenario).stem
                for target in args.targets:
                    handler, mgmt, mscope, per_pod, pscope = bench.harness_args(target)
                    result = out / f"{name}.{target}.jsonl"
                    cmd = [str(bin_dir / "kuasar-harness"), "run", "--scenario", scenario,
                           "--endpoint", bench.env.endpoint, "--handler", handler, "--label", target,
                           "--work-dir", str(work / "h" / target), "--management", ",".join(mgmt),
                           "--management-scope", mscope, "--per-pod", ",".join(per_pod),
                           "--out", str(result)]
                    if pscope:
                        cmd += ["--per-pod-scope", pscope]
                    print(f"== {name} on {target}", flush=True)
                    r = subprocess.run(cmd)
                    if r.returncode not in (0, 3):
                        print(bench.tail_logs(), file=sys.stderr)
                        return r.returncode
                    results.append(str(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = subprocess.run([str(bin_dir / "kuasar-harness"), "report", "--out", str(out), *results])
    return report.returncode


if __name__ == "__main__":
    sys.exit(main())
