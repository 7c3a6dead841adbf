"""Multi-sandbox colocation: a runc pod, a vmm pod (fake VMM, Cloud Hypervisor personality),
a wasm pod and, where gVisor's runsc runs, an appkernel pod run at the same time on one node under one containerd 2.x, each kind served
by its own resident sandboxer, each pod's container giving the right output; then all are
removed with nothing of any of them left running."""
import json
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from kuasar.containerd import sandbox_handler_config
from support.containerd_env import ROOT, ContainerdEnv, images_dir, missing_requirements
from support.sandboxer_proc import SandboxerProcess
from test_appkernel_sandboxer import RUNSC, runsc_problem
from test_vmm_fake import BUSYBOX, pids_of, vmm_config
from test_wasm_sandboxer import IMAGE_BUILDER, WASM_IMAGE, WASMTIME_LIB, _wasm_missing

_why = _wasm_missing() or missing_requirements()
pytestmark = [pytest.mark.containerd, pytest.mark.skipif(bool(_why), reason="; ".join(_why))]


def test_runc_vmm_and_wasm_pods_run_side_by_side(kuasar_bin):
    # A short dir: the vmm pods' unix sockets live under it (107-byte limit).
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="kco.", dir="/tmp"))
    for b in ("kuasar-fake-vmm", "vmm-task", "kuasar-wasm-run", "kuasar-holder"):
        kuasar_bin(b)
    bin_dir = kuasar_bin("kuasar-sandboxer").parent.resolve()
    kinds = [("runc", ""), ("vmm", None), ("wasm", f'[wasm]\nlibrary = "{WASMTIME_LIB}"\n')]
    # The appkernel pod joins when runsc can run here (docs/appkernel.md), else it is left out.
    appkernel = runsc_problem() == ""
    if appkernel:
        kuasar_bin("kuasar-appkernel-wait")
        kuasar_bin("kuasar-appkernel-pause")
        kinds.append(("appkernel", f'[appkernel]\nruntime = "{RUNSC}"\n'))
    sbs = {}
    for kind, extra in kinds:
        (tmp_path / kind).mkdir()
        if extra is None:
            extra = vmm_config(bin_dir, "cloud-hypervisor", tmp_path / kind)
        sbs[kind] = SandboxerProcess(bin_dir, kind, work_dir=str(tmp_path / kind), extra_config=extra)
    env = ContainerdEnv(sandboxer_name="kuasar-runc", sandboxer_socket=sbs["runc"].socket,
                        handler="kuasar-runc",
                        extra_config="".join(sandbox_handler_config(f"kuasar-{k}", s.socket)
                                             for k, s in sbs.items() if k != "runc"))

    def ok(*args, timeout=120):
        r = env.crictl(*args, timeout=timeout)
        assert r.returncode == 0, (f"crictl {' '.join(args)}: {r.stderr}\n"
                                   + "\n".join(f"--- {k}\n{s.tail_log(20)}" for k, s in sbs.items()))
        return r.stdout.strip()

    def run(kind, image, argv, key):
        pod_cfg = tmp_path / f"{kind}.pod.json"
        pod_cfg.write_text(json.dumps({"metadata": {"name": f"co-{kind}", "namespace": "default",
                                                    "uid": f"co-{kind}"},
                                       "log_directory": str(tmp_path / "logs" / kind), "linux": {}}))
        ctr_cfg = tmp_path / f"{kind}.ctr.json"
        ctr_cfg.write_text(json.dumps({"metadata": {"name": "c"}, "image": {"image": image},
                                       key: argv, "log_path": "c.log", "linux": {}}))
        t0 = time.time()
        pod = ok("runp", "--runtime", f"kuasar-{kind}", str(pod_cfg))
        print(f"colocation: {kind} pod start {(time.time() - t0) * 1000:.0f} ms")
        cid = ok("create", pod, str(ctr_cfg), str(pod_cfg))
        ok("start", cid)
        return pod, cid

    with env:
        try:
            for s in sbs.values():
                s.containerd_ttrpc = str(env.dir / "c.sock.ttrpc")
                s.start()
            out = images_dir()
            subprocess.run([str(IMAGE_BUILDER), str(out)], check=True)
            env.import_image(out / "wasm.tar")
            env.wait_images([WASM_IMAGE])
            pods = {
                "runc": run("runc", BUSYBOX, ["sh", "-c", "echo runc-pod; sleep 3600"], "command"),
                "vmm": run("vmm", BUSYBOX, ["sh", "-c", "echo vmm-pod; sleep 3600"], "command"),
                "wasm": run("wasm", WASM_IMAGE, ["hello", "colocated"], "args"),
            }
            want = {"runc": "runc-pod", "vmm": "vmm-pod", "wasm": "hello from wasm"}
            if appkernel:
                pods["appkernel"] = run("appkernel", BUSYBOX,
                                        ["sh", "-c", "echo appkernel-pod $(uname -r); sleep 3600"],
                                        "command")
                want["appkernel"] = "appkernel-pod"
            deadline = time.time() + 30
            logs = {}
            while time.time() < deadline:
                logs = {k: env.crictl("logs", cid).stdout for k, (_, cid) in pods.items()}
                if all(want[k] in logs[k] for k in pods):
                    break
                time.sleep(0.2)
            assert all(want[k] in logs[k] for k in pods), logs
            # All three pods are up at once, each kind under its own sandboxer.
            states = {k: json.loads(ok("inspectp", pod))["status"]["state"] for k, (pod, _) in pods.items()}
            assert states == {k: "SANDBOX_READY" for k in pods}, states
            assert len(pids_of("cloud-hypervisor", str(sbs["vmm"].dir))) == 1
            for pod, _ in pods.values():
                ok("rmp", "-f", pod)
            assert pids_of("cloud-hypervisor", str(sbs["vmm"].dir)) == []
            assert pids_of("kuasar-holder", str(sbs["runc"].dir)) == []
            if appkernel:
                assert pids_of("runsc-sandbox", str(sbs["appkernel"].dir)) == []
        finally:
            env.crictl("rmp", "-fa", timeout=300)
            for s in sbs.values():
                s.cleanup()
            shutil.rmtree(tmp_path, ignore_errors=True)
