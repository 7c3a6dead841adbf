"""The sandboxer daemon as an operator runs it: start, health, permissions, stop."""
import os
import signal
import stat
import subprocess
import tempfile
import time

import pytest


def start_daemon(kuasar_bin, work, extra=""):
    cfg = os.path.join(work, "sandboxer.toml")
    with open(cfg, "w") as f:
        f.write(f'[sandboxer]\nlisten = "{work}/s.sock"\nstate_dir = "{work}/state"\n{extra}')
    log = open(os.path.join(work, "daemon.log"), "w")
    proc = subprocess.Popen([kuasar_bin("kuasar-sandboxer"), "-c", cfg], stderr=log)
    return proc, f"{work}/s.sock"


def health(kuasar_bin, sock, timeout=10):
    return subprocess.run([kuasar_bin("kuasarctl"), "-a", sock, "--timeout", str(timeout),
                           "health"], capture_output=True, text=True)


def test_daemon_answers_health_and_stops_cleanly(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        proc, sock = start_daemon(kuasar_bin, work)
        try:
            out = health(kuasar_bin, sock)
            assert out.returncode == 0, out.stderr
            assert "health: SERVING" in out.stdout
            assert "platform: linux/" in out.stdout
            mode = stat.S_IMODE(os.stat(sock).st_mode)
            assert mode == 0o660
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        assert not os.path.exists(sock), "socket left behind after SIGTERM"


def test_unknown_sandbox_is_a_clear_error(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        proc, sock = start_daemon(kuasar_bin, work)
        try:
            assert health(kuasar_bin, sock).returncode == 0
            out = subprocess.run([kuasar_bin("kuasarctl"), "-a", sock, "status", "nope"],
                                 capture_output=True, text=True)
            assert out.returncode == 1
            assert "NOT_FOUND" in out.stderr and "nope" in out.stderr
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_bad_config_names_the_key(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        proc, _ = start_daemon(kuasar_bin, work, extra="worker_threads = -1\n")
        assert proc.wait(timeout=10) == 2
        log = open(os.path.join(work, "daemon.log")).read()
        assert "sandboxer.worker_threads" in log and "out of range" in log


def test_second_daemon_on_same_socket_is_refused(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        proc, sock = start_daemon(kuasar_bin, work)
        try:
            assert health(kuasar_bin, sock).returncode == 0
            second = subprocess.run([kuasar_bin("kuasar-sandboxer"), "-c",
                                     os.path.join(work, "sandboxer.toml")],
                                    capture_output=True, text=True, timeout=10)
            assert second.returncode == 1
            assert "another process is listening" in second.stderr
            assert health(kuasar_bin, sock).returncode == 0, "first daemon was disturbed"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_restart_after_sigkill_reuses_stale_socket(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        proc, sock = start_daemon(kuasar_bin, work)
        assert health(kuasar_bin, sock).returncode == 0
        proc.kill()
        proc.wait()
        assert os.path.exists(sock), "SIGKILL should leave the socket file"
        proc, sock = start_daemon(kuasar_bin, work)
        try:
            assert health(kuasar_bin, sock).returncode == 0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
