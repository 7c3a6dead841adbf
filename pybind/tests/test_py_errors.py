"""Every failure reaches Python as the KuasarError subclass of its status code, with the
runtime's message: one case per exception, each provoked the way a user would."""
import pytest

import kuasar
from kuasar import errors

pytestmark = pytest.mark.needs_root


def not_found(sb, pod):
    sb.client.status("no-such-pod")


def already_exists(sb, pod):
    sb.client.create(pod.id)


def invalid_argument(sb, pod):
    sb.client.create("bad/id")


def failed_precondition(sb, pod):
    c = pod.run(["/testinit", "exit", "0"])
    c.wait(10)
    c.exec(["/testinit", "print", "too late"])


def deadline_exceeded(sb, pod):
    pod.run(["/testinit", "sleep", "inf"]).wait(timeout=0.2)


def unavailable(sb, pod):
    task = kuasar.TaskClient.connect(pod.address)
    pod.remove()
    task.state("anything")


def unimplemented(sb, pod):
    # containerd's binary:// logging plugins are not supported (runtime/oci/process_io.cc).
    c = pod.run(["/testinit", "sleep", "inf"])
    pod.task.exec(c.id, "e1", {"args": ["/testinit", "print", "x"], "cwd": "/"},
                  stdout="binary:///usr/bin/logger")
    pod.task.start(c.id, "e1")


CASES = [(not_found, kuasar.NotFound, "no-such-pod"),
         (already_exists, kuasar.AlreadyExists, "errpod"),
         (invalid_argument, kuasar.InvalidArgument, "bad/id"),
         (failed_precondition, kuasar.FailedPrecondition, ""),
         (deadline_exceeded, kuasar.DeadlineExceeded, ""),
         (unavailable, kuasar.Unavailable, ""),
         (unimplemented, kuasar.Unimplemented, "binary://")]


@pytest.mark.parametrize("provoke,exc,mentions", CASES, ids=[c[1].__name__ for c in CASES])
def test_error_is_typed(sandboxer, provoke, exc, mentions):
    with sandboxer.pod("errpod") as pod:
        with pytest.raises(exc) as info:
            provoke(sandboxer, pod)
    e = info.value
    assert type(e) is exc, f"{type(e).__name__}: {e}"
    assert e.code == exc.code and e.code_name == errors.StatusCode(exc.code).name
    assert e.message and mentions in e.message
