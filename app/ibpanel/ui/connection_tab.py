"""Connection tab: where the panel connects to TWS / IB Gateway or the practice exchange.

Over 500 lines because the form, the live-port confirmation, the failure display and the session details
all follow one ConnectionStatus; its texts (connection_text.py), message log and REST API group are apart.

Presets fill host and port (the user may override either); Connect goes through ``Broker.connect``
and a failure is shown as one plain sentence, what to do, and a one-click practice session.
Connecting to a live port asks first. ``start_practice_requested`` asks the app to start the
in-process practice exchange; the app then calls ``set_practice_port`` and ``connect_with``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

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
    QPushButton,
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
from ibpanel.hosts import LOOPBACK_NAMES
from ibpanel.ui.api_group import ApiGroup
from ibpanel.ui.connection_text import (  # noqa: F401 - PRESETS_BY_KEY, parse_tws_time: the tab's public names
    DEFAULT_PRESET,
    LIVE_PORTS,
    PRACTICE,
    PRESETS,
    PRESETS_BY_KEY,
    SETUP_HELP,
    STATE_TEXT,
    Preset,
    classification_text,
    connection_time_text,
    failure_headline,
    parse_tws_time,
    zone_label,
)
from ibpanel.ui.message_log import MessageLog
from ibpanel.ui.settings import Settings
from ibpanel.ui.style import set_prop

log = logging.getLogger(__name__)


class ConnectionTab(QWidget):
    TAB_NAME = "connection"

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
        self.message_log = MessageLog()
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
        self.state_label.setText(STATE_TEXT.get(status.state, status.state.value))
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
                    f"{self._connected_at:%Y-%m-%d %H:%M:%S} {zone_label(self._connected_at)}"
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
            and params.host in LOOPBACK_NAMES  # these names exactly: another loopback address may be a real TWS
        )

    def _paper_reason_text(self, status: ConnectionStatus) -> str:
        # The broker judges by account prefix and port; for our own exchange the plain truth reads better
        # than "port 38229 is not a standard TWS / IB Gateway port".
        if self.is_practice_session(status) and status.state is not ConnectionState.DISCONNECTED:
            accounts = ", ".join(status.accounts)
            return f"practice exchange ({self._practice_where})" + (f": {accounts} are simulated paper accounts" if accounts else "")
        return status.paper_reason

    def _on_notice(self, notice: Notice) -> None:
        self.message_log.add_notice(notice)

    def append_message(self, line: str, severity: str = "info") -> None:
        self.message_log.append(line, severity)

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
