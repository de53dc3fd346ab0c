"""Broker core against the practice exchange over a real socket: connect, resolve, account,
positions, orders (place / cancel / fill), quotes. Milestone-1 behaviour the UI and API rely on."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import NotConnected, OrderNotFound, SymbolError
from ibpanel.broker.models import (
    ConnectionState,
    Market,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)


async def test_connect_reports_states_accounts_and_paper_reason(broker, sim_server):
    states = []
    broker.state_changed.connect(lambda s: states.append(s.state))
    status = await broker.connect(params(sim_server.port))
    assert status.state is ConnectionState.CONNECTED
    assert states[0] is ConnectionState.CONNECTING and states[-1] is ConnectionState.CONNECTED
    assert set(status.accounts) == {"DU111111", "DU222222"}
    assert status.account in status.accounts
    assert status.is_paper is True and "DU" in status.paper_reason
    assert status.server_version and status.server_version >= 157
    assert broker.accounts == status.accounts

    await broker.disconnect()
    assert broker.status.state is ConnectionState.DISCONNECTED
    assert states[-1] is ConnectionState.DISCONNECTED
    await broker.disconnect()  # safe twice


async def test_resolve_us_and_hk_and_cache(connected, sim_server):
    aapl = await connected.resolve("aapl")
    assert aapl.symbol == "AAPL" and aapl.market is Market.US and aapl.con_id == 265598
    assert aapl.primary_exchange == "NASDAQ" and aapl.board_lot == 1
    tencent = await connected.resolve("0700.HK")
    assert tencent.symbol == "700" and tencent.exchange == "SEHK" and tencent.currency == "HKD"
    assert tencent.board_lot == 100 and tencent.lot_source in ("contract details", "fallback table")
    assert tencent.display == "0700.HK"
    requests = sim_server.stats.count("REQ_CONTRACT_DATA")
    assert (await connected.resolve("HK:700")) is tencent  # cached: no second lookup
    assert sim_server.stats.count("REQ_CONTRACT_DATA") == requests
    brk = await connected.resolve("BRK.B")
    assert brk.symbol == "BRK B"


async def test_resolve_refuses_junk_and_unknown(connected):
    with pytest.raises(SymbolError) as junk:
        await connected.resolve("$$$")
    assert "700" in str(junk.value)  # names the accepted forms
    with pytest.raises(SymbolError) as unknown:
        await connected.resolve("ZZZZ")
    assert "ZZZZ" in unknown.value.message


async def test_not_connected_is_said_plainly(broker):
    with pytest.raises(NotConnected):
        await broker.resolve("AAPL")
    with pytest.raises(NotConnected):
        await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))


async def test_account_summary_and_positions_after_a_fill(connected):
    summary = await wait_for(lambda: connected.account_summary())
    assert summary.account == connected.status.account
    assert summary.net_liquidation and summary.net_liquidation > 0
    assert "USD" in summary.cash_by_currency
    assert all(v.account == summary.account for v in summary.values)

    fills = []
    connected.fill_added.connect(fills.append)
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(10), OrderType.MKT))
    filled = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.FILLED and v)
    assert filled.filled == Decimal(10) and filled.remaining == 0 and filled.avg_fill_price

    fill = await wait_for(lambda: next((f for f in fills if f.commission is not None), None))
    assert fill.order_id == view.order_id and fill.quantity == Decimal(10)
    assert fill.commission > 0 and fill.commission_currency == "USD"

    position = await wait_for(lambda: next((p for p in connected.positions() if p.instrument.symbol == "AAPL"), None))
    assert position.quantity == Decimal(10)
    assert position.market_price and position.avg_cost
    # market value is quantity x price, not the cost basis
    assert position.market_value == pytest.approx(10 * position.market_price, rel=1e-6)


async def test_limit_order_journal_then_cancel(connected, sim_server):
    views = []
    connected.order_changed.connect(views.append)
    aapl = await connected.resolve("AAPL")
    quote = await connected.snapshot(aapl)
    below = (Decimal(str(quote.bid or quote.last)) * Decimal("0.95")).quantize(Decimal("0.01"))
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(5), OrderType.LMT, limit_price=below))
    assert view.journal_id and view.limit_price == below and view.order_type == "LMT"
    working = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.SUBMITTED and v)
    assert working.perm_id and working.remaining == 5
    assert sim_server.stats.count("PLACE_ORDER") == 1
    entry = connected.journal.entry(view.journal_id)
    assert entry.order_id == view.order_id and entry.status == "Submitted"
    assert any(v.order_id == view.order_id for v in connected.open_orders())

    cancelled = await connected.cancel(view.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert connected.journal.entry(view.journal_id).status == "Cancelled"
    assert any(v.order_id == view.order_id for v in connected.completed_orders())
    assert [v.status for v in views if v.order_id == view.order_id][-1] is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFound):
        await connected.cancel(987654)


async def test_quotes_stream_refcounted(connected, sim_server):
    sim_server.set_quote_interval(0.05)
    packets = []
    connected.quotes_updated.connect(packets.append)
    aapl = await connected.resolve("AAPL")
    first = await connected.subscribe(aapl)
    assert first.instrument == aapl
    await connected.subscribe(aapl)  # second viewer: same line
    assert sim_server.stats.count("REQ_MKT_DATA") == 1
    quote = await wait_for(lambda: (q := connected.quote(aapl)) and q.last and q.bid and q.ask and q)
    assert quote.bid <= quote.ask and quote.data_type.label == "live"
    await wait_for(lambda: len(packets) >= 3)
    assert all(isinstance(p, tuple) and p for p in packets)

    connected.unsubscribe(aapl)
    assert connected.quote(aapl) is not None  # one viewer left
    connected.unsubscribe(aapl)
    assert connected.quote(aapl) is None
    await wait_for(lambda: sim_server.stats.count("CANCEL_MKT_DATA") == 1)


async def test_bars_for_chart(connected):
    aapl = await connected.resolve("AAPL")
    bars = await connected.bars(aapl, "1 D", "5 mins")
    assert len(bars) > 10
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    assert bars[0].time < bars[-1].time and bars[0].time.tzinfo is not None


async def test_second_broker_does_not_share_state(tmp_path, sim_server):
    (tmp_path / "a").mkdir()
    a = make_broker(tmp_path / "a")
    try:
        await a.connect(params(sim_server.port, client_id=21, account="DU222222"))
        assert a.status.account == "DU222222"
        summary = await wait_for(lambda: a.account_summary())
        assert summary.account == "DU222222"
    finally:
        await a.close()


async def test_set_account_switches_views_and_refuses_unknown(connected):
    from ibpanel.broker.exceptions import BrokerError

    changes = []
    connected.state_changed.connect(changes.append)
    summaries = []
    connected.account_changed.connect(summaries.append)
    other = next(a for a in connected.accounts if a != connected.status.account)
    connected.set_account(other)
    assert connected.status.account == other and changes[-1].account == other
    await wait_for(lambda: any(s.account == other for s in summaries))
    assert connected.account_summary().account == other
    with pytest.raises(BrokerError):
        connected.set_account("U0000000")


async def test_notices_carry_plain_advice(connected):
    notices = []
    connected.notice.connect(notices.append)
    with pytest.raises(SymbolError):
        await connected.resolve("ZZZZ")
    notice = await wait_for(lambda: next((n for n in notices if n.code == 200), None))
    assert notice.message and notice.severity in ("warning", "error") and notice.text


async def test_request_spelled_loosely_by_an_api_caller(connected, sim_server):
    aapl = await connected.resolve("AAPL")
    quote = await connected.snapshot(aapl)
    price = str((Decimal(str(quote.bid)) * Decimal("0.97")).quantize(Decimal("0.01")))
    request = OrderRequest("aapl", "buy", 3, "lmt", limit_price=price, tif="gtc")  # type: ignore[arg-type]
    assert await connected.check(request) == ()
    view = await connected.place(request)
    working = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.SUBMITTED and v)
    assert working.side is Side.BUY and working.quantity == 3 and working.tif == "GTC"
    assert working.limit_price == Decimal(price)


def _ib_objects(value, seen=None) -> list[str]:
    """Every ib_async object reachable from a model value (dataclasses, tuples, dicts)."""
    import dataclasses

    seen = seen if seen is not None else set()
    if id(value) in seen:
        return []
    seen.add(id(value))
    if type(value).__module__.startswith(("ib_async", "eventkit")):
        return [type(value).__qualname__]
    found = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            found += _ib_objects(getattr(value, field.name), seen)
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            found += _ib_objects(item, seen)
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _ib_objects(key, seen) + _ib_objects(item, seen)
    return found


async def test_nothing_handed_out_is_an_ib_async_object(connected):
    emitted = []
    for event in (connected.state_changed, connected.notice, connected.account_changed, connected.positions_changed,
                  connected.order_changed, connected.fill_added, connected.quotes_updated, connected.pnl_changed):
        event.connect(lambda *args: emitted.append(args))
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(2), OrderType.MKT))
    await wait_for(lambda: connected.order(view.order_id).status is OrderStatus.FILLED and connected.fills())
    await wait_for(lambda: connected.positions() and connected.pnl())
    handed_out = (emitted, connected.status, connected.open_orders(), connected.completed_orders(), connected.fills(),
                  connected.positions(), connected.account_summary(), connected.pnl(), connected.quote(aapl),
                  await connected.bars(aapl, "1 D", "1 hour"), await connected.snapshot(aapl), aapl)
    assert emitted and _ib_objects(handed_out) == []


async def test_account_summary_names_the_real_base_currency(connected):
    summary = await wait_for(lambda: connected.account_summary())
    assert summary.base_currency == "USD"
    assert summary.total_cash is not None and summary.excess_liquidity is not None


async def test_journal_exports_to_csv(connected, tmp_path):
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT, source="api"))
    await wait_for(lambda: connected.journal.entry(view.journal_id).status == "Filled")
    path = tmp_path / "journal.csv"
    assert connected.export_journal_csv(path) >= 1
    text = path.read_text()
    assert view.journal_id in text and "api" in text and "Filled" in text
