"""An order's life after it is placed, against the practice exchange: modify, cancel all, not cancellable
(filled, or a cancel racing a fill), rejection by the exchange, what-if preview and its timeout, brackets,
P&L and completed orders after a reconnect, and a journal entry TWS no longer knows settled as Unknown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import NotCancellable, OrderRejected
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side


async def _resting_buy(broker, symbol: str = "AAPL", quantity: int = 5, below: str = "0.95"):
    instrument = await broker.resolve(symbol)
    quote = await broker.snapshot(instrument)
    price = (Decimal(str(quote.bid)) * Decimal(below)).quantize(Decimal("0.01"))
    view = await broker.place(OrderRequest(symbol, Side.BUY, Decimal(quantity), OrderType.LMT, limit_price=price))
    await wait_for(lambda: broker.order(view.order_id).status is OrderStatus.SUBMITTED)
    return view, price


async def test_modify_price_and_quantity(connected, sim_server):
    view, price = await _resting_buy(connected)
    new_price = price - Decimal("0.50")
    await connected.modify(view.order_id, quantity=Decimal(8), limit_price=new_price)
    changed = await wait_for(lambda: (v := connected.order(view.order_id)) and v.quantity == 8
                             and v.limit_price == new_price and v)
    assert changed.perm_id == view.perm_id or view.perm_id is None
    await wait_for(lambda: sim_server.stats.count("PLACE_ORDER") == 2)  # modify = PLACE_ORDER, same id
    assert (await wait_for(lambda: connected.order(view.order_id))).status is OrderStatus.SUBMITTED
    # a modify is validated like a new order
    with pytest.raises(OrderRejected) as caught:
        await connected.modify(view.order_id, limit_price=new_price + Decimal("0.005"))
    assert {i.code for i in caught.value.issues} == {"off_tick"}
    assert sim_server.stats.count("PLACE_ORDER") == 2
    events = [kind for _t, kind, _d in connected.journal.events(view.journal_id)]
    assert events  # every change is in the journal history


async def test_cancel_all_and_not_cancellable(connected, sim_server):
    first, _ = await _resting_buy(connected)
    second, _ = await _resting_buy(connected, quantity=2)
    await connected.cancel_all()
    await wait_for(lambda: all(connected.order(v.order_id).status is OrderStatus.CANCELLED for v in (first, second)))
    assert not connected.open_orders()
    with pytest.raises(NotCancellable):
        await connected.cancel(first.order_id)


async def test_filled_order_is_not_cancellable(connected):
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
    await wait_for(lambda: connected.order(view.order_id).status is OrderStatus.FILLED)
    with pytest.raises(NotCancellable):
        await connected.cancel(view.order_id)
    assert connected.journal.entry(view.journal_id).status == "Filled"
    assert any(v.order_id == view.order_id for v in connected.completed_orders())


async def test_exchange_rejection_is_shown_on_the_order(connected, sim_server):
    sim_server.faults.reject_next_order("insufficient practice")
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
    rejected = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.REJECTED and v)
    assert "201" in rejected.message or "reject" in rejected.message.lower()
    entry = connected.journal.entry(view.journal_id)
    assert entry.status == "Rejected"


async def test_what_if_preview_numbers(connected, sim_server):
    what_if = await connected.preview(OrderRequest("AAPL", Side.BUY, Decimal(100), OrderType.MKT))
    assert what_if.commission and what_if.commission > 0 and what_if.commission_currency == "USD"
    # the exchange's own commission model for 100 AAPL (per-share with a minimum: price does not matter here)
    inst = sim_server.book.by_con_id(265598)
    expected, currency = sim_server.accounts.commission(inst, Decimal(100), inst.ref_price)
    assert what_if.commission == pytest.approx(float(expected)) and currency == "USD"
    assert what_if.init_margin_change and what_if.init_margin_change > 0
    assert what_if.equity_with_loan_after and what_if.init_margin_after is not None
    assert not connected.open_orders()  # nothing was placed
    with pytest.raises(OrderRejected):
        await connected.preview(OrderRequest("700", Side.BUY, Decimal(150), OrderType.MKT))


async def test_pnl_and_completed_orders_after_reconnect(tmp_path, sim_server):
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(sim_server.port))
        view = await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(4), OrderType.MKT))
        await wait_for(lambda: broker.order(view.order_id).status is OrderStatus.FILLED)
        pnl = await wait_for(lambda: broker.pnl())
        assert pnl.account == broker.status.account
        await broker.disconnect()
        await broker.connect(params(sim_server.port))
        done = await wait_for(lambda: next((v for v in broker.completed_orders() if v.journal_id == view.journal_id), None))
        assert done.status is OrderStatus.FILLED and done.filled == 4
        fills = [f for f in broker.fills() if f.order_id == view.order_id]
        assert fills and sum(f.quantity for f in fills) == 4
    finally:
        await broker.close()


async def test_bracket_entry_with_take_profit_and_stop_loss(connected, sim_server):
    aapl = await connected.resolve("AAPL")
    quote = await connected.snapshot(aapl)
    entry = (Decimal(str(quote.ask)) + Decimal("0.50")).quantize(Decimal("0.01"))  # marketable: fills now
    wrong = OrderRequest("AAPL", Side.BUY, Decimal(10), OrderType.LMT, limit_price=entry,
                         take_profit=entry - Decimal(1), stop_loss=entry + Decimal(1))
    assert {i.code for i in await connected.check(wrong)} == {"bracket_side"}
    request = OrderRequest("AAPL", Side.BUY, Decimal(10), OrderType.LMT, limit_price=entry,
                           take_profit=entry + Decimal(5), stop_loss=entry - Decimal(5))
    parent = await connected.place(request)
    await wait_for(lambda: connected.order(parent.order_id).status is OrderStatus.FILLED)
    assert sim_server.stats.count("PLACE_ORDER") == 3
    children = await wait_for(lambda: [v for v in connected.open_orders() if v.parent_id == parent.order_id]
                              if len([v for v in connected.open_orders() if v.parent_id == parent.order_id]) == 2
                              else None)
    assert {(c.order_type, c.side) for c in children} == {("LMT", Side.SELL), ("STP", Side.SELL)}
    assert all(c.journal_id == parent.journal_id and c.quantity == 10 for c in children)
    entry_row = connected.journal.entry(parent.journal_id)
    assert entry_row.status == "Filled" and Decimal(entry_row.filled) == 10  # legs never overwrite the entry
    await connected.cancel_all()
    await wait_for(lambda: not connected.open_orders())


async def test_what_if_times_out_instead_of_hanging(connected, sim_server):
    from ibpanel.broker.exceptions import BrokerTimeout

    await connected.resolve("AAPL")
    await connected.snapshot(await connected.resolve("AAPL"))
    sim_server.faults.delay_replies(3)
    try:
        with pytest.raises(BrokerTimeout) as caught:
            await connected.preview(OrderRequest("AAPL", Side.BUY, Decimal(10), OrderType.MKT), timeout=0.3)
        assert "0.3" in caught.value.message
    finally:
        sim_server.faults.delay_replies(0)


async def test_cancel_racing_a_fill_is_not_cancellable(connected, sim_server):
    aapl = await connected.resolve("AAPL")
    quote = await connected.snapshot(aapl)
    marketable = (Decimal(str(quote.ask)) + Decimal("0.20")).quantize(Decimal("0.01"))
    sim_server.faults.delay_replies(0.3)  # the exchange fills at once; we hear about it late
    try:
        view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT, limit_price=marketable))
        with pytest.raises(NotCancellable):
            await connected.cancel(view.order_id, timeout=5)
    finally:
        sim_server.faults.delay_replies(0)
    assert (await wait_for(lambda: connected.order(view.order_id))).status is OrderStatus.FILLED


async def test_working_order_the_new_session_does_not_know_is_settled_not_left_submitted(tmp_path, sim_server):
    """QA F32: a fresh practice exchange (or a DAY order expired overnight): the journal entry of an order
    TWS lists neither as open nor completed becomes "Unknown" with the time, never "Submitted" forever."""
    from ibpanel.broker.journal import GONE
    from ibpanel.sim.server import SimConfig, SimServer

    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(sim_server.port))
        quote = await broker.snapshot(await broker.resolve("AAPL"))
        low = (Decimal(str(quote.last or quote.bid)) * Decimal("0.9")).quantize(Decimal("0.01"))
        view = await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(3), OrderType.LMT, limit_price=low,
                                               tif="GTC"))
        await wait_for(lambda: broker.journal.entry(view.journal_id).status == "Submitted")
        await broker.disconnect()
        fresh = SimServer(SimConfig(port=0, quote_interval=0.2, seed=5))  # same accounts, no memory of the order
        await fresh.start()
        try:
            await broker.connect(params(fresh.port))
            entry = broker.journal.entry(view.journal_id)
            assert entry.status == GONE and "no longer known to TWS" in entry.message
            assert view.journal_id in {e.journal_id for e in broker.last_reconcile}
            assert fresh.stats.count("PLACE_ORDER") == 0  # nothing re-sent
        finally:
            await broker.disconnect()
            await fresh.stop()
    finally:
        await broker.close()
