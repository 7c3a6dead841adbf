"""Shared pytest fixtures for the project's own suite.

Binaries come from the CMake build named by KUASAR_BUILD_DIR (ci/test sets it to
build/ci); tests that need something missing skip with the reason. The package under
test is the checkout's (pybind/kuasar), its native module the build's
($KUASAR_BUILD_DIR/python/kuasar); the suite uses the package's own pytest plugin.
"""
import os
import pathlib
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYBIND = ROOT / "pybind"
if str(PYBIND) not in sys.path:
    sys.path.insert(0, str(PYBIND))

import kuasar  # noqa: E402

if pathlib.Path(kuasar.__file__).resolve().parent != PYBIND / "kuasar":
    warnings.warn(f"testing the installed kuasar at {kuasar.__file__}, not the checkout's: "
                  "run with -p no:kuasar.pytest_plugin or uninstall it")

pytest_plugins = ["kuasar.pytest_plugin", "pytester"]


def build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KUASAR_BUILD_DIR", ROOT / "build" / "ci"))


@pytest.fixture(scope="session")
def kuasar_bin():
    """Returns a function mapping an executable name to its path in the build."""
    def find(name: str) -> pathlib.Path:
        path = build_dir() / "bin" / name
        if not path.exists():
            pytest.skip(f"{name} not built at {path} (set KUASAR_BUILD_DIR)")
        return path

    return find


def pytest_configure(config):
    config.addinivalue_line("markers", "critest: runs cri-tools' critest (about 90 s)")
    config.addinivalue_line("markers", "containerd: needs containerd 2.x and crictl")
