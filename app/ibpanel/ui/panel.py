"""One run of the panel: the window on a ``runtime.session.Session``, its start tab and first connection.

``PanelApp.main()`` builds the session (broker with the profile's safety limits, journal) and the
window, asks the session to serve the REST API when ``--api`` or the saved setting says so, starts
the practice exchange for ``--demo`` or the practice button, runs the one-shot modes of
``ui/headless.py``, and shuts everything down in one order when the window closes or a signal comes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ibpanel import safety
from ibpanel.broker.models import ConnectionParams, ConnectionState, FailureKind
from ibpanel.broker.service import Broker
from ibpanel.runtime.practice import PracticeExchange, prefetch_exchange_code
from ibpanel.runtime.rest_api import DEFAULT_HOST as API_DEFAULT_HOST
from ibpanel.runtime.rest_api import DEFAULT_PORT as API_DEFAULT_PORT
from ibpanel.runtime.session import PracticeUnavailable, Session
from ibpanel.ui import headless
from ibpanel.ui.main_window import MainWindow
from ibpanel.ui.settings import Settings

log = logging.getLogger("ibpanel.app")


class PanelApp:
    """One run of the panel: window, broker, optional practice exchange and REST API."""

    def __init__(
        self,
        args: argparse.Namespace,
        app: QApplication,
        *,
        log_path: Path,
        started: float,
        guard: Any = None,
    ) -> None:
        self.args = args
        self.app = app
        self.started = started
        self.guard = guard
        self.headless = bool(args.smoke_test or args.screenshot)
        self.profile = args.profile
        self.settings = Settings(self.profile)
        self.first_run = self.settings.first_run
        from ibpanel.ui.app import ExceptionReporter  # the one exception path lives with the QApplication

        self.reporter = ExceptionReporter(log_path, interactive=not self.headless)
        self.session: Session | None = None
        self.window: MainWindow | None = None
        self._quit: asyncio.Event | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._signal_timer: QTimer | None = None
        self._shutdown_done = False
        self.timings: dict[str, float] = {}

    @property
    def broker(self) -> Broker | None:
        return self.session.broker if self.session is not None else None

    @property
    def sim(self) -> PracticeExchange | None:
        """The session's practice exchange (owned or joined), or None."""
        return self.session.practice if self.session is not None else None

    @property
    def api_group(self) -> Any:
        """The Connection tab's "Local REST API" group, the user's switch for the session's API (None without that tab)."""
        window = self.window
        return getattr(window.tabs.get("connection"), "api_group", None) if window is not None else None

    @property
    def api_handle(self) -> Any:
        """The running API (``ApiHandle``: host, port, url), or None while it is off."""
        return self.session.api.handle if self.session is not None else None

    def _mark(self, name: str) -> None:
        self.timings[name] = time.perf_counter() - self.started

    # --- the run ----------------------------------------------------------------------------
    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self._quit = asyncio.Event()
        self.reporter.install(loop)
        try:
            # Headless runs (screenshots, smoke test) keep their journals in a scratch folder, never in the
            # profile (QA F43): their sample orders would turn "Unknown" at the next launch's reconcile.
            self.session = Session(self.profile, broker_options=safety_limits(self.settings),
                                   scratch_journals=self.headless)
            self.window = window = MainWindow(self.session.broker, self.settings)
            if self.api_group is not None:
                self.api_group.use(self.session.api)
            window.closed.connect(self.request_quit)
            window.practice_requested.connect(lambda: self.spawn(self.start_practice()))
            if self.guard is not None:
                self.guard.activate_requested.connect(self._bring_to_front)
            self._install_signal_handlers()
            if self.args.demo and not self.headless:  # the first screen connects first; the other tabs after
                window.hold_deferred_tabs()
            self._apply_start_tab()
            if self.headless:
                window.resize(1280, 820)
            window.show()
            if self.args.demo:
                prefetch_exchange_code()  # on a worker thread while the window is first laid out and painted
            self._mark("window")
            if self.first_run:
                self.settings.mark_started()
            await self._start_api()
            if self.args.smoke_test:
                return await headless.smoke_test(self)
            if self.args.screenshot:
                return await headless.screenshot(self, Path(self.args.screenshot))
            self._start_initial_connection()
            if os.environ.get(headless.EXIT_AFTER_POPULATED) == "1":
                return await headless.exit_once_populated(self)
            await self._quit.wait()
            return 0
        finally:
            await self.shutdown()
            self.reporter.uninstall()

    def request_quit(self) -> None:
        if self._quit is not None:
            self._quit.set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run a coroutine in the background; its failure goes to the exception path."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.reporter.report("Error in a background task", t.exception())

        task.add_done_callback(done)
        return task

    def _apply_start_tab(self) -> None:
        window = self.window
        assert window is not None
        tab = self.args.tab
        if tab:
            window.show_tab(tab)
        elif self.first_run:
            window.show_tab("connection")
        connection = window.tabs["connection"]
        connection.readonly_forced = bool(self.args.readonly)  # the REST API can never lift it
        if self.first_run:
            # First run: the paper preset, and the practice exchange offered beside it.
            connection.select_preset("tws_paper")

    def _start_initial_connection(self) -> None:
        args = self.args
        if args.demo:
            self.spawn(self._start_demo())
            return
        tab = self.fill_from_command_line()
        if tab is None:
            return
        # Through the button's own path, so a live port still asks for confirmation first.
        QTimer.singleShot(0, tab._on_connect_clicked)

    async def _start_demo(self) -> None:
        """``--demo``: start the practice exchange and connect, then build the tabs not on the first screen.

        Built while the connection is made, they held up its replies (each tab is a few tens of ms of
        work on this loop): the window populated ~0.15 s later. A tab opened before then is built at once.
        """
        try:
            await self.start_practice(from_command_line=True)
        finally:
            if self.window is not None:
                self.window.build_deferred_tabs()

    def fill_from_command_line(self) -> Any:
        """Put ``--tws-host/--tws-port/--client-id/--account/--readonly`` in the Connection form (one-off).

        Returns the Connection tab, or None when no endpoint was given on the command line.
        """
        args = self.args
        if args.tws_host is None and args.tws_port is None:
            return None
        tab = self.window.tabs["connection"]
        params = tab.params()
        tab._fill_form(
            ConnectionParams(
                host=args.tws_host or params.host,
                port=args.tws_port or params.port,
                client_id=args.client_id if args.client_id is not None else params.client_id,
                account=args.account or params.account,
                readonly=args.readonly or params.readonly,
                auto_reconnect=params.auto_reconnect,
            )
        )
        tab.mark_one_off()  # command-line flags are for this run: the saved connection settings stay
        return tab

    async def start_practice(self, *, from_command_line: bool = False) -> bool:
        """Start the profile's practice exchange, or join it when another process owns it (once); connect. True when connected.

        ``from_command_line`` (``--demo``, smoke test, screenshots): the client id / account /
        read-only flags come from the command line and are not saved; otherwise (the practice
        button) from the form, like any connection the user starts.
        """
        window, session = self.window, self.session
        assert window is not None and session is not None
        tab = window.tabs["connection"]
        # The profile's practice account continues across launches (a paper account would) and is
        # shared: when `ibpanel serve --demo` already runs it, this panel joins that exchange.
        # Headless runs (smoke test, screenshots) use a fresh private one, so their output does
        # not depend on earlier runs.
        replay = getattr(self.args, "replay_session", None)  # --replay FILE (cli.py, sim/replay.py)
        starting = session.practice is None
        try:
            practice = await session.start_practice(seed=self.args.seed, persistent=not self.headless, on_thread=True,
                                                    replay=replay)
        except PracticeUnavailable as exc:
            tab.append_message(str(exc), "error")
            window.status_bar.showMessage("Practice exchange not available: see the Connection tab", 10000)
            log.warning("%s", exc)
            return False
        if starting and replay is not None:  # the Replay control drives the replay's clock
            zone, zones = replay.time_zones()
            window.show_replay(replay.clock, zone, Path(replay.source).name, zones)
        self._mark("practice")
        where = "in-process" if practice.owner else f"shared, run by process {practice.owner_pid}"
        tab.set_practice_port(practice.port, where)
        if self.broker.status.state is not ConnectionState.DISCONNECTED:
            await self.broker.disconnect()
        args = self.args
        params = ConnectionParams(
            host=practice.host,
            port=practice.port,
            client_id=args.client_id if args.client_id is not None else tab.client_id_spin.value(),
            account=args.account or "",
            readonly=bool(args.readonly) if from_command_line else bool(args.readonly) or tab.readonly_check.isChecked(),
            auto_reconnect=True,
            practice=True,  # practice orders go to the practice journal, never the real one
        )
        if await tab.connect_with(params, one_off=from_command_line):
            self._mark("connected")
            return True
        failure = self.broker.status.failure
        if (practice.joined and args.client_id is None and failure is not None
                and failure.kind is FailureKind.CLIENT_ID_IN_USE and failure.suggested_client_id is not None):
            # The exchange's owner (ibpanel serve) holds this clientId: take the free one it suggests.
            return await tab.connect_with(replace(params, client_id=failure.suggested_client_id),
                                          one_off=from_command_line)
        return False

    async def _start_api(self) -> None:
        """Serve the REST API at start: with ``--api`` (this run, command-line address) or when settings.ini says so.

        ``--api-host`` / ``--api-port`` / ``--api-token`` count when given; otherwise the group's saved
        address is used. A refusal is shown in the group, the status bar and the message log.
        """
        group = self.api_group
        args = self.args
        if group is None:
            if args.api:
                log.warning("REST API not available: the Connection tab could not be built")
            return
        # Screenshots and smoke tests serve only when asked on their command line.
        if not (args.api or (not self.headless and group.saved_enabled())):
            return
        if args.api:
            host = args.api_host if args.api_host != API_DEFAULT_HOST else None
            port = args.api_port if args.api_port != API_DEFAULT_PORT else None
            group.set_address(host, port, args.api_token)
        await group.start(source="command line" if args.api else "settings")

    # --- desktop integration ----------------------------------------------------------------
    def _bring_to_front(self) -> None:
        window = self.window
        if window is None:
            return
        window.showNormal()
        window.raise_()
        window.activateWindow()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal %s: shutting down", signum)
            loop.call_soon_threadsafe(self.request_quit)

        for name in ("SIGINT", "SIGTERM"):
            sig = getattr(signal, name, None)
            if sig is not None:
                signal.signal(sig, on_signal)
        # Python runs signal handlers only when it gets the CPU; Qt's C++ loop must hand it over now and then.
        self._signal_timer = QTimer()
        self._signal_timer.setObjectName("signalWake")
        self._signal_timer.timeout.connect(lambda: None)
        self._signal_timer.start(250)

    # --- shutdown ---------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop everything in order. Idempotent; every step runs even if an earlier one failed."""
        if self._shutdown_done:
            return
        self._shutdown_done = True
        # Background tasks end first, while the widgets they update still exist (a connect still in flight
        # when the window closes ends by refreshing the Connection tab's buttons).
        steps: list[tuple[str, Any]] = [("background tasks", self._cancel_tasks)]
        if self.window is not None:
            steps.append(("window", self._close_window))
        if self.api_group is not None:
            steps.append(("REST API switch", self.api_group.close))  # toggles in progress end first
        if self.session is not None:
            # The REST API, the broker (polite disconnect, journal), the practice exchange, scratch journals.
            steps.append(("session", self.session.close))
        for what, step in steps:
            try:
                result = step()
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await asyncio.wait_for(result, timeout=10.0)
            except Exception:  # noqa: BLE001 - keep going: the journal must still be closed
                log.exception("shutdown: %s failed", what)
        if self._signal_timer is not None:
            self._signal_timer.stop()
        self.settings.sync()
        log.info("shut down cleanly")

    def _close_window(self) -> None:
        window = self.window
        if window is None:
            return
        window.shutdown()
        window.hide()
        window.deleteLater()  # runs once more events are processed: after the broker closed

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def safety_limits(settings: Settings) -> dict[str, Any]:
    """Broker options (``max_order_value``, ``fat_finger_pct``, ``limits_source``) from the profile's ``[safety]`` settings.

    Same keys, defaults and checks as ``ibpanel.safety.load_safety_limits`` (what ``ibpanel serve``
    reads), but through QSettings so values set in this run count. Missing keys are written back
    with their defaults so a user can find them in settings.ini and change them.
    """
    qsettings = settings.qsettings
    qsettings.beginGroup(safety.SECTION)
    try:
        values = {key: qsettings.value(key) for key in qsettings.childKeys()}
    finally:
        qsettings.endGroup()
    for key, default in safety.default_values().items():
        if key not in {k.lower() for k in values}:
            settings.set(f"{safety.SECTION}/{key}", int(default) if default == int(default) else str(default))
    return safety.limits_from_values(values, settings.path).broker_options()
