"""Start the panel: QApplication, the qasync loop, logging, the one exception path, and clean shutdown.

``run_gui(args)`` is the entry from ``ibpanel.cli``. The session (broker, journal, practice
exchange, REST API, safety limits) is a ``runtime.session.Session``, the same one ``ibpanel serve``
runs. Modes on top of the normal window: ``--demo`` (start the practice exchange and connect to
it), ``--api`` (ask the session to serve the local REST API; also at start when ``[api] enabled``
is saved, i.e. ticked in the Connection tab's "Local REST API" group), and the one-shot modes of
``ui/headless.py`` (``--smoke-test``, ``--screenshot PATH [--tab NAME]``).

Shutdown (window close, Ctrl+C, SIGTERM) always runs the same path: tabs stop, then the session
closes: the REST API, ``broker.close()`` (polite disconnect, journal), the practice exchange.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import sys
import threading
import time
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

# The session's Qt-free stack (broker, ib_async, asyncio, journal) before PySide6: once imported, PySide6's
# import hook (for ``from __feature__ import ...``) reads the source of every module imported after it,
# looking for "PySide6": ~40 ms of the start and ~10 MB of cached source lines when these came after it.
import ibpanel.runtime.session  # noqa: F401  # isort: skip
# PySide6 before qasync: qasync binds to whichever Qt binding is already imported.
from PySide6.QtCore import QtMsgType, qInstallMessageHandler  # isort: skip
from PySide6.QtGui import QIcon  # isort: skip
from PySide6.QtWidgets import QApplication, QMessageBox  # isort: skip
import qasync  # isort: skip

from ibpanel import __version__, paths
from ibpanel.broker.events import Event
from ibpanel.ui import headless
from ibpanel.ui.display import NO_DISPLAY_EXIT, display_problem
from ibpanel.ui.main_window import TAB_NAMES
from ibpanel.ui.panel import PanelApp, safety_limits
from ibpanel.ui.settings import Settings
from ibpanel.ui.style import DEFAULT_THEME, apply_theme

log = logging.getLogger("ibpanel.app")

SMOKE_MARKER = headless.SMOKE_MARKER  # what CI and packaging/build.py look for on stdout
LOG_FILE = "ibpanel.log"
__all__ = ["SMOKE_MARKER", "ExceptionReporter", "PanelApp", "run_gui", "safety_limits", "setup_logging"]


def run_gui(args: argparse.Namespace) -> int:
    """Run the panel until it is closed; returns the process exit code."""
    started = time.perf_counter()
    if args.tab and args.tab not in TAB_NAMES:
        print(f"ibpanel: --tab must be one of: {', '.join(TAB_NAMES)} (got {args.tab!r})", file=sys.stderr)
        return 2
    if QApplication.instance() is None:
        problem = display_problem()  # Qt would abort the process (a core dump) instead of saying this
        if problem:
            print(f"ibpanel: {problem}", file=sys.stderr)
            return NO_DISPLAY_EXIT
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("IB Panel")
    app.setOrganizationName("ibpanel")
    app.setApplicationVersion(__version__)
    # The coroutine below decides when to quit, after shutdown has run; Qt must not quit on its own.
    app.setQuitOnLastWindowClosed(False)
    icon = paths.resource_path("icons", "ibpanel-256.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app, Settings(args.profile).get("ui/theme", DEFAULT_THEME))
    headless = bool(args.smoke_test or args.screenshot)
    log_path = setup_logging(args.profile, headless)

    guard = None
    if not headless:
        guard, already_running = _acquire_instance(args.profile)
        if already_running:
            print(f"IB Panel is already running for profile {args.profile!r}; brought its window to the front.")
            return 0
    panel = PanelApp(args, app, log_path=log_path, started=started, guard=guard)
    try:
        return _run_on_qt_loop(app, panel.main())
    except KeyboardInterrupt:
        return 130
    finally:
        if guard is not None:
            guard.release()


def _run_on_qt_loop(app: QApplication, main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run on a qasync loop, without qasync.run's global loop policy on Python < 3.12.

    That policy would make every ``asyncio.new_event_loop()`` a Qt loop, including the practice
    exchange's own thread loop, which then fails to start.
    """
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def setup_logging(profile: str, headless: bool) -> Path:
    """Log to ``paths.log_dir(profile)/ibpanel.log`` (rotated) and warnings to stderr."""
    path = paths.log_dir(profile) / LOG_FILE
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if not any(getattr(h, "_ibpanel", False) for h in root.handlers):
        file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        file_handler._ibpanel = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(logging.ERROR if headless else logging.WARNING)
        err.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s", log_path=path))
        err._ibpanel = True  # type: ignore[attr-defined]
        root.addHandler(err)
    qInstallMessageHandler(_qt_message)
    # ib_async logs every wire message at INFO; keep the file about the panel.
    logging.getLogger("ib_async").setLevel(logging.WARNING)
    return path


class OneLineFormatter(logging.Formatter):
    """Terminal lines: one line per record; a traceback goes to the log file only, which the line names."""

    def __init__(self, fmt: str, *, log_path: Path) -> None:
        super().__init__(fmt)
        self.log_path = log_path

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return super().format(record)
        # A copy: the file handler formats the same record and must keep its traceback.
        bare = logging.makeLogRecord(record.__dict__)
        bare.exc_info = bare.exc_text = bare.stack_info = None
        return f"{super().format(bare)} (details in {self.log_path})"


_QT_NOISE = ("propagateSizeHints",)  # offscreen platform chatter, not a problem of ours


def _qt_message(mode: QtMsgType, _context: Any, message: str) -> None:
    """Qt's own warnings go to the log file instead of straight to stderr."""
    if any(noise in message for noise in _QT_NOISE):
        return
    level = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
    }.get(mode, logging.ERROR)
    logging.getLogger("qt").log(level, "%s", message)


def _acquire_instance(profile: str) -> tuple[Any, bool]:
    """(guard, already_running); a broken lock gives (None, False): the panel starts without the rule."""
    from ibpanel.ui import instance  # QtNetwork: loaded only for windowed runs

    try:
        guard = instance.acquire(profile)
    except Exception:  # noqa: BLE001 - a broken lock must not keep the panel from starting
        log.exception("single-instance check failed; continuing without it")
        return None, False
    return guard, guard is None


class ExceptionReporter:
    """The one exception path: log with traceback, then (interactive runs) one non-modal dialog."""

    def __init__(self, log_path: Path, interactive: bool) -> None:
        self.log_path = log_path
        self.interactive = interactive
        self.dialog: QMessageBox | None = None
        self.count = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook
        loop.set_exception_handler(self._loop_handler)
        Event.on_handler_error = self._handler_error

    def uninstall(self) -> None:
        sys.excepthook = sys.__excepthook__
        threading.excepthook = threading.__excepthook__
        Event.on_handler_error = None

    def report(self, where: str, exc: BaseException | None, message: str = "") -> None:
        self.count += 1
        if exc is not None:
            log.error("%s: %s", where, message or exc, exc_info=(type(exc), exc, exc.__traceback__))
        else:
            log.error("%s: %s", where, message)
        if self.interactive:
            self._show(where, exc, message)

    def _excepthook(self, exc_type, exc, tb) -> None:  # noqa: ANN001 - sys.excepthook signature
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        self.report("Unexpected error", exc)

    def _thread_excepthook(self, hook_args) -> None:  # noqa: ANN001 - threading.excepthook signature
        if hook_args.exc_value is not None:
            self.report(f"Error in thread {getattr(hook_args.thread, 'name', '?')}", hook_args.exc_value)

    def _loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = context.get("message", "")
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, asyncio.CancelledError)):
            # Sockets that die are the broker's business (it reconnects and says so); just log them.
            log.warning("loop: %s (%r)", message, exc)
            return
        self.report("Error in a background task", exc, message)

    def _handler_error(self, event_name: str, exc: BaseException) -> None:
        self.report(f"A view failed to handle '{event_name}'", exc)

    def _show(self, where: str, exc: BaseException | None, message: str) -> None:
        text = f"{where}: {message or exc}"
        details = "".join(traceback.format_exception(exc)) if exc is not None else message
        if self.dialog is not None and self.dialog.isVisible():
            # One dialog at a time: a burst of errors must not bury the window in boxes.
            self.dialog.setInformativeText(f"{self.count} errors so far. The log file has all of them:\n{self.log_path}")
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "IB Panel: unexpected error", text)
        box.setObjectName("errorDialog")
        box.setInformativeText(
            "The panel keeps running; this was written to the log file:\n" f"{self.log_path}"
        )
        box.setDetailedText(details)
        box.setModal(False)
        box.show()
        self.dialog = box
