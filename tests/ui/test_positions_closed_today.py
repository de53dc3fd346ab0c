"""A position closed today keeps its row, with its realized P&L, until the next session (TWS keeps it too)."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderType, Side
from ibpanel.ui.positions_tab import CLOSED_NOTE, PositionsTab
from PySide6.QtCore import Qt


def _row(tab, symbol):
    return next((p for p in tab.model.rows() if p.instrument.symbol == symbol), None)


def test_a_position_closed_today_keeps_its_row_and_realized_pnl(qtbot, broker, run_async, ui_settings):
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    try:
        run_async(broker.place(OrderRequest("NVDA", Side.BUY, Decimal(30), OrderType.MKT)))
        qtbot.waitUntil(lambda: _row(tab, "NVDA") is not None and _row(tab, "NVDA").quantity == 30, timeout=15000)
        run_async(broker.place(OrderRequest("NVDA", Side.SELL, Decimal(30), OrderType.MKT)))
        qtbot.waitUntil(lambda: _row(tab, "NVDA") is not None and _row(tab, "NVDA").quantity == 0
                        and _row(tab, "NVDA").realized_pnl is not None, timeout=15000)
        closed = _row(tab, "NVDA")
        assert closed.realized_pnl != 0  # the round trip paid two commissions at least
        assert closed.avg_cost is None  # nothing held: no "0.000000" average cost
        tab.model.flush()
        position = tab.model.position_of(next(k for k in tab.model.keys() if tab.model.row_for_key(k) is closed))
        realized = next(i for i, c in enumerate(tab.model.columns) if c.key == "realized_pnl")
        assert tab.model.data(tab.model.index(position, realized)) not in ("", None)
        assert tab.model.data(tab.model.index(position, 0), Qt.ItemDataRole.ToolTipRole) == CLOSED_NOTE
        assert "realized" in tab.totals_label.text()
        assert tab.close_position(position) is None  # nothing left to close: no ticket
        # the broker's list of what is held (the API's) still has held positions only
        assert all(p.quantity != 0 for p in broker.positions())
    finally:
        tab.shutdown()
