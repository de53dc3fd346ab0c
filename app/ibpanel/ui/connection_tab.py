"""Connection tab: where the panel connects to TWS / IB Gateway or the practice exchange.

Presets fill host and port (the user may override either); Connect goes through ``Broker.connect``
and a failure is shown as one plain sentence, what to do, and a one-click practice session.
Connecting to a live port asks first. ``start_practice_requested`` asks the app to start the
in-process practice exchange; the app then calls ``set_practice_port`` and ``connect_with``.
"""

from __future__ import annotations

import asyncio
import errno
import html
import logging
import os
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from ibpanel.broker.exceptions import BrokerError, ConnectError
from ibpanel.broker.models import (
    ConnectionFailure,
    ConnectionParams,
    ConnectionState,
    ConnectionStatus,
    FailureKind,
    Notice,
)
from ibpanel.broker.service import Broker
from ibpanel.ui.settings import Settings
from ibpanel.ui.style import PALETTE, set_prop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    port: int
    live: bool
    hint: str


PRACTICE = "practice"
PRESETS: tuple[Preset, ...] = (
    Preset("tws_paper", "TWS Paper", 7497, False, "Trader Workstation logged in to a paper account."),
    Preset("tws_live", "TWS Live", 7496, True, "Trader Workstation logged in to a LIVE account: real money."),
    Preset("gateway_paper", "Gateway Paper", 4002, False, "IB Gateway logged in to a paper account."),
    Preset("gateway_live", "Gateway Live", 4001, True, "IB Gateway logged in to a LIVE account: real money."),
    Preset(PRACTICE, "Practice exchange", 0, False, "The built-in practice exchange: no IB account needed."),
)
PRESETS_BY_KEY = {p.key: p for p in PRESETS}
DEFAULT_PRESET = "tws_paper"
#: Ports TWS / Gateway use for live accounts by default.
LIVE_PORTS = frozenset(p.port for p in PRESETS if p.live)

SETUP_HELP = (
    "<ol style='margin-left:-20px'>"
    "<li>Start <b>TWS</b> or <b>IB Gateway</b> and log in (paper first).</li>"
    "<li>In TWS: <i>Configure &gt; API &gt; Settings</i>: tick <i>Enable ActiveX and Socket Clients</i>; "
    "note the <i>Socket port</i>.</li>"
    "<li>Ports: TWS paper 7497, live 7496; Gateway paper 4002, live 4001.</li>"
    "<li>Each program on one TWS needs its own <b>client ID</b>.</li>"
    "<li>Tick <b>Read-only</b> to look without any risk of sending an order.</li>"
    "</ol>No IB account? Use the <b>practice exchange</b>: same screens, simulated market."
)

_STATE_TEXT = {
    ConnectionState.DISCONNECTED: "Disconnected",
    ConnectionState.CONNECTING: "Connecting…",
    ConnectionState.CONNECTED: "Connected",
    ConnectionState.DEGRADED: "Connected, but TWS has lost IB's servers",
    ConnectionState.RECONNECTING: "Reconnecting…",
}


#: Python's socket detail inside a failure message, e.g. " ([Errno 111] Connect call failed ('127.0.0.1', 1))".
_ERRNO_DETAIL = re.compile(r"\s*\(\[Errno[^\]]*\][^()]*(?:\([^()]*\)[^()]*)*\)")


def failure_headline(message: str) -> str:
    """One line for a trader: the broker's reason without Python's errno detail (that stays in the log file)."""
    text = _ERRNO_DETAIL.sub("", " ".join(message.split())).strip()
    return text or message.strip()


def classification_text(status: ConnectionStatus) -> tuple[str, str]:
    """(badge text, badge kind) for the account type: PAPER, LIVE or unknown."""
    if status.is_paper is None:
        # Connected but unclassifiable: the broker treats it as live, and so does the badge.
        return ("LIVE?", "live") if status.connected else ("—", "unknown")
    return ("PAPER", "paper") if status.is_paper else ("LIVE", "live")


API_DEFAULT_HOST = "127.0.0.1"
API_DEFAULT_PORT = 5000
API_TOKEN_ENV = "IBPANEL_API_TOKEN"
API_MIN_TOKEN_LENGTH = 16  # same floor as ibpanel.api.security.check_bind
#: Zone names TWS may put after its connection time ("20261124 12:42:25 UTC"); unambiguous ones only
#: (CST is China or US Central, IST India or Israel: those stay as TWS wrote them).
_TWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "GMT": "UTC",
    "Z": "UTC",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "HKT": "Asia/Hong_Kong",
    "Hong Kong Standard Time": "Asia/Hong_Kong",
    "JST": "Asia/Tokyo",
    "CET": "Europe/Paris",
    "CEST": "Europe/Paris",
    "MET": "Europe/Paris",
}
_TWS_TIME = re.compile(r"^\s*(\d{8})[ -](\d{1,2}:\d{2}:\d{2})(?:\s+(.+?))?\s*$")


def _tws_zone(name: str | None) -> tzinfo | None:
    """The zone TWS named (a missing name is UTC: the broker writes UTC), or None if unknown."""
    if name is None:
        return timezone.utc
    key = _TWS_ZONES.get(name, name if "/" in name else "")  # some setups write the IANA name
    if key == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(key) if key else None
    except (ZoneInfoNotFoundError, ValueError):
        return None  # no tz data on this computer (tzdata missing on Windows): show TWS's text


def parse_tws_time(text: str | None) -> datetime | None:
    """TWS's "yyyymmdd hh:mm:ss [zone]" as an aware datetime, or None when it cannot be read for sure.

    An unknown or ambiguous zone gives None, so the caller shows TWS's own text rather than a wrong hour.
    """
    match = _TWS_TIME.match(text or "")
    if match is None:
        return None
    day, clock, zone_name = match.groups()
    try:
        naive = datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
    except ValueError:
        return None
    zone = _tws_zone(zone_name)
    return None if zone is None else naive.replace(tzinfo=zone)


def _zone_label(moment: datetime) -> str:
    """Short zone name for ``moment`` ("HKT", "UTC"), or its offset ("UTC+08:00") when the name is long."""
    name = moment.tzname() or ""
    if name and len(name) <= 5 and " " not in name:
        return name
    offset = moment.utcoffset() or timedelta(0)
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def connection_time_text(raw: str | None, local_zone: tzinfo | None = None) -> str:
    """TWS's connection time in the user's local time, e.g. "2026-11-24 20:42:25 HKT (12:42:25 UTC)".

    ``local_zone`` defaults to the computer's zone; text that does not parse is returned unchanged.
    """
    moment = parse_tws_time(raw)
    if moment is None:
        return (raw or "").strip() or "—"
    local = moment.astimezone(local_zone) if local_zone is not None else moment.astimezone()
    text = f"{local:%Y-%m-%d %H:%M:%S} {_zone_label(local)}"
    if local.utcoffset() != timedelta(0):
        # The UTC time too: it is what TWS logs and IB support quote.
        text += f"  ({moment.astimezone(timezone.utc):%H:%M:%S} UTC)"
    return text


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
        #: Where /connect to a paper port goes in a practice session (set by the app with --demo).
        self.practice: Callable[[], tuple[str, int] | None] | None = None
        #: Why the API's connections must be read-only (the panel's switch, --readonly), or None: the
        #: API can never lift read-only chosen in the panel (set by the Connection tab).
        self.readonly_lock: Callable[[], str | None] | None = None
        self.handle: Any = None
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
        self.host_edit = QLineEdit(API_DEFAULT_HOST)
        self.host_edit.setToolTip("127.0.0.1: only programs on this computer can reach the API.")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("any free port")  # 0
        self.port_spin.setValue(API_DEFAULT_PORT)
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText(f"at least {API_MIN_TOKEN_LENGTH} characters; clients send Bearer <token>")
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
        self.host_edit.setText(s.get("api/host", API_DEFAULT_HOST) or API_DEFAULT_HOST)
        self.port_spin.setValue(s.get("api/port", API_DEFAULT_PORT))
        remember = s.get("api/remember_token", False)
        self.remember_token_check.blockSignals(True)
        self.remember_token_check.setChecked(remember)
        self.remember_token_check.blockSignals(False)
        stored = s.get("api/token", "") if remember else ""
        self.token_edit.setText(stored or os.environ.get(API_TOKEN_ENV, ""))
        self._refresh_token_rows()
        self._show_off()

    # --- public ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.handle is not None

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
                    f"{API_MIN_TOKEN_LENGTH} characters) or clear the field to serve on 127.0.0.1 without one."
                )
            if refusal is not None:
                self._refused(*refusal)
                return False
            try:
                from ibpanel.api.security import ApiConfigError
                from ibpanel.api.server import start_api

                handle = await start_api(self.broker, host=host, port=port, token=token, practice=self.practice,
                                         readonly=self.readonly_lock)
            except ApiConfigError as exc:
                self._refused("API off: refused", str(exc))
                return False
            except OSError as exc:
                self._refused(*self._os_refusal(exc, port, source), exc=exc)
                return False
            except Exception as exc:  # noqa: BLE001 - the panel works on without the API; the log has the details
                log.exception("the local REST API did not start")
                self._refused("API off: could not start", f"The API could not start: {exc}. Details are in the log file.")
                return False
            self.handle = handle
            self._show_on(token_required=token is not None)
            return True

    async def stop(self) -> None:
        """Stop serving (idempotent): the port closes; requests in flight finish."""
        async with self._guard():
            handle, self.handle = self.handle, None
            if handle is not None:
                await handle.close()
                log.info("REST API stopped")
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
        self.settings.set("api/host", self.host_edit.text().strip() or API_DEFAULT_HOST)
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
        needed = not is_loopback_host(self.host_edit.text().strip() or API_DEFAULT_HOST)
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
        if token is not None and len(token) < API_MIN_TOKEN_LENGTH:
            return "API off: token too short", (
                f"The token must be at least {API_MIN_TOKEN_LENGTH} characters (it has {len(token)}); make one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(24))"'
            )
        if not is_loopback_host(host) and not token:
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


class ConnectionTab(QWidget):
    TAB_NAME = "connection"
    TITLE = "Connection"

    #: The user asked for a practice session (preset or the button after a failure).
    start_practice_requested = Signal()
    #: A connection attempt finished: True when connected.
    connect_finished = Signal(bool)

    def __init__(self, broker: Broker, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self._practice_port: int | None = None
        self._practice_where = "in-process"
        #: ``--readonly`` on the command line: read-only for the whole run (set by the app).
        self.readonly_forced = False
        self._busy = False
        self._last_failure: ConnectionFailure | None = None
        #: The failure already written to the message log (the attempt and the state change both report it).
        self._logged_failure: ConnectionFailure | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._connected_at: datetime | None = None
        #: Form values that came from the command line: used for this run, not saved (see mark_one_off).
        self._one_off: dict[str, Any] = {}
        self._build()
        self._load_settings()
        broker.state_changed.connect(self._on_state_changed)
        broker.notice.connect(self._on_notice)
        self._on_state_changed(broker.status)

    # --- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        form_box = QGroupBox("Connect to")
        form = QFormLayout(form_box)
        self.preset_combo = QComboBox()
        for preset in PRESETS:
            self.preset_combo.addItem(preset.label, preset.key)
        self.preset_hint = QLabel()
        set_prop(self.preset_hint, "hint", "muted")
        self.host_edit = QLineEdit("127.0.0.1")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        self.client_id_spin = QSpinBox()
        self.client_id_spin.setRange(0, 999_999_999)
        self.client_id_spin.setValue(1)
        self.account_combo = QComboBox()
        self.account_combo.setEditable(True)
        self.account_combo.setToolTip("Which managed account the panel shows and trades (several after connecting).")
        self.readonly_check = QCheckBox("Read-only (no order can be sent)")
        self.auto_reconnect_check = QCheckBox("Reconnect automatically")
        self.auto_reconnect_check.setChecked(True)
        for widget, name in ((self.preset_combo, "Connection preset"), (self.host_edit, "TWS host"),
                             (self.port_spin, "TWS port"), (self.client_id_spin, "Client ID"),
                             (self.account_combo, "Account"), (self.readonly_check, "Read-only"),
                             (self.auto_reconnect_check, "Reconnect automatically")):
            widget.setAccessibleName(name)
        form.addRow("Preset", self.preset_combo)
        form.addRow("", self.preset_hint)
        form.addRow("Host", self.host_edit)
        form.addRow("Port", self.port_spin)
        form.addRow("Client ID", self.client_id_spin)
        form.addRow("Account", self.account_combo)
        form.addRow("", self.readonly_check)
        form.addRow("", self.auto_reconnect_check)

        self.connect_button = QPushButton("Connect")
        set_prop(self.connect_button, "role", "primary")
        self.disconnect_button = QPushButton("Disconnect")
        self.practice_button = QPushButton("Start a practice session instead")
        set_prop(self.practice_button, "role", "practice")
        for button in (self.connect_button, self.disconnect_button, self.practice_button):
            button.setAccessibleName(button.text())
        buttons = QHBoxLayout()
        buttons.addWidget(self.connect_button)
        buttons.addWidget(self.disconnect_button)
        buttons.addStretch(1)
        buttons.addWidget(self.practice_button)
        form.addRow(buttons)

        # The failure box: one sentence, what to do, and the quick fixes.
        self.failure_box = QGroupBox("Could not connect")
        failure_layout = QVBoxLayout(self.failure_box)
        self.failure_label = QLabel()
        self.failure_label.setWordWrap(True)
        set_prop(self.failure_label, "hint", "error")
        self.advice_label = QLabel()
        self.advice_label.setWordWrap(True)
        self.suggested_id_button = QPushButton()
        self.suggested_id_button.setAccessibleName("Use the suggested client ID")
        self.suggested_id_button.hide()
        failure_layout.addWidget(self.failure_label)
        failure_layout.addWidget(self.advice_label)
        failure_layout.addWidget(self.suggested_id_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.failure_box.hide()

        info_box = QGroupBox("Session")
        info = QGridLayout(info_box)
        self.state_label = QLabel()
        self.state_label.setObjectName("headline")
        self.account_type_badge = QLabel("—")
        set_prop(self.account_type_badge, "badge", "unknown")
        self.readonly_badge = QLabel("READ-ONLY")
        set_prop(self.readonly_badge, "badge", "readonly")
        self.readonly_badge.hide()
        self.paper_reason_label = QLabel()
        self.paper_reason_label.setWordWrap(True)
        set_prop(self.paper_reason_label, "hint", "muted")
        self.server_version_label = QLabel("—")
        self.connection_time_label = QLabel("—")
        self.accounts_label = QLabel("—")
        self.accounts_label.setWordWrap(True)
        self.endpoint_label = QLabel("—")
        badges = QHBoxLayout()
        badges.addWidget(self.state_label)
        badges.addStretch(1)
        badges.addWidget(self.account_type_badge)
        badges.addWidget(self.readonly_badge)
        info.addLayout(badges, 0, 0, 1, 2)
        info.addWidget(self.paper_reason_label, 1, 0, 1, 2)
        for row, (caption, label) in enumerate(
            (
                ("Endpoint", self.endpoint_label),
                ("Server version", self.server_version_label),
                ("Connected at", self.connection_time_label),
                ("Accounts", self.accounts_label),
            ),
            start=2,
        ):
            cap = QLabel(caption)
            set_prop(cap, "hint", "muted")
            info.addWidget(cap, row, 0)
            info.addWidget(label, row, 1)
        info.setColumnStretch(1, 1)
        info.setRowStretch(row + 1, 1)

        log_box = QGroupBox("Messages from IB")
        log_layout = QVBoxLayout(log_box)
        self.message_log = QPlainTextEdit()
        self.message_log.setReadOnly(True)
        self.message_log.setAccessibleName("Messages from IB")
        self.message_log.setMaximumBlockCount(2000)
        self.message_log.setPlaceholderText("Notices from TWS / IB Gateway appear here.")
        log_layout.addWidget(self.message_log)

        help_box = QGroupBox("Before you connect")
        help_layout = QVBoxLayout(help_box)
        self.help_label = QLabel(SETUP_HELP)
        self.help_label.setWordWrap(True)
        self.help_label.setTextFormat(Qt.TextFormat.RichText)
        help_layout.addWidget(self.help_label)

        self.api_group = ApiGroup(self.broker, self.settings)
        self.api_group.readonly_lock = self.readonly_lock

        left = QVBoxLayout()
        left.addWidget(form_box)
        left.addWidget(self.failure_box)
        left.addWidget(help_box)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(info_box)
        right.addWidget(self.api_group)  # its own height; the message log gives way
        right.addWidget(log_box, 1)  # the log takes the spare height: no blank band in the boxes above
        top = QHBoxLayout(self)
        top.addLayout(left, 5)
        top.addLayout(right, 6)

        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.port_spin.valueChanged.connect(self._on_port_edited)
        self.connect_button.clicked.connect(self._on_connect_clicked)
        self.disconnect_button.clicked.connect(self._on_disconnect_clicked)
        self.practice_button.clicked.connect(self.start_practice_requested.emit)
        self.suggested_id_button.clicked.connect(self._on_use_suggested_id)
        self.account_combo.activated.connect(self._on_account_chosen)
        self.api_group.message.connect(self.append_message)

    def _load_settings(self) -> None:
        s = self.settings
        self.select_preset(s.get("connection/preset", DEFAULT_PRESET))
        if s.contains("connection/port") and self.current_preset().key != PRACTICE:
            self.host_edit.setText(s.get("connection/host", "127.0.0.1"))
            self.port_spin.setValue(s.get("connection/port", self.current_preset().port))
        self.client_id_spin.setValue(s.get("connection/client_id", 1))
        self.account_combo.setEditText(s.get("connection/account", ""))
        self.readonly_check.setChecked(s.get("connection/readonly", False))
        self.auto_reconnect_check.setChecked(s.get("connection/auto_reconnect", True))

    def _form_values(self) -> dict[str, Any]:
        return {
            "preset": self.current_preset().key,
            "host": self.host_edit.text().strip(),
            "port": self.port_spin.value(),
            "client_id": self.client_id_spin.value(),
            "account": self.account_combo.currentText().strip(),
            "readonly": self.readonly_check.isChecked(),
            "auto_reconnect": self.auto_reconnect_check.isChecked(),
        }

    def save_settings(self) -> None:
        """Remember the form as ``connection/*``, except values given on the command line (one-off)."""
        s = self.settings
        for name, value in self._form_values().items():
            if name in self._one_off and (name == "account" or self._one_off[name] == value):
                continue  # still what the command line said: the saved setting keeps its own value
            s.set(f"connection/{name}", value)

    def mark_one_off(self) -> None:
        """The form now holds a connection asked for on the command line (``--demo``, ``--readonly``, ...).

        Those values are for this run only: ``save_settings`` keeps the previously saved ones, until
        the user changes a field by hand (then that field is saved as usual). The account is set by
        the session after connecting, so it is saved only once the user picks one.
        """
        self._one_off = self._form_values()

    # --- public API (app, main window, tests) ----------------------------------------------
    def current_preset(self) -> Preset:
        return PRESETS_BY_KEY.get(self.preset_combo.currentData(), PRESETS_BY_KEY[DEFAULT_PRESET])

    def select_preset(self, key: str) -> None:
        index = self.preset_combo.findData(key if key in PRESETS_BY_KEY else DEFAULT_PRESET)
        self.preset_combo.setCurrentIndex(index)
        self._on_preset_changed(index)

    def set_practice_port(self, port: int | None, where: str = "in-process") -> None:
        """The app started (or stopped, None) the practice exchange on this port, or joined it (``where``
        then says whose it is, e.g. "run by ibpanel serve, process 123")."""
        self._practice_port = port
        self._practice_where = where
        if self.current_preset().key == PRACTICE:
            self._on_preset_changed(self.preset_combo.currentIndex())

    def params(self) -> ConnectionParams:
        """What Connect would send, from the form."""
        host = self.host_edit.text().strip() or "127.0.0.1"
        port = self.port_spin.value()
        return ConnectionParams(
            host=host,
            port=port,
            client_id=self.client_id_spin.value(),
            account=self.account_combo.currentText().strip(),
            readonly=self.readonly_check.isChecked(),
            auto_reconnect=self.auto_reconnect_check.isChecked(),
            practice=self.is_practice_target(host, port),
        )

    def readonly_lock(self) -> str | None:
        """Why a connection the REST API makes must be read-only, or None: ``--readonly`` or the Read-only switch.

        Only the trader at the panel lifts it (restart without --readonly, untick the switch); the
        API's /connect and /disconnect cannot.
        """
        if self.readonly_forced:
            return "Read-only was chosen at start (--readonly); restart the panel without --readonly to trade."
        if self.readonly_check.isChecked():
            return ("Read-only is switched on in the panel (Connection tab); only the panel can switch it off, "
                    "for the next connection.")
        return None

    def is_practice_target(self, host: str, port: int) -> bool:
        """True when host:port is the in-process practice exchange (its orders use the practice journal)."""
        return bool(self._practice_port) and port == self._practice_port and host in ("127.0.0.1", "localhost")

    def is_live_target(self) -> bool:
        """True when the form points at a live preset or a live default port."""
        return self.current_preset().live or self.port_spin.value() in LIVE_PORTS

    async def connect_with(self, params: ConnectionParams | None = None, *, one_off: bool = False) -> bool:
        """Fill the form from ``params`` (if given) and connect; show the outcome. True when connected.

        ``one_off``: the parameters came from the command line; they are not saved (``mark_one_off``).
        """
        if params is not None:
            self._fill_form(params)
        if one_off:
            self.mark_one_off()
        params = self.params()
        if self._busy:
            return False
        self._busy = True
        self._show_failure(None)
        self._logged_failure = None  # a new attempt: its failure, if any, is news again
        self._clear_session_info()
        self._refresh_buttons()
        self.save_settings()
        ok = False
        try:
            await self.broker.connect(params)
            ok = True
        except ConnectError as exc:
            self._show_failure(exc.failure)
        except BrokerError as exc:
            self._show_failure(ConnectionFailure(FailureKind.OTHER, exc.message, exc.advice))
        except OSError as exc:
            self._show_failure(
                ConnectionFailure(FailureKind.OTHER, f"Could not connect: {exc}.", "Check the host and port.")
            )
        finally:
            self._busy = False
            self._refresh_buttons()
        self.connect_finished.emit(ok)
        return ok

    def populated(self) -> bool:
        return self.broker.status.connected and self.server_version_label.text() != "—"

    def shutdown(self) -> None:
        self.save_settings()
        self.api_group.shutdown()
        for task in list(self._tasks):
            task.cancel()
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.broker.notice.disconnect(self._on_notice)

    # --- slots ------------------------------------------------------------------------------
    def _on_preset_changed(self, _index: int) -> None:
        preset = self.current_preset()
        practice = preset.key == PRACTICE
        self.preset_hint.setText(preset.hint)
        set_prop(self.preset_hint, "hint", "error" if preset.live else "muted")
        if practice:
            self.host_edit.setText("127.0.0.1")
            if self._practice_port:
                self.port_spin.setValue(self._practice_port)
        else:
            self.port_spin.setValue(preset.port)
        # The practice exchange runs in-process: its address is not the user's to choose.
        self.host_edit.setEnabled(not practice)
        self.port_spin.setEnabled(not practice)
        self._refresh_buttons()

    def _on_port_edited(self, _port: int) -> None:
        set_prop(self.port_spin, "tone", "down" if self.port_spin.value() in LIVE_PORTS else "")

    def _on_connect_clicked(self) -> None:
        # A plain slot, not a coroutine: the live confirmation runs a nested Qt loop, which must not
        # happen while an asyncio task is mid-step (asyncio refuses to enter a second task).
        if self.current_preset().key == PRACTICE:
            self.start_practice_requested.emit()
            return
        if self.is_live_target() and not self.confirm_live():
            self.append_message("Connection to a live port cancelled.")
            return
        self._spawn(self.connect_with())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asyncSlot()
    async def _on_disconnect_clicked(self) -> None:
        await self.broker.disconnect()

    @asyncSlot()
    async def _on_use_suggested_id(self) -> None:
        failure = self._last_failure
        if failure is None or failure.suggested_client_id is None:
            return
        self.client_id_spin.setValue(failure.suggested_client_id)
        await self.connect_with()

    def _on_account_chosen(self, _index: int) -> None:
        self._one_off.pop("account", None)  # the user's own choice: remember it
        account = self.account_combo.currentText().strip()
        if not account or account == self.broker.status.account or account not in self.broker.accounts:
            return
        try:
            self.broker.set_account(account)
        except BrokerError as exc:
            self.append_message(f"Could not switch account: {exc}")

    def confirm_live(self) -> bool:
        """Ask before connecting to a live account port (real money). Remembered when the user ticks the box."""
        if not self.settings.get("confirm/live_connect", True):
            return True
        box = QMessageBox(self)
        box.setObjectName("liveConfirmation")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Connect to a LIVE account?")
        box.setText(
            f"Port {self.port_spin.value()} is where TWS / IB Gateway serve a LIVE account.\n"
            "Orders sent from this panel will trade real money."
        )
        box.setInformativeText("Use a paper preset or the practice exchange to try things out.")
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Connect to live")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        dont_ask = QCheckBox("Don't ask again for this profile")
        box.setCheckBox(dont_ask)
        confirmed = box.exec() == QMessageBox.StandardButton.Yes
        if confirmed and dont_ask.isChecked():
            self.settings.set("confirm/live_connect", False)
        return confirmed

    # --- broker events ----------------------------------------------------------------------
    def _on_state_changed(self, status: ConnectionStatus) -> None:
        self.state_label.setText(_STATE_TEXT.get(status.state, status.state.value))
        if status.state is ConnectionState.RECONNECTING and status.next_retry_in is not None:
            self.state_label.setText(
                f"Reconnecting (attempt {status.reconnect_attempt}, next in {status.next_retry_in:.0f} s)…"
            )
        text, kind = classification_text(status)
        self.account_type_badge.setText(text)
        set_prop(self.account_type_badge, "badge", kind)
        reason = self._paper_reason_text(status)
        self.paper_reason_label.setText(reason)
        self.paper_reason_label.setVisible(bool(reason))  # no blank line under "Disconnected"
        self.readonly_badge.setVisible(status.readonly)
        if status.params is not None:
            self.endpoint_label.setText(
                f"{status.params.host}:{status.params.port}  (client ID {status.params.client_id})"
            )
        if status.connected:
            self.server_version_label.setText(str(status.server_version or "—"))
            if status.connection_time:
                self.connection_time_label.setText(connection_time_text(status.connection_time))
                self.connection_time_label.setToolTip(f"As TWS reported it: {status.connection_time}")
            elif self._connected_at is None:
                # TWS did not say (or the broker did not pass it on): our own clock is the next best.
                self._connected_at = datetime.now().astimezone()
                self.connection_time_label.setText(
                    f"{self._connected_at:%Y-%m-%d %H:%M:%S} {_zone_label(self._connected_at)}"
                )
            self.accounts_label.setText(", ".join(status.accounts) or "—")
            self._fill_accounts(status)
            self._show_failure(None)
            self._logged_failure = None
        elif status.state in (ConnectionState.DISCONNECTED, ConnectionState.CONNECTING):
            # Ended, or a new attempt: the last session's version / time / accounts are not this endpoint's.
            self._clear_session_info()
        # RECONNECTING keeps them: the same session is being restored (the banner says the data is stale).
        if status.failure is not None and status.state is ConnectionState.DISCONNECTED:
            self._show_failure(status.failure)
        self._refresh_buttons()

    def is_practice_session(self, status: ConnectionStatus) -> bool:
        """True when ``status`` is a session with the in-process practice exchange the app started."""
        params = status.params
        return (
            params is not None
            and self._practice_port is not None
            and params.port == self._practice_port
            and params.host in ("127.0.0.1", "localhost", "::1")
        )

    def _paper_reason_text(self, status: ConnectionStatus) -> str:
        # The broker judges by account prefix and port; for our own exchange the plain truth reads better
        # than "port 38229 is not a standard TWS / IB Gateway port".
        if self.is_practice_session(status) and status.state is not ConnectionState.DISCONNECTED:
            accounts = ", ".join(status.accounts)
            return f"practice exchange ({self._practice_where})" + (f": {accounts} are simulated paper accounts" if accounts else "")
        return status.paper_reason

    def _on_notice(self, notice: Notice) -> None:
        stamp = notice.time.astimezone().strftime("%H:%M:%S")
        advice = f" — {notice.advice}" if notice.advice else ""
        code = f"[{notice.code}] " if notice.code >= 0 else ""
        self.append_message(f"{stamp}  {notice.severity.upper():7} {code}{notice.message}{advice}", notice.severity)

    def append_message(self, line: str, severity: str = "info") -> None:
        colour = {"error": PALETTE["down"], "warning": PALETTE["warning"]}.get(severity)
        if colour is None:
            self.message_log.appendPlainText(line)
        else:
            # pre-wrap: keep the column spacing the plain lines have.
            self.message_log.appendHtml(f'<span style="color:{colour}; white-space:pre-wrap">{html.escape(line)}</span>')

    # --- helpers ----------------------------------------------------------------------------
    def _fill_form(self, params: ConnectionParams) -> None:
        practice_port = self._practice_port is not None and params.port == self._practice_port
        if practice_port:
            self.select_preset(PRACTICE)
        else:
            match = next((p for p in PRESETS if p.port == params.port and p.key != PRACTICE), None)
            if match is not None:
                self.select_preset(match.key)
            if self.current_preset().key == PRACTICE:
                self.select_preset(DEFAULT_PRESET)
            self.host_edit.setText(params.host)
            self.port_spin.setValue(params.port)
        self.client_id_spin.setValue(params.client_id)
        self.account_combo.setEditText(params.account)
        self.readonly_check.setChecked(params.readonly)
        self.auto_reconnect_check.setChecked(params.auto_reconnect)

    def _clear_session_info(self) -> None:
        self._connected_at = None
        self.connection_time_label.setToolTip("")
        for label in (self.server_version_label, self.connection_time_label, self.accounts_label):
            label.setText("—")

    def _fill_accounts(self, status: ConnectionStatus) -> None:
        combo = self.account_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(list(status.accounts))
        combo.setEditable(False)
        if status.account:
            combo.setCurrentText(status.account)
        combo.blockSignals(False)
        # A selector only makes sense with a choice to make.
        combo.setEnabled(len(status.accounts) > 1)

    def _show_failure(self, failure: ConnectionFailure | None) -> None:
        self._last_failure = failure
        if failure is None:
            self.failure_box.hide()
            return
        headline = failure_headline(failure.message)
        self.failure_label.setText(headline)
        detail = getattr(failure, "detail", "") or (failure.message if headline != failure.message.strip() else "")
        self.failure_label.setToolTip(detail)  # the technical cause, for whoever wants it
        self.advice_label.setText(failure.advice)
        if failure.suggested_client_id is not None:
            self.suggested_id_button.setText(f"Use client ID {failure.suggested_client_id} and connect")
            self.suggested_id_button.show()
        else:
            self.suggested_id_button.hide()
        self.failure_box.show()
        if failure == self._logged_failure:
            return  # already in the log: the failed attempt and the state change report the same failure
        self._logged_failure = failure
        # The full text and the technical cause (OS error ...) for the log file.
        log.info("connect failed: %s%s", failure.message, f" ({detail})" if detail else "")
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        self.append_message(f"{stamp}  {'ERROR':7} Could not connect: {headline}", "error")
        if failure.advice:
            self.append_message(f"          {failure.advice}")

    def _refresh_buttons(self) -> None:
        state = self.broker.status.state
        idle = state is ConnectionState.DISCONNECTED and not self._busy
        self.connect_button.setEnabled(idle)
        self.disconnect_button.setEnabled(not idle and not self._busy)
        for widget in (self.preset_combo, self.client_id_spin, self.readonly_check, self.auto_reconnect_check):
            widget.setEnabled(idle)
        practice = self.current_preset().key == PRACTICE
        self.host_edit.setEnabled(idle and not practice)
        self.port_spin.setEnabled(idle and not practice)
        if idle:
            self.account_combo.setEditable(True)
            self.account_combo.setEnabled(True)
        self.connect_button.setText("Start practice session" if practice else "Connect")
        self.practice_button.setVisible(idle and not practice)
