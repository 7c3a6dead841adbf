"""Moved to the package: kuasar.sandboxer (this re-export keeps the suite's imports working)."""
import pathlib
import sys

_PYBIND = pathlib.Path(__file__).resolve().parents[2]
if str(_PYBIND) not in sys.path:
    sys.path.insert(0, str(_PYBIND))

from kuasar.sandboxer import SandboxerProcess  # noqa: E402,F401
