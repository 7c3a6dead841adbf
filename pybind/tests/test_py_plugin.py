"""The pytest plugin as a user's suite meets it: markers that skip with the reason,
fixtures that hand out a sandboxer, a pod and a fault plan."""
import pathlib

import pytest

import kuasar

PYBIND = pathlib.Path(kuasar.__file__).resolve().parent.parent


@pytest.fixture
def user_suite(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(PYBIND))
    return pytester


def test_markers_skip_with_the_reason(user_suite, monkeypatch):
    monkeypatch.setenv("KUASAR_KVM", "0")
    monkeypatch.setenv("KUASAR_QEMU", "/nonexistent/qemu-system-x86_64")
    monkeypatch.setenv("KUASAR_BUILD_DIR", str(user_suite.path / "empty-build"))
    user_suite.makepyfile("""
        import pytest

        @pytest.mark.needs_kvm
        def test_kvm(): pass

        @pytest.mark.needs_qemu
        def test_qemu(): pass

        @pytest.mark.needs_fake_vmm
        def test_fake_vmm(): pass

        def test_faults(fake_vmm_faults): pass

        @pytest.mark.sandboxer("vmm", backend="cloud-hypervisor", fake_vmm=True)
        def test_vmm(sandboxer): pass

        def test_plain(): pass
    """)
    result = user_suite.runpytest_subprocess("-p", "kuasar.pytest_plugin", "-rs")
    result.assert_outcomes(passed=1, skipped=5)
    out = result.stdout.str()
    assert "needs_kvm: KUASAR_KVM=0" in out
    assert "needs_qemu: /nonexistent/qemu-system-x86_64 missing" in out
    assert out.count("kuasar-fake-vmm, sim/) is not built yet") >= 2
    assert "kuasar._native is not built" in out  # the empty build dir has no module


@pytest.mark.needs_root
def test_fixtures_give_a_sandboxer_and_a_pod(user_suite):
    from kuasar.pytest_plugin import why_no_containerd, why_no_sandboxer
    reason = why_no_sandboxer("runc")
    if reason:
        pytest.skip(reason)  # the inner tests would only skip
    user_suite.makepyfile("""
        import pytest

        def test_pod(sandboxer, pod):
            assert sandboxer.kind == "runc" and pod in sandboxer.pods
            c = pod.run(["/testinit", "print", "from", "a", "user", "test"])
            assert c.wait(30) == 0 and c.logs() == "from a user test\\n"

        @pytest.mark.parametrize("sandboxer", ["runc", {"kind": "runc", "backend": "runc"}],
                                 indirect=True)
        def test_parametrized(sandboxer):
            assert sandboxer.pod("x").status()["state"] == "SANDBOX_READY"

        @pytest.mark.sandboxer("appkernel", backend="quark")
        def test_unavailable_kind(sandboxer): pass

        @pytest.mark.needs_root
        @pytest.mark.needs_containerd
        def test_needs(): pass
    """)
    result = user_suite.runpytest_subprocess("-p", "kuasar.pytest_plugin", "-rs")
    no_containerd = why_no_containerd() is not None
    result.assert_outcomes(passed=4 - no_containerd, skipped=1 + no_containerd)
    assert "the appkernel sandboxer (quark) cannot run pods here" in result.stdout.str()
