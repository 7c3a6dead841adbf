"""The raw clients a user can script against, below the Pod/Container helpers: the sandbox
API (SandboxClient) and a pod's Task API (TaskClient), over ttrpc+unix and over hybrid
vsock (the Cloud Hypervisor / Firecracker way: CONNECT <port>, OK)."""
import os
import socket
import threading

import pytest

import kuasar
from kuasar import bundle

pytestmark = pytest.mark.needs_root


class HybridVsockProxy:
    """A VMM's hybrid vsock socket in miniature: accepts unix connections, reads
    "CONNECT <port>\\n", answers "OK <n>\\n" and joins the connection to the guest port's
    listener (here: a pod's real task socket)."""

    def __init__(self, path, port, target):
        self.path, self.port, self.target = path, port, target
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        self.connects = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            line = b""
            while not line.endswith(b"\n") and len(line) < 64:
                chunk = conn.recv(1)
                if not chunk:
                    break
                line += chunk
            self.connects.append(line.decode())
            if line != f"CONNECT {self.port}\n".encode():
                conn.close()
                continue
            guest = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            guest.connect(self.target)
            conn.sendall(b"OK 1073741824\n")
            for a, b in ((conn, guest), (guest, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.server.close()
        os.unlink(self.path)


def start_raw_pod(sb, pod_id):
    sb.client.create(pod_id, pod_config={"metadata": {"name": pod_id, "uid": pod_id},
                                         "linux": {"security_context": {
                                             "namespace_options": {"pid": "CONTAINER"}}}})
    return sb.client.start(pod_id)


def test_sandbox_and_task_api_by_hand(sandboxer, tmp_path):
    started = start_raw_pod(sandboxer, "raw")
    assert started["address"].startswith("ttrpc+unix://") and started["version"] == 3
    assert sandboxer.client.status("raw")["state"] == "SANDBOX_READY"
    assert sandboxer.client.platform("raw")["os"] == "linux"
    with kuasar.TaskClient.connect(started["address"]) as task:
        assert task.connected and task.address == started["address"]
        mounts = bundle.write_bundle(tmp_path / "b", container_id="raw.c", sandbox_pid=started["pid"],
                                     args=["/testinit", "sleep", "inf"])
        pid = task.create("raw.c", str(tmp_path / "b"), rootfs=mounts,
                          stdout=f"file://{tmp_path}/out.log")
        assert task.state("raw.c")["status"] == "CREATED"
        assert task.start("raw.c") == pid
        assert task.state("raw.c")["status"] == "RUNNING" and task.pids("raw.c") == [pid]
        task.exec("raw.c", "e1", bundle.process_spec(["/testinit", "print", "exec'd"]),
                  stdout=f"file://{tmp_path}/e1.log")
        task.start("raw.c", "e1")
        assert task.wait("raw.c", "e1", 10)["exit_status"] == 0
        assert (tmp_path / "e1.log").read_text() == "exec'd\n"
        task.delete("raw.c", "e1")
        with pytest.raises(kuasar.DeadlineExceeded):
            task.wait("raw.c", timeout=0.2)
        task.kill("raw.c", 9)
        assert task.wait("raw.c", timeout=10)["exit_status"] == 137
        assert task.delete("raw.c")["exit_status"] == 137
        with pytest.raises(kuasar.NotFound):
            task.state("raw.c")
    sandboxer.client.stop("raw")
    assert sandboxer.client.wait("raw", timeout=10)["exit_status"] >= 0
    sandboxer.client.shutdown("raw")
    with pytest.raises(kuasar.NotFound):
        sandboxer.client.status("raw")


def test_task_api_over_hybrid_vsock(sandboxer, tmp_path):
    started = start_raw_pod(sandboxer, "hv")
    task_socket = started["address"][len("ttrpc+unix://"):]
    proxy = HybridVsockProxy(str(tmp_path / "hv.sock"), 1024, task_socket)
    try:
        with kuasar.TaskClient.connect(f"ttrpc+hvsock://{tmp_path}/hv.sock:1024") as task:
            mounts = bundle.write_bundle(tmp_path / "b", container_id="hv.c",
                                         sandbox_pid=started["pid"],
                                         args=["/testinit", "print", "over", "hvsock"])
            task.create("hv.c", str(tmp_path / "b"), rootfs=mounts,
                        stdout=f"file://{tmp_path}/out.log")
            task.start("hv.c")
            assert task.wait("hv.c", timeout=10)["exit_status"] == 0
            task.delete("hv.c")
        assert (tmp_path / "out.log").read_text() == "over hvsock\n"
        assert proxy.connects[0] == "CONNECT 1024\n"
        with pytest.raises(kuasar.Unavailable, match="CONNECT 2048"):
            kuasar.TaskClient.connect(f"hvsock://{tmp_path}/hv.sock:2048", 0.5)
    finally:
        proxy.close()
        sandboxer.client.stop("hv")
        sandboxer.client.shutdown("hv")
