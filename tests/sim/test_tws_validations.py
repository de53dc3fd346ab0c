"""TWS's own validations and codes: duplicate order ids (103), orders without exchange or currency (321),
historical requests TWS refuses (321), bad generic tick lists (321), a third account summary (322); and the
ticks and fields TWS fills in: generic ticks 233 (RTVolume) and 236 (shortable), tick 45 (last trade time),
the commission of openOrder after a fill."""

from __future__ import annotations

import math
import threading
import time
from decimal import Decimal

import pytest
from ib_async import IB, Contract, LimitOrder, MarketOrder, Stock

from tests.helpers import wait_for, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ib(sim):
    sim.set_quote_interval(0.05)
    client = IB()
    await client.connectAsync("127.0.0.1", sim.port, clientId=71, timeout=5)
    client.test_errors = []
    client.errorEvent += lambda req_id, code, text, contract: client.test_errors.append((req_id, code, text))
    yield client
    client.disconnect()


def _orders_at_exchange(sim, client_id: int) -> int:
    return sim.call(lambda: len(sim.server.exchange.orders_of(client_id)))


async def test_order_id_below_the_highest_used_is_refused_as_duplicate(ib, sim):
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    first = ib.client.getReqId() + 10
    ib.client.placeOrder(first, spy, LimitOrder("BUY", 1, 1.00, account="DU111111"))
    await wait_for(lambda: _orders_at_exchange(sim, 71) == 1)
    ib.client.placeOrder(first - 1, spy, LimitOrder("BUY", 1, 1.00, account="DU111111"))
    await wait_for(lambda: any(e[:2] == (first - 1, 103) for e in ib.test_errors))
    assert any(e[2] == "Duplicate order id" for e in ib.test_errors if e[1] == 103)
    assert _orders_at_exchange(sim, 71) == 1  # nothing reached the exchange
    # a modification of the existing order is not a duplicate
    ib.client.placeOrder(first, spy, LimitOrder("BUY", 2, 1.00, account="DU111111"))
    await wait_for(lambda: sim.call(lambda: sim.server.exchange.order(71, first).total_qty) == Decimal(2))


@pytest.mark.parametrize("contract, missing", [
    (Contract(symbol="AAPL", secType="STK", currency="USD"), "exchange"),
    (Contract(symbol="AAPL", secType="STK", exchange="SMART"), "currency"),
])
async def test_order_without_exchange_or_currency_is_refused(ib, sim, contract, missing):
    order_id = ib.client.getReqId()
    ib.client.placeOrder(order_id, contract, MarketOrder("BUY", 1, account="DU111111"))
    await wait_for(lambda: any(e[:2] == (order_id, 321) and f"enter {missing}" in e[2] for e in ib.test_errors))
    assert _orders_at_exchange(sim, 71) == 0


@pytest.mark.parametrize("end, bar, what, keep, text", [
    ("", "1 hour", "LAST_PRICE", False, "Invalid whatToShow"),
    ("", "90 mins", "TRADES", False, "bar size setting is invalid"),
    ("20250102 16:00:00 US/Eastern", "1 min", "TRADES", True, "End date not supported with live updates"),
])
async def test_historical_requests_tws_refuses_get_321(ib, end, bar, what, keep, text):
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    req_id = ib.client.getReqId()
    ib.client.reqHistoricalData(req_id, spy, end, "1 D", bar, what, 0, 1, keep, [])
    await wait_for(lambda: any(e[:2] == (req_id, 321) and text in e[2] for e in ib.test_errors))


async def test_bad_generic_tick_list_is_refused_with_the_legal_list(ib):
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    ticker = ib.reqMktData(spy, "233,999")
    req_id = ib.wrapper.ticker2ReqId["mktData"][ticker]
    await wait_for(lambda: any(e[:2] == (req_id, 321) and "Incorrect generic tick list of 233,999" in e[2]
                               and "233(RTVolume)" in e[2] for e in ib.test_errors))
    assert math.isnan(ticker.bid)  # the line was not opened


async def test_generic_ticks_233_236_and_last_timestamp_are_sent(ib):
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    ticker = ib.reqMktData(spy, "233,236")
    await wait_for(lambda: ticker.shortable == 3.0 and ticker.shortableShares > 0)
    await wait_for(lambda: ticker.lastTimestamp is not None)
    assert abs(ticker.lastTimestamp.timestamp() - time.time()) < 60
    await wait_for(lambda: ticker.rtVolume > 0 and ticker.rtTime is not None, timeout=10)
    assert ticker.vwap > 0 and abs(ticker.vwap - ticker.last) / ticker.last < 0.05


async def test_third_concurrent_account_summary_is_refused(ib, sim):
    for req_id in (9001, 9002):
        ib.client.reqAccountSummary(req_id, "All", "NetLiquidation")
    ib.client.reqAccountSummary(9003, "All", "NetLiquidation")
    await wait_for(lambda: any(e[:2] == (9003, 322) and "Maximum number of account summary" in e[2]
                               for e in ib.test_errors))
    assert not [e for e in ib.test_errors if e[0] in (9001, 9002)]
    ib.client.cancelAccountSummary(9001)  # a freed slot can be used again
    ib.client.reqAccountSummary(9004, "All", "NetLiquidation")
    await wait_for(lambda: sim.call(lambda: set(sim.server.by_client_id[71].summary_subs)) == {9002, 9004})
    assert not [e for e in ib.test_errors if e[0] == 9004]


def test_open_order_after_a_fill_carries_the_commission(sim):
    from ibapi.client import EClient
    from ibapi.contract import Contract as IbContract
    from ibapi.order import Order
    from ibapi.wrapper import EWrapper

    class App(EWrapper, EClient):
        def __init__(self):
            EWrapper.__init__(self)
            EClient.__init__(self, wrapper=self)
            self.next_id = None
            self.states: list[tuple[str, float, str]] = []
            self.reports: list[float] = []

        def nextValidId(self, orderId):  # noqa: N802 - ibapi callback names
            self.next_id = orderId

        def openOrder(self, orderId, contract, order, orderState):  # noqa: N802
            commission = getattr(orderState, "commissionAndFees", None)
            if commission is None:
                commission = orderState.commission
            self.states.append((orderState.status, commission, orderState.commissionAndFeesCurrency
                                if hasattr(orderState, "commissionAndFeesCurrency")
                                else orderState.commissionCurrency))

        def commissionAndFeesReport(self, report):  # noqa: N802
            self.reports.append(report.commissionAndFees)

        def commissionReport(self, report):  # noqa: N802 - older ibapi name
            self.reports.append(report.commission)

    app = App()
    app.connect("127.0.0.1", sim.port, clientId=72)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        wait_until(lambda: app.next_id is not None)
        contract = IbContract()
        contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
        order = Order()
        order.action, order.orderType, order.totalQuantity, order.account = "BUY", "MKT", Decimal(300), "DU111111"
        app.placeOrder(app.next_id, contract, order)
        wait_until(lambda: app.reports and any(s[0] == "Filled" for s in app.states))
        filled = [s for s in app.states if s[0] == "Filled"]
        assert filled, app.states
        assert filled[-1][1] == pytest.approx(sum(app.reports)) and filled[-1][1] >= 1.0  # 300 x 0.005 = 1.50
        assert filled[-1][2] == "USD"
    finally:
        app.disconnect()
        reader.join(5)
