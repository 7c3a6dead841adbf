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


NOBODY = 65534


def connect_as(uid, gid, path):
    """Connects to a unix socket as another user; returns the errno name or "ok"."""
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1]); print('ok')\n"
            "except OSError as e:\n import errno; print(errno.errorcode[e.errno])\n")
    out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                          "python3", "-c", code, path], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_socket_refuses_other_users_and_admits_its_group(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        os.chmod(work, 0o755)  # the directory must not be what stops them
        proc, sock = start_daemon(kuasar_bin, work, extra=f'socket_group = "{NOBODY}"\n')
        try:
            assert health(kuasar_bin, sock).returncode == 0
            st = os.stat(sock)
            assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == NOBODY
            # A user outside the group: refused by the kernel before a byte is read.
            assert connect_as(NOBODY, 12345, sock) == "EACCES"
            # The configured group gets in (then the daemon serves it like root).
            assert connect_as(12345, NOBODY, sock) == "ok"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.parametrize("bad_id", ["../escape", "/abs/path", "a/../../b", "..", ".hidden", "x" * 200])
def test_ids_that_name_paths_are_refused(kuasar_bin, bad_id):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work:
        proc, sock = start_daemon(kuasar_bin, work)
        try:
            assert health(kuasar_bin, sock).returncode == 0
            out = subprocess.run([kuasar_bin("kuasarctl"), "-a", sock, "create", bad_id],
                                 capture_output=True, text=True)
            assert out.returncode != 0
            assert "INVALID_ARGUMENT" in out.stderr, out.stderr
            # Nothing was made outside the state dir, nor a record inside it.
            assert not os.path.exists(os.path.join(work, "escape"))
            assert not os.path.exists("/abs/path")
            records = os.path.join(work, "state", "records")
            assert not os.path.isdir(records) or os.listdir(records) == []
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_symlink_planted_in_state_dir_is_not_followed(kuasar_bin):
    with tempfile.TemporaryDirectory(prefix="kd.", dir="/tmp") as work, \
            tempfile.TemporaryDirectory(prefix="kd-victim.", dir="/tmp") as victim:
        os.makedirs(os.path.join(work, "state", "sandboxes"))
        # An attacker who could write the state dir points a pod's dir elsewhere.
        os.symlink(victim, os.path.join(work, "state", "sandboxes", "p1"))
        proc, sock = start_daemon(kuasar_bin, work)
        try:
            assert health(kuasar_bin, sock).returncode == 0
            out = subprocess.run([kuasar_bin("kuasarctl"), "-a", sock, "create", "p1"],
                                 capture_output=True, text=True)
            assert os.listdir(victim) == [], f"wrote through the symlink: {os.listdir(victim)}"
            if out.returncode == 0:
                subprocess.run([kuasar_bin("kuasarctl"), "-a", sock, "shutdown", "p1"],
                               capture_output=True, text=True)
            assert os.path.isdir(victim), "the symlink's target was removed"
            assert os.listdir(victim) == []
        finally:
            proc.terminate()
            proc.wait(timeout=10)
