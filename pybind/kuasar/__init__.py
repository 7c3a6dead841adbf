"""kuasar: Python access to kuasar-cpp, the containerd 2.x multi-sandbox runtime.

    import kuasar
    with kuasar.Sandboxer(kind="runc") as sb:
        with sb.pod("p1") as pod:
            c = pod.run(["/testinit", "print", "hi"])
            print(c.wait(), c.logs())          # 0 hi

Modules:
  kuasar.sandboxer  Sandboxer (high level) and SandboxerProcess (the process)
  kuasar.pod        Pod, Container, ExecResult (pods without containerd)
  kuasar.containerd ContainerdEnv (a throw-away containerd 2.x) and Node (containerd +
                    sandboxer, optionally in its own network namespace reached over TCP)
  kuasar.harness    scenarios through CRI on one node or spread over many
  kuasar.faults     fault injection for the fake VMM
  kuasar.errors     KuasarError and one subclass per status code
  kuasar.pytest_plugin  fixtures and markers (pytest -p kuasar.pytest_plugin)
  kuasar._native    the C++ clients: SandboxClient, TaskClient, CriClient, the harness

Executables are found through KUASAR_BUILD_DIR (a CMake build dir, default build/ci in a
checkout) or installed copies: see kuasar.paths and docs/python.md.
"""
from __future__ import annotations

from . import errors, paths
from .errors import (Aborted, AlreadyExists, Cancelled, DataLoss, DeadlineExceeded,
                     FailedPrecondition, Internal, InvalidArgument, KuasarError, NotFound,
                     OutOfRange, PermissionDenied, ResourceExhausted, StatusCode,
                     Unauthenticated, Unavailable, Unimplemented, Unknown)


# Names that need the native module or pull it in, loaded on first use (PEP 562), so that
# `import kuasar.containerd` works before kuasar._native is built.
_LAZY = {
    "_native": ("kuasar._loader", None),
    "SandboxClient": ("kuasar._native", "SandboxClient"),
    "TaskClient": ("kuasar._native", "TaskClient"),
    "CriClient": ("kuasar._native", "CriClient"),
    "Scenario": ("kuasar.harness", "Scenario"),
    "CriTarget": ("kuasar.harness", "CriTarget"),
    "ProcessMatcher": ("kuasar.harness", "ProcessMatcher"),
    "NodeSpec": ("kuasar.harness", "NodeSpec"),
    "run_cri_scenario": ("kuasar.harness", "run_cri_scenario"),
    "run_distributed": ("kuasar.harness", "run_distributed"),
    "__version__": ("kuasar._native", "__version__"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'kuasar' has no attribute {name!r}")
    import importlib
    from . import _loader
    native = _loader.native()
    module, attr = _LAZY[name]
    if attr is None:
        return native
    mod = native if module == "kuasar._native" else importlib.import_module(module)
    value = getattr(mod, attr)
    globals()[name] = value
    return value


from .containerd import ContainerdEnv, Node  # noqa: E402
from .faults import FakeVmmFaults  # noqa: E402
from .pod import Container, ExecResult, Pod  # noqa: E402
from .sandboxer import Sandboxer, SandboxerProcess  # noqa: E402

__all__ = [
    "Sandboxer", "SandboxerProcess", "Pod", "Container", "ExecResult", "ContainerdEnv", "Node",
    "SandboxClient", "TaskClient", "CriClient", "Scenario", "CriTarget", "ProcessMatcher",
    "NodeSpec", "run_cri_scenario", "run_distributed", "FakeVmmFaults", "errors", "paths",
    "StatusCode", "KuasarError", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded",
    "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
    "Unauthenticated",
]
