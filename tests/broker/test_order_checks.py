"""The checks an order passes before it reaches the exchange, against the practice exchange over a real
socket: stop limit allowed (IB spells it STPLMT), fat finger only on the aggressive side, stops through the
market refused, market orders outside regular hours refused, Hong Kong outside-RTH rules, modify judging only
what changed, and messages with plain numbers."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import OrderRejected
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.broker.orders import ib_order_type

_WORKING = (OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED)


async def _last(broker, text: str) -> Decimal:
    quote = await broker.snapshot(await broker.resolve(text))
    return Decimal(str(quote.last or quote.bid))


async def _on_tick(broker, text: str, price: Decimal, mode: str = "down") -> Decimal:
    table = await broker.tick_table(await broker.resolve(text))
    return table.round(price, mode)


async def _codes(broker, request: OrderRequest) -> dict[str, str]:
    return {i.code: i.message for i in await broker.check(request)}


def test_ib_order_type_spellings_are_one():
    assert ib_order_type("STPLMT") == ib_order_type("STP LMT") == ib_order_type("stp_lmt") == "STP LMT"
    assert [ib_order_type(t) for t in ("LMT", "MKT", "STP", "TRAIL", "TRAILLMT")] == [
        "LMT", "MKT", "STP", "TRAIL", "TRAIL LIMIT"]


@pytest.mark.parametrize("symbol, quantity", [("AAPL", 1), ("700", 100)])
async def test_stop_limit_is_placed_and_works_for_us_and_hk(connected, sim_server, symbol, quantity):
    instrument = await connected.resolve(symbol)
    assert "STPLMT" in instrument.order_types or "STP LMT" in instrument.order_types  # IB's own spelling
    table = await connected.tick_table(instrument)
    # a buy stop above the market (a breakout entry; the practice exchange has no HK short sales)
    stop = table.round(await _last(connected, symbol) * Decimal("1.05"), "up")
    limit = table.step(stop, 2)
    view = await connected.place(OrderRequest(symbol, Side.BUY, Decimal(quantity), OrderType.STP_LMT,
                                              limit_price=limit, stop_price=stop))
    working = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status in _WORKING and v)
    assert working.order_type == "STP LMT" and working.stop_price == stop and working.limit_price == limit
    assert sim_server.stats.count("PLACE_ORDER") == 1


async def test_fat_finger_only_on_the_aggressive_side(tmp_path, sim_server):
    broker = make_broker(tmp_path, fat_finger_pct=Decimal(10), limits_source="/profile/settings.ini")
    try:
        await broker.connect(params(sim_server.port))
        last = await _last(broker, "AAPL")

        def lmt(side, factor):
            price = (last * Decimal(factor)).quantize(Decimal("0.01"))
            return OrderRequest("AAPL", side, Decimal(1), OrderType.LMT, limit_price=price)

        # resting orders well away from the market are normal trading
        assert await _codes(broker, lmt(Side.BUY, "0.87")) == {}
        assert await _codes(broker, lmt(Side.SELL, "1.30")) == {}
        # aggressive prices beyond the limit are refused, naming where the limit is set
        for request, where in ((lmt(Side.BUY, "1.15"), "above"), (lmt(Side.SELL, "0.85"), "below")):
            message = (await _codes(broker, request))["fat_finger"]
            assert where in message and "(limit 10%: safety/fat_finger_pct in /profile/settings.ini)" in message
        # a passive price beyond the sanity band is still a typo
        assert "far_from_market" in await _codes(broker, lmt(Side.BUY, "0.40"))
        assert "far_from_market" in await _codes(broker, lmt(Side.SELL, "1.60"))
        assert sim_server.stats.count("PLACE_ORDER") == 0

        resting = await broker.place(lmt(Side.BUY, "0.87"))
        await wait_for(lambda: (v := broker.order(resting.order_id)) and v.status is OrderStatus.SUBMITTED)
    finally:
        await broker.close()


async def test_stop_through_the_market_is_refused(connected, sim_server):
    last = await _last(connected, "AAPL")
    high = (last * Decimal("1.05")).quantize(Decimal("0.01"))
    low = (last * Decimal("0.95")).quantize(Decimal("0.01"))
    sell = await _codes(connected, OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.STP, stop_price=high))
    assert set(sell) == {"stop_through_market"}
    assert re.search(r"a sell stop at [\d.]+ is above the market [\d.]+: it would trigger at once", sell[
        "stop_through_market"], re.I)
    buy = await _codes(connected, OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.STP_LMT, stop_price=low,
                                               limit_price=low))
    assert set(buy) == {"stop_through_market"} and "below the market" in buy["stop_through_market"]
    with pytest.raises(OrderRejected):
        await connected.place(OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.STP, stop_price=high))
    assert sim_server.stats.count("PLACE_ORDER") == 0
    # the right side of the market rests
    assert await _codes(connected, OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.STP, stop_price=low)) == {}


async def test_market_order_outside_rth_is_refused_limit_is_fine(connected, sim_server):
    issues = await _codes(connected, OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT, outside_rth=True))
    assert set(issues) == {"outside_rth_market"} and "use a limit order" in issues["outside_rth_market"]
    near = await _on_tick(connected, "AAPL", await _last(connected, "AAPL"))
    assert await _codes(connected, OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=near,
                                                outside_rth=True)) == {}
    assert sim_server.stats.count("PLACE_ORDER") == 0


async def test_messages_show_plain_numbers(connected):
    issues = await connected.check(OrderRequest("AAPL", Side.BUY, Decimal("1.5"), OrderType.MKT))
    message = next(i.message for i in issues if i.code == "bad_quantity")
    assert "Quantity 1.5 is not" in message and "Decimal" not in message


async def test_modify_does_not_judge_a_kept_stop_again(connected, sim_server):
    """A stop that has triggered is through the market by definition: changing only the limit must work."""
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    last = await _last(connected, "AAPL")
    cent = Decimal("0.01")
    stop, limit = (last * Decimal("1.03")).quantize(cent), (last * Decimal("0.97")).quantize(cent)
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.STP_LMT, limit_price=limit,
                                              stop_price=stop))
    await wait_for(lambda: (v := connected.order(view.order_id)) and v.status in _WORKING)
    # the market prints through the stop: the order triggers and rests as a buy limit under the market
    sim_server.market.move_to(aapl.con_id, last * Decimal("1.05"))
    sim_server.exchange.on_market([aapl.con_id])
    await wait_for(lambda: (q := connected.quote(aapl)) and q.last and Decimal(str(q.last)) > stop)
    lower = (last * Decimal("0.96")).quantize(cent)
    await connected.modify(view.order_id, limit_price=lower)
    await wait_for(lambda: connected.order(view.order_id).limit_price == lower)
    with pytest.raises(OrderRejected) as caught:  # a new stop is judged: below the market now
        await connected.modify(view.order_id, stop_price=(last * Decimal("1.04")).quantize(cent))
    assert {i.code for i in caught.value.issues} == {"stop_through_market"}


async def test_hk_order_outside_rth_is_refused_with_the_sehk_session(connected, sim_server):
    """SEHK has no extended hours: the flag would be ignored, so it is refused (QA F40)."""
    price = await _on_tick(connected, "700", await _last(connected, "700"))
    request = OrderRequest("700", Side.BUY, Decimal(100), OrderType.LMT, limit_price=price, outside_rth=True)
    with pytest.raises(OrderRejected) as caught:
        await connected.place(request)
    assert [(i.field, i.code) for i in caught.value.issues] == [("outside_rth", "outside_rth_hk")]
    assert caught.value.issues[0].message == (
        "Hong Kong stocks trade only in the regular session (09:30-12:00, 13:00-16:00 HKT): untick outside RTH.")
    # a market order gets the same one reason, not the US market-order one as well
    market = OrderRequest("700", Side.BUY, Decimal(100), OrderType.MKT, outside_rth=True)
    assert set(await _codes(connected, market)) == {"outside_rth_hk"}
    assert sim_server.stats.count("PLACE_ORDER") == 0
    unticked = OrderRequest("700", Side.BUY, Decimal(100), OrderType.LMT, limit_price=price)
    assert await _codes(connected, unticked) == {}


async def test_an_hk_order_placed_with_outside_rth_elsewhere_can_still_be_modified(connected, sim_server):
    """A working HK order carrying the flag (placed before the rule, or by a script on this client id):
    a change drops the flag SEHK ignores instead of refusing with advice the modify dialog cannot follow."""
    from ib_async import Contract, Order

    tencent = await connected.resolve("700")
    price = await _on_tick(connected, "700", await _last(connected, "700") * Decimal("0.9"))
    contract = Contract(secType="STK", conId=tencent.con_id, symbol="700", exchange="SEHK", currency="HKD")
    trade = connected._ib.placeOrder(contract, Order(action="BUY", totalQuantity=100, orderType="LMT",
                                                     lmtPrice=float(price), outsideRth=True, account="DU111111"))
    view = await wait_for(lambda: (v := connected.order(trade.order.orderId)) and v.status is OrderStatus.SUBMITTED
                          and v)
    assert view.outside_rth
    changed = await connected.modify(view.order_id, quantity=Decimal(200))
    assert changed.quantity == 200 and not changed.outside_rth
    assert sim_server.exchange.order(view.client_id, view.order_id).outside_rth is False  # the exchange has it that way too
