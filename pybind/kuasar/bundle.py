"""OCI bundles for containers run without containerd: what containerd writes for a pod's
container (config.json joining the pod's namespaces through /proc/<pid>/ns, an overlay
rootfs over the test root filesystem), as runtime/oci/testing/test_bundle.cc does.

    mounts = write_bundle("/tmp/b", container_id="c1", args=["/testinit", "print", "hi"],
                          sandbox_pid=pod.pid)
    task.create("c1", "/tmp/b", rootfs=mounts, stdout="file:///tmp/b/out.log")
"""
from __future__ import annotations

import copy
import json
import os
import pathlib
from typing import Dict, List, Mapping, Optional, Sequence, Union

from . import paths

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CAPABILITIES = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]

_BASE_SPEC = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/testinit"],
        "env": [DEFAULT_PATH], "cwd": "/",
        "capabilities": {k: list(CAPABILITIES) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": "mount"}],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
    },
}

Env = Union[Mapping[str, str], Sequence[str], None]


def _env_list(env: Env) -> List[str]:
    out = [DEFAULT_PATH]
    if env is None:
        return out
    items = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else list(env)
    names = {e.split("=", 1)[0] for e in items}
    return [e for e in out if e.split("=", 1)[0] not in names] + items


def process_spec(args: Sequence[str], *, terminal: bool = False, env: Env = None,
                 cwd: str = "/") -> Dict:
    """An OCI runtime-spec Process (for Task.Exec)."""
    if not args:
        raise ValueError("a process needs at least one argument")
    return {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": list(args),
            "env": _env_list(env), "cwd": cwd,
            "capabilities": {k: list(CAPABILITIES) for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True}


def write_bundle(bundle_dir: Union[str, os.PathLike], *, container_id: str,
                 args: Sequence[str], env: Env = None, terminal: bool = False,
                 sandbox_pid: int = 0, share_pid: bool = False, cwd: str = "/",
                 cgroups_path: Optional[str] = None, memory_limit: int = 0,
                 rootfs: Optional[Union[str, os.PathLike]] = None) -> List[Dict]:
    """Writes <bundle_dir>/config.json and an empty <bundle_dir>/rootfs; returns the rootfs
    mounts for Task.Create: an overlay over `rootfs` (default: paths.test_rootfs()) with its
    upper and work dirs in the bundle, as containerd's overlayfs snapshotter gives.

    With sandbox_pid the container joins that process's ipc, uts and network namespaces
    (and pid, with share_pid), as CRI has it join the pod's."""
    d = pathlib.Path(bundle_dir)
    (d / "rootfs").mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o711)
    spec = copy.deepcopy(_BASE_SPEC)
    spec["process"].update(process_spec(args, terminal=terminal, env=env, cwd=cwd))
    ns = spec["linux"]["namespaces"]
    if sandbox_pid > 0:
        for kind, f in (("ipc", "ipc"), ("uts", "uts"), ("network", "net")):
            ns.append({"type": kind, "path": f"/proc/{sandbox_pid}/ns/{f}"})
        if share_pid:
            ns.append({"type": "pid", "path": f"/proc/{sandbox_pid}/ns/pid"})
    if not share_pid:
        ns.append({"type": "pid"})
    spec["linux"]["cgroupsPath"] = cgroups_path or f"/kuasar-py/{container_id}"
    if memory_limit > 0:
        spec["linux"]["resources"]["memory"] = {"limit": int(memory_limit)}
    tmp = d / "config.json.tmp"
    tmp.write_text(json.dumps(spec, indent=2))
    tmp.rename(d / "config.json")
    upper, work = d / "upper", d / "work"
    upper.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    lower = pathlib.Path(rootfs) if rootfs is not None else paths.test_rootfs()
    return [{"type": "overlay", "source": "overlay", "target": "",
             "options": [f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"]}]
