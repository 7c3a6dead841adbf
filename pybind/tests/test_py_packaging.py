"""`pip install ./pybind` gives a working package, and the example in docs/python.md runs
as printed: from the checkout, and from a wheel installed into a fresh venv that packages
the current build (KUASAR_PREBUILT_DIR: no second compile), with nothing of the checkout
on its path."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from kuasar import paths

pytestmark = pytest.mark.needs_root
DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"
PYBIND = pathlib.Path(__file__).resolve().parents[1]


def doc_example() -> str:
    text = DOC.read_text()
    m = re.search(r"<!-- example: runs in pybind/tests/test_py_packaging.py -->\s*```python\n(.*?)```",
                  text, re.S)
    assert m, "docs/python.md lost its example"
    return m.group(1)


def check_output(out: str) -> None:
    lines = out.strip().splitlines()
    assert lines[0] == "exit 0: hello from kuasar", out
    assert lines[1].startswith("hello io.containerd.cgroups.v"), out  # hostname = pod id
    assert lines[2] == "stopped with 143", out


def test_doc_example_runs_from_the_checkout(kuasar_binary, tmp_path):
    kuasar_binary("kuasar-sandboxer")
    (tmp_path / "example.py").write_text(doc_example())
    env = dict(os.environ, PYTHONPATH=str(PYBIND))
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    check_output(r.stdout)


def test_pip_install_packages_the_build(tmp_path):
    build = paths.build_dir()
    if build is None or not list((build / "python" / "kuasar").glob("_native*.so")):
        pytest.skip(f"no kuasar_native in {build}/python (build the main project first)")
    try:
        import scikit_build_core  # noqa: F401
    except ImportError:
        pytest.skip("scikit-build-core missing (ci/install-python-deps)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                        "-C", f"cmake.define.KUASAR_PREBUILT_DIR={build}", str(PYBIND)],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PIP_ROOT_USER_ACTION="ignore"))
    assert r.returncode == 0, r.stdout + r.stderr
    probe = subprocess.run(
        [py, "-c", "import importlib.metadata as m, kuasar, kuasar.paths as p; "
                   "print(kuasar.__file__); print(p.find_binary('kuasar-sandboxer')); "
                   "print([e.value for e in m.entry_points(group='pytest11')])"],
        cwd=tmp_path, capture_output=True, text=True, env=_clean_env(tmp_path))
    assert probe.returncode == 0, probe.stderr
    where, sandboxer, plugins = probe.stdout.splitlines()
    assert where.startswith(str(venv)) and sandboxer.startswith(str(venv))
    assert "kuasar.pytest_plugin" in plugins
    (tmp_path / "example.py").write_text(doc_example())
    r = subprocess.run([py, "example.py"], cwd=tmp_path, env=_clean_env(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    check_output(r.stdout)


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUASAR_BUILD_DIR", "PYTHONPATH", "KUASAR_FIXTURES_DIR")}
    env["KUASAR_CACHE_DIR"] = str(tmp_path / "cache")  # the test rootfs is made here
    return env
