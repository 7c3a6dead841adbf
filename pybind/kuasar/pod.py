"""Pods and containers through a sandboxer's own APIs, without containerd: the sandbox API
makes the pod, the pod's Task API (ttrpc) runs its containers from OCI bundles this module
writes (kuasar.bundle), over the test root filesystem (busybox + /testinit).

    with sb.pod("web") as pod:
        c = pod.run(["/testinit", "sleep", "inf"], name="main")
        r = c.exec(["/testinit", "print", "hello"])     # ExecResult(exit_code=0, ...)
        print(r.stdout, c.stats()["metrics"]["memory"]["usage"]["usage"])
        c.stop()                                         # SIGTERM, then SIGKILL

Every container's stdout and stderr go to <pod dir>/<container>/output.log (logs()).
Leaving the `with` block (or remove()) kills and deletes the containers, stops and shuts
down the sandbox, deletes its network namespace and its files, even after an error.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import pathlib
import re
import shutil
import signal as signals
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import bundle, errors
from .netns import NetworkNamespace

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MNT_DETACH = 2


def _check_id(what: str, value: str) -> None:
    if not ID_RE.fullmatch(value):
        raise errors.InvalidArgument(
            f"{what} id \"{value}\" must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}")


def _unmount_below(path: pathlib.Path) -> None:
    """Detaches whatever is still mounted below `path` (deepest first)."""
    import ctypes
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    points = sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True)
    if points:
        libc = ctypes.CDLL(None, use_errno=True)
        for p in points:
            libc.umount2(p.encode(), MNT_DETACH)


@dataclasses.dataclass
class ExecResult:
    """What an exec'd process did: its exit code and output (text, decoded as UTF-8)."""

    exit_code: int
    stdout: str
    stderr: str

    def check(self) -> "ExecResult":
        """Raises FailedPrecondition unless the exit code is 0; returns self."""
        if self.exit_code != 0:
            raise errors.FailedPrecondition(
                f"exit code {self.exit_code}: {self.stderr.strip() or self.stdout.strip()}")
        return self


class Container:
    """A container of a pod (made by Pod.run)."""

    def __init__(self, pod: "Pod", name: str, bundle_dir: pathlib.Path):
        self.pod = pod
        self.name = name
        # Task ids are unique per sandboxer (the OCI runtime's state is shared), as
        # containerd's container ids are: the pod's id goes in.
        self.id = f"{pod.id}.{name}"
        self.bundle = bundle_dir
        self.pid = 0
        self._exec_ids = itertools.count(1)
        self._removed = False
        self.env: List[str] = []  # the container's environment; exec'd processes inherit it

    @property
    def log_path(self) -> pathlib.Path:
        return self.bundle / "output.log"

    @property
    def _task(self):
        return self.pod.task

    def start(self) -> int:
        """Task.Start; returns the pid."""
        self.pid = self._task.start(self.id)
        return self.pid

    def wait(self, timeout: Optional[float] = None) -> int:
        """The exit code, once the container's init process has exited; DeadlineExceeded
        after `timeout` seconds."""
        return int(self._task.wait(self.id, "", timeout)["exit_status"])

    def kill(self, signal: int = signals.SIGTERM, all: bool = False) -> None:  # noqa: A002
        self._task.kill(self.id, int(signal), "", all)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        if self.state()["status"] == "STOPPED":
            return self.wait(timeout=timeout)
        self.kill(signals.SIGTERM)
        try:
            return self.wait(timeout=timeout)
        except errors.DeadlineExceeded:
            self.kill(signals.SIGKILL, all=True)
            return self.wait(timeout=30)

    def state(self) -> Dict[str, Any]:
        """Task.State: id, pid, status ("CREATED", "RUNNING", "STOPPED", ...), exit_status."""
        return self._task.state(self.id)

    def pids(self) -> List[int]:
        return self._task.pids(self.id)

    def stats(self) -> Dict[str, Any]:
        """Task.Stats: {"type": "io.containerd.cgroups.v1.Metrics", "metrics": {...}}."""
        return self._task.stats(self.id)

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Polls logs() until it contains `text`; DeadlineExceeded after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.logs()
            if text in out:
                return out
            if time.monotonic() > deadline:
                raise errors.DeadlineExceeded(
                    f"container {self.id}: \"{text}\" not in its output after {timeout}s: {out!r}")
            time.sleep(0.02)

    def exec(self, args: Sequence[str], *, timeout: Optional[float] = 30.0,
             input: Union[str, bytes, None] = None, env: bundle.Env = None,  # noqa: A002
             cwd: str = "/") -> ExecResult:
        """Runs `args` in the container (Task.Exec) and waits for it, with the container's
        environment plus `env`. `input` is written to its stdin, which then reads EOF. After
        `timeout` seconds the process is killed and DeadlineExceeded raised."""
        exec_id = f"exec-{next(self._exec_ids)}"
        d = self.bundle / exec_id
        d.mkdir()
        out, err = d / "stdout", d / "stderr"
        stdin = ""
        if input is not None:
            stdin = str(d / "stdin")
            os.mkfifo(stdin, 0o600)
        task = self._task
        extra = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else list(env or [])
        spec = bundle.process_spec(args, env=self.env + extra, cwd=cwd)
        task.exec(self.id, exec_id, spec, stdin=stdin,
                  stdout=f"file://{out}", stderr=f"file://{err}")
        try:
            task.start(self.id, exec_id)
            if input is not None:
                data = input.encode() if isinstance(input, str) else input
                writer = threading.Thread(target=self._feed, args=(stdin, data, exec_id),
                                          daemon=True)
                writer.start()
            try:
                code = int(task.wait(self.id, exec_id, timeout)["exit_status"])
            except errors.DeadlineExceeded:
                with contextlib.suppress(errors.KuasarError):
                    task.kill(self.id, signals.SIGKILL, exec_id, False)
                raise errors.DeadlineExceeded(
                    f"exec {args!r} in {self.id} did not finish in {timeout}s") from None
        finally:
            with contextlib.suppress(errors.KuasarError):
                task.delete(self.id, exec_id)
        result = ExecResult(code, out.read_text(errors="replace") if out.exists() else "",
                            err.read_text(errors="replace") if err.exists() else "")
        shutil.rmtree(d, ignore_errors=True)
        return result

    def _feed(self, fifo: str, data: bytes, exec_id: str) -> None:
        fd = os.open(fifo, os.O_WRONLY)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            pass  # the process exited without reading it all
        finally:
            os.close(fd)
            with contextlib.suppress(errors.KuasarError):
                self._task.close_io(self.id, exec_id, True)

    def remove(self) -> None:
        """Kills the container if it runs, deletes the task and its bundle. Idempotent."""
        if self._removed:
            return
        task = self.pod.task_or_none()
        if task is not None:
            with contextlib.suppress(errors.NotFound, errors.FailedPrecondition):
                if self.state()["status"] not in ("STOPPED", "UNKNOWN"):
                    with contextlib.suppress(errors.KuasarError):
                        self.kill(signals.SIGKILL, all=True)
                    with contextlib.suppress(errors.KuasarError):
                        self.wait(timeout=30)
                task.delete(self.id)
        self._removed = True
        _unmount_below(self.bundle)
        shutil.rmtree(self.bundle, ignore_errors=True)
        self.pod._forget(self.name)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Container({self.pod.id}/{self.id}, pid={self.pid})"


class Pod:
    """A pod (sandbox) of a Sandboxer; made by Sandboxer.pod(id, ...).

    network:   "private" (default: a fresh network namespace with only loopback, removed
               with the pod), "host" (the sandboxer's), or the path of a netns to join.
    hostname:  the pod's hostname (default: its id).
    share_pid: one PID namespace for all its containers (CRI's pid=POD).
    pod_config: a CRI PodSandboxConfig dict sent as Create's options instead of the one
               made from the above.
    """

    def __init__(self, sandboxer, pod_id: str, *, network: str = "private",
                 hostname: Optional[str] = None, share_pid: bool = False,
                 pod_config: Optional[Mapping[str, Any]] = None,
                 annotations: Optional[Mapping[str, str]] = None,
                 task_timeout: float = 30.0):
        _check_id("pod", pod_id)
        self.sandboxer = sandboxer
        self.id = pod_id
        self.network = network
        self.share_pid = share_pid
        self.annotations = dict(annotations or {})
        self.pod_config = dict(pod_config) if pod_config is not None else {
            "metadata": {"name": pod_id, "namespace": "default", "uid": pod_id},
            "hostname": hostname if hostname is not None else pod_id,
            "linux": {"security_context": {"namespace_options": {
                "pid": "POD" if share_pid else "CONTAINER"}}},
        }
        self.dir = sandboxer.dir / "pods" / pod_id
        self.address = ""
        self.pid = 0
        self.netns: Optional[NetworkNamespace] = None
        self.netns_path = ""
        self._task = None
        self._task_timeout = task_timeout
        self._containers: Dict[str, Container] = {}
        self._created = False
        self._removed = False
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> "Pod":
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.network == "private":
            self.netns = NetworkNamespace("kpy-" + os.urandom(4).hex()).create()
            self.netns_path = self.netns.path
        elif self.network != "host":
            self.netns_path = self.network
        client = self.sandboxer.client
        client.create(self.id, netns_path=self.netns_path, pod_config=self.pod_config,
                      annotations=self.annotations)
        self._created = True
        started = client.start(self.id)
        self.address = started["address"]
        self.pid = int(started["pid"])
        return self

    @property
    def task(self):
        """The kuasar._native.TaskClient of the pod's Task API (connected on first use)."""
        if self._task is None:
            from ._loader import native
            _native = native()
            if not self.address:
                raise errors.FailedPrecondition(f"pod {self.id} is not started")
            self._task = _native.TaskClient.connect(self.address, self._task_timeout)
        return self._task

    def task_or_none(self):
        """The Task API client, or None when the pod has none (not started, unreachable)."""
        if not self.address:
            return None
        try:
            return self.task
        except errors.KuasarError:
            return None

    def stop(self, timeout_secs: int = 0) -> None:
        """Controller.Stop: kills the pod's containers and its holder/VM."""
        self.sandboxer.client.stop(self.id, timeout_secs)

    def remove(self) -> None:
        """Removes everything of the pod (idempotent): containers, sandbox, netns, files.
        Raises the first error after finishing."""
        if self._removed:
            return
        first: Optional[BaseException] = None

        def attempt(fn, *args):
            nonlocal first
            try:
                fn(*args)
            except errors.NotFound:
                pass
            except Exception as e:  # noqa: BLE001
                first = first or e

        for c in list(self._containers.values()):
            attempt(c.remove)
        if self._task is not None:
            attempt(self._task.close)
            self._task = None
        if self._created and self.sandboxer.proc.running():
            attempt(self.sandboxer.client.stop, self.id, 0)
            attempt(self.sandboxer.client.shutdown, self.id)
        if self.netns is not None:
            attempt(self.netns.delete)
        _unmount_below(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        self._removed = True
        self.sandboxer._forget(self.id)
        if first is not None:
            raise first

    close = remove

    def __enter__(self) -> "Pod":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.remove()
        except Exception:
            if exc_type is None:
                raise

    # --- facts -----------------------------------------------------------------------
    def status(self, verbose: bool = False) -> Dict[str, Any]:
        """Controller.Status: state ("SANDBOX_READY", ...), pid, info, ..."""
        return self.sandboxer.client.status(self.id, verbose)

    def metrics(self) -> Dict[str, Any]:
        return self.sandboxer.client.metrics(self.id)

    # --- containers ------------------------------------------------------------------
    def run(self, args: Sequence[str], *, name: Optional[str] = None, env: bundle.Env = None,
            cwd: str = "/", terminal: bool = False, memory_limit: int = 0,
            start: bool = True) -> Container:
        """Creates (and starts, unless start=False) a container running `args`."""
        with self._lock:
            if name is None:
                name = f"c{len(self._containers) + 1}"
                while name in self._containers:
                    name += "x"
            _check_id("container", name)
            if name in self._containers:
                raise errors.AlreadyExists(f"container {name} already exists in pod {self.id}")
            d = self.dir / name
            c = Container(self, name, d)
            self._containers[name] = c
        try:
            d.mkdir(parents=True)
            c.env = bundle.process_spec(args, env=env)["env"]
            mounts = bundle.write_bundle(
                d, container_id=f"{self.sandboxer.dir.name}-{c.id}", args=args, env=env,
                cwd=cwd, terminal=terminal, sandbox_pid=self.pid, share_pid=self.share_pid,
                memory_limit=memory_limit)
            log = f"file://{c.log_path}"
            c.pid = self.task.create(c.id, str(d), rootfs=mounts, stdout=log,
                                     stderr="" if terminal else log, terminal=terminal)
            if start:
                c.start()
        except BaseException:
            with contextlib.suppress(Exception):
                c.remove()
            raise
        return c

    def container(self, name: str) -> Container:
        try:
            return self._containers[name]
        except KeyError:
            raise errors.NotFound(f"pod {self.id} has no container {name}") from None

    @property
    def containers(self) -> List[Container]:
        return list(self._containers.values())

    def _forget(self, name: str) -> None:
        with self._lock:
            self._containers.pop(name, None)

    def __repr__(self) -> str:
        return f"Pod({self.id}, address={self.address})"
