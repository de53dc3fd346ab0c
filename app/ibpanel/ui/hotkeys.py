"""Configurable hotkeys: buy / sell at bid / ask / mid, cancel last, flatten; and the dialog that sets them.

An order hotkey sends nothing by itself: it fills the ticket (the ticket's stock and quantity, a limit at
the bid, ask or mid, rounded to the tick away from paying more) through the ticket's public ``prefill`` and
then presses its Submit (``submit_clicked``): the same path as the button, so ``broker.check``, the
ticket's confirmation rules (always on a live account) and ``broker.place``. "Flatten" opens the flatten
confirmation. Keys are saved in the profile's settings (``hotkeys/<action>``); empty means none.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QKeySequenceEdit,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.draft import parse_number
from ibpanel.broker.models import Quote, Side
from ibpanel.broker.rules import TickTable, to_decimal

log = logging.getLogger(__name__)

#: (action, what it does, default key). Flatten has no default key: the trader chooses one on purpose.
HOTKEY_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("buy_bid", "Buy at bid", "Ctrl+Alt+Q"),
    ("buy_mid", "Buy at mid", "Ctrl+Alt+W"),
    ("buy_ask", "Buy at ask", "Ctrl+Alt+E"),
    ("sell_bid", "Sell at bid", "Ctrl+Alt+A"),
    ("sell_mid", "Sell at mid", "Ctrl+Alt+S"),
    ("sell_ask", "Sell at ask", "Ctrl+Alt+D"),
    ("cancel_last", "Cancel the last order", "Ctrl+Alt+X"),
    ("flatten", "Flatten the account (asks first)", ""),
)
#: Keys that are not configurable, listed in the dialog so the trader sees every key in use.
FIXED_KEYS: tuple[tuple[str, str], ...] = (
    ("F1 / F2", "Open the ticket on BUY / SELL (any tab)"),
    ("Ctrl+B / Ctrl+S", "Ticket: BUY / SELL side"),
    ("Ctrl+Enter", "Ticket: submit"),
    ("Ctrl+P", "Ticket: preview"),
    ("Escape", "Ticket: clear"),
)
LABELS = {action: label for action, label, _key in HOTKEY_ACTIONS}


def hotkey_price(side: Side, where: str, quote: Quote | None, ticks: TickTable) -> Decimal | None:
    """The limit for "buy / sell at bid / ask / mid"; the mid is rounded away from paying more."""
    if quote is None:
        return None
    bid, ask = quote.bid, quote.ask
    if where == "bid":
        value = bid
    elif where == "ask":
        value = ask
    else:
        value = (bid + ask) / 2 if bid and ask and bid > 0 and ask > 0 else None
    if value is None or value <= 0:
        return None
    return ticks.round(to_decimal(value), "down" if side is Side.BUY else "up")


class Hotkeys:
    """The window's configurable shortcuts (application-wide, so they work in floating docks too)."""

    def __init__(self, window, menu=None) -> None:
        self.window = window
        self.settings = window.settings
        self.shortcuts: dict[str, QShortcut] = {}
        self.message = ""  # what the last hotkey did or why it did nothing
        self.dialog: HotkeysDialog | None = None
        self._shut_down = False
        self._tasks: set[asyncio.Task] = set()
        self.apply()
        if menu is not None:
            self.menu_action = menu.addAction("Hotkeys…", self.edit)

    def edit(self) -> HotkeysDialog:
        """Open the settings dialog (every key in use listed; the configurable ones editable)."""
        self.dialog = HotkeysDialog(self, self.window)
        self.dialog.open()
        return self.dialog

    def key(self, action: str) -> str:
        default = next(k for a, _label, k in HOTKEY_ACTIONS if a == action)
        return str(self.settings.get(f"hotkeys/{action}", default) or "")

    def keys(self) -> dict[str, str]:
        return {action: self.key(action) for action, _label, _key in HOTKEY_ACTIONS}

    def set_keys(self, keys: dict[str, str]) -> None:
        for action, key in keys.items():
            self.settings.set(f"hotkeys/{action}", key)
        self.apply()

    def apply(self) -> None:
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(False)
            shortcut.deleteLater()
        self.shortcuts = {}
        for action, key in self.keys().items():
            if not key:
                continue
            shortcut = QShortcut(QKeySequence(key), self.window)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(lambda action=action: self.trigger(action))
            self.shortcuts[action] = shortcut

    def _say(self, text: str) -> None:
        self.message = text
        if not self._shut_down:  # a late answer must not start the status bar's timer on a closed window
            self.window.statusBar().showMessage(text, 10000)

    def trigger(self, action: str) -> None:
        if action == "flatten":
            positions = self.window.tabs.get("positions")
            if hasattr(positions, "flatten"):
                positions.flatten()
            return
        if action == "cancel_last":
            self._spawn(self._cancel_last())
            return
        side, where = action.split("_")
        self._spawn(self._order(Side(side.upper()), where))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _order(self, side: Side, where: str) -> None:
        ticket = self.window.tabs.get("ticket")
        draft = getattr(ticket, "draft", None)
        instrument = getattr(draft, "instrument", None)
        if instrument is None:
            self._say("Hotkey: type a stock in the ticket first; nothing was sent.")
            return
        broker = self.window.broker
        try:
            quote = broker.quote(instrument) or await broker.snapshot(instrument)
            price = hotkey_price(side, where, quote, await broker.tick_table(instrument))
        except Exception as exc:  # noqa: BLE001 - said; nothing sent
            self._say(f"Hotkey: no {where} price for {instrument.display} ({exc}); nothing was sent.")
            return
        if price is None:
            self._say(f"Hotkey: no {where} price for {instrument.display}; nothing was sent.")
            return
        try:  # the ticket's quantity; empty: the ticket's default (one board lot), shown before it goes
            quantity = parse_number(draft.quantity, draft.number_format) if draft.quantity.strip() else None
        except ValueError:
            self._say("Hotkey: the ticket's quantity is not a number; nothing was sent.")
            return
        request = {"instrument": instrument, "side": side.value, "order_type": "LMT", "limit_price": price,
                   "quantity": quantity,
                   "tif": draft.tif, "outside_rth": draft.outside_rth, "account": draft.account}
        self.window.open_ticket(request)  # shows exactly what is sent, then the ticket's own Submit
        ticket.submit_clicked()
        self._say(f"Hotkey: {LABELS[f'{side.value.lower()}_{where}']} {instrument.display} at {price}")

    async def _cancel_last(self) -> None:
        broker = self.window.broker
        ticket = self.window.tabs.get("ticket")
        last = getattr(ticket, "last_order", None)
        live = [o for o in broker.open_orders() if not o.status.is_done]
        if last is not None:
            current = broker.order(last.order_id)
            last = current if current is not None and not current.status.is_done else None
        target = last or max(live, key=lambda o: o.order_id, default=None)
        if target is None:
            self._say("Hotkey: no working order to cancel.")
            return
        try:
            await broker.cancel(target.order_id)
            self._say(f"Hotkey: order {target.order_id} cancelled.")
        except Exception as exc:  # noqa: BLE001 - said
            self._say(f"Hotkey: order {target.order_id} could not be cancelled: {exc}")

    def shutdown(self) -> None:
        self._shut_down = True
        for task in list(self._tasks):
            task.cancel()
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(False)
        self.window.statusBar().clearMessage()  # stops the message's timer with the window


class HotkeysDialog(QDialog):
    """Every key in use: the configurable ones (editable) and the fixed ones; refuses a key used twice."""

    def __init__(self, hotkeys: Hotkeys, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hotkeysDialog")
        self.setWindowTitle("Hotkeys")
        self.hotkeys = hotkeys
        current = hotkeys.keys()
        self.table = QTableWidget(len(HOTKEY_ACTIONS) + len(FIXED_KEYS), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Key"])
        self.table.setAccessibleName("Hotkeys")
        self.table.horizontalHeader().setStretchLastSection(True)
        self.edits: dict[str, QKeySequenceEdit] = {}
        for row, (action, label, _default) in enumerate(HOTKEY_ACTIONS):
            self.table.setItem(row, 0, QTableWidgetItem(label))
            edit = QKeySequenceEdit(QKeySequence(current[action]))
            edit.setAccessibleName(f"Key for {label}")
            self.table.setCellWidget(row, 1, edit)
            self.edits[action] = edit
        for offset, (key, label) in enumerate(FIXED_KEYS):
            row = len(HOTKEY_ACTIONS) + offset
            self.table.setItem(row, 0, QTableWidgetItem(label))
            item = QTableWidgetItem(f"{key} (fixed)")
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 1, item)
        self.table.resizeColumnsToContents()
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Order hotkeys fill the ticket and submit it: confirmation as on the ticket."))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def set_key(self, action: str, key: str) -> None:
        self.edits[action].setKeySequence(QKeySequence(key))

    def chosen(self) -> dict[str, str]:
        return {a: e.keySequence().toString(QKeySequence.SequenceFormat.PortableText) for a, e in self.edits.items()}

    def restore_defaults(self) -> None:
        for action, _label, key in HOTKEY_ACTIONS:
            self.set_key(action, key)

    def save(self) -> bool:
        keys = self.chosen()
        fixed = {k.strip() for text, _l in FIXED_KEYS for k in text.split("/")}
        seen: dict[str, str] = {}
        for action, key in keys.items():
            if not key:
                continue
            if key in fixed:
                self.error_label.setText(f"{key} is already a fixed key: choose another for {LABELS[action]}.")
                return False
            if key in seen:
                self.error_label.setText(f"{key} is set for both {LABELS[seen[key]]} and {LABELS[action]}: "
                                         "give each its own key.")
                return False
            seen[key] = action
        self.hotkeys.set_keys(keys)
        self.accept()
        return True
