"""Qt + qasync fixtures for the UI tests (shared by every tests/ui module).

Style (see docs/qt-and-asyncio.md): UI tests are *sync* tests. One session-wide
``qasync.QEventLoop(qapp, already_running=True)`` carries every coroutine; ``qtbot.waitUntil`` /
``qtbot.waitSignal`` spin Qt, and so the asyncio callbacks, sockets and timers of that loop.

The qasync loop is marked "running" only while a sync UI test runs, so pytest-asyncio tests of
other areas in the same session keep their own plain loops (``asyncio.Runner`` refuses to start
while another loop is marked running on the thread).

Fixtures:
    qasync_loop       the session loop (rarely needed directly)
    run_async         ``run_async(awaitable, timeout=10.0)`` -> result; runs it on the qasync loop
    ui_settings       a fresh ``ibpanel.ui.settings.Settings`` in the test's own IBPANEL_HOME
    make_broker       ``make_broker(**broker_kwargs)`` -> an unconnected Broker, closed after the test
    connect_params    ``connect_params(sim, **overrides)`` -> ConnectionParams for the simulator
    broker            a real Broker connected to the ``sim`` fixture (SimThread, ephemeral port)
    main_window       the assembled MainWindow over ``broker``, shown; closed and checked after the test

After each UI test: tasks still pending on the loop fail the test (they would run inside a later
test), and the main window fixture fails if any of its QTimers is still active after close.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QTimer  # pytest-qt has imported PySide6 already, so qasync binds to it

_client_ids = itertools.count(11)


@pytest.fixture(scope="session")
def qasync_loop(qapp):
    """The one qasync loop of the session, over pytest-qt's QApplication."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    # The constructor marks it running on this thread; only UI tests may see it that way.
    asyncio.events._set_running_loop(None)
    yield loop
    asyncio.events._set_running_loop(None)
    try:
        loop.stop()  # clears qasync's "running" flag so close() is allowed
        loop.close()
    except Exception:  # noqa: BLE001 - end of session; nothing left to protect
        pass


def _pending_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks(loop) if not t.done()]


@pytest.fixture(autouse=True)
def _qasync_running(request, qasync_loop, qapp):
    """Make the qasync loop the running loop for the duration of a sync UI test."""
    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        # An async test here belongs to pytest-asyncio; leave the thread's loop alone.
        yield None
        return
    previous = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(qasync_loop)
    asyncio.set_event_loop(qasync_loop)
    try:
        yield qasync_loop
        # Give finishing tasks (closing sockets, cancelled subscriptions) a moment to settle.
        leftovers = _pending_tasks(qasync_loop)
        if leftovers:
            deadline = asyncio.get_event_loop().time() + 2.0
            while leftovers and asyncio.get_event_loop().time() < deadline:
                qapp.processEvents()
                leftovers = _pending_tasks(qasync_loop)
        if leftovers:
            names = [repr(t.get_coro()) for t in leftovers]
            for task in leftovers:
                task.cancel()
            for _ in range(20):
                qapp.processEvents()
            pytest.fail(f"test left asyncio tasks running: {names}", pytrace=False)
    finally:
        asyncio.events._set_running_loop(previous)
        asyncio.set_event_loop(None)


@pytest.fixture
def run_async(qtbot, qasync_loop) -> Callable[..., Any]:
    """``run_async(awaitable, timeout=10.0)``: run it on the qasync loop while Qt spins; return its result."""

    def run(awaitable: Awaitable[Any], timeout: float = 10.0) -> Any:
        task = asyncio.ensure_future(awaitable, loop=qasync_loop)
        try:
            qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        except Exception:
            task.cancel()
            qtbot.waitUntil(task.done, timeout=2000)
            raise
        return task.result()

    return run


@pytest.fixture
def ui_settings():
    from ibpanel.ui.settings import Settings

    settings = Settings("default")
    yield settings
    settings.sync()


@pytest.fixture
def make_broker(tmp_path, run_async):
    """Factory for real, unconnected Brokers (journal in the test's tmp dir); each is closed after the test."""
    from ibpanel.broker.service import Broker

    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("journal_path", tmp_path / f"journal-{len(made)}.sqlite")
        kwargs.setdefault("reconnect_backoff", (0.2, 1.0))
        broker = Broker(**kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        run_async(broker.close(), timeout=10.0)


@pytest.fixture
def connect_params():
    """``connect_params(sim, **overrides)``: ConnectionParams for the simulator with a fresh clientId."""
    from ibpanel.broker.models import ConnectionParams

    def params(sim: Any, **overrides: Any) -> ConnectionParams:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": sim.port,
            "client_id": next(_client_ids),
            "timeout": 8.0,
            "auto_reconnect": False,
        }
        values.update(overrides)
        return ConnectionParams(**values)

    return params


@pytest.fixture
def broker(sim, make_broker, connect_params, run_async):
    """A real Broker connected to the practice exchange of the ``sim`` fixture."""
    broker = make_broker()
    run_async(broker.connect(connect_params(sim)), timeout=15.0)
    return broker


@pytest.fixture
def main_window(qtbot, broker, ui_settings):
    """The assembled main window over a connected broker. Closed after the test; leaked timers fail it."""
    from ibpanel.ui.main_window import MainWindow

    window = MainWindow(broker, ui_settings)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()
    active = [_describe_timer(t) for t in window.findChildren(QTimer) if t.isActive()]
    assert not active, f"timers still active after the window closed: {active}"


def _describe_timer(timer: QTimer) -> str:
    """The timer's name and its owners' classes: enough to tell whose timer leaked."""
    chain = []
    obj = timer.parent()
    while obj is not None and len(chain) < 4:
        chain.append(type(obj).__name__ + (f"#{obj.objectName()}" if obj.objectName() else ""))
        obj = obj.parent()
    return f"{timer.objectName() or 'QTimer'} (interval {timer.interval()} ms) in {' < '.join(chain)}"


@pytest.fixture
def restore_signals():
    """Put SIGINT / SIGTERM handlers back after a test that ran the app (it installs its own)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
