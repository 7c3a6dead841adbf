"""Shared pytest fixtures for the project's own suite.

Binaries come from the CMake build named by KUASAR_BUILD_DIR (ci/test sets it to
build/ci); tests that need something missing skip with the reason.
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


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
