"""Every validation rule refuses before anything is sent: the practice exchange counts PLACE_ORDER."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import BrokerError, OrderRejected
from ibpanel.broker.models import OrderRequest, OrderType, Side


async def _last(broker, text: str) -> Decimal:
    instrument = await broker.resolve(text)
    quote = await broker.snapshot(instrument)
    return Decimal(str(quote.last or quote.bid))


async def _refused(broker, request: OrderRequest) -> set[str]:
    """The issue codes of a refused order (and check() agrees with place())."""
    with pytest.raises(OrderRejected) as caught:
        await broker.place(request)
    codes = {i.code for i in caught.value.issues}
    assert codes == {i.code for i in await broker.check(request)}
    assert all(i.message for i in caught.value.issues)
    return codes


async def test_readonly_session_sends_nothing(tmp_path, sim_server):
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(sim_server.port, readonly=True))
        assert broker.status.readonly
        codes = await _refused(broker, OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
        assert "readonly" in codes
        with pytest.raises(OrderRejected):
            await broker.preview(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
        with pytest.raises(BrokerError):
            await broker.cancel_all()
        assert sim_server.stats.count("PLACE_ORDER") == 0
        assert sim_server.stats.count("REQ_GLOBAL_CANCEL") == 0
    finally:
        await broker.close()


async def test_hk_odd_lot_and_off_tick_refused_before_sending(connected, sim_server):
    last = await _last(connected, "700")
    table = await connected.tick_table(await connected.resolve("700"))
    price = table.round(last, "down")  # on the tick of whatever band Tencent trades in today
    codes = await _refused(connected, OrderRequest("700", Side.BUY, Decimal(150), OrderType.LMT, limit_price=price))
    assert codes == {"odd_lot"}
    off = price + table.increment(price) / 2
    issues = await connected.check(OrderRequest("0700.HK", Side.BUY, Decimal(100), OrderType.LMT, limit_price=off))
    assert [i.code for i in issues] == ["off_tick"]
    assert str(price) in issues[0].message and str(table.step(price, 1)) in issues[0].message  # says what to use
    assert sim_server.stats.count("PLACE_ORDER") == 0


@pytest.mark.parametrize(
    "changes, code",
    [
        ({"quantity": Decimal(0)}, "bad_quantity"),
        ({"quantity": Decimal("1.5")}, "bad_quantity"),
        ({"quantity": Decimal(-3)}, "bad_quantity"),
        ({"limit_price": None}, "price_missing"),
        ({"limit_price": Decimal(-1)}, "bad_price"),
        ({"order_type": "MIDPRICE"}, "unknown_order_type"),
        ({"tif": "FOK"}, "unknown_tif"),
        ({"account": "U999999"}, "unknown_account"),
        ({"symbol": "!!!"}, "unknown_symbol"),
    ],
)
async def test_each_rule_refuses_with_its_code(connected, sim_server, changes, code):
    last = await _last(connected, "AAPL")
    base = dict(symbol="AAPL", side=Side.BUY, quantity=Decimal(10), order_type=OrderType.LMT,
                limit_price=last.quantize(Decimal("0.01")))
    base.update(changes)
    codes = await _refused(connected, OrderRequest(**base))
    assert code in codes
    assert sim_server.stats.count("PLACE_ORDER") == 0


async def test_fat_finger_and_order_value(connected, sim_server):
    last = await _last(connected, "AAPL")
    far = (last * Decimal("0.8")).quantize(Decimal("0.01"))  # a sell 20% under the market trades through it
    assert "fat_finger" in await _refused(
        connected, OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.LMT, limit_price=far))
    near = last.quantize(Decimal("0.01"))
    big = (Decimal(2_000_000) / near).to_integral_value() + 10  # just above the USD 2,000,000 limit
    codes = await _refused(connected, OrderRequest("AAPL", Side.BUY, big, OrderType.LMT, limit_price=near))
    assert codes == {"order_value"}
    # a market order is valued at the last trade
    assert "order_value" in await _refused(connected, OrderRequest("AAPL", Side.BUY, big, OrderType.MKT))
    assert sim_server.stats.count("PLACE_ORDER") == 0


async def test_stop_orders_need_stop_price_and_market_orders_take_no_price(connected, sim_server):
    last = await _last(connected, "AAPL")
    near = last.quantize(Decimal("0.01"))
    assert "price_missing" in await _refused(connected, OrderRequest("AAPL", Side.SELL, Decimal(1), OrderType.STP))
    assert "price_not_used" in await _refused(
        connected, OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT, limit_price=near))
    assert sim_server.stats.count("PLACE_ORDER") == 0


async def test_tws_in_read_only_api_mode(tmp_path, sim_server):
    """TWS itself read-only: the connect does not hang on the order sync, and orders are refused here."""
    sim_server.faults.set_readonly(True)
    broker = make_broker(tmp_path)
    try:
        status = await broker.connect(params(sim_server.port, timeout=3))
        assert status.readonly
        issues = await broker.check(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
        assert [i.code for i in issues] == ["readonly"] and "Read-Only API" in issues[0].message
        assert sim_server.stats.count("PLACE_ORDER") == 0
    finally:
        await broker.close()


async def test_tws_switched_to_read_only_rejects_the_order_visibly(connected, sim_server):
    sim_server.faults.set_readonly(True)
    from ibpanel.broker.models import OrderStatus

    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))

    rejected = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.REJECTED and v)
    assert "321" in rejected.message
    assert connected.journal.entry(view.journal_id).status == "Rejected"
    assert connected.status.readonly  # and the next order is stopped before it leaves
    assert "readonly" in {i.code for i in await connected.check(
        OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))}


async def test_tick_table_from_ib_market_rule_with_fallback(connected, sim_server):
    tencent = await connected.resolve("700")
    assert tencent.market_rule_ids
    sim_server.faults.delay_replies(1.5)  # the market rule answer comes too late: built-in table, said so
    try:
        fallback = await connected.tick_table(tencent)
    finally:
        sim_server.faults.delay_replies(0)
    assert "fallback" in fallback.source
    table = await connected.tick_table(tencent)
    assert "market rule" in table.source and "fallback" not in table.source
    assert table.increment(Decimal("600")) == Decimal("0.5")
    last = await _last(connected, "700")
    off = table.round(last, "down") + table.increment(last) / 2
    [issue] = await connected.check(OrderRequest("700", Side.BUY, Decimal(100), OrderType.LMT, limit_price=off))
    assert issue.code == "off_tick" and "market rule" in issue.message


async def test_other_accounts_values_are_there_too(connected):
    other = next(a for a in connected.accounts if a != connected.status.account)
    summary = await wait_for(lambda: connected.account_summary(other))
    assert summary.account == other and summary.net_liquidation


async def test_market_order_that_cannot_be_valued_is_refused(connected, sim_server):
    await connected.resolve("MSFT")
    sim_server.faults.delay_replies(3)  # no quote will arrive in time for the reference price
    try:
        issues = await connected.check(OrderRequest("MSFT", Side.BUY, Decimal(10), OrderType.MKT))
    finally:
        sim_server.faults.delay_replies(0)
    assert [i.code for i in issues] == ["no_reference_price"] and "limit order" in issues[0].message
    assert sim_server.stats.count("PLACE_ORDER") == 0
