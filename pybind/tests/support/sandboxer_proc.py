"""A kuasar-sandboxer process for tests: config in a temp dir, start/stop/kill -9/restart.

    with SandboxerProcess(bin_dir, kind="runc") as sb:       # socket at sb.socket
        ...
"""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Optional


class SandboxerProcess:
    def __init__(self, bin_dir: pathlib.Path, kind: str = "runc", *,
                 containerd_ttrpc: str = "/nonexistent/containerd.sock.ttrpc",
                 extra_config: str = "", env: Optional[dict] = None,
                 work_dir: Optional[str] = None):
        self.bin_dir = pathlib.Path(bin_dir)
        self.kind = kind
        self.containerd_ttrpc = containerd_ttrpc
        self.extra_config = extra_config
        self.env = env
        # Short paths: the sandboxer's sockets live below and must fit in 108 bytes.
        self.dir = pathlib.Path(work_dir or tempfile.mkdtemp(prefix="ks.", dir="/tmp"))
        self.proc: Optional[subprocess.Popen] = None

    @property
    def socket(self) -> str:
        return str(self.dir / "s.sock")

    @property
    def state_dir(self) -> pathlib.Path:
        return self.dir / "st"

    @property
    def config_path(self) -> pathlib.Path:
        return self.dir / "sandboxer.toml"

    @property
    def log_path(self) -> pathlib.Path:
        return self.dir / "sandboxer.log"

    def write_config(self) -> None:
        self.config_path.write_text(
            f'[sandboxer]\nkind = "{self.kind}"\nname = "kuasar-{self.kind}"\n'
            f'listen = "{self.socket}"\nstate_dir = "{self.state_dir}"\nlog_level = "debug"\n'
            f'[containerd]\nttrpc_address = "{self.containerd_ttrpc}"\n{self.extra_config}')

    def start(self, timeout: float = 15) -> "SandboxerProcess":
        self.write_config()
        log = open(self.log_path, "a")
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = subprocess.Popen([str(self.bin_dir / "kuasar-sandboxer"), "-c",
                                      str(self.config_path)], stderr=log, env=env)
        health = subprocess.run([str(self.bin_dir / "kuasarctl"), "-a", self.socket,
                                 "--timeout", str(timeout), "health"],
                                capture_output=True, text=True)
        if health.returncode != 0:
            raise RuntimeError(f"sandboxer did not come up: {health.stderr}\n{self.tail_log()}")
        return self

    def kill9(self) -> None:
        """Crash it: SIGKILL, as the recovery tests do."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20) -> int:
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pid(self) -> int:
        return self.proc.pid

    def tail_log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no sandboxer log)"

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("KUASAR_KEEP_SANDBOXER_DIR") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SandboxerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
