"""The Connection tab's "Local REST API" group: the user's switch for serving /api/ibkr.

The group never starts the API itself: it asks the session's ``runtime.rest_api.RestApi``
(``service``) to start or stop, and shows the outcome.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.service import Broker
from ibpanel.hosts import is_loopback
from ibpanel.runtime.rest_api import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    ApiRefused,
    RestApi,
)
from ibpanel.ui.settings import Settings
from ibpanel.ui.style import set_prop

log = logging.getLogger(__name__)


class ApiGroup(QGroupBox):
    """The "Local REST API" group: serve /api/ibkr on the panel's own loop and broker, or not.

    Settings (``[api]`` in settings.ini): ``enabled``, ``host``, ``port``, ``remember_token`` and
    ``token`` (stored only when the user ticks "remember"; otherwise the field starts from
    IBPANEL_API_TOKEN). Ticking the box starts the API at once and unticking stops it; the app
    calls ``start()`` at launch when ``enabled`` is saved or ``--api`` is given. A refusal (another
    address without a token, a busy port) is shown in the group, the status bar (``state_changed``)
    and the message log (``message``), never as a traceback.
    """

    #: (status-bar text, ok, tooltip); an empty text means "nothing to show" (the API is off by choice).
    state_changed = Signal(str, bool, str)
    #: (line, severity) for the Connection tab's message log.
    message = Signal(str, str)

    def __init__(self, broker: Broker, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("Local REST API", parent)
        self.setObjectName("apiGroup")
        self.broker = broker
        self.settings = settings
        #: The session's REST API, which this group asks to start and stop (the app gives the session's
        #: own, which knows the practice exchange; a group on its own serves its broker).
        self.service = RestApi(broker)
        #: Why the API's connections must be read-only (the panel's switch, --readonly), or None: the
        #: API can never lift read-only chosen in the panel (set by the Connection tab).
        self.readonly_lock: Callable[[], str | None] | None = None
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._build()
        self._load_settings()

    # --- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        form = self._form = QFormLayout()
        outer.addLayout(form)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # no blank band under the text
        self.enabled_check = QCheckBox("Serve the REST API for scripts (/api/ibkr)")
        self.enabled_check.setToolTip("Scripts and strategies trade through this panel's connection and safety rules.")
        self.host_edit = QLineEdit(DEFAULT_HOST)
        self.host_edit.setToolTip("127.0.0.1: only programs on this computer can reach the API.")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("any free port")  # 0
        self.port_spin.setValue(DEFAULT_PORT)
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText(f"at least {MIN_TOKEN_LENGTH} characters; clients send Bearer <token>")
        self.remember_token_check = QCheckBox("Remember the token in settings.ini (plain text)")
        self.status_label = QLabel()
        self.status_label.setObjectName("apiStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        address = QHBoxLayout()  # one row: the group must fit under the connection form
        address.addWidget(self.host_edit, 3)
        address.addWidget(QLabel("Port"))
        address.addWidget(self.port_spin, 1)
        for widget, name in ((self.enabled_check, "Serve the local REST API"), (self.host_edit, "REST API host"),
                             (self.port_spin, "REST API port"), (self.token_edit, "REST API token"),
                             (self.remember_token_check, "Remember the REST API token")):
            widget.setAccessibleName(name)
        form.addRow("", self.enabled_check)
        form.addRow("Host", address)
        form.addRow("Token", self.token_edit)
        form.addRow("", self.remember_token_check)
        # Below the form, not in it: QFormLayout sizes a wrapping label by its narrow size hint
        # (four lines), which left a blank band under the one line it needs.
        outer.addWidget(self.status_label)

        self.enabled_check.toggled.connect(self._on_toggled)
        self.host_edit.textChanged.connect(self._refresh_token_rows)
        self.host_edit.editingFinished.connect(self._save_address)
        self.port_spin.editingFinished.connect(self._save_address)
        self.token_edit.editingFinished.connect(self._save_token)
        self.remember_token_check.toggled.connect(self._save_token)

    def _load_settings(self) -> None:
        s = self.settings
        self.host_edit.setText(s.get("api/host", DEFAULT_HOST) or DEFAULT_HOST)
        self.port_spin.setValue(s.get("api/port", DEFAULT_PORT))
        remember = s.get("api/remember_token", False)
        self.remember_token_check.blockSignals(True)
        self.remember_token_check.setChecked(remember)
        self.remember_token_check.blockSignals(False)
        stored = s.get("api/token", "") if remember else ""
        self.token_edit.setText(stored or os.environ.get(TOKEN_ENV, ""))
        self._refresh_token_rows()
        self._show_off()

    # --- public ----------------------------------------------------------------------------
    @property
    def handle(self) -> Any:
        """The running API (``ApiHandle``: host, port, url), or None while it is off."""
        return self.service.handle

    @property
    def running(self) -> bool:
        return self.handle is not None

    def use(self, service: RestApi) -> None:
        """Serve through ``service`` (the session's REST API) from now on."""
        self.service = service

    def saved_enabled(self) -> bool:
        """``[api] enabled`` in settings.ini: the API starts with the panel."""
        return bool(self.settings.get("api/enabled", False))

    def set_address(self, host: str | None = None, port: int | None = None, token: str | None = None) -> None:
        """Put an address (and token) in the fields for this run, without saving them (``ibpanel --api ...``)."""
        for widget in (self.host_edit, self.port_spin, self.token_edit):
            widget.blockSignals(True)
        try:
            if host:
                self.host_edit.setText(host)
            if port is not None:
                self.port_spin.setValue(port)
            if token:
                self.token_edit.setText(token)
        finally:
            for widget in (self.host_edit, self.port_spin, self.token_edit):
                widget.blockSignals(False)
        self._refresh_token_rows()

    async def start(self, *, source: str = "settings") -> bool:
        """Serve the API at the fields' address on the running loop. True when it serves.

        ``source``: "settings" (the group) or "command line" (``--api``): only changes which
        control a refusal tells the user to change.
        """
        async with self._guard():
            if self.handle is not None:
                return True
            host = self.host_edit.text().strip()
            port = self.port_spin.value()
            raw_token = self.token_edit.text()
            token = raw_token.strip() or None
            refusal = self._refusal(host, token, source)
            if raw_token and token is None:  # spaces only: not "no token" in disguise
                refusal = "API off: blank token", (
                    "The token holds only spaces: type a real token (at least "
                    f"{MIN_TOKEN_LENGTH} characters) or clear the field to serve on 127.0.0.1 without one."
                )
            if refusal is not None:
                self._refused(*refusal)
                return False
            try:
                await self.service.start(host, port, token, readonly=self.readonly_lock)
            except ApiRefused as exc:
                self._refused("API off: refused", str(exc))
                return False
            except OSError as exc:
                self._refused(*self._os_refusal(exc, port, source), exc=exc)
                return False
            except Exception as exc:  # noqa: BLE001 - the panel works on without the API; the log has the details
                log.exception("the local REST API did not start")
                self._refused("API off: could not start", f"The API could not start: {exc}. Details are in the log file.")
                return False
            self._show_on(token_required=token is not None)
            return True

    async def stop(self) -> None:
        """Stop serving (idempotent): the port closes; requests in flight finish."""
        async with self._guard():
            await self.service.stop()
            if shiboken6.isValid(self.status_label):  # at shutdown the window may already be gone
                self._show_off()

    async def close(self) -> None:
        """At shutdown: stop serving and wait for toggles still in progress."""
        for task in list(self._tasks):
            if not task.done():
                try:
                    await task
                except Exception:  # noqa: BLE001 - shutting down; the log has it
                    log.exception("API toggle failed")
        await self.stop()

    def shutdown(self) -> None:
        """Synchronous part of shutdown: stop the API in the background (the app awaits ``close()``)."""
        if self.handle is not None:
            self._spawn(self.stop())

    # --- the checkbox ----------------------------------------------------------------------
    def _on_toggled(self, checked: bool) -> None:
        self._spawn(self._apply_choice(checked))

    async def _apply_choice(self, checked: bool) -> None:
        if checked:
            ok = await self.start()
            self._save_address()
            self.settings.set("api/enabled", ok)
        else:
            await self.stop()
            self.settings.set("api/enabled", False)
        self.settings.sync()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _guard(self) -> asyncio.Lock:
        # One start / stop at a time: a quick on-off-on must not bind twice.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # --- saving ----------------------------------------------------------------------------
    def _save_address(self) -> None:
        self.settings.set("api/host", self.host_edit.text().strip() or DEFAULT_HOST)
        self.settings.set("api/port", self.port_spin.value())

    def _save_token(self) -> None:
        remember = self.remember_token_check.isChecked()
        self.settings.set("api/remember_token", remember)
        token = self.token_edit.text().strip()
        if remember and token:
            self.settings.set("api/token", token)
        else:
            self.settings.remove("api/token")  # not asked to remember: the secret stays out of the file

    # --- display ---------------------------------------------------------------------------
    def _refresh_token_rows(self, *_args: Any) -> None:
        # The token matters only off loopback: there it is required, so it is shown.
        needed = not is_loopback(self.host_edit.text().strip() or DEFAULT_HOST)
        self._form.setRowVisible(self.token_edit, needed)
        self._form.setRowVisible(self.remember_token_check, needed)

    def _set_fields_enabled(self, enabled: bool) -> None:
        # The address of a running API cannot change under its clients: turn it off to edit.
        for widget in (self.host_edit, self.port_spin, self.token_edit, self.remember_token_check):
            widget.setEnabled(enabled)

    def _set_checked(self, checked: bool) -> None:
        self.enabled_check.blockSignals(True)
        self.enabled_check.setChecked(checked)
        self.enabled_check.blockSignals(False)

    def _show_on(self, *, token_required: bool = False) -> None:
        handle = self.handle
        url = f"{handle.url}/api/ibkr"
        self._set_checked(True)
        self._set_fields_enabled(False)
        # A token from IBPANEL_API_TOKEN applies on loopback too, where its field is hidden: say so.
        auth = "; clients send Authorization: Bearer <token>" if token_required else ""
        self.status_label.setText(f"Serving {url}{auth} (turn off to change the address)")
        set_prop(self.status_label, "hint", "muted")
        set_prop(self.status_label, "tone", "up")  # green: serving
        log.info("REST API on %s", url)
        self.state_changed.emit(f"API {handle.host}:{handle.port}", True, f"Local REST API: {url}")

    def _show_off(self, reason: str = "") -> None:
        self._set_checked(False)
        self._set_fields_enabled(True)
        set_prop(self.status_label, "tone", "")
        if reason:
            self.status_label.setText(f"Off: {reason}")
            set_prop(self.status_label, "hint", "error")
            return
        self.status_label.setText("Off. Tick the box to let scripts trade through this panel (curl, strategies).")
        set_prop(self.status_label, "hint", "muted")
        self.state_changed.emit("", True, "")

    def _refused(self, short: str, reason: str, *, exc: BaseException | None = None) -> None:
        """The API could not start: the reason in the group, the status bar and the message log; the panel runs on."""
        # The traceback (if any) goes to the log file only; the terminal handler prints one line.
        log.error("The local REST API did not start: %s", reason, exc_info=exc)
        self._show_off(reason)
        self.state_changed.emit(short, False, reason)
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        self.message.emit(f"{stamp}  {'ERROR':7} The local REST API is off: {reason}", "error")

    @staticmethod
    def _refusal(host: str, token: str | None, source: str) -> tuple[str, str] | None:
        """(status-bar text, reason) when the fields cannot be served safely; None when they can."""
        flag = source == "command line"
        if not host:
            return "API off: no host", "Type the address to serve on in Host (127.0.0.1 keeps it on this computer)."
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            return "API off: token too short", (
                f"The token must be at least {MIN_TOKEN_LENGTH} characters (it has {len(token)}); make one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(24))"'
            )
        if not is_loopback(host) and not token:
            where = "--api-token (or IBPANEL_API_TOKEN)" if flag else "a Token (or set IBPANEL_API_TOKEN)"
            return "API off: needs a token", (
                f"Refusing to serve the trading API on {host} without a token: anyone who can reach that address "
                f"could place orders. Give {where}, or use host 127.0.0.1."
            )
        return None

    @staticmethod
    def _os_refusal(exc: OSError, port: int, source: str) -> tuple[str, str]:
        reason = (exc.strerror or str(exc)).rstrip(".")
        in_use = exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1))
        flag = source == "command line"
        if in_use:
            fix = "with --api-port" if flag else "in the Port field of the Local REST API group (Connection tab)"
            return f"API off: port {port} in use", f"{reason} {fix}."
        fix = "check --api-host and --api-port" if flag else "check Host and Port in the Local REST API group"
        return "API off: could not start", f"{reason} ({fix})."
