"""A normal cancel is information: ib_async's "Error 202 ... reason:" line is logged at INFO (off the
terminal, in the log file) and the Messages panel shows it without an empty "reason:"."""

from __future__ import annotations

import logging
from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.connection_tab import ConnectionTab
from ibpanel.ui.formatting import tick_at


def test_a_cancel_is_not_an_error_and_shows_no_empty_reason(qtbot, broker, run_async, ui_settings, caplog):
    tab = ConnectionTab(broker, ui_settings)
    qtbot.addWidget(tab)
    try:
        aapl = run_async(broker.resolve("AAPL"))
        bid = Decimal(str(run_async(broker.snapshot(aapl)).bid))
        tick = tick_at(aapl.market, bid)
        low = (bid * Decimal("0.95") / tick).to_integral_value() * tick
        order = run_async(broker.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT, limit_price=low)))
        qtbot.waitUntil(lambda: broker.order(order.order_id).status is OrderStatus.SUBMITTED, timeout=10000)
        caplog.set_level(logging.INFO, logger="ib_async")
        caplog.clear()
        assert run_async(broker.cancel(order.order_id)).status is OrderStatus.CANCELLED
        qtbot.waitUntil(lambda: "[202]" in tab.message_log.toPlainText(), timeout=5000)

        line = next(x for x in tab.message_log.toPlainText().splitlines() if "[202]" in x)
        assert "INFO" in line and "cancelled" in line.lower()
        assert "reason" not in line.lower()
        ib_records = [r for r in caplog.records if r.name.startswith("ib_async") and "202" in r.getMessage()]
        assert ib_records, "the cancel is still logged (for the log file)"
        assert all(r.levelno == logging.INFO for r in ib_records), [(r.levelname, r.getMessage()) for r in ib_records]
        assert not any("reason:" in r.getMessage() for r in ib_records)
    finally:
        tab.shutdown()
