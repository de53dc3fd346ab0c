"""The Orders tab's status line says what still holds: "Cancel all sent…" gives way to the outcome once TWS
has confirmed, an outcome clears when the open orders change again, and "Select an order…" clears on a selection."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.formatting import tick_at
from ibpanel.ui.orders_tab import OrdersTab


def _place_working(run_async, broker, symbol: str, quantity: int) -> int:
    instrument = run_async(broker.resolve(symbol))
    bid = Decimal(str(run_async(broker.snapshot(instrument)).bid))
    tick = tick_at(instrument.market, bid)
    price = (bid * Decimal("0.95") / tick).to_integral_value() * tick
    return run_async(broker.place(OrderRequest(symbol, Side.BUY, Decimal(quantity), OrderType.LMT,
                                               limit_price=price))).order_id


def test_status_lines_clear_when_they_no_longer_apply(qtbot, broker, run_async, ui_settings):
    tab = OrdersTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    try:
        first = _place_working(run_async, broker, "AAPL", 3)
        _place_working(run_async, broker, "MSFT", 2)
        qtbot.waitUntil(lambda: len(tab.open_model) == 2 and all(
            o.status is OrderStatus.SUBMITTED for o in tab.open_model.rows()), timeout=10000)

        tab.open_view.clearSelection()
        tab.cancel_button.click()
        assert tab.message.text() == "Select an open order to cancel."
        assert tab.select_order(first)
        assert tab.message.text() == ""  # an order is selected now: the hint is gone

        tab.cancel_all_button.click()
        tab.confirm_box.button(tab.confirm_box.StandardButton.Yes).click()
        qtbot.waitUntil(lambda: len(tab.open_model) == 0, timeout=10000)
        qtbot.waitUntil(lambda: tab.message.text() == "Cancel all: 2 orders cancelled.", timeout=5000)
        # the Status column has room for the longest status, whatever the first rows said
        status = next(i for i, c in enumerate(tab.completed_model.columns) if c.key == "status")
        room = tab.completed_view.horizontalHeader().sectionSize(status) - 12
        assert tab.completed_view.fontMetrics().horizontalAdvance("PendingCancel") <= room

        _place_working(run_async, broker, "AAPL", 4)  # a new working order: that outcome is history
        qtbot.waitUntil(lambda: len(tab.open_model) == 1, timeout=10000)
        assert tab.message.text() == ""
    finally:
        tab.shutdown()
