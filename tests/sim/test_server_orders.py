"""Orders end to end through ib_async: place, fill, partial, modify, cancel, global cancel, what-if,
executions with commissions, completed orders, positions, account values, summary and PnL."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock, StopOrder

from tests.helpers import wait_for as _wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ib(sim_server):
    client = IB()
    await client.connectAsync("127.0.0.1", sim_server.port, clientId=21, timeout=5)
    yield client
    client.disconnect()


async def _quote(ib: IB, contract) -> tuple[float, float]:
    tickers = await ib.reqTickersAsync(contract)
    return tickers[0].bid, tickers[0].ask


async def test_market_order_fills_with_execution_commission_position(ib):
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 100, account="DU111111", orderRef="t-mkt"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    assert trade.order.permId > 0
    assert trade.order.clientId == 21
    assert trade.orderStatus.filled == 100 and trade.orderStatus.remaining == 0
    assert trade.orderStatus.avgFillPrice > 0
    await _wait_for(lambda: trade.fills and trade.fills[-1].commissionReport.commission > 0)
    fill = trade.fills[0]
    assert fill.execution.side == "BOT" and fill.execution.orderRef == "t-mkt"
    assert fill.execution.acctNumber == "DU111111"
    assert fill.commissionReport.currency == "USD"
    assert fill.execution.execId == fill.commissionReport.execId
    await _wait_for(lambda: any(p.contract.conId == 265598 for p in ib.positions("DU111111")))
    pos = [p for p in ib.positions("DU111111") if p.contract.conId == 265598][0]
    assert pos.position == 100 and pos.avgCost > trade.orderStatus.avgFillPrice  # avg cost includes commission
    await asyncio.wait_for(ib.reqAccountUpdatesAsync("DU111111"), 5)  # portfolio: one account at a time
    item = [i for i in ib.portfolio("DU111111") if i.contract.conId == 265598][0]
    assert item.position == 100 and item.marketValue > 0
    assert not [e for e in errors if e[0] < 2000]


async def test_limit_order_rests_then_modify_to_fill_then_completed(ib):
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    bid, ask = await _quote(ib, aapl)
    order = LimitOrder("BUY", 10, round(bid * 0.9, 2), account="DU222222", tif="GTC")
    trade = ib.placeOrder(aapl, order)
    await _wait_for(lambda: trade.orderStatus.status == "Submitted")
    perm = trade.order.permId
    assert perm > 0 and ib.openTrades()
    order.lmtPrice = round(ask * 1.05, 2)  # marketable: fills at the touch
    ib.placeOrder(aapl, order)
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    assert trade.order.permId == perm
    assert trade.orderStatus.avgFillPrice <= order.lmtPrice
    completed = await ib.reqCompletedOrdersAsync(False)
    mine = [t for t in completed if t.order.permId == perm]
    assert mine and mine[0].orderStatus.status == "Filled"


async def test_cancel_gets_202_and_cancelled(ib):
    msft = Stock("MSFT", "SMART", "USD")
    await ib.qualifyContractsAsync(msft)
    bid, _ = await _quote(ib, msft)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    trade = ib.placeOrder(msft, LimitOrder("BUY", 5, round(bid * 0.8, 2), account="DU111111"))
    await _wait_for(lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    await _wait_for(lambda: trade.orderStatus.status == "Cancelled")
    assert 202 in errors


async def test_global_cancel_and_stop_order(ib):
    msft = Stock("MSFT", "SMART", "USD")
    await ib.qualifyContractsAsync(msft)
    bid, ask = await _quote(ib, msft)
    resting = ib.placeOrder(msft, LimitOrder("BUY", 5, round(bid * 0.8, 2), account="DU111111"))
    stop = ib.placeOrder(msft, StopOrder("BUY", 5, round(ask * 1.5, 2), account="DU111111"))
    await _wait_for(lambda: resting.orderStatus.status == "Submitted" and stop.orderStatus.status in
                    ("PreSubmitted", "Submitted"))
    ib.reqGlobalCancel()
    await _wait_for(lambda: resting.orderStatus.status == "Cancelled" and stop.orderStatus.status == "Cancelled")


async def test_partial_fills_of_a_large_market_order(ib):
    tencent = Stock("700", "SEHK", "HKD")
    await ib.qualifyContractsAsync(tencent)
    trade = ib.placeOrder(tencent, MarketOrder("BUY", 20000, account="DU111111"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled", 8)
    await _wait_for(lambda: len(trade.fills) >= 2)
    assert sum(f.execution.shares for f in trade.fills) == 20000
    assert {f.execution.exchange for f in trade.fills} == {"SEHK"}
    assert all(f.commissionReport.currency == "HKD" for f in trade.fills)


async def test_hk_odd_lot_and_off_tick_rejected_like_tws(ib):
    tencent = Stock("700", "SEHK", "HKD")
    await ib.qualifyContractsAsync(tencent)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    odd = ib.placeOrder(tencent, LimitOrder("BUY", 150, 500, account="DU111111"))  # odd above one lot
    await _wait_for(lambda: any(e[0] == odd.order.orderId for e in errors))
    off = ib.placeOrder(tencent, LimitOrder("BUY", 100, 500.01, account="DU111111"))
    await _wait_for(lambda: any(e == (off.order.orderId, 110) for e in errors))
    assert (odd.order.orderId, 321) in errors


async def test_what_if_has_numeric_margins_and_commission(ib):
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    state = await asyncio.wait_for(ib.whatIfOrderAsync(aapl, MarketOrder("BUY", 100, account="DU111111")), 5)
    assert float(state.initMarginChange) > 0
    assert float(state.equityWithLoanAfter) > 0
    assert state.commission > 0 and state.commissionCurrency == "USD"
    assert not ib.openTrades()


async def test_executions_account_summary_and_pnl(ib):
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, account="DU111111"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    fills = await ib.reqExecutionsAsync()
    assert any(f.execution.permId == trade.order.permId for f in fills)
    summary = await asyncio.wait_for(ib.accountSummaryAsync("DU111111"), 5)
    tags = {v.tag for v in summary}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower"} <= tags
    pnl = ib.reqPnL("DU111111")
    single = ib.reqPnLSingle("DU111111", "", 265598)
    await _wait_for(lambda: pnl.unrealizedPnL == pnl.unrealizedPnL and single.position == 10)
    assert single.value > 0
    ib.cancelPnL("DU111111")
    ib.cancelPnLSingle("DU111111", "", 265598)


async def test_account_values_update_after_fill(ib):
    def cash():
        return [float(v.value) for v in ib.accountValues("DU222222") if v.tag == "TotalCashValue"
                and v.currency == "USD"]

    before = cash()
    assert before
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 50, account="DU222222"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    await _wait_for(lambda: cash() and cash()[0] < before[0] - 1000)


async def test_fills_and_completed_orders_visible_after_reconnect(sim_server):
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim_server.port, clientId=31, timeout=5)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    trade = ib.placeOrder(aapl, MarketOrder("SELL", 10, account="DU111111"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    perm = trade.order.permId
    ib.disconnect()
    await _wait_for(lambda: 31 not in sim_server.by_client_id)  # the exchange has let the client id go
    again = IB()
    await again.connectAsync("127.0.0.1", sim_server.port, clientId=31, timeout=5)
    try:
        assert any(f.execution.permId == perm for f in again.fills())
        completed = await again.reqCompletedOrdersAsync(False)
        assert any(t.order.permId == perm and t.orderStatus.status == "Filled" for t in completed)
        assert any(p.contract.conId == 265598 and p.position == -10 for p in again.positions("DU111111"))
    finally:
        again.disconnect()
