"""Trailing stops, on-close orders, GTD / OPG, trailing stop-loss children and OCA groups: checked by the
broker and counted at the practice exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import wait_for
from ibpanel.broker.exceptions import BrokerError, OrderRejected
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side, TimeInForce


async def _at(broker, sim_server, symbol: str, price: str):
    instrument = await broker.resolve(symbol)
    sim_server.market.move_to(instrument.con_id, Decimal(price))
    await wait_for(lambda: (q := sim_server.market.top(instrument.con_id)) and q.bid <= Decimal(price) + 1)
    return instrument


CLIENT_ID = 7  # broker_helpers.params


def _sim_order(sim_server, view):
    """The order as the practice exchange holds it (None until it arrived)."""
    return sim_server.exchange.order(CLIENT_ID, view.order_id)


async def _arrived(sim_server, view):
    return await wait_for(lambda: _sim_order(sim_server, view))


async def test_trailing_stop_follows_the_price_up_and_fills_when_it_turns(connected, sim_server):
    instrument = await _at(connected, sim_server, "AAPL", "200.00")
    await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(10), OrderType.MKT))
    await wait_for(lambda: any(p.quantity == 10 for p in connected.positions()))
    view = await connected.place(OrderRequest("AAPL", Side.SELL, Decimal(10), OrderType.TRAIL,
                                              trailing_amount=Decimal("5.00")))
    sent = await _arrived(sim_server, view)
    first_stop = Decimal(sent.extra["trailStopPrice"])
    assert Decimal(190) < first_stop < Decimal(200)  # 5.00 under the market, as the broker computed and sent
    sim_server.market.move_to(instrument.con_id, Decimal("230.00"))
    await wait_for(lambda: Decimal(_sim_order(sim_server, view).extra["trailStopPrice"]) > Decimal(220))
    await wait_for(lambda: connected.order(view.order_id).stop_price > Decimal(220))  # the view shows it trail
    assert _sim_order(sim_server, view).status != "Filled"
    sim_server.market.move_to(instrument.con_id, Decimal("215.00"))
    filled = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.FILLED and v)
    assert filled.avg_fill_price > 210  # sold near the trailed stop, far above the first one
    await wait_for(lambda: not any(p.quantity for p in connected.positions() if p.instrument.symbol == "AAPL"))


async def test_trailing_orders_are_checked_before_anything_is_sent(connected, sim_server):
    await _at(connected, sim_server, "AAPL", "200.00")
    before = sim_server.stats.count("PLACE_ORDER")
    cases = {
        "trail_missing": OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.TRAIL),
        "bad_trail": OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.TRAIL, trailing_percent=Decimal(100)),
        "limit_offset_missing": OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.TRAIL_LIMIT,
                                             trailing_amount=Decimal(1)),
        "close_type_market": OrderRequest("0700.HK", Side.BUY, Decimal(100), OrderType.MOC),
        "opg_not_allowed": OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.STP, stop_price=Decimal(250),
                                        tif=TimeInForce.OPG),
        "good_till_missing": OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=Decimal(190),
                                          tif=TimeInForce.GTD),
        "good_till_past": OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=Decimal(190),
                                       tif=TimeInForce.GTD, good_till="20200101 16:00:00"),
    }
    for code, request in cases.items():
        with pytest.raises(OrderRejected) as caught:
            await connected.place(request)
        assert code in {i.code for i in caught.value.issues}, (code, caught.value.issues)
    # a trailing percent so wide the initial stop is half the price away: the resting band refuses it
    with pytest.raises(OrderRejected) as caught:
        await connected.place(OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.TRAIL,
                                           trailing_percent=Decimal(60)))
    assert {i.code for i in caught.value.issues} == {"fat_finger"} or "stop_price" in {
        i.field for i in caught.value.issues}
    assert sim_server.stats.count("PLACE_ORDER") == before


async def test_trail_limit_percent_gtd_and_on_close_orders_reach_the_exchange_as_asked(connected, sim_server):
    await _at(connected, sim_server, "AAPL", "200.00")
    trail = await connected.place(OrderRequest(
        "AAPL", Side.SELL, Decimal(3), OrderType.TRAIL_LIMIT, trailing_percent=Decimal(2),
        limit_offset=Decimal("0.50"), tif=TimeInForce.GTD, good_till="20991231 16:00:00"))
    sent = await _arrived(sim_server, trail)
    assert (sent.order_type, sent.extra["trailingPercent"], Decimal(sent.extra["lmtPriceOffset"])) == (
        "TRAIL LIMIT", "2", Decimal("0.5"))
    assert sent.tif == "GTD" and sent.extra["goodTillDate"].startswith("20991231 16:00:00")
    loc = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LOC, limit_price=Decimal(195)))
    moc = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.MOC))
    opg = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT,
                                             limit_price=Decimal(195), tif=TimeInForce.OPG))
    assert [(o.order_type, o.tif, o.lmt_price) for o in [await _arrived(sim_server, v) for v in (loc, moc, opg)]] == [
        ("LOC", "DAY", Decimal(195)), ("MOC", "DAY", None), ("LMT", "OPG", Decimal(195))]
    shown = await wait_for(lambda: (v := connected.order(trail.order_id)) and v.stop_price and v)
    assert shown.trailing == "2%" and shown.stop_price == Decimal(sent.extra["trailStopPrice"])


async def test_bracket_take_profit_fill_cancels_the_stop_loss(connected, sim_server):
    instrument = await _at(connected, sim_server, "AAPL", "200.00")
    entry = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(5), OrderType.LMT,
                                               limit_price=Decimal("201.00"), take_profit=Decimal("210.00"),
                                               stop_loss=Decimal("190.00")))
    await wait_for(lambda: connected.order(entry.order_id).status is OrderStatus.FILLED)
    children = await wait_for(lambda: len(c := [v for v in connected.open_orders()
                                                 if v.parent_id == entry.order_id]) == 2 and c)
    take_profit = next(c for c in children if c.order_type == "LMT")
    stop_loss = next(c for c in children if c.order_type == "STP")
    sim_server.market.move_to(instrument.con_id, Decimal("212.00"))
    await wait_for(lambda: connected.order(take_profit.order_id).status is OrderStatus.FILLED)
    await wait_for(lambda: connected.order(stop_loss.order_id).status is OrderStatus.CANCELLED)


async def test_trailing_stop_loss_child_and_cancelling_the_parent_cancels_the_children(connected, sim_server):
    await _at(connected, sim_server, "AAPL", "200.00")
    entry = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(5), OrderType.LMT,
                                               limit_price=Decimal("180.00"), take_profit=Decimal("220.00"),
                                               stop_loss_trail=Decimal("3.00")))
    children = await wait_for(lambda: len(c := [v for v in connected.open_orders()
                                                 if v.parent_id == entry.order_id]) == 2 and c)
    assert sorted(c.order_type for c in children) == ["LMT", "TRAIL"]
    assert next(c for c in children if c.order_type == "TRAIL").trailing == "3"
    await connected.cancel(entry.order_id)
    await wait_for(lambda: all(connected.order(c.order_id).status is OrderStatus.CANCELLED for c in children))


async def test_oca_group_one_fill_cancels_the_others(connected, sim_server):
    instrument = await _at(connected, sim_server, "AAPL", "200.00")
    low = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT, limit_price=Decimal(190)))
    lower = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT, limit_price=Decimal(185)))
    await wait_for(lambda: all(connected.order(v.order_id).status is OrderStatus.SUBMITTED for v in (low, lower)))
    other = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.LMT,
                                               limit_price=Decimal(185), account="DU222222"))
    await wait_for(lambda: connected.order(other.order_id).status is OrderStatus.SUBMITTED)
    placed = sim_server.stats.count("PLACE_ORDER")
    with pytest.raises(BrokerError, match="one account"):
        await connected.put_in_oca([low.order_id, other.order_id], "G1")
    assert sim_server.stats.count("PLACE_ORDER") == placed  # refused whole: nothing sent
    await connected.put_in_oca([low.order_id, lower.order_id], "G1")
    await wait_for(lambda: all(_sim_order(sim_server, v).oca_group == "G1" for v in (low, lower)))
    await wait_for(lambda: connected.order(low.order_id).oca_group == "G1")  # the echo shows the group
    sim_server.market.move_to(instrument.con_id, Decimal("189.00"))
    await wait_for(lambda: connected.order(low.order_id).status is OrderStatus.FILLED)
    await wait_for(lambda: connected.order(lower.order_id).status is OrderStatus.CANCELLED)
    assert connected.order(other.order_id).status is OrderStatus.SUBMITTED


async def test_a_trailing_stop_and_a_gtd_order_can_be_resized_keeping_their_terms(connected, sim_server):
    await _at(connected, sim_server, "AAPL", "200.00")
    trail = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(3), OrderType.TRAIL,
                                               trailing_amount=Decimal("4.00")))
    gtd = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(3), OrderType.LMT, limit_price=Decimal(190),
                                             tif=TimeInForce.GTD, good_till="20991231 16:00:00"))
    await _arrived(sim_server, trail)
    await _arrived(sim_server, gtd)
    await wait_for(lambda: connected.order(trail.order_id).status is not OrderStatus.PENDING_SUBMIT)
    await connected.modify(trail.order_id, quantity=Decimal(5), limit_price=None, stop_price=None)
    await connected.modify(gtd.order_id, quantity=Decimal(6), limit_price=None, stop_price=None)
    resized = await wait_for(lambda: (o := _sim_order(sim_server, trail)) and o.total_qty == 5 and o)
    assert resized.order_type == "TRAIL" and resized.aux_price == Decimal(4)  # still trails by 4.00
    kept = await wait_for(lambda: (o := _sim_order(sim_server, gtd)) and o.total_qty == 6 and o)
    assert kept.tif == "GTD" and kept.extra["goodTillDate"].startswith("20991231 16:00:00")
