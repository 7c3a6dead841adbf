"""pytest plugin: fixtures and markers for tests of and against kuasar.

Enable it with ``pytest -p kuasar.pytest_plugin``, or ``pytest_plugins =
["kuasar.pytest_plugin"]`` in a top-level conftest.py; an installed wheel registers it as
an entry point (pytest11), so it then loads by itself.

Fixtures
  kuasar_build_dir  the CMake build dir in use (--kuasar-build-dir or KUASAR_BUILD_DIR)
  kuasar_binary     kuasar_binary("kuasar-sandboxer") -> its path, or skip saying where
                    it was looked for
  sandboxer         a started kuasar.Sandboxer, stopped (its pods removed) after the test.
                    Kind and backend from ``@pytest.mark.sandboxer(kind, backend=...,
                    fake_vmm=...)`` or ``@pytest.mark.parametrize("sandboxer", [...],
                    indirect=True)`` with a kind or a dict of Sandboxer arguments; default
                    runc. A kind that cannot run pods here skips, with the reason.
  pod               a started pod of `sandboxer`, removed after the test
  containerd        a kuasar.Node: a throw-away containerd 2.x wired to a runc sandboxer,
                    shared by the tests of a module (.cri, .run_pod(), .run_container())
  fake_vmm_faults   a kuasar.FakeVmmFaults writing into tmp_path; skips (with the reason)
                    while the fake VMM binary (sim/) is not built

Markers (each skips the test with the reason when the thing is missing)
  needs_root, needs_kvm (a KVM that really runs guests), needs_qemu, needs_containerd,
  needs_fake_vmm, sandboxer(kind, backend=None, fake_vmm=False)
"""
from __future__ import annotations

import fcntl
import json
import os
import pathlib
import shutil
import signal
import threading
from typing import Any, Dict, Optional

import pytest

from . import paths

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_PROBE_CACHE = "/run/kuasar/kvm-probe.json"

_probe_cache: Dict[Any, Optional[str]] = {}


# --- reasons ---------------------------------------------------------------------------
def why_not_root() -> Optional[str]:
    return None if os.geteuid() == 0 else "needs root"


def why_no_kvm() -> Optional[str]:
    """None when KVM runs guests here. /dev/kvm answering is not enough (nested
    virtualization can hang guests after their boot stub), so the vmm sandboxer's probe
    result for this boot (/run/kuasar/kvm-probe.json) decides; KUASAR_KVM=1/0 overrides."""
    forced = os.environ.get("KUASAR_KVM")
    if forced == "0":
        return "KUASAR_KVM=0"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"no usable /dev/kvm ({e.strerror})"
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION) != 12:
            return "/dev/kvm answers an unexpected KVM API version"
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm)
    except OSError as e:
        return f"/dev/kvm cannot create a VM ({e.strerror})"
    finally:
        os.close(fd)
    if forced == "1":
        return None
    try:
        cached = json.loads(pathlib.Path(KVM_PROBE_CACHE).read_text())
        boot_id = pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, ValueError):
        return (f"KVM answers but whether it runs guests is unknown: no probe result in "
                f"{KVM_PROBE_CACHE} (run the vmm sandboxer once, or set KUASAR_KVM=1)")
    if cached.get("key", {}).get("boot_id") != boot_id:
        return f"{KVM_PROBE_CACHE} is from another boot (run the vmm sandboxer once)"
    if not cached.get("usable"):
        return f"KVM does not run guests here: {cached.get('reason', 'probe failed')}"
    return None


def why_no_qemu() -> Optional[str]:
    qemu = os.environ.get("KUASAR_QEMU", "qemu-system-x86_64")
    if shutil.which(qemu):
        return None
    return f"{qemu} missing (apt-get install qemu-system-x86)"


def why_no_containerd() -> Optional[str]:
    from .containerd import missing_requirements
    why = missing_requirements()
    return "; ".join(why) if why else None


def why_no_fake_vmm() -> Optional[str]:
    from .sandboxer import FAKE_VMM_BINARY
    if paths.find_binary(FAKE_VMM_BINARY, required=False) is None:
        return (f"the fake VMM ({FAKE_VMM_BINARY}, sim/) is not built yet "
                f"(looked in {', '.join(map(str, paths.bin_dirs()))} and $PATH)")
    return None


def why_no_sandboxer(kind: str = "runc", backend: Optional[str] = None,
                     fake_vmm: bool = False) -> Optional[str]:
    """Why that sandboxer cannot run pods here (cached per session), or None."""
    key = (kind, backend, fake_vmm)
    if key not in _probe_cache:
        from .sandboxer import probe
        try:
            from ._loader import native
            native()
        except ImportError as e:
            _probe_cache[key] = str(e)
        else:
            _probe_cache[key] = probe(kind, backend, fake_vmm)
    return _probe_cache[key]


_MARKERS = {
    "needs_root": (why_not_root, "needs_root: skip unless running as root"),
    "needs_kvm": (why_no_kvm, "needs_kvm: skip unless KVM really runs guests here"),
    "needs_qemu": (why_no_qemu, "needs_qemu: skip unless qemu-system-x86_64 is installed"),
    "needs_containerd": (why_no_containerd,
                         "needs_containerd: skip unless containerd 2.x, crictl, runc and CNI "
                         "plugins are installed (and root)"),
    "needs_fake_vmm": (why_no_fake_vmm, "needs_fake_vmm: skip unless the fake VMM is built"),
}


# --- hooks -----------------------------------------------------------------------------
def pytest_addoption(parser):
    group = parser.getgroup("kuasar")
    group.addoption("--kuasar-build-dir", default=None,
                    help="CMake build dir with bin/ and python/ (default: $KUASAR_BUILD_DIR, "
                         "else build/ci of the checkout)")


def _sigterm_interrupts(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # A run killed with SIGTERM (a CI timeout, `timeout`) still tears its fixtures down:
    # pods, sandboxers, containerds and network namespaces are not left behind.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and \
            threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_interrupts)
    build = config.getoption("--kuasar-build-dir", default=None)
    if build:
        os.environ["KUASAR_BUILD_DIR"] = str(pathlib.Path(build).resolve())
    for name, (_, doc) in _MARKERS.items():
        config.addinivalue_line("markers", doc)
    config.addinivalue_line(
        "markers", "sandboxer(kind, backend=None, fake_vmm=False): the kind of the "
                   "`sandboxer` fixture; skip unless it can run pods here")


def pytest_runtest_setup(item):
    for name, (why, _) in _MARKERS.items():
        if item.get_closest_marker(name) is not None:
            reason = why()
            if reason:
                pytest.skip(f"{name}: {reason}")


# --- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kuasar_build_dir() -> Optional[pathlib.Path]:
    return paths.build_dir()


@pytest.fixture(scope="session")
def kuasar_binary():
    def find(name: str) -> pathlib.Path:
        p = paths.find_binary(name, required=False)
        if p is None:
            pytest.skip(f"{name} not built (looked in {', '.join(map(str, paths.bin_dirs()))} "
                        "and $PATH; set KUASAR_BUILD_DIR)")
        return p
    return find


def _sandboxer_args(request) -> Dict[str, Any]:
    args: Dict[str, Any] = {"kind": "runc"}
    marker = request.node.get_closest_marker("sandboxer")
    if marker is not None:
        if marker.args:
            args["kind"] = marker.args[0]
        args.update(marker.kwargs)
    param = getattr(request, "param", None)
    if isinstance(param, str):
        args["kind"] = param
    elif isinstance(param, dict):
        args.update(param)
    return args


@pytest.fixture
def sandboxer(request):
    from .sandboxer import Sandboxer
    args = _sandboxer_args(request)
    reason = why_no_sandboxer(args["kind"], args.get("backend"), args.get("fake_vmm", False))
    if reason:
        pytest.skip(reason)
    with Sandboxer(**args) as sb:
        yield sb


@pytest.fixture
def pod(sandboxer, request):
    name = "p-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    with sandboxer.pod(name) as p:
        yield p


@pytest.fixture(scope="module")
def containerd():
    reason = why_no_containerd() or why_no_sandboxer("runc")
    if reason:
        pytest.skip(reason)
    from .containerd import Node
    with Node(kind="runc") as node:
        yield node


@pytest.fixture
def fake_vmm_faults(tmp_path):
    reason = why_no_fake_vmm()
    if reason:
        pytest.skip(reason)
    from .faults import FakeVmmFaults
    return FakeVmmFaults(tmp_path)
