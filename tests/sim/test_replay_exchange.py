"""The practice exchange replaying a CSV of bars: every client sees the replayed quotes over the TWS protocol,
orders fill at the replayed prices and never at a price the replay clock has not reached yet."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock
from ibpanel.sim.replay import open_replay
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(60)

UTC = timezone.utc
# 09:30-09:32 New York on 2025-03-14 (EDT, UTC-4). Each bar's path: open, low, high, close for a rising bar,
# open, high, low, close for a falling one, 15 s apart.
BARS = """time,open,high,low,close,volume
2025-03-14 09:30,200.00,201.00,199.50,200.50,10000
2025-03-14 09:31,200.50,200.80,199.00,199.20,8000
2025-03-14 09:32,199.20,202.00,199.10,201.90,12000
"""
OPEN = datetime(2025, 3, 14, 13, 30, tzinfo=UTC)


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "AAPL.csv"
    path.write_text(BARS)
    return path


@pytest.fixture
async def replayed(csv_path):
    session = open_replay(csv_path, speed=60.0, playing=False)
    server = SimServer(sim_test_config(replay=session))
    await server.start()
    client = IB()
    await client.connectAsync("127.0.0.1", server.port, clientId=31, timeout=5)
    try:
        yield session, server, client
    finally:
        client.disconnect()
        await server.stop()


async def test_csv_path_fills_at_the_replayed_prices_at_60x(replayed):
    session, server, ib = replayed
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    ticker = ib.reqMktData(aapl)
    await wait_for(lambda: ticker.bid == 200.00 and ticker.ask == 200.01)
    market_buy = ib.placeOrder(aapl, MarketOrder("BUY", 100, account="DU111111"))
    await wait_for(lambda: market_buy.orderStatus.status == "Filled")
    assert market_buy.orderStatus.avgFillPrice == 200.01  # the ask of the opening quote
    # 199.01 is first offered at 09:31:30 (the 199.00 low); 202.00 is first bid at 09:32:30
    dip = ib.placeOrder(aapl, LimitOrder("BUY", 100, 199.01, account="DU111111"))
    rally = ib.placeOrder(aapl, LimitOrder("SELL", 200, 202.00, account="DU111111"))
    await wait_for(lambda: dip.orderStatus.status == "Submitted" and rally.orderStatus.status == "Submitted")
    session.clock.play()
    await wait_for(lambda: dip.orderStatus.status == "Filled" and rally.orderStatus.status == "Filled", timeout=15)
    assert dip.orderStatus.avgFillPrice == 199.01
    assert rally.orderStatus.avgFillPrice == 202.00
    dip_time, rally_time = dip.fills[0].execution.time, rally.fills[0].execution.time
    # fills happen on the replay clock, after the quote that offered the price and before the next quote
    assert OPEN + timedelta(seconds=90) <= dip_time < OPEN + timedelta(seconds=105)
    assert OPEN + timedelta(seconds=150) <= rally_time < OPEN + timedelta(seconds=165)


async def test_no_fill_before_the_replay_clock_reaches_the_price(replayed):
    session, server, ib = replayed
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    ticker = ib.reqMktData(aapl)
    await wait_for(lambda: ticker.bid == 200.00)
    # the recording reaches 199.00 later in the day; paused at the open the order must rest
    dip = ib.placeOrder(aapl, LimitOrder("BUY", 100, 199.01, account="DU111111"))
    await wait_for(lambda: dip.orderStatus.status == "Submitted")
    ticks_before = len(ticker.ticks)
    steps = server.market.price_source.steps
    await wait_for(lambda: server.market.price_source.steps >= steps + 5)  # several quote-clock steps while paused
    await ib.reqCurrentTimeAsync()  # anything they sent has arrived
    assert dip.orderStatus.status == "Submitted" and dip.orderStatus.filled == 0
    assert ticker.bid == 200.00 and len(ticker.ticks) == ticks_before


async def test_pause_stops_the_quotes_and_play_resumes_them(replayed):
    session, server, ib = replayed
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    seen = []
    ticker = ib.reqMktData(aapl)
    ticker.updateEvent += lambda t: seen.append(t.last)
    await wait_for(lambda: ticker.last == 200.00)
    session.clock.play()
    await wait_for(lambda: ticker.last == 200.50, timeout=10)
    session.clock.pause()
    stopped_at = session.clock.now()
    feed = server.market.price_source
    count, steps = feed.applied, feed.steps
    await wait_for(lambda: feed.steps >= steps + 10)  # the quote clock kept stepping, paused
    assert session.clock.now() == stopped_at
    assert feed.applied == count
    session.clock.play()
    await wait_for(lambda: feed.applied > count, timeout=10)


async def test_contract_details_carry_the_recorded_tick_rule(replayed):
    session, server, ib = replayed
    [details] = await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
    rule_id = int(details.marketRuleIds.split(",")[0])
    increments = await ib.reqMarketRuleAsync(rule_id)
    recorded = session.recording.instruments[0].tick_rows
    assert [(i.lowEdge, i.increment) for i in increments] == [(float(low), float(inc)) for low, inc in recorded]
    assert details.timeZoneId == "US/Eastern" and details.liquidHours == "20250314:0930-20250314:1600"


async def test_bars_come_from_the_replayed_day_up_to_the_replay_clock(replayed):
    session, server, ib = replayed
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    session.clock.seek(OPEN + timedelta(seconds=100))  # inside the second bar
    bars = await ib.reqHistoricalDataAsync(aapl, "", "600 S", "1 min", "TRADES", useRTH=False, formatDate=2)
    assert [(b.open, b.high, b.low, b.close) for b in bars] == [(200.00, 201.00, 199.50, 200.50),
                                                                (200.50, 200.80, 199.00, 199.00)]


async def test_an_order_before_the_first_quote_waits_for_it(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("symbol,time,open,high,low,close,volume\n0700.HK,2025-03-14 09:30,500,501,499,500.5,1000\n"
                    "AAPL,2025-03-14 09:30,200,201,199,200.5,1000\n")
    session = open_replay(path, speed=60.0, playing=False)
    server = SimServer(sim_test_config(replay=session))
    await server.start()
    ib = IB()
    await ib.connectAsync("127.0.0.1", server.port, clientId=32, timeout=5)
    try:
        aapl = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(aapl)
        # the replay opens in Hong Kong, 12 hours before AAPL's first quote: its open price is not known yet
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, account="DU111111", outsideRth=True))
        await wait_for(lambda: trade.orderStatus.status == "PreSubmitted")
        session.clock.seek(OPEN)  # AAPL's first quote: 09:30 New York
        await wait_for(lambda: trade.orderStatus.status == "Filled")
        assert trade.orderStatus.avgFillPrice == 200.01
        assert trade.fills[0].execution.time >= OPEN
    finally:
        ib.disconnect()
        await server.stop()


async def test_a_replay_is_a_private_exchange_that_leaves_the_profiles_practice_account_alone(csv_path):
    from ibpanel import paths
    from ibpanel.runtime.practice import practice_owner, start_practice

    session = open_replay(csv_path, playing=False)
    practice = await start_practice("replayer", replay=session)
    ib = IB()
    try:
        assert practice.owner and practice_owner("replayer") is None  # the profile's exchange stays free
        await ib.connectAsync(practice.host, practice.port, clientId=33, timeout=5)
        ticker = ib.reqMktData((await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD")))[0])
        await wait_for(lambda: ticker.bid == 200.00 and ticker.ask == 200.01)
    finally:
        ib.disconnect()
        await practice.stop()
    assert not paths.practice_state_path("replayer").exists()


async def test_the_exchange_clock_and_live_bars_follow_the_replay(replayed):
    session, server, ib = replayed
    session.clock.seek(OPEN + timedelta(seconds=70))
    assert await ib.reqCurrentTimeAsync() == OPEN + timedelta(seconds=70)  # paused: the replay clock stands
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    bars = await ib.reqHistoricalDataAsync(aapl, "", "600 S", "1 min", "TRADES", useRTH=False, formatDate=2,
                                           keepUpToDate=True)
    session.clock.play()
    await wait_for(lambda: len(bars) == 3, timeout=15)  # the 09:32 bar opens on the replay clock
    assert bars[-1].date == OPEN + timedelta(minutes=2)


async def test_streamed_trades_carry_the_replayed_time(replayed):
    """Tick 45 (last trade time) is the replay clock's, so a chart draws a replayed day on that day."""
    session, server, ib = replayed
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    ticker = ib.reqMktData(aapl)
    session.clock.play()
    await wait_for(lambda: ticker.lastTimestamp is not None, timeout=15)
    printed = ticker.lastTimestamp
    assert OPEN <= printed <= OPEN + timedelta(minutes=3), printed
