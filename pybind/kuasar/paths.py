"""Where kuasar's executables, fixtures and test root filesystem are.

Executables (kuasar-sandboxer, kuasar-holder, kuasarctl, kuasar-testinit, ...) are looked
up, first hit wins, in:

1. ``$KUASAR_BUILD_DIR/bin`` when KUASAR_BUILD_DIR is set (a CMake build dir such as
   build/ci: ``ci/test`` sets it);
2. the package's own ``kuasar/bin`` (a wheel from ``pip install ./pybind`` ships them);
3. ``<repo>/build/ci/bin`` when the package runs from a source checkout;
4. ``$PATH``, then /usr/local/bin, /usr/bin and /usr/libexec/kuasar (installed copies).

Fixtures (the containerd config template, the image builder) come from
``$KUASAR_FIXTURES_DIR``, the checkout's fixtures/, or the wheel's ``kuasar/_fixtures``.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
from typing import List, Optional

from . import errors

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def _repo_root() -> Optional[pathlib.Path]:
    root = PACKAGE_DIR.parent.parent
    if (root / "runtime").is_dir() and (root / "pybind" / "CMakeLists.txt").is_file():
        return root
    return None


REPO_ROOT = _repo_root()
INSTALLED_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/libexec/kuasar")


def build_dir() -> Optional[pathlib.Path]:
    """The CMake build dir in use: $KUASAR_BUILD_DIR, else <repo>/build/ci in a checkout."""
    env = os.environ.get("KUASAR_BUILD_DIR")
    if env:
        return pathlib.Path(env).resolve()
    if REPO_ROOT is not None:
        return REPO_ROOT / "build" / "ci"
    return None


def bin_dirs() -> List[pathlib.Path]:
    """Directories searched for executables, in order (see the module doc)."""
    dirs: List[pathlib.Path] = []
    if os.environ.get("KUASAR_BUILD_DIR"):
        dirs.append(build_dir() / "bin")
    dirs.append(PACKAGE_DIR / "bin")
    if not os.environ.get("KUASAR_BUILD_DIR") and REPO_ROOT is not None:
        dirs.append(REPO_ROOT / "build" / "ci" / "bin")
    return dirs


def find_binary(name: str, required: bool = True) -> Optional[pathlib.Path]:
    """The path of executable `name`; NotFound (or None) when it is nowhere."""
    for d in bin_dirs():
        p = d / name
        if os.access(p, os.X_OK) and p.is_file():
            return p
    found = shutil.which(name)
    if found:
        return pathlib.Path(found)
    for d in INSTALLED_DIRS:
        p = pathlib.Path(d) / name
        if os.access(p, os.X_OK) and p.is_file():
            return p
    if not required:
        return None
    looked = [str(d) for d in bin_dirs()] + ["$PATH"] + list(INSTALLED_DIRS)
    raise errors.NotFound(f"{name} not found (looked in {', '.join(looked)}; "
                          "set KUASAR_BUILD_DIR to a CMake build dir)")


def fixtures_dir() -> pathlib.Path:
    """The fixtures tree: $KUASAR_FIXTURES_DIR, the checkout's, or the wheel's copy."""
    env = os.environ.get("KUASAR_FIXTURES_DIR")
    if env:
        return pathlib.Path(env)
    if REPO_ROOT is not None:
        return REPO_ROOT / "fixtures"
    return PACKAGE_DIR / "_fixtures"


def cache_dir() -> pathlib.Path:
    """Where built fixtures are kept between runs: $KUASAR_CACHE_DIR or ~/.cache/kuasar."""
    env = os.environ.get("KUASAR_CACHE_DIR")
    if env:
        return pathlib.Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "kuasar"


def images_dir() -> pathlib.Path:
    """The OCI image archives' dir: $KUASAR_IMAGES_DIR, <repo>/build/fixtures/images, or the
    cache."""
    env = os.environ.get("KUASAR_IMAGES_DIR")
    if env:
        return pathlib.Path(env)
    if REPO_ROOT is not None:
        return REPO_ROOT / "build" / "fixtures" / "images"
    return cache_dir() / "images"


def test_rootfs() -> pathlib.Path:
    """A container root filesystem with busybox and kuasar-testinit at /testinit.

    The build's (``<build dir>/fixtures/rootfs``, made by CMake) when there is one, else one
    made here as fixtures/make-rootfs.sh makes it, cached by the inputs' hash."""
    bd = build_dir()
    if bd is not None and (bd / "fixtures" / "rootfs" / ".stamp").exists():
        return bd / "fixtures" / "rootfs"
    busybox = pathlib.Path(os.environ.get("BUSYBOX", "/bin/busybox"))
    if not os.access(busybox, os.X_OK):
        raise errors.FailedPrecondition(f"{busybox} missing: install busybox-static")
    testinit = find_binary("kuasar-testinit")
    h = hashlib.sha256()
    for p in (busybox, testinit):
        h.update(p.read_bytes())
    out = cache_dir() / f"rootfs-{h.hexdigest()[:16]}"
    if (out / ".stamp").exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "var/log"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(tmp / "tmp", 0o1777)
    shutil.copy2(busybox, tmp / "bin" / "busybox")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = tmp / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    shutil.copy2(testinit, tmp / "testinit")
    (tmp / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp / "etc" / "group").write_text("root:x:0:\n")
    (tmp / ".stamp").touch()
    try:
        tmp.rename(out)
    except OSError:  # another process made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return out
