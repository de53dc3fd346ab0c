"""Single instance per settings profile: a second launch wakes the first; other profiles coexist."""

from __future__ import annotations

import os
import socket
import sys

import pytest
from ibpanel.ui import instance
from PySide6.QtNetwork import QLocalServer


@pytest.fixture
def guards():
    """Guards made by a test, released afterwards so no socket outlives it."""
    made = []
    yield made
    for guard in made:
        if guard is not None:
            guard.release()


def test_second_launch_of_a_profile_wakes_the_first(qtbot, guards):
    first = instance.acquire("default")
    guards.append(first)
    assert first is not None and first.is_listening

    with qtbot.waitSignal(first.activate_requested, timeout=5000):
        second = instance.acquire("default")
        guards.append(second)
        assert second is None  # the caller exits 0: the running window comes to the front


def test_each_launch_wakes_the_running_instance_again(qtbot, guards):
    first = instance.acquire("default")
    guards.append(first)
    activations = []
    first.activate_requested.connect(lambda: activations.append(1))
    for _ in range(3):
        assert instance.acquire("default") is None
    qtbot.waitUntil(lambda: len(activations) == 3, timeout=5000)


def test_different_profiles_coexist(qtbot, guards):
    default = instance.acquire("default")
    guards.append(default)
    other = instance.acquire("paper-test")
    guards.append(other)
    assert default is not None and other is not None
    assert default.name != other.name
    assert default.is_listening and other.is_listening
    with qtbot.waitSignal(other.activate_requested, timeout=5000):
        assert instance.acquire("paper-test") is None


def test_release_lets_the_next_launch_take_over(guards):
    first = instance.acquire("default")
    first.release()
    assert not first.is_listening
    again = instance.acquire("default")
    guards.append(again)
    assert again is not None and again.is_listening


def test_names_depend_on_the_settings_folder(monkeypatch, tmp_path):
    name_here = instance.server_name("default")
    assert name_here == instance.server_name("default")
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path / "another-home"))
    assert instance.server_name("default") != name_here
    assert len(instance.server_name("x" * 200)) < 40  # socket paths have a ~100 byte limit


@pytest.mark.skipif(sys.platform == "win32", reason="stale socket files exist only on Unix")
def test_stale_socket_file_from_a_crash_is_cleaned_up(guards):
    """A crashed instance leaves its socket file behind; the next launch must not be locked out."""
    name = instance.server_name("default")
    probe = QLocalServer()
    assert probe.listen(name)
    path = probe.fullServerName()
    probe.close()
    # Recreate what a crash leaves: a bound Unix socket file nobody listens on.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    assert os.path.exists(path)

    guard = instance.acquire("default")
    guards.append(guard)
    assert guard is not None and guard.is_listening


def test_unknown_messages_are_ignored(qtbot, guards):
    from PySide6.QtNetwork import QLocalSocket

    first = instance.acquire("default")
    guards.append(first)
    activations = []
    first.activate_requested.connect(lambda: activations.append(1))
    client = QLocalSocket()
    client.connectToServer(first.name)
    assert client.waitForConnected(2000)
    client.write(b"format-disk\nactivate\n")
    client.waitForBytesWritten(2000)
    qtbot.waitUntil(lambda: len(activations) == 1, timeout=5000)
    client.disconnectFromServer()
    assert first.is_listening


def test_a_second_process_wakes_the_first(qapp):
    """The real case: two processes, one profile. The first prints when it is asked to come forward."""
    import subprocess
    import textwrap

    first_code = textwrap.dedent(
        """
        import sys
        from PySide6.QtCore import QCoreApplication, QTimer
        from ibpanel.ui import instance
        app = QCoreApplication(sys.argv)
        guard = instance.acquire("default")
        assert guard is not None and guard.is_listening
        guard.activate_requested.connect(lambda: (print("ACTIVATED", flush=True), app.quit()))
        print("LISTENING", flush=True)
        QTimer.singleShot(20000, lambda: app.exit(3))  # never hang the test run
        sys.exit(app.exec())
        """
    )
    env = dict(os.environ, IBPANEL_HOME=os.environ["IBPANEL_HOME"], QT_QPA_PLATFORM="offscreen")
    first = subprocess.Popen([sys.executable, "-c", first_code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "LISTENING"
        assert instance.acquire("default") is None  # this process is the second launch
        out, _ = first.communicate(timeout=20)
        assert "ACTIVATED" in out and first.returncode == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
