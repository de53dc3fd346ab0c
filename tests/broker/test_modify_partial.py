"""Modify of a partly filled order (QA F42): a new quantity at or below what is already filled is refused
before sending, and TWS's refusal of a change (201, 321, ...) reaches the caller while the order keeps
its previous terms and stays working."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import ModifyRejected, OrderRejected
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config


@pytest.fixture
async def still_market(tmp_path):
    """A practice exchange whose book stays put (quotes every 5 s) and a broker connected to it."""
    server = SimServer(sim_test_config(quote_interval=5.0))
    await server.start()
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(server.port))
        yield broker, server
    finally:
        await broker.close()
        await server.stop()


async def _partly_filled(broker):
    """A large buy at the ask: the exchange walks the book, so part fills and the rest works."""
    aapl = await broker.resolve("AAPL")
    quote = await broker.snapshot(aapl)
    view = await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(4000), OrderType.LMT,
                                           limit_price=Decimal(str(quote.ask)), tif=TimeInForce.GTC))
    view = await wait_for(lambda: (v := broker.order(view.order_id)) and v.filled > 0
                          and v.status is OrderStatus.SUBMITTED and v)
    assert 0 < view.filled < 4000
    return view


async def test_quantity_at_or_below_the_filled_part_is_refused_before_sending(still_market):
    broker, server = still_market
    view = await _partly_filled(broker)
    filled = int(view.filled)
    sent = server.stats.count("PLACE_ORDER")
    with pytest.raises(OrderRejected) as caught:
        await broker.modify(view.order_id, quantity=view.filled - 500)
    issue = caught.value.issues[0]
    assert (issue.field, issue.code) == ("quantity", "below_filled")
    assert issue.message == (f"New quantity {filled - 500:,} is below the {filled:,} already filled: the smallest is "
                             f"{filled + 1:,}, or cancel the rest.")
    with pytest.raises(OrderRejected) as caught:
        await broker.modify(view.order_id, quantity=view.filled)
    assert f"is not above the {filled:,} already filled" in caught.value.issues[0].message
    assert server.stats.count("PLACE_ORDER") == sent  # nothing reached the exchange
    assert broker.order(view.order_id).quantity == 4000


async def test_a_change_the_exchange_refuses_raises_and_the_order_keeps_its_terms(still_market):
    broker, server = still_market
    view = await _partly_filled(broker)
    target = view.filled + 500
    resting = (view.limit_price * Decimal("0.97")).quantize(Decimal("0.01"))  # the rest stops filling
    view = await broker.modify(view.order_id, limit_price=resting)
    assert view.limit_price == resting and view.quantity == 4000  # returned once TWS echoed the new terms

    server.faults.reject_next_order("Margin check failed")  # ERR 201 on the modify; the order stays working
    with pytest.raises(ModifyRejected) as caught:
        await broker.modify(view.order_id, quantity=target)
    assert caught.value.code == 201 and "Margin check failed" in str(caught.value)
    assert "keeps its previous terms (4000 shares" in str(caught.value)
    assert caught.value.issues[0].field == "quantity"
    after = broker.order(view.order_id)
    assert after.status is OrderStatus.SUBMITTED and after.quantity == 4000  # not "Cancelled" (ib_async's guess)
    assert "Change refused" in after.message

    # still working at the exchange: the next change goes through and modify() returns the new terms
    changed = await broker.modify(view.order_id, quantity=target)
    assert changed.quantity == target and changed.status is OrderStatus.SUBMITTED

    server.faults.set_readonly(True)  # ERR 321 (a warning to ib_async) on the next change
    with pytest.raises(ModifyRejected) as caught:
        await broker.modify(view.order_id, quantity=target + 100)
    assert caught.value.code == 321
    assert broker.order(view.order_id).quantity == target
    assert broker.order(view.order_id).status is OrderStatus.SUBMITTED
