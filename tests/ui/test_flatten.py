"""Flatten against the practice exchange: one confirmation listing every order, cancel-all first, then one
closing order per position (counted at the exchange), HK positions in whole board lots."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.flatten import closing_line
from ibpanel.broker.models import OrderRequest, OrderType, Position, Side
from ibpanel.ui.positions_tab import PositionsTab


def _all_orders(sim):
    exchange = sim.server.exchange
    return sim.call(lambda: exchange.open_orders() + exchange.completed_orders())


def _buy(run_async, broker, symbol, quantity):
    run_async(broker.place(OrderRequest(symbol, Side.BUY, Decimal(quantity), OrderType.MKT)))


def test_flatten_account_cancels_working_orders_then_sends_one_closing_order_per_position(
        qtbot, broker, sim, run_async, ui_settings):
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    _buy(run_async, broker, "AAPL", 20)
    _buy(run_async, broker, "0005.HK", 800)
    account = broker.status.account

    def held():
        return {p.instrument.display: p.quantity for p in broker.positions(account) if p.quantity}

    qtbot.waitUntil(lambda: held() == {"AAPL": 20, "0005.HK": 800}, timeout=15000)
    msft = run_async(broker.resolve("MSFT"))
    resting = run_async(broker.tick_table(msft)).round(Decimal(str(run_async(broker.snapshot(msft)).bid)) * Decimal("0.8"))
    working = run_async(broker.place(OrderRequest("MSFT", Side.BUY, Decimal(5), OrderType.LMT, limit_price=resting)))
    qtbot.waitUntil(lambda: any(o.order_id == working.order_id for o in broker.open_orders()), timeout=10000)
    before = len(_all_orders(sim))

    dialog = tab.flatten()
    qtbot.waitUntil(lambda: dialog.send_button.isEnabled(), timeout=15000)
    text = dialog.plan_text.toPlainText()
    assert "SELL 20 AAPL MKT" in text and "SELL 800 0005.HK MKT" in text
    assert f"cancel 1 working order(s): {working.order_id}" in text
    assert len(_all_orders(sim)) == before  # the confirmation sent nothing

    with qtbot.waitSignal(dialog.done_flatten, timeout=20000) as blocker:
        dialog.send_button.click()
    result = blocker.args[0]
    assert not result.stopped and not result.failed
    assert result.cancelled == [working.order_id]
    assert len(result.placed) == 2
    qtbot.waitUntil(lambda: len(_all_orders(sim)) >= before + 2, timeout=10000)  # in flight on the socket
    after = _all_orders(sim)
    new = [o for o in after if o.action == "SELL"]
    assert sorted((o.order_type, o.total_qty) for o in new) == \
        [("MKT", Decimal(20)), ("MKT", Decimal(800))]
    assert len(after) == before + 2  # one closing order per position, nothing else
    cancelled = next(o for o in after if o.order_id == working.order_id)
    assert cancelled.status == "Cancelled"
    qtbot.waitUntil(lambda: held() == {}, timeout=15000)
    tab.shutdown()


def test_flatten_one_position_at_a_limit_offset_through_the_bid(qtbot, broker, sim, run_async, ui_settings):
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    _buy(run_async, broker, "AAPL", 10)
    _buy(run_async, broker, "MSFT", 7)
    qtbot.waitUntil(lambda: len(tab.model) == 2, timeout=15000)
    row = next(i for i, p in enumerate(tab.model.rows()) if p.instrument.symbol == "AAPL")
    dialog = tab.flatten(row)
    dialog.type_combo.setCurrentIndex(1)
    dialog.offset_spin.setValue(2)
    qtbot.waitUntil(lambda: dialog.send_button.isEnabled() and "LMT" in dialog.plan_text.toPlainText(),
                    timeout=15000)
    plan = dialog.plan
    assert len(plan.requests) == 1 and "MSFT" not in dialog.plan_text.toPlainText()
    request = plan.requests[0]
    instrument = run_async(broker.resolve("AAPL"))
    table = run_async(broker.tick_table(instrument))
    quote = run_async(broker.snapshot(instrument))
    assert request.side is Side.SELL and request.quantity == 10
    # two ticks through a bid that may have moved since: below the bid seen at planning, on the tick grid
    assert table.is_on_tick(request.limit_price) and request.limit_price < Decimal(str(quote.ask))
    before = len(_all_orders(sim))
    with qtbot.waitSignal(dialog.done_flatten, timeout=20000):
        dialog.send_button.click()
    qtbot.waitUntil(lambda: len(_all_orders(sim)) >= before + 1, timeout=10000)
    after = _all_orders(sim)
    assert len(after) == before + 1
    sent = max(after, key=lambda o: o.order_id)
    assert sent.action == "SELL" and sent.order_type == "LMT" and sent.lmt_price == request.limit_price
    tab.shutdown()


def test_hk_odd_lot_remainder_is_listed_and_not_sent(qtbot, broker, run_async):
    instrument = run_async(broker.resolve("0005.HK"))
    assert instrument.board_lot == 400
    line = closing_line(Position(broker.status.account, instrument, Decimal(-950), 60.0))
    assert line.request.side is Side.BUY and line.request.quantity == 800
    assert "150 odd-lot" in line.describe()
