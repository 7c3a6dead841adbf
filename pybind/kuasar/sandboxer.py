"""kuasar-sandboxer processes: a low-level SandboxerProcess (config in a temp dir, start,
stop, kill -9, restart) and the high-level Sandboxer, which also makes pods::

    with kuasar.Sandboxer(kind="runc") as sb:          # its own temp state dir
        with sb.pod("p1") as pod:
            c = pod.run(["/testinit", "print", "hi"])
            assert c.wait() == 0 and c.logs() == "hi\\n"

Either always cleans up: leaving the `with` block removes every pod the Sandboxer made
(containers killed, sandboxes shut down, network namespaces deleted), stops the process
(SIGTERM, then SIGKILL) and deletes the temp dir (KUASAR_KEEP_SANDBOXER_DIR=1 keeps it).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _toml, errors, paths

SANDBOX_KINDS = ("runc", "vmm", "wasm", "appkernel")
# vmm backends -> the real binary's name (the fake VMM takes its personality from it).
VMM_BACKENDS = {
    "qemu": "qemu-system-x86_64",
    "cloud-hypervisor": "cloud-hypervisor",
    "firecracker": "firecracker",
    "stratovirt": "stratovirt",
    "libvirt": None,
}
FAKE_VMM_BINARY = "kuasar-fake-vmm"


class SandboxerProcess:
    """One kuasar-sandboxer process with its config, state dir and log in a temp dir.

        with SandboxerProcess(bin_dir, kind="runc") as sb:       # socket at sb.socket
            ...

    `netns` (a /run/netns/NAME path) runs it in that network namespace."""

    def __init__(self, bin_dir: Union[str, os.PathLike, None] = None, kind: str = "runc", *,
                 containerd_ttrpc: str = "/nonexistent/containerd.sock.ttrpc",
                 extra_config: str = "", env: Optional[dict] = None,
                 work_dir: Optional[str] = None, log_level: str = "debug",
                 netns: Optional[str] = None, name: Optional[str] = None):
        self.bin_dir = pathlib.Path(bin_dir) if bin_dir is not None else \
            paths.find_binary("kuasar-sandboxer").parent
        self.kind = kind
        self.name = name or f"kuasar-{kind}"
        self.containerd_ttrpc = containerd_ttrpc
        self.extra_config = extra_config
        self.env = env
        self.log_level = log_level
        self.netns = netns
        # Short paths: the sandboxer's sockets live below and must fit in 108 bytes.
        self.dir = pathlib.Path(work_dir or tempfile.mkdtemp(prefix="ks.", dir="/tmp"))
        self.proc: Optional[subprocess.Popen] = None

    @property
    def socket(self) -> str:
        return str(self.dir / "s.sock")

    @property
    def state_dir(self) -> pathlib.Path:
        return self.dir / "st"

    @property
    def config_path(self) -> pathlib.Path:
        return self.dir / "sandboxer.toml"

    @property
    def log_path(self) -> pathlib.Path:
        return self.dir / "sandboxer.log"

    def write_config(self) -> None:
        self.config_path.write_text(
            f'[sandboxer]\nkind = "{self.kind}"\nname = "{self.name}"\n'
            f'listen = "{self.socket}"\nstate_dir = "{self.state_dir}"\n'
            f'log_level = "{self.log_level}"\n'
            f'[containerd]\nttrpc_address = "{self.containerd_ttrpc}"\n{self.extra_config}')

    def command(self) -> List[str]:
        cmd = [str(self.bin_dir / "kuasar-sandboxer"), "-c", str(self.config_path)]
        if self.netns:
            cmd = ["nsenter", f"--net={self.netns}", "--"] + cmd
        return cmd

    def start(self, timeout: float = 15) -> "SandboxerProcess":
        self.write_config()
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.command(), stderr=log, env=env,
                                         stdin=subprocess.DEVNULL)
        # kuasarctl's health retries once a second: ask it only once the socket exists.
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket) and self.proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        health = subprocess.run([str(self.bin_dir / "kuasarctl"), "-a", self.socket,
                                 "--timeout", str(timeout), "health"],
                                capture_output=True, text=True)
        if health.returncode != 0:
            self.stop()
            raise errors.Unavailable(
                f"sandboxer did not come up: {health.stderr}\n{self.tail_log()}")
        return self

    def kill9(self) -> None:
        """Crash it: SIGKILL, as the recovery tests do."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20) -> int:
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pid(self) -> int:
        return self.proc.pid

    def tail_log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no sandboxer log)"

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("KUASAR_KEEP_SANDBOXER_DIR") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SandboxerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


def fake_vmm_toml(bin_dir: Union[str, os.PathLike], driver: str, work: Union[str, os.PathLike],
                  agent_timeout_ms: int = 60000) -> str:
    """The [hypervisor] and [vmm] TOML of a vmm sandboxer (or the vmm shim) driving the fake
    VMM from `bin_dir`/fake-vmm as `driver`; touches the kernel/initrd files the drivers
    check for in `work` (the fake reads neither)."""
    bin_dir, work = pathlib.Path(bin_dir), pathlib.Path(work)
    for f in ("vmlinuz", "initrd"):
        (work / f).touch()
    return (f'[hypervisor]\ndriver = "{driver}"\n'
            f'path = "{bin_dir / "fake-vmm" / VMM_BACKENDS[driver]}"\n'
            f'kernel_path = "{work / "vmlinuz"}"\ninitrd_path = "{work / "initrd"}"\n'
            + ('accel = "tcg"\n' if driver == "qemu" else "")
            # The fake runs the guest agent in namespaces it makes: it needs root's
            # capabilities, where a real VMM keeps only net_admin (docs/reliability.md).
            + 'vmm_capabilities = ["all"]\n'
            + f'[vmm]\nguest_sees_host_paths = true\nagent_timeout_ms = {agent_timeout_ms}\n')


def backend_config(kind: str, backend: Optional[str], fake_vmm: bool,
                   work_dir: pathlib.Path) -> Dict[str, Any]:
    """The config sections that select a backend: [hypervisor] driver (and, for the fake
    VMM, the path of a link to it named like the real VMM) or [wasm] engine."""
    if kind not in SANDBOX_KINDS:
        raise errors.InvalidArgument(
            f"unknown sandbox kind \"{kind}\" (one of {', '.join(SANDBOX_KINDS)})")
    cfg: Dict[str, Any] = {}
    if kind == "vmm":
        backend = backend or "qemu"
        if backend not in VMM_BACKENDS:
            raise errors.InvalidArgument(
                f"unknown vmm backend \"{backend}\" (one of {', '.join(VMM_BACKENDS)})")
        cfg["hypervisor"] = {"driver": backend}
        if fake_vmm:
            real = VMM_BACKENDS[backend]
            if real is None:
                raise errors.InvalidArgument(f"the fake VMM cannot play {backend}")
            fake = paths.find_binary(FAKE_VMM_BINARY)
            link = work_dir / "vmm" / real
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(fake)
            cfg["hypervisor"]["path"] = str(link)
            # The fake reads neither file, but the drivers check they are there; its guest
            # shares the host's filesystem (docs/vmm.md).
            for name in ("vmlinuz", "initrd"):
                (work_dir / "vmm" / name).touch()
            cfg["hypervisor"]["kernel_path"] = str(work_dir / "vmm" / "vmlinuz")
            cfg["hypervisor"]["initrd_path"] = str(work_dir / "vmm" / "initrd")
            if backend == "qemu":
                cfg["hypervisor"]["accel"] = "tcg"
            # As fake_vmm_toml: the fake needs root's capabilities for its namespaces.
            cfg["hypervisor"]["vmm_capabilities"] = ["all"]
            cfg["vmm"] = {"guest_sees_host_paths": True}
        else:
            guest = (paths.build_dir() or pathlib.Path("/nonexistent")) / "guest"
            if (guest / "vmlinuz").exists() and (guest / "initramfs.img").exists():
                cfg["hypervisor"]["kernel_path"] = str(guest / "vmlinuz")
                cfg["hypervisor"]["initrd_path"] = str(guest / "initramfs.img")
    elif kind == "wasm" and backend:
        cfg["wasm"] = {"engine": backend}
    elif backend and kind != "vmm":
        cfg.setdefault(kind, {})["runtime"] = backend
    return cfg


class Sandboxer:
    """A running kuasar-sandboxer of one kind, and the pods made through it.

    kind:       "runc", "vmm", "wasm" or "appkernel".
    backend:    vmm: "qemu" (default), "cloud-hypervisor", "firecracker", "stratovirt",
                "libvirt"; wasm: "wasmtime" or "wasmedge"; runc: "runc", "crun" or "auto".
    fake_vmm:   vmm only: run the fake VMM (sim/) in the backend's place.
    config:     extra config as a dict of TOML tables, merged over what the above makes
                (e.g. {"hypervisor": {"memory_in_mb": 256}}); see docs/config.md.
    env:        extra environment for the sandboxer (and the VMMs it starts).
    containerd_ttrpc: where task events go (containerd's ttrpc socket), if anywhere.
    """

    def __init__(self, kind: str = "runc", *, backend: Optional[str] = None,
                 fake_vmm: bool = False, config: Optional[Mapping[str, Any]] = None,
                 env: Optional[Mapping[str, str]] = None, name: Optional[str] = None,
                 containerd_ttrpc: Optional[str] = None, log_level: str = "info",
                 bin_dir: Union[str, os.PathLike, None] = None, netns: Optional[str] = None,
                 start_timeout: float = 15.0):
        self.kind = kind
        self.backend = backend
        self.fake_vmm = fake_vmm
        self._config = dict(config or {})
        self._start_timeout = start_timeout
        self.proc = SandboxerProcess(
            bin_dir, kind, env=dict(env or {}), log_level=log_level, netns=netns, name=name,
            containerd_ttrpc=containerd_ttrpc or "/nonexistent/containerd.sock.ttrpc")
        self._client = None
        self._pods: Dict[str, "Pod"] = {}
        self._lock = threading.Lock()
        self._counter = 0

    # --- process ---------------------------------------------------------------------
    def start(self) -> "Sandboxer":
        from ._loader import native
        _native = native()
        try:
            cfg = backend_config(self.kind, self.backend, self.fake_vmm, self.proc.dir)
            _toml.merge(cfg, self._config)
            self.proc.extra_config = _toml.dumps(cfg) if cfg else ""
            self.proc.start(timeout=self._start_timeout)
            self._client = _native.SandboxClient(self.proc.socket, self.proc.name)
        except BaseException:
            self.proc.cleanup()
            raise
        return self

    def close(self) -> None:
        """Removes every pod still open, stops the process, deletes the temp dir. Raises
        the first cleanup error (after finishing the cleanup)."""
        first: Optional[BaseException] = None
        for pod in list(self._pods.values()):
            try:
                pod.remove()
            except Exception as e:  # noqa: BLE001 - keep cleaning, report the first
                first = first or e
        # Drop the gRPC channel first: with a connection open the sandboxer's server waits
        # out its 2 s shutdown grace period on SIGTERM.
        self._client = None
        self.proc.cleanup()
        if first is not None:
            raise first

    def __enter__(self) -> "Sandboxer":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except Exception:
            if exc_type is None:
                raise  # a failure of the body wins over one of the cleanup

    def kill9(self) -> None:
        """SIGKILLs the sandboxer (pods keep running; restart() recovers them)."""
        self.proc.kill9()

    def restart(self) -> None:
        """Stops the process if it runs and starts it again; it recovers every pod. The
        gRPC client is made anew (the old channel saw its server die)."""
        from ._loader import native
        self._client = None  # (see close())
        if self.proc.running():
            self.proc.stop()
        self.proc.start(timeout=self._start_timeout)
        self._client = native().SandboxClient(self.proc.socket, self.proc.name)

    # --- facts -----------------------------------------------------------------------
    @property
    def client(self):
        """The kuasar._native.SandboxClient of this sandboxer's gRPC sandbox API."""
        if self._client is None:
            raise errors.FailedPrecondition("the sandboxer is not started")
        return self._client

    @property
    def socket(self) -> str:
        return self.proc.socket

    @property
    def dir(self) -> pathlib.Path:
        return self.proc.dir

    @property
    def state_dir(self) -> pathlib.Path:
        return self.proc.state_dir

    @property
    def name(self) -> str:
        return self.proc.name

    @property
    def pid(self) -> int:
        return self.proc.pid()

    @property
    def log_path(self) -> pathlib.Path:
        return self.proc.log_path

    def tail_log(self, lines: int = 60) -> str:
        return self.proc.tail_log(lines)

    def platform(self) -> Dict[str, str]:
        return self.client.platform("")

    # --- pods ------------------------------------------------------------------------
    def pod(self, pod_id: Optional[str] = None, **options) -> "Pod":
        """Creates and starts a pod (see Pod for the options); use it as a context manager
        so that it is removed at the end."""
        from .pod import Pod
        with self._lock:
            if pod_id is None:
                self._counter += 1
                pod_id = f"pod-{self._counter}"
            if pod_id in self._pods:
                raise errors.AlreadyExists(f"pod {pod_id} is already open in this sandboxer")
        pod = Pod(self, pod_id, **options)
        with self._lock:
            self._pods[pod_id] = pod
        try:
            pod.start()
        except BaseException:
            try:
                pod.remove()
            except Exception:  # noqa: BLE001 - the start error is the one to see
                pass
            raise
        return pod

    @property
    def pods(self) -> List["Pod"]:
        with self._lock:
            return list(self._pods.values())

    def _forget(self, pod_id: str) -> None:
        with self._lock:
            self._pods.pop(pod_id, None)


def probe(kind: str, backend: Optional[str] = None, fake_vmm: bool = False,
          timeout: float = 60.0) -> Optional[str]:
    """Why a sandboxer of this kind and backend cannot run pods here, or None when it can:
    starts one and makes (then removes) a pod, as a skip reason for tests."""
    if os.geteuid() != 0:
        return "needs root (namespaces, cgroups, mounts)"
    for exe in ("kuasar-sandboxer", "kuasar-holder", "kuasarctl"):
        if paths.find_binary(exe, required=False) is None:
            return f"{exe} is not built (set KUASAR_BUILD_DIR)"
    if fake_vmm and paths.find_binary(FAKE_VMM_BINARY, required=False) is None:
        return f"the fake VMM ({FAKE_VMM_BINARY}, sim/) is not built yet"
    try:
        with Sandboxer(kind, backend=backend, fake_vmm=fake_vmm, start_timeout=timeout) as sb:
            with sb.pod("kuasar-probe", network="host"):
                pass
    except errors.KuasarError as e:
        return f"the {kind} sandboxer{f' ({backend})' if backend else ''} cannot run pods " \
               f"here: {e}"
    return None
