"""The one exception path: a failing view handler, a failing task and sys.excepthook all log and show one dialog."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from ibpanel.broker.events import Event
from ibpanel.ui.app import ExceptionReporter


@pytest.fixture
def reporter(tmp_path, qasync_loop):
    log_path = tmp_path / "ibpanel.log"
    handler = logging.FileHandler(log_path, encoding="utf-8")
    logging.getLogger().addHandler(handler)
    saved = (sys.excepthook, qasync_loop.get_exception_handler(), Event.on_handler_error)
    reporter = ExceptionReporter(log_path, interactive=True)
    reporter.install(qasync_loop)
    yield reporter
    reporter.uninstall()
    sys.excepthook, _, Event.on_handler_error = saved
    qasync_loop.set_exception_handler(saved[1])
    logging.getLogger().removeHandler(handler)
    handler.close()
    if reporter.dialog is not None:
        reporter.dialog.close()


def test_failing_handler_is_logged_shown_once_and_delivery_continues(qtbot, reporter):
    event = Event("positions_changed")
    delivered: list[int] = []

    def broken_view(_payload):
        raise ValueError("view bug")

    event.connect(broken_view)
    event.connect(delivered.append)
    event.emit(1)
    event.emit(2)
    assert delivered == [1, 2]  # the second handler still got every emit
    assert reporter.count == 2
    dialog = reporter.dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    assert "positions_changed" in dialog.text()
    assert "2 errors so far" in dialog.informativeText()  # one dialog, not two
    assert "ValueError: view bug" in dialog.detailedText()
    text = reporter.log_path.read_text(encoding="utf-8")
    assert "view bug" in text and "Traceback" in text


def test_task_exception_and_excepthook_take_the_same_path(qtbot, reporter, qasync_loop):
    async def failing():
        raise RuntimeError("task bug")

    task = qasync_loop.create_task(failing())
    qtbot.waitUntil(task.done, timeout=2000)
    del task  # the loop reports "exception never retrieved" when the task is collected
    import gc

    gc.collect()
    qtbot.waitUntil(lambda: reporter.count >= 1, timeout=2000)
    try:
        raise KeyError("hook bug")
    except KeyError:
        sys.excepthook(*sys.exc_info())
    assert reporter.count >= 2
    text = reporter.log_path.read_text(encoding="utf-8")
    assert "task bug" in text and "hook bug" in text


def test_dropped_sockets_are_logged_not_shown(qtbot, reporter, qasync_loop):
    qasync_loop.call_exception_handler({"message": "socket died", "exception": ConnectionResetError("peer reset")})
    assert reporter.count == 0 and reporter.dialog is None
    assert isinstance(asyncio.get_running_loop(), type(qasync_loop))
