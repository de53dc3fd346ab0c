"""Order integrity under faults and load (issue 10): price checks that fail closed, orders ahead of market
data, back-pressure, queued orders settled NotSent, one order per identity across an id-sequence restart,
and a frozen TWS noticed. Everything is counted at the practice exchange, not read from a widget."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import NotCancellable, OrderRejected, OrdersBacklogged
from ibpanel.broker.journal import OrderJournal
from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderStatus, OrderType, Side
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config


def _price(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


async def _last(sim: SimServer, instrument: Instrument) -> Decimal:
    return sim.market.top(instrument.con_id).last


def _resting_buy(last: Decimal, quantity: int = 1) -> OrderRequest:
    return OrderRequest("AAPL", Side.BUY, Decimal(quantity), OrderType.LMT, limit_price=_price(last * Decimal("0.95")))


async def _streamed_aapl(broker) -> Instrument:
    """AAPL resolved, its tick rule read and its quote streaming: an order's checks then wait for nothing."""
    aapl = await broker.resolve("AAPL")
    await broker.tick_table(aapl)
    await broker.subscribe(aapl)
    await wait_for(lambda: broker.quote(aapl) is not None and broker.quote(aapl).last is not None)
    return aapl


def _record_arrivals(sim: SimServer) -> list[str]:
    """The names of the requests the exchange receives, in order of arrival."""
    arrivals: list[str] = []
    count = sim.stats.add

    def add(name: str) -> None:
        count(name)
        arrivals.append(name)

    sim.stats.add = add  # type: ignore[method-assign]
    return arrivals


# --- fail closed ------------------------------------------------------------------------------------------
async def test_off_market_limit_and_stop_are_refused_when_no_quote_arrives_and_nothing_is_sent(
        connected, sim_server):
    aapl = await connected.resolve("AAPL")
    await connected.tick_table(aapl)
    last = await _last(sim_server, aapl)
    sim_server.faults.delay_market_data(6.0)  # the 2 s reference snapshot times out
    far_buy_limit = OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=_price(last * Decimal("1.4")))
    through_stop = OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.STP, stop_price=_price(last * Decimal("0.6")))
    for request in (far_buy_limit, through_stop):
        with pytest.raises(OrderRejected) as refused:
            await connected.place(request)
        issue = next(i for i in refused.value.issues if i.code == "no_reference_price")
        assert "try again" in issue.message and "subscribe to its quote" in issue.message
    assert sim_server.stats.count("PLACE_ORDER") == 0
    assert connected.journal.entries() == []  # refused before the intent: nothing to settle

    # the missing price was not remembered: once quotes flow, the same order is judged against the market
    sim_server.faults.delay_market_data(0)
    with pytest.raises(OrderRejected) as judged:
        await connected.place(far_buy_limit)
    assert {i.code for i in judged.value.issues} == {"fat_finger"}
    assert sim_server.stats.count("PLACE_ORDER") == 0


# --- orders first -----------------------------------------------------------------------------------------
@pytest.fixture
async def many_symbols():
    server = SimServer(sim_test_config(synthetic_symbols=80))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_an_order_overtakes_eighty_queued_lookups_and_quotes(tmp_path, many_symbols):
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(many_symbols.port))
        await _streamed_aapl(broker)
        last = await _last(many_symbols, await broker.resolve("AAPL"))
        arrivals = _record_arrivals(many_symbols)
        burst = [asyncio.ensure_future(broker.snapshot(Instrument(
            symbol=inst.symbol, market=Market.US, exchange="SMART", currency="USD", con_id=inst.con_id), timeout=10))
            for inst in many_symbols.book.all() if inst.symbol.startswith("SYM")]
        await asyncio.sleep(0)  # one pass of the loop (not a timed wait): the 80 quote requests queue in the pacer
        assert len(burst) == 80
        view = await broker.place(_resting_buy(last))
        await wait_for(lambda: "PLACE_ORDER" in arrivals, timeout=5)
        ahead = arrivals[:arrivals.index("PLACE_ORDER")]
        assert ahead.count("REQ_MKT_DATA") <= 4  # at most the one slice already on its way
        quotes = await asyncio.gather(*burst)
        assert arrivals.count("REQ_MKT_DATA") == 80 and len(quotes) == 80 and view.journal_id
    finally:
        await broker.close()


# --- back-pressure ----------------------------------------------------------------------------------------
async def test_orders_beyond_the_allowed_wait_are_refused_and_never_sent(tmp_path, sim_server):
    broker = make_broker(tmp_path, max_order_wait=0.3)  # about a dozen orders at 40 messages/s
    try:
        await broker.connect(params(sim_server.port))
        aapl = await _streamed_aapl(broker)
        last = await _last(sim_server, aapl)
        outcomes = await asyncio.gather(*(broker.place(_resting_buy(last)) for _ in range(40)),
                                        return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, OrdersBacklogged)]
        placed = [o for o in outcomes if not isinstance(o, BaseException)]
        assert refused and placed and len(refused) + len(placed) == 40
        assert all(r.retry_after >= 1 and "Send it again" in r.advice for r in refused)
        await wait_for(lambda: sim_server.stats.count("PLACE_ORDER") == len(placed), timeout=5)
        assert len(broker.journal.entries()) == len(placed)  # a refused order leaves no trace to settle
        await wait_for(lambda: all(broker.order_for_journal(v.journal_id).status is OrderStatus.SUBMITTED
                                   for v in placed), timeout=5)
        assert sim_server.stats.count("PLACE_ORDER") == len(placed)
    finally:
        await broker.close()


# --- queued orders settle NotSent -------------------------------------------------------------------------
async def test_close_settles_every_queued_order_as_not_sent(tmp_path, sim_server):
    journal_path = tmp_path / "journal.sqlite3"
    broker = make_broker(tmp_path)
    await broker.connect(params(sim_server.port))
    aapl = await _streamed_aapl(broker)
    last = await _last(sim_server, aapl)
    views = [await broker.place(_resting_buy(last)) for _ in range(30)]  # 30 orders: 0.75 s of pacing
    await broker.close()
    assert broker.not_sent_at_shutdown > 0
    # the exchange handles orders as they are read: once it has seen the socket close, it has seen every order
    await wait_for(lambda: not sim_server.started_sessions())
    reached = {o.order_ref for o in sim_server.exchange.open_orders()}
    with OrderJournal(journal_path) as journal:
        entries = {e.journal_id: e for e in journal.entries()}
    not_sent = [j for j, e in entries.items() if e.status == OrderStatus.NOT_SENT.value]
    assert len(not_sent) == broker.not_sent_at_shutdown
    assert len(reached) + len(not_sent) == 30 == len(entries)
    for view in views:
        assert (f"ibp:{view.journal_id}" in reached) != (view.journal_id in not_sent)  # exactly one of the two


async def test_orders_queued_when_the_connection_drops_are_not_sent_everywhere(connected, sim_server):
    aapl = await _streamed_aapl(connected)
    last = await _last(sim_server, aapl)
    views = [await connected.place(_resting_buy(last)) for _ in range(30)]
    await wait_for(lambda: sim_server.stats.count("PLACE_ORDER") >= 5)  # some left, most are still queued
    sim_server.faults.drop_all()
    await wait_for(lambda: not connected.status.connected, timeout=5)
    await wait_for(lambda: connected.status.connected, timeout=10)  # reconnected and reconciled
    reached = {o.order_ref for o in sim_server.exchange.open_orders()}
    assert reached and len(reached) < 30
    for view in views:
        now = connected.order_for_journal(view.journal_id)
        entry = connected.journal.entry(view.journal_id)
        if f"ibp:{view.journal_id}" in reached:
            assert now.status is OrderStatus.SUBMITTED and entry.status == OrderStatus.SUBMITTED.value
        else:
            assert now.status is OrderStatus.NOT_SENT and entry.status == OrderStatus.NOT_SENT.value
            assert now not in connected.open_orders()
            with pytest.raises(NotCancellable, match="never sent"):
                await connected.cancel(now.order_id)
    assert not [v for v in connected.open_orders() if v.status is OrderStatus.PENDING_SUBMIT]


# --- one order per identity -------------------------------------------------------------------------------
async def test_a_restarted_id_sequence_never_merges_new_orders_with_old_ones(tmp_path):
    first = SimServer(sim_test_config())
    await first.start()
    port = first.port
    broker = make_broker(tmp_path)
    second = None
    try:
        await broker.connect(params(port))
        old = await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
        await wait_for(lambda: broker.order_for_journal(old.journal_id).status is OrderStatus.FILLED)
        await first.stop()  # TWS restarts with no memory: its order ids start again at 1
        second = SimServer(sim_test_config(port=port, seed=7))
        await second.start()
        assert second.exchange.next_order_id_hint() <= old.order_id
        await wait_for(lambda: broker.status.connected, timeout=10)
        aapl = await _streamed_aapl(broker)
        last = await _last(second, aapl)
        resting = await broker.place(_resting_buy(last))
        bought = await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT))
        await wait_for(lambda: broker.order_for_journal(bought.journal_id).status is OrderStatus.FILLED)
        assert old.order_id < resting.order_id < bought.order_id  # seeded above every id the journal has seen
        for view, filled in ((old, 1), (resting, 0), (bought, 1)):
            now = broker.order_for_journal(view.journal_id)
            assert now.quantity == 1 and now.filled == filled, now
        assert {o.order_ref for o in second.exchange.open_orders()} == {f"ibp:{resting.journal_id}"}
        entries = broker.journal.entries()
        assert len({e.order_id for e in entries}) == len(entries) == 3
        assert all(Decimal(e.filled) <= Decimal(e.quantity) for e in entries)
    finally:
        await broker.close()
        await (second or first).stop()


def test_a_fill_that_does_not_match_its_orders_contract_or_side_is_not_attached(tmp_path):
    aapl = Instrument(symbol="AAPL", market=Market.US, exchange="SMART", currency="USD", con_id=265598)
    with OrderJournal(tmp_path / "journal.sqlite3") as journal:
        journal_id = journal.record_intent(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT), aapl, "DU1")
        assert journal.fill_mismatch(journal_id, 265598, "BOT", None) == ""
        assert journal.fill_mismatch(journal_id, 265598, "SLD", "tp") == ""  # a bracket exit sells
        assert "contract" in journal.fill_mismatch(journal_id, 76792991, "BOT", None)
        assert "side" in journal.fill_mismatch(journal_id, 265598, "SLD", None)


# --- a frozen TWS -----------------------------------------------------------------------------------------
async def test_a_frozen_exchange_marks_the_connection_stale_and_orders_are_refused(tmp_path, sim_server):
    broker = make_broker(tmp_path, heartbeat=(0.2, 0.5))
    try:
        await broker.connect(params(sim_server.port))
        aapl = await _streamed_aapl(broker)
        last = await _last(sim_server, aapl)
        seen: list = []
        broker.state_changed.connect(seen.append)
        sim_server.faults.freeze()
        await wait_for(lambda: broker.status.stale, timeout=10)
        assert broker.status.connected and "stopped answering" in broker.status.stale_reason
        assert any(s.stale for s in seen)  # announced to the status bar and /status
        with pytest.raises(OrderRejected) as refused:
            await broker.place(_resting_buy(last))
        assert [i.code for i in refused.value.issues] == ["connection_stale"]
        assert "not sent" in refused.value.issues[0].message
        sim_server.faults.thaw()
        await wait_for(lambda: not broker.status.stale, timeout=5)
        assert sim_server.stats.count("PLACE_ORDER") == 0
        await broker.place(_resting_buy(last))
        await wait_for(lambda: sim_server.stats.count("PLACE_ORDER") == 1)
    finally:
        await broker.close()
