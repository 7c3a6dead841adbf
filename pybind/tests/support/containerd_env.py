"""Moved to the package: kuasar.containerd (this re-export keeps the suite's imports working)."""
import pathlib
import sys

_PYBIND = pathlib.Path(__file__).resolve().parents[2]
if str(_PYBIND) not in sys.path:
    sys.path.insert(0, str(_PYBIND))

from kuasar.containerd import *  # noqa: E402,F401,F403
from kuasar.containerd import (BUSYBOX_IMAGE, CNI_BIN_DIR, CNI_PLUGINS, GO_TOOLS,  # noqa: E402,F401
                               IMAGE_ARCHIVES, SANDBOX_IMAGE, ContainerdEnv, Node, build_images,
                               images_dir, missing_requirements, overlay_works, tools_dir)

# The checkout's root (tests that build fixtures of their own find them from here).
ROOT = _PYBIND.parent
FIXTURES = ROOT / "fixtures"
