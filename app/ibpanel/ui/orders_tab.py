"""Orders tab: open orders (cancel, cancel all, modify), completed orders and fills with commissions.

Over 500 lines because the three order lists, their actions (cancel, modify, OCA) and the modify dialog
share one status line and one broker connection.

Confirmations and the modify dialog are opened with ``open()`` (window-modal, no nested event
loop): a nested ``exec()`` inside an asyncio task would re-enter the qasync loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.draft import (
    step_price,
    step_quantity,
)
from ibpanel.broker.exceptions import BrokerError, OrderRejected
from ibpanel.broker.models import ConnectionState, ConnectionStatus, Fill, OrderView
from ibpanel.broker.modify_draft import ModifyDraft
from ibpanel.ui import formatting as fmt
from ibpanel.ui.table_model import (
    Column,
    ColumnKind,
    KeyedTableModel,
)
from ibpanel.ui.table_view import make_table_view, selected_positions
from ibpanel.ui.tasks import TaskSet
from ibpanel.ui.ticket_fields import SteppingLineEdit, number_format_of

log = logging.getLogger(__name__)


def order_key(order: OrderView):
    """Orders are identified by (clientId, orderId); orders of other sessions (orderId 0) by permId."""
    if order.order_id:
        return ("order", order.client_id, order.order_id)
    return ("perm", order.perm_id)


def completed_key(order: OrderView):
    """Finished orders by permId, which every order TWS saw has for good: after a restart their orderId comes
    from the journal or an execution without the clientId that would tell two sessions' order 9 apart."""
    return ("perm", order.perm_id) if order.perm_id else order_key(order)


def _order_time(order: OrderView):
    return order.updated_at or order.created_at


def order_columns(*, completed: bool = False, placed_at=None) -> tuple[Column, ...]:
    """``placed_at(order)``: when the order was really placed (the journal knows it for the panel's own orders,
    also from an earlier day), else None: then the time the broker first saw it."""

    def open_time(order: OrderView):
        placed = placed_at(order) if placed_at is not None else None
        return placed or order.created_at or order.updated_at

    return (
        Column("time", "Time", ColumnKind.TIME, value=_order_time if completed else open_time,
               tooltip="Local time; the date is shown when it is not today"),
        # 0 is "not known": an order another program placed, finished before this session (no journal, no fill)
        Column("order_id", "Id", ColumnKind.INT, display=lambda v, _o: str(v) if v else ""),
        Column("group", "Group", value=order_group,
               tooltip="↳ 12: attached to order 12 (bracket; cancelling 12 cancels it). OCA name: one-cancels-all"),
        Column("symbol", "Symbol", value=lambda o: o.instrument.display),
        Column("side", "Side", colour=lambda o: fmt_side_colour(o.side.value)),
        Column("quantity", "Quantity", ColumnKind.QTY),
        Column("order_type", "Type", value=lambda o: f"{o.order_type} {o.trailing}" if o.trailing else o.order_type),
        Column("limit_price", "Limit", ColumnKind.PRICE),
        Column("stop_price", "Stop", ColumnKind.PRICE),
        Column("tif", "TIF"),
        Column("status", "Status", tooltip="IB's order status; the message column says why when refused",
               widest="PendingCancel"),  # the longest status: a row moving to Cancelled is never cut off
        Column("filled", "Filled", ColumnKind.QTY),
        Column("remaining", "Remaining", ColumnKind.QTY),
        Column("avg_fill_price", "Avg fill", ColumnKind.PRICE),
        Column("account", "Account"),
        Column("message", "Message"),
    )


def order_group(order: OrderView) -> str:
    """The Group column: a bracket child points at its entry order; an OCA order names its group."""
    parts = [f"↳ {order.parent_id}"] if order.parent_id else []
    if order.oca_group:
        parts.append(f"OCA {order.oca_group}")
    return " ".join(parts)


def fmt_side_colour(side: str):
    from ibpanel.ui.table_model import NEGATIVE_COLOUR, POSITIVE_COLOUR

    return POSITIVE_COLOUR if side == "BUY" else NEGATIVE_COLOUR


FILL_COLUMNS = (
    Column("time", "Time", ColumnKind.TIME),
    Column("exec_id", "Exec id"),
    Column("order_id", "Order", ColumnKind.INT),
    Column("symbol", "Symbol", value=lambda f: f.instrument.display),
    Column("side", "Side", colour=lambda f: fmt_side_colour(f.side.value)),
    Column("quantity", "Quantity", ColumnKind.QTY),
    Column("price", "Price", ColumnKind.PRICE),
    Column("value", "Value", ColumnKind.MONEY, value=lambda f: float(f.quantity) * f.price),
    Column("commission", "Commission", ColumnKind.MONEY,
           display=lambda v, f: "" if v is None else f"{v:,.2f} {f.commission_currency or ''}".strip()),
    Column("realized_pnl", "Realized P&L", ColumnKind.PNL, coloured=True),
    Column("currency", "Currency", value=lambda f: f.instrument.currency),
    Column("account", "Account"),
)


MODIFY_MESSAGE_MIN_WIDTH = 340  # wide enough that a refusal wraps onto a few lines, not a dozen


class ModifyOrderDialog(QDialog):
    """Change the price and / or quantity of a working order. The broker validates; issues show here."""

    def __init__(self, order: OrderView, broker, tasks: TaskSet, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Modify order {order.order_id}")
        self.setObjectName("modifyOrderDialog")
        self.order = order
        self.broker = broker
        self._tasks = tasks
        form = QFormLayout(self)
        form.addRow("Order", QLabel(
            f"{order.side.value} {fmt.format_qty(order.quantity)} {order.instrument.display} {order.order_type}"
        ))
        # The boxes show a Qt-free ModifyDraft and write the whole of it back on every edit: what the
        # boxes show is what is sent (no hidden value), read by the ticket's own parsers.
        inst, self.number_format = order.instrument, number_format_of(self.locale())
        self.draft = ModifyDraft.of(order, self.number_format, lambda price: fmt.price_decimals(inst, price))
        self.quantity = SteppingLineEdit(lambda t, n: step_quantity(t, n, inst.board_lot, self.number_format))
        self.quantity.setText(self.draft.quantity)
        form.addRow("Quantity", self.quantity)
        self.limit_price = SteppingLineEdit(lambda t, n: step_price(t, n, inst.market, inst.symbol, self.number_format))
        self.stop_price = SteppingLineEdit(lambda t, n: step_price(t, n, inst.market, inst.symbol, self.number_format))
        for name, object_name, edit, field in (("Limit price", "limitPrice", self.limit_price, "limit_price"),
                                               ("Stop price", "stopPrice", self.stop_price, "stop_price")):
            edit.setObjectName(object_name)
            edit.setAccessibleName(name)
            if field in self.draft.editable():
                edit.setText(getattr(self.draft, field))
                form.addRow(name, edit)
        self.quantity.setObjectName("quantity")
        self.quantity.setAccessibleName("Quantity")
        for edit in (self.quantity, self.limit_price, self.stop_price):
            edit.textChanged.connect(self._write_draft)
        self.message = QLabel("")
        self.message.setObjectName("modifyMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #cf222e;")
        form.addRow(self.message)
        # The dialog grows with its message (a tick refusal names both valid prices): never a clipped line.
        form.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self.message.setMinimumWidth(MODIFY_MESSAGE_MIN_WIDTH)  # the layout's minimum (it sets the dialog's)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        for button in self.buttons.buttons():
            button.setAccessibleName(f"{button.text().replace('&', '')} modification")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def show_message(self, text: str) -> None:
        """Show why the change is refused; the dialog grows to show all of it."""
        self.message.setText(text)
        self.layout().activate()
        self.adjustSize()

    def _write_draft(self, _text: str = "") -> None:
        self.draft = self.draft.with_text(self.quantity.text(), self.limit_price.text(), self.stop_price.text())

    def changes(self) -> dict:
        self._write_draft()
        return self.draft.changes()

    def unreadable_fields(self) -> list[str]:
        """Boxes whose text is not a number: refused rather than sent with another value."""
        self._write_draft()
        return self.draft.problems()

    def submit(self) -> None:
        bad = self.unreadable_fields()
        if bad:
            self.show_message(" ".join(bad))
            return
        changes = self.changes()
        if not changes:
            self.show_message("Nothing changed: edit the price or the quantity, or press Cancel.")
            return
        self.buttons.setEnabled(False)
        self._tasks.spawn(self._send(changes))

    async def _send(self, changes: dict) -> None:
        try:
            await self.broker.modify(self.order.order_id, **changes)
        except OrderRejected as exc:
            self.show_message("\n".join(issue.message for issue in exc.issues) or exc.message)
        except BrokerError as exc:
            self.show_message(str(exc))
        else:
            self.accept()  # closes (and deletes) the dialog
            return
        self.buttons.setEnabled(True)


class OrdersTab(QWidget):
    """Open orders, completed orders and fills of this TWS session."""

    TAB_NAME = "orders"

    message_changed = Signal(str)

    def __init__(self, broker, settings, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.tasks = TaskSet(on_error=lambda exc: self._say(f"Failed: {exc}"))
        self._placed_at: dict[str, object] = {}  # journal_id -> created_at from the journal (cached: no SQL per paint)
        self.open_model = KeyedTableModel(order_columns(placed_at=self.placed_at), key=order_key, parent=self)
        self.completed_model = KeyedTableModel(order_columns(completed=True), key=completed_key, parent=self)
        self.fills_model = KeyedTableModel(FILL_COLUMNS, key=lambda f: f.exec_id, parent=self)
        self.open_view = make_table_view(self.open_model, "orders_open", settings, self)
        newest_first = (0, Qt.SortOrder.DescendingOrder)
        self.completed_view = make_table_view(self.completed_model, "orders_completed", settings, self, newest_first)
        self.fills_view = make_table_view(self.fills_model, "orders_fills", settings, self, newest_first)
        self.open_view.doubleClicked.connect(lambda index: self.modify_selected())
        self.confirm_box: QMessageBox | None = None
        self.modify_dialog: ModifyOrderDialog | None = None
        # The message line's text holds while this says so; checked on every order change and selection.
        self._message_holds: Callable[[], bool] | None = None
        self._message_then = ""  # what replaces it once it no longer holds ("" clears the line)

        self.cancel_button = QPushButton("Cancel order")
        self.cancel_button.setToolTip("Cancel the selected open orders (Delete)")
        self.cancel_button.setShortcut(Qt.Key.Key_Delete)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.cancel_all_button = QPushButton("Cancel all…")
        self.cancel_all_button.setToolTip("Global cancel: every open order on this TWS, after a confirmation")
        self.cancel_all_button.setStyleSheet("color: #cf222e;")
        self.cancel_all_button.clicked.connect(self.cancel_all_clicked)
        self.modify_button = QPushButton("Modify…")
        self.modify_button.setToolTip("Change the price or quantity of the selected open order (double-click)")
        self.modify_button.clicked.connect(self.modify_selected)
        self.oca_button = QPushButton("Put in OCA group")
        self.oca_button.setObjectName("ocaButton")
        self.oca_button.setToolTip("One-cancels-all: when one of the selected orders fills, IB cancels the others "
                                   "(orders of one account)")
        self.oca_button.clicked.connect(lambda: self.put_in_oca_selected())
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._export_clicked)
        self.message = QLabel("")
        self.message.setObjectName("ordersMessage")
        self.message.setWordWrap(True)
        self.stale_label = QLabel("")
        self.stale_label.setStyleSheet("color: #9a6700; font-weight: bold;")

        for widget, name in ((self.cancel_button, "Cancel the selected orders"), (self.modify_button, "Modify order"),
                             (self.cancel_all_button, "Cancel all orders"), (self.export_button, "Export orders as CSV"),
                             (self.oca_button, "Put the selected orders in an OCA group"),
                             (self.open_view, "Open orders"), (self.completed_view, "Completed orders"),
                             (self.fills_view, "Fills")):
            widget.setAccessibleName(name)
        buttons = QHBoxLayout()
        for button in (self.cancel_button, self.modify_button, self.oca_button, self.cancel_all_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Order lists")
        self.tabs.addTab(self.open_view, "Open")
        self.tabs.addTab(self.completed_view, "Completed")
        self.tabs.addTab(self.fills_view, "Fills")
        layout = QVBoxLayout(self)
        layout.addWidget(self.stale_label)
        layout.addLayout(buttons)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)

        self.open_view.selectionModel().selectionChanged.connect(lambda *_: self._recheck_message())
        broker.order_changed.connect(self._on_order_changed)
        broker.fill_added.connect(self._on_fill_added)
        broker.state_changed.connect(self._on_state_changed)
        self._on_state_changed(broker.status)
        if broker.status.connected:
            self.reload()

    # --- data ---------------------------------------------------------------------------------
    def placed_at(self, order: OrderView):
        """When the journal says the order was placed (a GTC order from yesterday shows yesterday's date)."""
        if not order.journal_id:
            return None
        if order.journal_id not in self._placed_at:
            try:
                entry = self.broker.journal.entry(order.journal_id)
            except Exception:  # noqa: BLE001 - a journal read error must not break painting the table
                log.debug("journal lookup for %s failed", order.journal_id, exc_info=True)
                entry = None
            self._placed_at[order.journal_id] = entry.created_at if entry is not None else None
        return self._placed_at[order.journal_id]

    def _show_account_column(self, accounts: tuple[str, ...]) -> None:
        """The Account column only matters when the login manages more than one account."""
        hidden = len(accounts) <= 1
        for view, model in ((self.open_view, self.open_model), (self.completed_view, self.completed_model),
                            (self.fills_view, self.fills_model)):
            column = next(i for i, c in enumerate(model.columns) if c.key == "account")
            view.setColumnHidden(column, hidden)

    def reload(self) -> None:
        """Take the broker's current lists (after connect / reconnect)."""
        self.open_model.replace_all(o for o in self.broker.open_orders() if not o.status.is_done)
        done = {completed_key(o): o for o in self.broker.completed_orders()}
        for order in self.broker.open_orders():
            if order.status.is_done:
                done[completed_key(order)] = order
        self.completed_model.replace_all(done.values())
        self.fills_model.replace_all(self.broker.fills())
        self._update_buttons()

    def _on_order_changed(self, order: OrderView) -> None:
        key = order_key(order)
        if order.status.is_done:
            self.open_model.remove(key)
            self.completed_model.upsert(order)
        else:
            self.open_model.upsert(order)
        self._update_buttons()
        self._recheck_message()

    def _on_fill_added(self, fill: Fill) -> None:
        self.fills_model.upsert(fill)

    def _on_state_changed(self, status: ConnectionStatus) -> None:
        stale = status.state is not ConnectionState.CONNECTED
        for model in (self.open_model, self.completed_model, self.fills_model):
            model.set_stale(stale)
        if stale and (len(self.open_model) or status.state is ConnectionState.DEGRADED):
            self.stale_label.setText(
                "Stale: the connection is down or degraded; order states shown are the last received."
            )
        else:
            self.stale_label.setText("")
        self.stale_label.setVisible(bool(self.stale_label.text()))
        if status.state is ConnectionState.CONNECTED and not getattr(self, "_was_connected", False):
            self.reload()
        self._was_connected = status.state is ConnectionState.CONNECTED
        if status.accounts:
            self._show_account_column(tuple(status.accounts))
        self._update_buttons()

    def _update_buttons(self) -> None:
        live = self.broker.status.connected and not self.broker.status.readonly
        self.cancel_button.setEnabled(live and len(self.open_model) > 0)
        self.modify_button.setEnabled(live and len(self.open_model) > 0)
        self.oca_button.setEnabled(live and len(self.open_model) > 1)
        self.cancel_all_button.setEnabled(live)

    def _say(self, text: str, *, holds: Callable[[], bool] | None = None, then: str = "") -> None:
        """Show ``text``; with ``holds``, only while it returns True (then ``then`` replaces it)."""
        self._message_holds, self._message_then = holds, then
        self.message.setText(text)
        self.message_changed.emit(text)
        self._recheck_message()

    def _recheck_message(self) -> None:
        holds = self._message_holds
        if holds is not None and not holds():
            self._say(self._message_then, holds=self._while_open_orders_unchanged() if self._message_then else None)

    def _while_open_orders_unchanged(self) -> Callable[[], bool]:
        """A check that holds until an order opens or leaves the Open list (the line then describes the past)."""
        keys = set(self.open_model.keys())
        return lambda: set(self.open_model.keys()) == keys

    # --- actions ------------------------------------------------------------------------------
    def selected_open_orders(self) -> list[OrderView]:
        return [self.open_model.row(i) for i in selected_positions(self.open_view)]

    def select_order(self, order_id: int) -> bool:
        for position, order in enumerate(self.open_model.rows()):
            if order.order_id == order_id:
                self.open_view.selectRow(position)
                return True
        return False

    def cancel_selected(self) -> None:
        orders = self.selected_open_orders()
        if not orders:
            self._say("Select an open order to cancel.", holds=lambda: not self.selected_open_orders())
            return
        for order in orders:
            self.tasks.spawn(self._cancel(order))

    def put_in_oca_selected(self, group: str = "") -> None:
        """Group the selected working orders one-cancels-all (named after the lowest order id unless given)."""
        orders = self.selected_open_orders()
        if len(orders) < 2:
            self._say("Select two or more open orders of one account to put in an OCA group.",
                      holds=lambda: len(self.selected_open_orders()) < 2)
            return
        if len({o.account for o in orders}) > 1:
            self._say("IB groups orders of one account only: select orders of a single account.")
            return
        name = group or f"OCA-{min(o.order_id for o in orders)}"
        self.tasks.spawn(self._put_in_oca([o.order_id for o in orders], name))

    async def _put_in_oca(self, order_ids: list[int], group: str) -> None:
        try:
            views = await self.broker.put_in_oca(order_ids, group)
        except BrokerError as exc:
            self._say(f"OCA group not set: {exc}")
            return
        for view in views:
            self._on_order_changed(view)
        self._say(f"Orders {', '.join(map(str, order_ids))} sent as OCA group {group}: one fill cancels the others.")

    async def _cancel(self, order: OrderView) -> None:
        self._say(f"Cancelling order {order.order_id}…")
        try:
            result = await self.broker.cancel(order.order_id)
        except BrokerError as exc:
            self._say(f"Order {order.order_id}: {exc}")
            return
        self._on_order_changed(result)
        self._say(f"Order {order.order_id} {result.status.value.lower()}.", holds=self._while_open_orders_unchanged())

    def cancel_all_clicked(self) -> None:
        count = len(self.open_model)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Cancel all orders",
            f"Cancel every open order on this TWS ({count} shown here, orders of other programs too)?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("cancelAllConfirm")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(lambda _result: self._cancel_all_answered(box))
        self.confirm_box = box
        box.open()

    def _cancel_all_answered(self, box: QMessageBox) -> None:
        self.confirm_box = None
        clicked = box.clickedButton()
        if clicked is not None and box.standardButton(clicked) == QMessageBox.StandardButton.Yes:
            self.tasks.spawn(self._cancel_all())
        else:
            self._say("Cancel all: nothing was cancelled.", holds=self._while_open_orders_unchanged())
        box.deleteLater()

    async def _cancel_all(self) -> None:
        self._say("Cancelling every open order…")
        sent_to = set(self.open_model.keys())
        try:
            await self.broker.cancel_all()
        except BrokerError as exc:
            self._say(f"Cancel all failed: {exc}")
            return

        def waiting() -> bool:
            return any(self.open_model.position_of(key) is not None for key in sent_to)

        done = f"Cancel all: {len(sent_to)} order{'s' if len(sent_to) != 1 else ''} cancelled." if sent_to else ""
        self._say("Cancel all sent; orders move to Completed as TWS confirms.", holds=waiting, then=done)

    def modify_selected(self) -> ModifyOrderDialog | None:
        orders = self.selected_open_orders()
        if len(orders) != 1:
            self._say("Select exactly one open order to modify.", holds=lambda: len(self.selected_open_orders()) != 1)
            return None
        dialog = ModifyOrderDialog(orders[0], self.broker, self.tasks, self)
        dialog.finished.connect(lambda _r: setattr(self, "modify_dialog", None))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.modify_dialog = dialog
        dialog.open()
        return dialog

    def export_csv(self, path, which: str = "open") -> int:
        model = {"open": self.open_model, "completed": self.completed_model, "fills": self.fills_model}[which]
        return model.export_csv(path)

    def _export_clicked(self) -> None:
        which = ("open", "completed", "fills")[self.tabs.currentIndex()]
        path, _ = QFileDialog.getSaveFileName(self, f"Export {which} orders", f"orders-{which}.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path, which)

    # --- tab protocol -------------------------------------------------------------------------
    def populated(self) -> bool:
        return self.broker.status.connected

    def shutdown(self) -> None:
        self.broker.order_changed.disconnect(self._on_order_changed)
        self.broker.fill_added.disconnect(self._on_fill_added)
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.tasks.cancel()
        for model in (self.open_model, self.completed_model, self.fills_model):
            model.shutdown()
        for name, view in (("orders_open", self.open_view), ("orders_completed", self.completed_view),
                           ("orders_fills", self.fills_view)):
            self.settings.save_header(name, view.horizontalHeader())
