"""A private containerd 2.x: its own config, dirs, sockets, CNI network and images; and Node,
such a containerd wired to a kuasar sandboxer, optionally in its own network namespace with
containerd's API (CRI included) on a TCP address, as one node of a distributed run.

    with ContainerdEnv() as env:                      # containerd's own runc path only
        env.crictl("runp", "pod.json")
    with ContainerdEnv(sandboxer_name="kuasar-runc",  # plus a kuasar sandboxer
                       sandboxer_socket="/tmp/k/s.sock", handler="kuasar-runc") as env:
        env.crictl("runp", "--runtime", "kuasar-runc", "pod.json")

Everything lives in one fresh temp dir (short path: unix socket paths are limited to 108
bytes): containerd's root and state, its gRPC/ttrpc sockets, the CNI conf and IPAM dirs,
the log. On exit it removes every pod (crictl rmp -fa), stops containerd (SIGTERM, then
SIGKILL), kills shims of this instance that are left, unmounts whatever is mounted under
the temp dir, deletes the instance's CNI bridge and removes the dir.

Binaries: containerd, ctr, containerd-shim-runc-v2, crictl, critest from $KUASAR_TOOLS
(default /opt/kuasar-tools/bin, filled by ci/install-go-tools); runc and the CNI plugins from
Debian (ci/install-containerd-deps). Images: fixtures/images/build-busybox-oci.sh into
$KUASAR_IMAGES_DIR (default build/fixtures/images), imported into namespace k8s.io, and also
served by fixtures/images/registry.py, the mirror of every registry for this containerd,
so that CRI PullImage of those names works with no network.

Fixtures (config template, image builder, registry) come from kuasar.paths.fixtures_dir().
With netns=PATH containerd, its CNI plugins and the fixture registry run in that network
namespace (only the network namespace: mounts stay the host's); with tcp_address="IP:PORT"
containerd also serves its gRPC API, CRI included, on that TCP address.

Set KUASAR_KEEP_CONTAINERD_ENV=1 to keep the temp dir (config, log) after the run.
"""
from __future__ import annotations

import ctypes
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence

from . import errors, paths
from .netns import NetworkNamespace
from .sandboxer import SandboxerProcess, backend_config

FIXTURES = paths.fixtures_dir()
CONFIG_TEMPLATE = FIXTURES / "containerd" / "config.toml.in"
CNI_TEMPLATE = FIXTURES / "containerd" / "cni" / "10-kuasar-bridge.conflist.in"
IMAGE_BUILDER = FIXTURES / "images" / "build-busybox-oci.sh"
REGISTRY = FIXTURES / "images" / "registry.py"

GO_TOOLS = ("containerd", "ctr", "containerd-shim-runc-v2", "crictl", "critest")
CNI_BIN_DIR = "/usr/lib/cni"
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.2"
BUSYBOX_IMAGE = "docker.io/library/busybox:kuasar"
IMAGE_ARCHIVES = ("busybox.tar", "pause.tar", "critest.tar")

MNT_DETACH = 2


def tools_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KUASAR_TOOLS", "/opt/kuasar-tools/bin"))


def images_dir() -> pathlib.Path:
    return paths.images_dir()


def missing_requirements() -> list[str]:
    """Why a ContainerdEnv cannot run here (empty when it can): for pytest.skip."""
    why = []
    if os.geteuid() != 0:
        why.append("needs root (containerd, runc, CNI)")
    for tool in GO_TOOLS:
        if not os.access(tools_dir() / tool, os.X_OK):
            why.append(f"{tools_dir() / tool} missing (run ci/install-go-tools)")
    if not shutil.which("runc"):
        why.append("runc missing (run ci/install-containerd-deps)")
    for plugin in CNI_PLUGINS:
        if not os.access(os.path.join(CNI_BIN_DIR, plugin), os.X_OK):
            why.append(f"CNI plugin {CNI_BIN_DIR}/{plugin} missing (containernetworking-plugins)")
    if not os.access("/bin/busybox", os.X_OK):
        why.append("/bin/busybox missing (busybox-static)")
    return why


def build_images(out: Optional[pathlib.Path] = None) -> pathlib.Path:
    """Builds (or finds cached) the fixture image archives; returns their directory."""
    out = out or images_dir()
    subprocess.run([str(IMAGE_BUILDER), str(out)], check=True)
    return out


def overlay_works(scratch: pathlib.Path) -> bool:
    """Mounts a throw-away overlay under `scratch` (the fs containerd's root will be on)."""
    d = scratch / "ovl-probe"
    parts = [d / n for n in ("lower", "upper", "work", "merged")]
    for p in parts:
        p.mkdir(parents=True, exist_ok=True)
    lower, upper, work, merged = parts
    try:
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
                           capture_output=True)
        if r.returncode != 0:
            return False
        subprocess.run(["umount", str(merged)], check=False)
        return True
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _render(text: str, values: dict[str, str], keep_sandboxer: bool) -> str:
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if s == "# @BEGIN_SANDBOXER@":
            skipping = not keep_sandboxer
            continue
        if s == "# @END_SANDBOXER@":
            skipping = False
            continue
        if not skipping:
            out.append(line)
    text = "".join(out)
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    if "@" in "".join(l for l in text.splitlines() if not l.lstrip().startswith("#")):
        leftover = [l for l in text.splitlines() if "@" in l and not l.lstrip().startswith("#")]
        raise ValueError(f"unrendered placeholders: {leftover}")
    return text


def _proc_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(e))
    return kids


class ContainerdEnv:
    def __init__(self, sandboxer_name: Optional[str] = None,
                 sandboxer_socket: Optional[str] = None, handler: str = "kuasar",
                 *, base_dir: Optional[str] = None, images: Iterable[str] = IMAGE_ARCHIVES,
                 registry: bool = True, snapshotter: Optional[str] = None,
                 start_timeout: float = 30.0, stop_timeout: float = 15.0,
                 netns: Optional[str] = None, tcp_address: Optional[str] = None,
                 extra_config: str = "", env: Optional[Dict[str, str]] = None):
        # No socket: no proxy plugin and no extra handler, only containerd's runc path.
        if sandboxer_socket is not None and not sandboxer_name:
            raise ValueError("sandboxer_socket given without sandboxer_name")
        self.sandboxer_name = sandboxer_name if sandboxer_socket is not None else None
        self.sandboxer_socket = sandboxer_socket
        self.handler = handler
        self.base_dir = base_dir or os.environ.get("KUASAR_CONTAINERD_TMP", "/tmp")
        self.image_archives = tuple(images)
        self.use_registry = registry
        self.snapshotter = snapshotter or os.environ.get("KUASAR_SNAPSHOTTER")
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.netns = netns
        self.tcp_address = tcp_address
        # More TOML appended to the rendered config (more proxy plugins and runtime
        # handlers: see sandbox_handler_config), and more environment for containerd
        # (which its shims inherit).
        self.extra_config = extra_config
        self.extra_env = dict(env or {})
        self.tools = tools_dir()
        self.dir: Optional[pathlib.Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self.registry_proc: Optional[subprocess.Popen] = None
        self.registry_addr: Optional[str] = None
        self.bridge = "kcd" + secrets.token_hex(4)  # 11 bytes; Linux allows 15
        n = secrets.randbelow(16 * 256)
        self.subnet = f"10.{100 + n // 256}.{n % 256}.0/24"

    # --- paths ---------------------------------------------------------------------
    @property
    def socket(self) -> str:
        return str(self.dir / "c.sock")

    @property
    def endpoint(self) -> str:
        return "unix://" + self.socket

    @property
    def tcp_endpoint(self) -> Optional[str]:
        """The CRI endpoint over TCP ("IP:PORT", a gRPC target) when tcp_address is set."""
        return self.tcp_address

    def cri(self, tcp: bool = False, timeout: float = 120.0):
        """A kuasar._native.CriClient of this containerd (over TCP with tcp=True)."""
        from ._loader import native
        endpoint = self.tcp_endpoint if tcp else self.endpoint
        if endpoint is None:
            raise errors.FailedPrecondition("this containerd has no TCP address")
        return native().CriClient(endpoint, timeout)

    def _in_netns(self, cmd: List[str]) -> List[str]:
        return ["nsenter", f"--net={self.netns}", "--"] + cmd if self.netns else cmd

    @property
    def log_path(self) -> pathlib.Path:
        return self.dir / "containerd.log"

    @property
    def config_path(self) -> pathlib.Path:
        return self.dir / "config.toml"

    def tool(self, name: str) -> str:
        return str(self.tools / name)

    # --- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> "ContainerdEnv":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        why = missing_requirements()
        if why:
            raise errors.FailedPrecondition("ContainerdEnv cannot run: " + "; ".join(why))
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="kcd.", dir=self.base_dir))
        os.chmod(self.dir, 0o711)
        imgs = build_images() if self.image_archives else None
        for sub in ("root", "state", "tmp", "cni/net.d", "cni/ipam", "certs.d"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if self.use_registry and imgs:
            self._start_registry([imgs / a for a in IMAGE_ARCHIVES])
        if not self.snapshotter:
            self.snapshotter = "overlayfs" if overlay_works(self.dir) else "native"
        self._write_configs()
        env = dict(os.environ)
        # containerd finds containerd-shim-runc-v2 on PATH; runc and the CNI plugins are Debian's.
        env["PATH"] = f"{self.tools}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._in_netns([self.tool("containerd"), "--config",
                                                         str(self.config_path)]),
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        names = []
        catalog = json.loads((imgs / "images.json").read_text()) if imgs else {}
        for archive in self.image_archives:
            self.import_image(imgs / archive)
            names += [n for n, v in catalog.items() if v["archive"] == archive]
        self.wait_images(names)

    def _start_registry(self, archives: Sequence[pathlib.Path]) -> None:
        port_file = self.dir / "registry.addr"
        log = open(self.dir / "registry.log", "ab")
        self.registry_proc = subprocess.Popen(
            self._in_netns([sys.executable, str(REGISTRY), "--listen", "127.0.0.1:0",
                            "--port-file", str(port_file), *map(str, archives)]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if self.registry_proc.poll() is not None or time.monotonic() > deadline:
                raise errors.Unavailable("fixture registry did not start: " +
                                   (self.dir / "registry.log").read_text(errors="replace"))
            time.sleep(0.05)
        self.registry_addr = port_file.read_text().strip()
        # _default applies to every registry host: all pulls go to the fixture registry,
        # which sees the original registry in the `ns` query parameter. No fallback to the
        # real registries (there is no network to reach them anyway).
        d = self.dir / "certs.d" / "_default"
        d.mkdir(parents=True, exist_ok=True)
        (d / "hosts.toml").write_text(f'server = "http://{self.registry_addr}"\n')

    def _write_configs(self) -> None:
        values = {
            "ROOT": str(self.dir / "root"), "STATE": str(self.dir / "state"),
            "TEMP": str(self.dir / "tmp"),
            "ADDRESS": self.socket, "TTRPC_ADDRESS": str(self.dir / "c.sock.ttrpc"),
            "SNAPSHOTTER": self.snapshotter, "SANDBOX_IMAGE": SANDBOX_IMAGE,
            "REGISTRY_CONFIG": str(self.dir / "certs.d"),
            "CNI_CONF_DIR": str(self.dir / "cni" / "net.d"), "CNI_BIN_DIR": CNI_BIN_DIR,
            "SANDBOXER_NAME": self.sandboxer_name or "", "SANDBOXER_SOCKET": self.sandboxer_socket or "",
            "HANDLER": self.handler,
        }
        cfg = _render(CONFIG_TEMPLATE.read_text(), values, self.sandboxer_socket is not None)
        if self.extra_config:
            cfg += "\n" + self.extra_config
        if self.tcp_address:
            cfg = _serve_tcp(cfg, self.tcp_address)
        self.config_path.write_text(cfg)
        cni = _render(CNI_TEMPLATE.read_text(), {"BRIDGE": self.bridge, "SUBNET": self.subnet,
                                                 "IPAM_DIR": str(self.dir / "cni" / "ipam")}, False)
        (self.dir / "cni" / "net.d" / "10-kuasar-bridge.conflist").write_text(cni)
        (self.dir / "crictl.yaml").write_text(
            f"runtime-endpoint: {self.endpoint}\nimage-endpoint: {self.endpoint}\n"
            "timeout: 60\ndebug: false\npull-image-on-create: false\n")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise errors.Unavailable(f"containerd exited with {self.proc.returncode}:\n{self.tail_log()}")
            if os.path.exists(self.socket):
                r = self.ctr("version", timeout=10)
                if r.returncode == 0:
                    # The CRI plugin starts serving a little after the core services.
                    r = self.crictl("info", timeout=10)
                    if r.returncode == 0:
                        return
            if time.monotonic() > deadline:
                raise errors.DeadlineExceeded(
                    f"containerd not ready after {self.start_timeout}s:\n{self.tail_log()}")
            time.sleep(0.1)

    def import_image(self, archive: pathlib.Path) -> None:
        r = self.ctr("images", "import", "--snapshotter", self.snapshotter, str(archive), timeout=120)
        if r.returncode != 0:
            raise errors.Internal(f"ctr images import {archive} failed: {r.stderr}\n{self.tail_log()}")

    def wait_images(self, names: Iterable[str], timeout: float = 30) -> None:
        """Waits until CRI lists `names`: it learns of imported images from events, later."""
        want = set(names)
        deadline = time.monotonic() + timeout
        while True:
            r = self.crictl("images", "-o", "json", timeout=30)
            have = set()
            if r.returncode == 0:
                for img in json.loads(r.stdout).get("images", []):
                    have.update(img.get("repoTags") or [])
            if want <= have:
                return
            if time.monotonic() > deadline:
                raise errors.DeadlineExceeded(f"CRI does not list imported images {sorted(want - have)}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.dir is None:
            return
        if self.proc is not None and self.proc.poll() is None:
            # Pods first, through containerd: that tears down their network (CNI DEL),
            # containers, shims and pause/holder processes the normal way.
            try:
                self.crictl("rmp", "--force", "--all", timeout=120)
            except subprocess.TimeoutExpired:
                pass  # containerd is stuck: what is left is killed below
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._delete_leftover_containers()
        self._kill_leftover_shims()
        if self.registry_proc is not None and self.registry_proc.poll() is None:
            self.registry_proc.terminate()
            try:
                self.registry_proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.registry_proc.kill()
                self.registry_proc.wait()
        self._unmount_all()
        ip = ["ip", "-n", os.path.basename(self.netns)] if self.netns else ["ip"]
        subprocess.run(ip + ["link", "del", self.bridge], capture_output=True)
        if os.environ.get("KUASAR_KEEP_CONTAINERD_ENV") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _delete_leftover_containers(self) -> None:
        """`runc delete --force` whatever runc still knows (after a containerd crash, say):
        kills the container processes and removes their cgroups. runc's root is per
        instance (options.Root in the config), one subdir per containerd namespace."""
        runc_root = self.dir / "state" / "runc"
        if not runc_root.is_dir() or not shutil.which("runc"):
            return
        for ns_root in runc_root.iterdir():
            for cid in (ns_root.iterdir() if ns_root.is_dir() else ()):
                subprocess.run(["runc", "--root", str(ns_root), "delete", "--force", cid.name],
                               capture_output=True, timeout=30)

    def _kill_leftover_shims(self) -> None:
        """SIGKILLs the shims started for this containerd, and everything under them."""
        shims = [int(e) for e in os.listdir("/proc") if e.isdigit()
                 and self._is_our_shim(_proc_cmdline(int(e)))]
        if not shims:
            return
        kids = _children_map()
        victims, todo = [], list(shims)
        while todo:
            pid = todo.pop()
            victims.append(pid)
            todo.extend(kids.get(pid, []))
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Give them a moment to go (a pid namespace's init takes a while to tear down).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in victims):
            time.sleep(0.05)

    def _is_our_shim(self, argv: list[str]) -> bool:
        if not argv or "containerd-shim" not in os.path.basename(argv[0]):
            return False
        return any(a == "-address" and i + 1 < len(argv) and argv[i + 1] == self.socket
                   for i, a in enumerate(argv))

    def _unmount_all(self) -> None:
        """Detaches every mount under the temp dir (rootfs overlays, netns, shm), deepest first."""
        prefix = str(self.dir) + "/"
        libc = ctypes.CDLL(None, use_errno=True)
        for _ in range(5):
            with open("/proc/self/mountinfo") as f:
                points = [line.split()[4] for line in f]
            points = [p.replace("\\040", " ") for p in points if p.startswith(prefix)]
            if not points:
                return
            for p in sorted(set(points), key=len, reverse=True):
                libc.umount2(p.encode(), MNT_DETACH)

    # --- clients -------------------------------------------------------------------
    def crictl(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([self.tool("crictl"), "--config", str(self.dir / "crictl.yaml"),
                               "--runtime-endpoint", self.endpoint, "--image-endpoint", self.endpoint,
                               *args], capture_output=True, text=True, timeout=timeout, check=check)

    def ctr(self, *args: str, namespace: str = "k8s.io", timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([self.tool("ctr"), "--address", self.socket, "--namespace", namespace,
                               *args], capture_output=True, text=True, timeout=timeout, check=check)

    def critest_command(self, *args: str) -> list[str]:
        return [self.tool("critest"), "--runtime-endpoint", self.endpoint,
                "--image-endpoint", self.endpoint, *args]

    def tail_log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no containerd log)"


def _serve_tcp(cfg: str, tcp_address: str) -> str:
    """Adds containerd's TCP listener ([grpc] tcp_address) and lets CRI serve on it (the CRI
    plugin's disable_tcp_service defaults to true)."""
    lines = cfg.splitlines(keepends=True)
    out, in_grpc, added_tcp, added_cri = [], False, False, False
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            if in_grpc and not added_tcp:
                out.append(f'  tcp_address = "{tcp_address}"\n')
                added_tcp = True
            in_grpc = s == "[grpc]"
        out.append(line)
        if s == '[plugins."io.containerd.grpc.v1.cri"]':
            out.append("  disable_tcp_service = false\n")
            added_cri = True
    if in_grpc and not added_tcp:
        out.append(f'  tcp_address = "{tcp_address}"\n')
        added_tcp = True
    if not added_cri:
        out.append('\n[plugins."io.containerd.grpc.v1.cri"]\n  disable_tcp_service = false\n')
    if not added_tcp:
        raise errors.Internal("containerd config template has no [grpc] table")
    return "".join(out)


def sandbox_handler_config(name: str, socket: str, handler: Optional[str] = None) -> str:
    """TOML for ContainerdEnv(extra_config=...): one more sandboxer (a proxy plugin) and
    the CRI runtime handler whose pods it runs."""
    handler = handler or name
    return (f'[proxy_plugins."{name}"]\n  type = "sandbox"\n  address = "{socket}"\n\n'
            f'[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."{handler}"]\n'
            f'  runtime_type = "io.containerd.runc.v2"\n  sandboxer = "{name}"\n')


def shim_handler_config(handler: str, shim_path: str) -> str:
    """TOML for a runtime handler served by a shim v2 binary, one shim per pod plus a pause
    container (containerd's "podsandbox" sandboxer), as Kata and runc are."""
    name = pathlib.Path(shim_path).name
    if not name.startswith("containerd-shim-") or not name.endswith("-v2"):
        raise ValueError(f"{shim_path}: a shim v2 binary is named containerd-shim-NAME-v2")
    runtime_type = f"io.containerd.{name[len('containerd-shim-'):-len('-v2')]}.v2"
    return (f'[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."{handler}"]\n'
            f'  runtime_type = "{runtime_type}"\n  runtime_path = "{shim_path}"\n'
            f'  sandboxer = "podsandbox"\n')


def pod_config(name: str, log_directory: str, **extra: Any) -> Dict[str, Any]:
    """A CRI PodSandboxConfig dict (metadata from `name`, logs in `log_directory`)."""
    cfg: Dict[str, Any] = {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid"},
                           "log_directory": log_directory, "linux": {}}
    cfg.update(extra)
    return cfg


def container_config(name: str, command: Sequence[str], image: str = BUSYBOX_IMAGE,
                     **extra: Any) -> Dict[str, Any]:
    """A CRI ContainerConfig dict; its log goes to <pod log_directory>/<name>.log."""
    cfg: Dict[str, Any] = {"metadata": {"name": name}, "image": {"image": image},
                           "command": list(command), "log_path": f"{name}.log", "linux": {}}
    cfg.update(extra)
    return cfg


class Node:
    """A containerd 2.x wired to a kuasar sandboxer (docs/containerd.md), as one node.

    kind/backend/fake_vmm/sandboxer_config: the sandboxer (see kuasar.Sandboxer).
    netns:   True puts the sandboxer, containerd, its CNI bridge and its pods in a fresh
             network namespace joined to the host by a veth pair; CRI is then served on
             `<address>:<tcp_port>` and `endpoint` is that TCP target.
    images:  the fixture image archives imported into containerd (busybox and pause).

        with Node(netns=True) as node:
            cri = node.cri                       # kuasar.CriClient over TCP
            pod = cri.run_pod_sandbox(node.pod_config("p"), node.handler)
    """

    def __init__(self, kind: str = "runc", *, name: Optional[str] = None, netns: bool = False,
                 tcp_port: int = 10010, backend: Optional[str] = None, fake_vmm: bool = False,
                 sandboxer_config: Optional[Dict[str, Any]] = None,
                 sandboxer_env: Optional[Dict[str, str]] = None,
                 images: Iterable[str] = ("busybox.tar", "pause.tar"),
                 start_timeout: float = 60.0):
        self.kind = kind
        self.name = name or f"node-{secrets.token_hex(3)}"
        self.handler = f"kuasar-{kind}"
        self.use_netns = netns
        self.tcp_port = tcp_port
        self.ns: Optional[NetworkNamespace] = None
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="kn.", dir="/tmp"))
        (self.work / "sb").mkdir()
        self._backend = (backend, fake_vmm, dict(sandboxer_config or {}))
        self.sandboxer = SandboxerProcess(None, kind, env=sandboxer_env,
                                          work_dir=str(self.work / "sb"), log_level="info")
        self.env = ContainerdEnv(sandboxer_name=self.handler, sandboxer_socket=self.sandboxer.socket,
                                 handler=self.handler, images=images, start_timeout=start_timeout)
        self._cri = None

    @property
    def address(self) -> str:
        """The node's IP address (its namespace's end of the veth), or "" without netns."""
        return self.ns.address if self.ns else ""

    @property
    def endpoint(self) -> str:
        """CRI's gRPC target: "IP:PORT" over TCP with netns, else containerd's unix socket."""
        return self.env.tcp_endpoint if self.ns else self.env.endpoint

    @property
    def cri(self):
        """A kuasar._native.CriClient of this node's CRI endpoint."""
        if self._cri is None:
            from ._loader import native
            self._cri = native().CriClient(self.endpoint)
        return self._cri

    def start(self) -> "Node":
        from . import _toml
        try:
            if self.use_netns:
                self.ns = NetworkNamespace(veth=True).create()
                self.env.netns = self.sandboxer.netns = self.ns.path
                self.env.tcp_address = f"{self.ns.address}:{self.tcp_port}"
            backend, fake_vmm, extra = self._backend
            cfg = backend_config(self.kind, backend, fake_vmm, self.sandboxer.dir)
            _toml.merge(cfg, extra)
            self.sandboxer.extra_config = _toml.dumps(cfg) if cfg else ""
            self.env.start()
            self.sandboxer.containerd_ttrpc = str(self.env.dir / "c.sock.ttrpc")
            self.sandboxer.start()
            if self.ns and not self.cri.wait_ready(30):
                raise errors.Unavailable(f"node {self.name}: CRI not reachable at {self.endpoint}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Removes every pod (through CRI), stops containerd and the sandboxer, deletes the
        namespace and the temp dirs. Idempotent."""
        self._cri = None
        try:
            if self.env.dir is not None and self.env.proc is not None and self.env.proc.poll() is None:
                self.env.crictl("rmp", "-fa", timeout=120)
        finally:
            self.env.stop()
            self.sandboxer.cleanup()
            if self.ns is not None:
                self.ns.delete()
                self.ns = None
            if os.environ.get("KUASAR_KEEP_CONTAINERD_ENV") != "1":
                shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "Node":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- CRI helpers -----------------------------------------------------------------
    def pod_config(self, name: str, **extra: Any) -> Dict[str, Any]:
        """A PodSandboxConfig whose logs go below this node's work dir."""
        return pod_config(name, str(self.work / "logs" / name), **extra)

    def run_pod(self, name: str, **extra: Any) -> str:
        """RunPodSandbox with this node's handler; returns the pod id."""
        return self.cri.run_pod_sandbox(self.pod_config(name, **extra), self.handler)

    def run_container(self, pod_id: str, pod_name: str, name: str, command: Sequence[str],
                      start: bool = True, **extra: Any) -> str:
        """CreateContainer (busybox image) and StartContainer; returns the container id."""
        cid = self.cri.create_container(pod_id, container_config(name, command, **extra),
                                        self.pod_config(pod_name))
        if start:
            self.cri.start_container(cid)
        return cid

    def log_of(self, pod_name: str, container: str) -> str:
        """The container's CRI log (lines as CRI writes them: time stream tag text)."""
        try:
            return (self.work / "logs" / pod_name / f"{container}.log").read_text()
        except FileNotFoundError:
            return ""

    def spec(self, work_dir: Optional[str] = None):
        """This node as a kuasar.harness.NodeSpec (the harness's target)."""
        from .harness import NodeSpec
        return NodeSpec(name=self.name, endpoint=self.endpoint, handler=self.handler,
                        work_dir=work_dir or str(self.work / "bench"),
                        management=["kuasar-sandboxer"], per_pod=["kuasar-holder"],
                        management_scope=str(self.sandboxer.dir),
                        per_pod_scope=str(self.sandboxer.dir))
