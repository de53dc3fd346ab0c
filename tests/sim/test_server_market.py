"""Contract details, market rules, quotes (streaming, snapshot, delayed), bars and time through ib_async."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from ib_async import IB, Contract, MarketOrder, Stock

from tests.helpers import wait_for as _wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ib(sim_server):
    client = IB()
    await client.connectAsync("127.0.0.1", sim_server.port, clientId=11, timeout=5)
    yield client
    client.disconnect()


async def test_qualify_us_and_hk_stocks(ib):
    aapl, tencent, hsbc_smart = Stock("AAPL", "SMART", "USD"), Stock("700", "SEHK", "HKD"), Stock("5", "SMART", "HKD")
    result = await ib.qualifyContractsAsync(aapl, tencent, hsbc_smart)
    assert [c.conId for c in result] == [265598, 1000700, result[2].conId]
    assert aapl.primaryExchange == "NASDAQ" and aapl.exchange == "SMART"
    assert tencent.currency == "HKD" and tencent.exchange == "SEHK"
    details = await ib.reqContractDetailsAsync(Stock("700", "SEHK", "HKD"))
    assert len(details) == 1
    d = details[0]
    assert d.longName == "TENCENT HOLDINGS LTD"
    assert d.timeZoneId == "Asia/Hong_Kong"
    assert d.marketRuleIds and d.minTick == pytest.approx(0.001)
    assert d.tradingHours and d.liquidHours
    assert d.minSize == 100 and d.sizeIncrement == 100  # HK board lot


async def test_unknown_symbol_gets_error_200(ib):
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    details = await ib.reqContractDetailsAsync(Stock("NOSUCH", "SMART", "USD"))
    assert details == []
    assert errors and errors[0][0] == 200


async def test_market_rules_us_and_hk(ib):
    us = await asyncio.wait_for(ib.reqMarketRuleAsync(26), 5)
    assert [(r.lowEdge, r.increment) for r in us] == [(0.0, 0.0001), (1.0, 0.01)]
    hk = await asyncio.wait_for(ib.reqMarketRuleAsync(1723), 5)
    assert len(hk) > 5 and hk[0].lowEdge == 0.0


async def test_streaming_quotes_move_and_stay_on_tick(ib, sim_server):
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    ticker = ib.reqMktData(contract)
    await _wait_for(lambda: ticker.bid > 0 and ticker.ask > 0 and ticker.last > 0)
    first = (ticker.bid, ticker.ask, ticker.time)
    seen = [(ticker.bid, ticker.ask)]
    ticker.updateEvent += lambda t: seen.append((t.bid, t.ask))
    await _wait_for(lambda: len(set(seen)) > 3)  # quotes move
    for bid, ask in seen:  # every update, not a sample of them
        assert ask > bid
        assert round(bid * 100) == pytest.approx(bid * 100, abs=1e-6)
    assert ticker.close > 0 and ticker.high >= ticker.low > 0 and ticker.volume >= 0
    assert ticker.marketDataType == 1
    assert first[0] > 0
    ib.cancelMktData(contract)
    await _wait_for(lambda: not sim_server._subs_by_con)


async def test_snapshot_ends_and_unsubscribes(ib, sim_server):
    contract = Stock("MSFT", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    tickers = await asyncio.wait_for(ib.reqTickersAsync(contract), 5)
    assert tickers[0].bid > 0 and tickers[0].ask > tickers[0].bid
    assert not sim_server._subs_by_con


async def test_delayed_data_without_subscription(ib, sim_server):
    sim_server.faults.set_market_data_live(False)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    live = ib.reqMktData(contract)
    await _wait_for(lambda: 354 in errors)
    assert not live.bid == live.bid or live.bid <= 0  # nothing live arrives
    ib.cancelMktData(contract)
    ib.reqMarketDataType(3)
    msft = Stock("MSFT", "SMART", "USD")
    await ib.qualifyContractsAsync(msft)
    delayed = ib.reqMktData(msft)
    await _wait_for(lambda: 10167 in errors and delayed.marketDataType == 3 and delayed.bid > 0)
    # ib_async maps delayed tick types 66.. onto the same fields
    assert delayed.ask > delayed.bid and delayed.last > 0


async def test_historical_bars_several_sizes_end_at_live_price(ib):
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    # a past Friday morning: the generated history, the same whatever the hour the test runs
    friday = "20261120 11:00:00 US/Eastern"
    minute = await ib.reqHistoricalDataAsync(contract, friday, "1800 S", "1 min", "TRADES", useRTH=False)
    assert len(minute) == 30
    assert isinstance(minute[-1].date, dt.datetime) and minute[-1].date.tzinfo is not None
    assert minute[-1].date.strftime("%H:%M") == "10:59"
    for bar in minute:
        assert bar.high >= max(bar.open, bar.close) and bar.low <= min(bar.open, bar.close)
        assert bar.volume > 0
    daily = await ib.reqHistoricalDataAsync(contract, "", "1 M", "1 day", "TRADES", useRTH=True)
    assert 15 <= len(daily) <= 24
    assert isinstance(daily[-1].date, dt.date)
    ticker = ib.reqMktData(contract)
    await _wait_for(lambda: ticker.last > 0)
    # "always open" practice: the newest minute is the live market at any hour
    latest = await ib.reqHistoricalDataAsync(contract, "", "1 D", "1 min", "TRADES", useRTH=False)
    assert abs(latest[-1].close - ticker.last) / ticker.last < 0.01
    epoch = await ib.reqHistoricalDataAsync(contract, friday, "300 S", "5 secs", "MIDPOINT", useRTH=False,
                                            formatDate=2)
    assert len(epoch) == 60


async def test_rth_history_is_the_regular_session_in_both_clients(ib):
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    end = "20261121 00:00:00 US/Eastern"  # a Saturday: "1 D" is Friday's session
    rth = await ib.reqHistoricalDataAsync(contract, end, "1 D", "5 mins", "TRADES", useRTH=True)
    extended = await ib.reqHistoricalDataAsync(contract, end, "1 D", "5 mins", "TRADES", useRTH=False)
    assert len(rth) == 78 and len(extended) == 192
    assert rth[0].date.strftime("%H:%M") == "09:30" and rth[-1].date.strftime("%H:%M") == "15:55"
    daily = await ib.reqHistoricalDataAsync(contract, end, "1 D", "1 day", "TRADES", useRTH=True)
    assert (daily[-1].open, daily[-1].close) == (rth[0].open, rth[-1].close)
    assert daily[-1].high == max(b.high for b in rth) and daily[-1].low == min(b.low for b in rth)
    hk = Stock("700", "SEHK", "HKD")
    await ib.qualifyContractsAsync(hk)
    hk_bars = await ib.reqHistoricalDataAsync(hk, "20261121 00:00:00 Asia/Hong_Kong", "1 D", "1 hour", "TRADES",
                                              useRTH=True)
    assert [b.date.strftime("%H:%M") for b in hk_bars] == ["09:20", "09:30", "10:00", "11:00", "13:00", "14:00",
                                                           "15:00", "16:00"]


async def test_historical_bad_bar_size_gets_tws_validation_error_with_the_legal_sizes(ib):
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    contract = Contract(conId=265598, exchange="SMART")
    # TWS answers 321, which ib_async takes as a warning: it returns when its own timeout ends
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(contract, "", "1 D", "7 parsecs", "TRADES", useRTH=False, timeout=1), 5)
    assert len(bars) == 0
    assert any(code == 321 and "bar size setting is invalid" in text and "1 hour" in text for code, text in errors)


async def test_current_time(ib):
    now = await ib.reqCurrentTimeAsync()
    assert abs((now - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5


async def test_keep_up_to_date_bars_follow_the_live_price(ib, sim_server):
    sim_server.config.account_push_seconds = 0.1
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    bars = await ib.reqHistoricalDataAsync(contract, "", "300 S", "5 secs", "TRADES", useRTH=False,
                                           keepUpToDate=True)
    updates = []
    bars.updateEvent += lambda bar_list, has_new_bar: updates.append(bar_list[-1].close)
    await _wait_for(lambda: len(updates) >= 3)
    ticker = ib.reqMktData(contract)
    await _wait_for(lambda: ticker.last > 0)
    assert abs(bars[-1].close - ticker.last) / ticker.last < 0.01
    ib.cancelHistoricalData(bars)
    await _wait_for(lambda: not any(s.live_bars for s in sim_server.sessions))


async def test_symbol_search_head_timestamp_positions_multi_and_managed_accounts(ib, sim_server):
    found = await ib.reqMatchingSymbolsAsync("AAP")
    assert found and found[0].contract.symbol == "AAPL" and found[0].contract.conId == 265598
    by_name = await ib.reqMatchingSymbolsAsync("tencent")
    assert any(d.contract.conId == 1000700 for d in by_name)
    head = await ib.reqHeadTimeStampAsync(Stock("AAPL", "SMART", "USD"), "TRADES", useRTH=False, formatDate=1)
    assert head.year < dt.datetime.now().year
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 3, account="DU222222"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    rows = []
    ib.wrapper.positionMulti = lambda req_id, account, model, contract, pos, avg: rows.append((account,
                                                                                              contract.conId, pos))
    ib.client.reqPositionsMulti(4242, "DU222222", "")
    await _wait_for(lambda: ("DU222222", 265598, 3.0) in rows)
    ib.client.reqManagedAccts()
    await _wait_for(lambda: sim_server.stats.count("REQ_MANAGED_ACCTS") == 1)


async def test_live_account_pushes_send_only_the_values_that_changed(ib, sim_server):
    """After a subscription's full download, a live push sends an account value again only when it changed."""
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 100, account="DU222222"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    rows: list[tuple[str, str, str]] = []
    ended: list[int] = []
    ib.wrapper.accountUpdateMulti = lambda req_id, account, model, tag, value, currency: (
        rows.append((tag, currency, value)) if req_id == 4343 else None)
    ib.wrapper.accountUpdateMultiEnd = lambda req_id: ended.append(req_id)
    ib.client.reqAccountUpdatesMulti(4343, "DU222222", "", False)
    await _wait_for(lambda: 4343 in ended)  # the full download
    full = len(rows)
    latest = {(tag, currency): value for tag, currency, value in rows}
    sim_server.config.account_push_seconds = 0.05  # a push every clock step while AAPL moves
    await _wait_for(lambda: len(rows) >= full + 10)  # the values that follow the price come again
    for tag, currency, value in rows[full:]:
        assert latest.get((tag, currency)) != value, f"{tag} {currency} sent again unchanged ({value})"
        latest[(tag, currency)] = value
    again = {tag for tag, _c, _v in rows[full:]}
    assert "NetLiquidation" in again or "UnrealizedPnL" in again
    assert not again & {"AccountCode", "AccountType", "AccountReady"}  # never change: never sent again
    ib.client.cancelAccountUpdatesMulti(4343)
