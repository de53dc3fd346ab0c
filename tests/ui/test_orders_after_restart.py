"""Completed orders after a restart: TWS's completed-order message has no orderId, no average fill price
and no time ib_async keeps, so the Completed view must take them from the journal and the executions
(joined by permId / orderRef), and reconciling must never overwrite the journal's known fill with 0."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.formatting import tick_at
from ibpanel.ui.orders_tab import OrdersTab


def _cell(model, order, key: str) -> str:
    row = model.position_of(next(k for k in model.keys() if model.row_for_key(k) is order))
    column = next(i for i, c in enumerate(model.columns) if c.key == key)
    return model.data(model.index(row, column))


def test_completed_orders_keep_id_fill_price_and_time_after_a_restart(
        qtbot, sim, make_broker, connect_params, run_async, ui_settings, tmp_path):
    journal_path = tmp_path / "journal.sqlite"
    params = connect_params(sim)
    first = make_broker(journal_path=journal_path)
    run_async(first.connect(params), timeout=15.0)
    aapl = run_async(first.resolve("AAPL"))
    quote = run_async(first.snapshot(aapl))
    filled = run_async(first.place(OrderRequest("AAPL", Side.BUY, Decimal(5), OrderType.MKT)))
    tick = tick_at(aapl.market, Decimal(str(quote.bid)))
    low = (Decimal(str(quote.bid)) * Decimal("0.95") / tick).to_integral_value() * tick
    resting = run_async(first.place(OrderRequest("AAPL", Side.BUY, Decimal(3), OrderType.LMT, limit_price=low)))
    qtbot.waitUntil(lambda: first.order(filled.order_id).status is OrderStatus.FILLED
                    and first.order(filled.order_id).avg_fill_price is not None, timeout=10000)
    qtbot.waitUntil(lambda: first.order(resting.order_id).status is OrderStatus.SUBMITTED, timeout=10000)
    cancelled = run_async(first.cancel(resting.order_id))
    fill_price = first.order(filled.order_id).avg_fill_price
    filled = first.order(filled.order_id)  # with its permId, which TWS assigned after place() returned
    qtbot.waitUntil(lambda: first.journal.entry(filled.journal_id).avg_fill_price == fill_price, timeout=5000)
    assert cancelled.status is OrderStatus.CANCELLED
    run_async(first.close(), timeout=10.0)
    # an order of another program (its own journal, another client id), cancelled without a fill
    other = make_broker(journal_path=tmp_path / "other.sqlite")
    run_async(other.connect(connect_params(sim)), timeout=15.0)
    foreign = run_async(other.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT, limit_price=low)))
    qtbot.waitUntil(lambda: other.order(foreign.order_id).status is OrderStatus.SUBMITTED, timeout=10000)
    foreign = run_async(other.cancel(foreign.order_id))
    run_async(other.close(), timeout=10.0)

    restarted_at = datetime.now(timezone.utc)
    second = make_broker(journal_path=journal_path)  # a restarted panel: new connection, same journal
    run_async(second.connect(params), timeout=15.0)
    tab = OrdersTab(second, ui_settings)
    qtbot.addWidget(tab)
    try:
        by_perm = {o.perm_id: o for o in tab.completed_model.rows()}
        assert {filled.perm_id, cancelled.perm_id} <= set(by_perm)
        done_fill, done_cancel = by_perm[filled.perm_id], by_perm[cancelled.perm_id]
        # the ids the trader saw yesterday, never "0"
        assert _cell(tab.completed_model, done_fill, "order_id") == str(filled.order_id)
        assert _cell(tab.completed_model, done_cancel, "order_id") == str(resting.order_id)
        # the real average fill price (the executions), never 0.0000
        assert done_fill.avg_fill_price == pytest.approx(fill_price, abs=1e-9)
        assert float(_cell(tab.completed_model, done_fill, "avg_fill_price").replace(",", "")) == pytest.approx(fill_price)
        assert done_cancel.avg_fill_price is None and _cell(tab.completed_model, done_cancel, "avg_fill_price") == ""
        assert done_cancel.remaining == 3 and done_fill.remaining == 0  # what was left when it ended
        # when it was cancelled (TWS's completion time, whole seconds), not when the panel restarted
        assert done_cancel.updated_at <= restarted_at
        assert abs((done_cancel.updated_at - cancelled.updated_at).total_seconds()) < 1.5
        # an order nobody here knows the id of shows no id, never "0"
        done_foreign = by_perm[foreign.perm_id]
        assert done_foreign.status is OrderStatus.CANCELLED
        assert _cell(tab.completed_model, done_foreign, "order_id") == ""
        # the journal keeps its known fill: reconciliation did not write 0.0 over it
        assert second.journal.entry(filled.journal_id).avg_fill_price == fill_price
        assert second.journal.entry(filled.journal_id).status == OrderStatus.FILLED.value
        assert second.journal.entry(resting.journal_id).status == OrderStatus.CANCELLED.value
        assert second.journal.entry(resting.journal_id).avg_fill_price is None
    finally:
        tab.shutdown()
