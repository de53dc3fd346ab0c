"""Positions tab: every position of the selected account with P&L, totals per currency, close / quote / copy."""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.models import AccountSummary, ConnectionState, ConnectionStatus, Position, Side
from ibpanel.ui import formatting as fmt
from ibpanel.ui.table_model import Column, ColumnKind, KeyedTableModel
from ibpanel.ui.table_view import make_table_view, selected_positions

ALL_ACCOUNTS = "*"
CLOSED_NOTE = "Closed today: the row keeps its realized P&L until the next session."


def position_key(position: Position) -> tuple[str, str]:
    return (position.account, position.instrument.key)


class PositionsTab(QWidget):
    """Positions of the broker's selected account.

    Signals: ``ticket_requested(dict)`` (close position: opposite side, full quantity),
    ``quote_requested(str)`` (show quote for a symbol).
    """

    TAB_NAME = "positions"

    ticket_requested = Signal(object)
    quote_requested = Signal(str)

    def __init__(self, broker, settings, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self._summary: AccountSummary | None = None
        self.model = KeyedTableModel(self._columns(), key=position_key, parent=self)
        self.model.before_flush = self._update_totals
        self.model.row_note = lambda p: CLOSED_NOTE if p.quantity == 0 else ""
        self.view = make_table_view(self.model, self.TAB_NAME, settings, self)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._show_menu)
        self.view.doubleClicked.connect(lambda index: self.close_position(index.row()))

        self.stale_label = QLabel("")
        self.stale_label.setObjectName("staleLabel")
        self.stale_label.setStyleSheet("color: #9a6700; font-weight: bold;")
        self.totals_label = QLabel("")
        self.totals_label.setObjectName("positionsTotals")
        self.totals_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._export_clicked)
        self.export_button.setAccessibleName("Export positions as CSV")
        self.flatten_button = QPushButton("Flatten account…")
        self.flatten_button.setToolTip("Cancel the account's working orders, then close every position (one confirmation)")
        self.flatten_button.setAccessibleName("Flatten every position of the account")
        self.flatten_button.clicked.connect(lambda: self.flatten())
        self.flatten_dialog = None
        self.scope_combo = QComboBox()
        self.scope_combo.setAccessibleName("Positions of which account")
        self.scope_combo.addItem("This account", "")
        self.scope_combo.addItem("All accounts", ALL_ACCOUNTS)
        self.scope_combo.currentIndexChanged.connect(lambda _i: self._refresh())
        self.view.setAccessibleName("Positions")

        bottom = QHBoxLayout()
        bottom.addWidget(self.scope_combo)
        bottom.addWidget(self.totals_label, 1)
        bottom.addWidget(self.flatten_button)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stale_label)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)

        broker.positions_changed.connect(self._on_positions_changed)
        broker.account_changed.connect(self._on_account_changed)
        broker.state_changed.connect(self._on_state_changed)
        self._on_state_changed(broker.status)
        if broker.status.connected:
            self._summary = broker.account_summary()
            self._on_positions_changed(broker.positions(closed_today=True))

    # --- columns ------------------------------------------------------------------------------
    def _columns(self) -> tuple[Column, ...]:
        return (
            Column("symbol", "Symbol", value=lambda p: p.instrument.display),
            Column("market", "Market", value=lambda p: p.instrument.market.value),
            Column("quantity", "Position", ColumnKind.QTY, coloured=True),
            Column("avg_cost", "Avg cost", ColumnKind.PRICE,
                   display=lambda v, p: fmt.format_price(v, p.instrument, extra=2) if v is not None else ""),
            Column("market_price", "Market price", ColumnKind.PRICE),
            Column("market_value", "Market value", ColumnKind.MONEY),
            Column("unrealized_pnl", "Unrealized P&L", ColumnKind.PNL, coloured=True),
            Column("realized_pnl", "Realized P&L", ColumnKind.PNL, coloured=True),
            Column("pct_net_liq", "% of NetLiq", ColumnKind.PERCENT, value=self._pct_of_net_liq,
                   tooltip="Market value converted to the base currency, as a share of net liquidation"),
            Column("currency", "Currency", value=lambda p: p.instrument.currency),
            Column("account", "Account", tooltip="The account holding the position (shown when several are managed)"),
            Column("daily_pnl", "Daily P&L (base)", ColumnKind.PNL, coloured=True,
                   tooltip="Today's P&L of the position from IB's single-position P&L, in the account's base currency"),
            Column("single_unrealized_pnl", "Unrealized (base)", ColumnKind.PNL, coloured=True,
                   tooltip="Unrealized P&L from IB's single-position P&L, in the account's base currency"),
        )

    def _fx_to_base(self, currency: str) -> float | None:
        summary = self._summary
        if summary is None:
            return None
        if currency == summary.base_currency or summary.base_currency is None and currency == "USD":
            return 1.0
        for value in summary.values:
            if value.tag == "ExchangeRate" and value.currency == currency:
                try:
                    return float(value.value)
                except ValueError:
                    return None
        return None

    def _pct_of_net_liq(self, position: Position) -> float | None:
        summary = self._summary
        if summary is None or not summary.net_liquidation or position.market_value is None:
            return None
        rate = self._fx_to_base(position.currency)
        if rate is None:
            return None
        return 100.0 * position.market_value * rate / summary.net_liquidation

    # --- broker events ------------------------------------------------------------------------
    def all_accounts(self) -> bool:
        return self.scope_combo.currentData() == ALL_ACCOUNTS

    def _refresh(self) -> None:
        if self.broker.status.connected:
            self._on_positions_changed(self.broker.positions(closed_today=True))

    def _on_positions_changed(self, positions: tuple[Position, ...]) -> None:
        account = self.broker.status.account
        if self.all_accounts():
            # every managed account (the broker's event carries the selected one only)
            positions = tuple(p for acct in self.broker.status.accounts for p in self.broker.positions(acct))
            account = None
        rows = [p for p in positions if account is None or p.account == account]
        # A position closed today keeps its row (quantity 0, greyed) with its realized P&L until the next session.
        self.model.replace_all(rows)
        self.model.request_flush()

    def _on_account_changed(self, summary: AccountSummary) -> None:
        self._summary = summary
        for key in self.model.keys():  # % of net liquidation depends on it
            self.model.touch(key)

    def _on_state_changed(self, status: ConnectionStatus) -> None:
        stale = status.state is not ConnectionState.CONNECTED
        self.model.set_stale(stale)
        if status.state is ConnectionState.DEGRADED:
            self.stale_label.setText("Stale: TWS has lost its connection to IB; prices and P&L are the last received.")
        elif stale and len(self.model):
            self.stale_label.setText("Stale: not connected; these are the last positions received.")
        else:
            self.stale_label.setText("")
        self.stale_label.setVisible(bool(self.stale_label.text()))
        if status.accounts:
            # the Account column only matters when the login manages more than one account (QA F26)
            column = next(i for i, c in enumerate(self.model.columns) if c.key == "account")
            self.view.setColumnHidden(column, len(status.accounts) <= 1)
            if self.scope_combo.count() and len(status.accounts) <= 1:
                self.scope_combo.setCurrentIndex(0)
            self.scope_combo.setVisible(len(status.accounts) > 1)

    # --- totals -------------------------------------------------------------------------------
    def totals(self) -> dict[str, dict[str, float]]:
        """Per currency: market value, unrealized and realized P&L of the rows shown (every account's in the
        "All accounts" view)."""
        out: dict[str, dict[str, float]] = {}
        for position in self.model.rows():
            bucket = out.setdefault(position.currency, {"market_value": 0.0, "unrealized_pnl": 0.0, "realized_pnl": 0.0})
            for field in ("market_value", "unrealized_pnl", "realized_pnl"):
                value = getattr(position, field)
                if value is not None:
                    bucket[field] += value
        return out

    def _update_totals(self) -> None:
        parts = []
        for currency, bucket in sorted(self.totals().items()):
            parts.append(
                f"<b>{currency}</b> value {fmt.format_money(bucket['market_value'])} · "
                f"unrealized {_coloured(bucket['unrealized_pnl'])} · realized {_coloured(bucket['realized_pnl'])}"
            )
        self.totals_label.setText("&nbsp;&nbsp;&nbsp;".join(parts) if parts else "No positions.")

    # --- actions ------------------------------------------------------------------------------
    def close_position(self, position_index: int) -> dict | None:
        """Ask for a ticket that flattens the position: opposite side, the full quantity."""
        if not 0 <= position_index < len(self.model):
            return None
        position: Position = self.model.row(position_index)
        if position.quantity == 0:
            return None  # closed already: nothing to flatten
        request = {
            "symbol": position.instrument.display,
            "instrument": position.instrument,  # the ticket's draft: a whole order for this stock
            "market": position.instrument.market,
            "side": (Side.SELL if position.quantity > 0 else Side.BUY).value,
            "quantity": abs(Decimal(position.quantity)),
            "limit_price": None,
            "account": position.account,
        }
        self.ticket_requested.emit(request)
        return request

    def flatten(self, position_index: int | None = None):
        """Open the flatten confirmation for one position (its row) or every position of the account."""
        from ibpanel.ui.flatten_dialog import FlattenDialog

        con_id = None
        account = self.broker.status.account or ""
        if position_index is not None:
            if not 0 <= position_index < len(self.model):
                return None
            position: Position = self.model.row(position_index)
            if position.quantity == 0:
                return None
            con_id, account = position.instrument.con_id, position.account
        if not account:
            return None
        self.flatten_dialog = FlattenDialog(self.broker, account, con_id, self)
        self.flatten_dialog.open()
        return self.flatten_dialog

    def show_quote(self, position_index: int) -> None:
        if 0 <= position_index < len(self.model):
            self.quote_requested.emit(self.model.row(position_index).instrument.display)

    def copy_selection(self) -> str:
        text = self.model.selection_text(selected_positions(self.view))
        QGuiApplication.clipboard().setText(text)
        return text

    def export_csv(self, path) -> int:
        return self.model.export_csv(path)

    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export positions", "positions.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def _show_menu(self, point) -> None:
        index = self.view.indexAt(point)
        menu = QMenu(self)
        if index.isValid():
            row = index.row()
            menu.addAction("Close position…", lambda: self.close_position(row))
            menu.addAction("Flatten position…", lambda: self.flatten(row))
            menu.addAction("Show quote", lambda: self.show_quote(row))
        menu.addAction("Flatten account…", lambda: self.flatten())
        menu.addAction("Copy", self.copy_selection)
        menu.addAction("Export CSV…", self._export_clicked)
        menu.popup(self.view.viewport().mapToGlobal(point))

    # --- tab protocol -------------------------------------------------------------------------
    def populated(self) -> bool:
        return self.broker.status.connected

    def shutdown(self) -> None:
        self.broker.positions_changed.disconnect(self._on_positions_changed)
        self.broker.account_changed.disconnect(self._on_account_changed)
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.model.shutdown()
        self.settings.save_header(self.TAB_NAME, self.view.horizontalHeader())


def _coloured(value: float) -> str:
    colour = "#1a7f37" if value > 0 else "#cf222e" if value < 0 else "inherit"
    return f'<span style="color:{colour}">{fmt.format_pnl(value)}</span>'
