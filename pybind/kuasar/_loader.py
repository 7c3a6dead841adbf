"""Finds kuasar._native: in the package (a wheel), else in $KUASAR_BUILD_DIR/python/kuasar,
where the in-tree CMake build puts target kuasar_native. Only the modules that need the
C++ clients load it, so the process helpers (kuasar.containerd, SandboxerProcess) work
without it."""
from __future__ import annotations

import importlib
import sys
from types import ModuleType

from . import paths


def native() -> ModuleType:
    mod = sys.modules.get("kuasar._native")
    if mod is not None:
        return mod
    pkg = sys.modules["kuasar"]
    try:
        return importlib.import_module("kuasar._native")
    except ImportError as first:
        bd = paths.build_dir()
        extra = bd / "python" / "kuasar" if bd is not None else None
        if extra is None or not any(extra.glob("_native*.so")):
            raise ImportError(
                f"kuasar._native is not built: nothing in {extra or 'a build dir'} (build the "
                "CMake target kuasar_native and set KUASAR_BUILD_DIR, or pip install ./pybind)"
            ) from first
        if str(extra) not in pkg.__path__:
            pkg.__path__.append(str(extra))
        return importlib.import_module("kuasar._native")
