"""The Alerts panel: add / remove / re-arm alerts, the list with their state, and the notifications.

Rules live in ``broker.alerts`` (Qt-free); this panel feeds them the broker's streamed quotes and order
updates, keeps the quotes of alerted symbols streaming (reference-counted subscriptions), saves the list in
the profile's settings (``alerts/list``) and shows each firing as a desktop notification (the system tray
when there is one) or, without a tray, as a notice in the window.
"""

from __future__ import annotations

import asyncio
import logging
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ibpanel import paths
from ibpanel.broker.alerts import Alert, AlertBook, AlertHit, AlertKind, parse_threshold
from ibpanel.broker.models import ConnectionStatus, OrderView, Quote

log = logging.getLogger(__name__)
SETTINGS_KEY = "alerts/list"


class Notifier:
    """Desktop notification through the system tray; ``None`` tray means the in-window notice only."""

    def __init__(self, parent: QWidget, notice: QLabel) -> None:
        self.notice = notice
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            icon = paths.resource_path("icons", "ibpanel-64.png")
            self.tray = QSystemTrayIcon(QIcon(str(icon)) if icon.exists() else QIcon(), parent)
            self.tray.setToolTip("IB Panel alerts")
            self.tray.show()
        self.shown: list[str] = []  # every message shown, newest last

    def show(self, title: str, message: str) -> None:
        self.shown.append(message)
        if self.tray is not None and self.tray.isVisible():
            self.tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, 10_000)
        self.notice.setText(f"🔔 {message}")
        self.notice.show()

    def close(self) -> None:
        if self.tray is not None:
            self.tray.hide()


class AlertsPanel(QWidget):
    TAB_NAME = "alerts"
    TITLE = "Alerts"

    alert_fired = Signal(object)  # AlertHit

    def __init__(self, broker, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.book = AlertBook.from_json(settings.get_json(SETTINGS_KEY, []))
        self._watched: dict[str, object] = {}  # symbol -> Instrument subscribed for alerts
        self._tasks: set[asyncio.Task] = set()
        self.hits: list[AlertHit] = []

        self.symbol_edit = QLineEdit()
        self.symbol_edit.setAccessibleName("Alert symbol")
        self.symbol_edit.setPlaceholderText("Symbol, e.g. AAPL or 0700.HK")
        self.kind_combo = QComboBox()
        self.kind_combo.setAccessibleName("Alert kind")
        for kind in AlertKind:
            self.kind_combo.addItem(kind.label.capitalize(), kind.value)
        self.threshold_edit = QLineEdit()
        self.threshold_edit.setAccessibleName("Alert threshold")
        self.threshold_edit.setPlaceholderText("Price, % or order id")
        self.add_button = QPushButton("Add alert")
        self.add_button.setAccessibleName("Add alert")
        self.add_button.clicked.connect(self.add_clicked)
        self.message_label = QLabel("")
        self.message_label.setObjectName("alertsMessage")
        self.notice_label = QLabel("")
        self.notice_label.setObjectName("alertNotice")
        self.notice_label.setWordWrap(True)
        self.notice_label.hide()
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Alert", "State", "Id"])
        self.table.setColumnHidden(2, True)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAccessibleName("Alerts")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove the selected alerts")
        self.remove_button.clicked.connect(self.remove_selected)
        self.rearm_button = QPushButton("Re-arm")
        self.rearm_button.setAccessibleName("Re-arm the selected alerts")
        self.rearm_button.clicked.connect(self.rearm_selected)

        form = QHBoxLayout()
        for widget in (self.symbol_edit, self.kind_combo, self.threshold_edit, self.add_button):
            form.addWidget(widget)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message_label, 1)
        buttons.addWidget(self.rearm_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.notice_label)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.notifier = Notifier(self, self.notice_label)

        broker.quotes_updated.connect(self._on_quotes)
        broker.order_changed.connect(self._on_order)
        broker.state_changed.connect(self._on_state_changed)
        self._render()
        self._on_state_changed(broker.status)

    # --- editing ------------------------------------------------------------------------------
    def kind(self) -> AlertKind:
        return AlertKind(self.kind_combo.currentData())

    def add_clicked(self) -> None:
        self._spawn(self.add_alert(self.kind(), self.symbol_edit.text(), self.threshold_edit.text()))

    async def add_alert(self, kind: AlertKind, symbol: str, threshold: str) -> Alert | None:
        """Add an alert from typed text; a bad entry is explained and nothing is added."""
        try:
            if kind is AlertKind.FILLED:
                text = threshold.strip()
                order_id = int(text) if text else None
                alert = self.book.add(kind, order_id=order_id)
            else:
                value = parse_threshold(threshold, kind)
                if not symbol.strip():
                    raise ValueError("type the symbol to watch, e.g. AAPL or 0700.HK")
                instrument = await self.broker.resolve(symbol.strip())
                alert = self.book.add(kind, instrument.display, value)
                await self._watch(instrument)
        except Exception as exc:  # noqa: BLE001 - shown to the trader; nothing added
            self.message_label.setText(f"Not added: {exc}")
            return None
        self.message_label.setText(f"Added: {alert.describe()}")
        self._changed()
        return alert

    def selected_ids(self) -> list[str]:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return [self.table.item(r, 2).text() for r in sorted(rows)]

    def remove_selected(self) -> None:
        for alert_id in self.selected_ids():
            self.book.remove(alert_id)
        self._changed()

    def rearm_selected(self) -> None:
        for alert_id in self.selected_ids():
            self.book.rearm(alert_id)
        self._changed()

    def _changed(self) -> None:
        self.settings.set_json(SETTINGS_KEY, self.book.to_json())
        self._render()

    def _render(self) -> None:
        alerts = self.book.alerts()
        self.table.setRowCount(len(alerts))
        for row, alert in enumerate(alerts):
            state = "armed" if alert.armed else time.strftime("fired %H:%M:%S", time.localtime(alert.triggered))
            if alert.kind is AlertKind.FILLED and alert.order_id is None:
                state = "armed (every fill)"
            for column, text in enumerate((alert.describe(), state, alert.id)):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, column, item)

    # --- feeds --------------------------------------------------------------------------------
    def _on_quotes(self, quotes: tuple[Quote, ...]) -> None:
        hits = [hit for quote in quotes for hit in self.book.on_quote(quote)]
        self._fired(hits)

    def _on_order(self, order: OrderView) -> None:
        self._fired(self.book.on_order(order))

    def _fired(self, hits: list[AlertHit]) -> None:
        if not hits:
            return
        for hit in hits:
            self.hits.append(hit)
            self.notifier.show("IB Panel alert", hit.message)
            self.alert_fired.emit(hit)
        self._changed()

    def _on_state_changed(self, status: ConnectionStatus) -> None:
        if not status.connected:
            self._watched.clear()  # the broker drops its subscriptions with the connection
            return
        for symbol in self.book.symbols() - set(self._watched):
            self._spawn(self._resolve_and_watch(symbol))

    async def _resolve_and_watch(self, symbol: str) -> None:
        try:
            await self._watch(await self.broker.resolve(symbol))
        except Exception:  # noqa: BLE001 - the alert stays; shown as not watched
            log.warning("alerts: cannot stream %s", symbol, exc_info=True)
            self.message_label.setText(f"Cannot stream quotes for {symbol}: its alerts wait for a connection.")

    async def _watch(self, instrument) -> None:
        if instrument.display in self._watched:
            return
        self._watched[instrument.display] = instrument
        await self.broker.subscribe(instrument)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- tab protocol -------------------------------------------------------------------------
    def populated(self) -> bool:
        return True

    def shutdown(self) -> None:
        self.broker.quotes_updated.disconnect(self._on_quotes)
        self.broker.order_changed.disconnect(self._on_order)
        self.broker.state_changed.disconnect(self._on_state_changed)
        for task in list(self._tasks):
            task.cancel()
        for instrument in self._watched.values():
            try:
                self.broker.unsubscribe(instrument)
            except Exception:  # noqa: BLE001 - shutting down
                pass
        self._watched.clear()
        self.notifier.close()
        self.settings.set_json(SETTINGS_KEY, self.book.to_json())

