"""No client waits forever: every request ib_async and IB's ibapi can send gets an answer within 2 s.

ib_async: every ``*Async`` request method of ``IB`` returns within 2 s (a list, a value, or a request error).
ibapi: every EClient request that carries a request id gets a callback or an error with that id; the
requests without an id that expect a list get that list.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from decimal import Decimal

import pytest
from ib_async import (
    IB,
    ExecutionFilter,
    LimitOrder,
    Option,
    ScannerSubscription,
    Stock,
    WshEventData,
)

from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(120)

ANSWER_SECONDS = 2.0


def _ib_async_calls(ib: IB, spy: Stock, option: Option) -> dict:
    """Every *Async request method of IB with arguments; the key is the method name."""
    return {
        "qualifyContractsAsync": lambda: ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD")),
        "reqTickersAsync": lambda: ib.reqTickersAsync(spy),
        "whatIfOrderAsync": lambda: ib.whatIfOrderAsync(spy, LimitOrder("BUY", 1, 1.0, account="DU111111")),
        "reqCurrentTimeAsync": ib.reqCurrentTimeAsync,
        "reqAccountUpdatesAsync": lambda: ib.reqAccountUpdatesAsync("DU111111"),
        "reqAccountUpdatesMultiAsync": lambda: ib.reqAccountUpdatesMultiAsync("DU111111"),
        "accountSummaryAsync": lambda: ib.accountSummaryAsync("DU111111"),
        "reqAccountSummaryAsync": ib.reqAccountSummaryAsync,
        "reqOpenOrdersAsync": ib.reqOpenOrdersAsync,
        "reqAllOpenOrdersAsync": ib.reqAllOpenOrdersAsync,
        "reqCompletedOrdersAsync": lambda: ib.reqCompletedOrdersAsync(False),
        "reqExecutionsAsync": lambda: ib.reqExecutionsAsync(ExecutionFilter()),
        "reqPositionsAsync": ib.reqPositionsAsync,
        "reqContractDetailsAsync": lambda: ib.reqContractDetailsAsync(spy),
        "reqMatchingSymbolsAsync": lambda: ib.reqMatchingSymbolsAsync("SP"),
        "reqMarketRuleAsync": lambda: ib.reqMarketRuleAsync(26),
        "reqHistoricalDataAsync": lambda: ib.reqHistoricalDataAsync(spy, "", "1 D", "1 hour", "TRADES", False),
        "reqHistoricalScheduleAsync": lambda: ib.reqHistoricalScheduleAsync(spy, 2),
        "reqHistoricalTicksAsync": lambda: ib.reqHistoricalTicksAsync(spy, "", "20250102 16:00:00 US/Eastern", 10,
                                                                      "TRADES", False),
        "reqHeadTimeStampAsync": lambda: ib.reqHeadTimeStampAsync(spy, "TRADES", False, 1),
        "reqSmartComponentsAsync": lambda: ib.reqSmartComponentsAsync("9c0001"),
        "reqMktDepthExchangesAsync": ib.reqMktDepthExchangesAsync,
        "reqHistogramDataAsync": lambda: ib.reqHistogramDataAsync(spy, False, "1 week"),
        "reqFundamentalDataAsync": lambda: ib.reqFundamentalDataAsync(spy, "ReportsFinSummary"),
        "reqScannerDataAsync": lambda: ib.reqScannerDataAsync(ScannerSubscription(
            instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN")),
        "reqScannerParametersAsync": ib.reqScannerParametersAsync,
        "calculateImpliedVolatilityAsync": lambda: ib.calculateImpliedVolatilityAsync(option, 5.0, 500.0),
        "calculateOptionPriceAsync": lambda: ib.calculateOptionPriceAsync(option, 0.2, 500.0),
        "reqSecDefOptParamsAsync": lambda: ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId),
        "reqNewsProvidersAsync": ib.reqNewsProvidersAsync,
        "reqNewsArticleAsync": lambda: ib.reqNewsArticleAsync("BRFG", "BRFG$04fb9da2"),
        "reqHistoricalNewsAsync": lambda: ib.reqHistoricalNewsAsync(spy.conId, "BRFG", "", "", 10),
        "requestFAAsync": lambda: ib.requestFAAsync(1),
        "getWshMetaDataAsync": ib.getWshMetaDataAsync,
        "getWshEventDataAsync": lambda: ib.getWshEventDataAsync(WshEventData(conId=spy.conId)),
        "reqUserInfoAsync": ib.reqUserInfoAsync,
    }


async def test_every_ib_async_request_method_returns_within_two_seconds(sim):
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=61, timeout=5)
    try:
        spy = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        option = Option("SPY", "20300117", 500, "C", "SMART")
        calls = _ib_async_calls(ib, spy, option)
        every_async = {name for name, _ in inspect.getmembers(IB, inspect.isfunction)
                       if name.endswith("Async") and name not in ("connectAsync", "timeRangeAsync")}
        assert set(calls) == every_async, "a new ib_async request method needs a case here"
        slow = {}
        answers = {}
        for name, call in calls.items():
            started = time.monotonic()
            try:
                answers[name] = await asyncio.wait_for(call(), ANSWER_SECONDS)
            except asyncio.TimeoutError:
                slow[name] = "no answer"
            except Exception as exc:  # a request error is an answer
                answers[name] = exc
            if time.monotonic() - started > ANSWER_SECONDS:
                slow[name] = f"{time.monotonic() - started:.1f} s"
        assert not slow
        # the lists come back as lists, empty where the practice exchange has nothing
        assert answers["reqNewsProvidersAsync"] == []
        assert answers["reqMktDepthExchangesAsync"] == []
        assert answers["reqSecDefOptParamsAsync"] == []
        assert list(answers["reqScannerDataAsync"]) == []
        assert "ScanParameterResponse" in answers["reqScannerParametersAsync"]
        assert [c.exchange for c in answers["reqSmartComponentsAsync"]][:2] == ["NYSE", "ARCA"]
        assert answers["reqHistogramDataAsync"] and all(h.count > 0 for h in answers["reqHistogramDataAsync"])
        assert len(answers["reqHistoricalTicksAsync"]) == 1 and answers["reqHistoricalTicksAsync"][0].price > 0
        assert "ListOfGroups" in answers["requestFAAsync"]
    finally:
        ib.disconnect()


async def test_streaming_side_requests_deliver_data(sim):
    """Tick-by-tick and real-time bars stream from the live quote; the others end with a TWS error code."""
    sim.set_quote_interval(0.05)
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=62, timeout=5)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append((req_id, code))
    try:
        spy = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        ticker = ib.reqTickByTickData(spy, "BidAsk")
        bars = ib.reqRealTimeBars(spy, 5, "TRADES", False)
        depth = ib.reqMktDepth(spy, 5)

        await wait_for(lambda: ticker.tickByTicks and ticker.tickByTicks[-1].askPrice > ticker.tickByTicks[-1].bidPrice)
        await wait_for(lambda: len(bars) >= 1 and bars[-1].high >= bars[-1].low > 0, timeout=8)
        depth_id = ib.wrapper.ticker2ReqId["mktDepth"][depth]
        await wait_for(lambda: (depth_id, 354) in errors)  # no depth subscription on a paper account
    finally:
        ib.disconnect()


# ----- ibapi -------------------------------------------------------------------------------------------------
def _ibapi_recorder():
    from ibapi.client import EClient
    from ibapi.wrapper import EWrapper

    class Answers(EWrapper, EClient):
        """Records the reqId of every callback that carries one, and the id-less lists by name."""

        def __init__(self):
            EWrapper.__init__(self)
            EClient.__init__(self, wrapper=self)
            self.seen: dict[object, str] = {}
            self.next_id = None
            self.lock = threading.Lock()

        def _mark(self, key, what):
            with self.lock:
                self.seen.setdefault(key, what)

        def nextValidId(self, orderId):  # noqa: N802 - ibapi callback names
            self.next_id = orderId

        def error(self, reqId, *args):  # errorTime was added in newer ibapi; accept both shapes
            code = args[1] if len(args) >= 3 and isinstance(args[1], int) else args[0]
            if reqId != -1:
                self._mark(reqId, f"error {code}")
            else:
                self._mark(("error", code), "error")

    def recorder(method_name):
        def callback(self, *args, **kwargs):
            first = args[0] if args else None
            self._mark(first if isinstance(first, int) else method_name, method_name)
            self._mark(method_name, method_name)

        return callback

    for name, _ in inspect.getmembers(EWrapper, inspect.isfunction):
        if name not in ("error", "nextValidId", "logAnswer") and not name.startswith("_"):
            setattr(Answers, name, recorder(name))
    return Answers()


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)  # poll interval of this condition wait (IB's client answers on its reader thread)
    return True


def test_every_ibapi_request_gets_an_answer_with_its_request_id(sim):
    from ibapi.contract import Contract
    from ibapi.order import Order
    from ibapi.scanner import ScannerSubscription as IbScanner

    app = _ibapi_recorder()
    app.connect("127.0.0.1", sim.port, clientId=63)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        assert _wait(lambda: app.next_id is not None, 5)
        spy = Contract()
        spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
        option = Contract()
        option.symbol, option.secType, option.exchange, option.currency = "SPY", "OPT", "SMART", "USD"
        option.lastTradeDateOrContractMonth, option.strike, option.right = "20300117", 500, "C"
        order = Order()
        order.action, order.orderType, order.totalQuantity, order.lmtPrice = "BUY", "LMT", Decimal(1), 1.0
        order.account = "DU111111"
        scan = IbScanner()
        scan.instrument, scan.locationCode, scan.scanCode = "STK", "STK.US.MAJOR", "TOP_PERC_GAIN"
        from ibapi.common import WshEventData as IbWsh

        wsh = IbWsh()
        wsh.conId = 756733
        # (request id, call): every EClient request that carries an id
        with_id = [
            (1001, "reqMktData", lambda i: app.reqMktData(i, spy, "", False, False, [])),
            (1002, "reqContractDetails", lambda i: app.reqContractDetails(i, spy)),
            (1003, "reqMktDepth", lambda i: app.reqMktDepth(i, spy, 5, False, [])),
            (1004, "reqHistoricalData", lambda i: app.reqHistoricalData(i, spy, "", "1 D", "1 hour", "TRADES", 0, 1, False, [])),
            (1005, "exerciseOptions", lambda i: app.exerciseOptions(i, option, 1, 1, "DU111111", 0, "", "", False)),
            (1006, "reqScannerSubscription", lambda i: app.reqScannerSubscription(i, scan, [], [])),
            (1007, "reqRealTimeBars", lambda i: app.reqRealTimeBars(i, spy, 5, "TRADES", False, [])),
            (1009, "calculateImpliedVolatility", lambda i: app.calculateImpliedVolatility(i, option, 5.0, 500.0, [])),
            (1010, "calculateOptionPrice", lambda i: app.calculateOptionPrice(i, option, 0.2, 500.0, [])),
            (1011, "reqAccountSummary", lambda i: app.reqAccountSummary(i, "All", "NetLiquidation")),
            (1012, "queryDisplayGroups", lambda i: app.queryDisplayGroups(i)),
            (1013, "subscribeToGroupEvents", lambda i: app.subscribeToGroupEvents(i, 1)),
            (1014, "updateDisplayGroup", lambda i: app.updateDisplayGroup(i, "8314@SMART")),
            (1015, "reqPositionsMulti", lambda i: app.reqPositionsMulti(i, "DU111111", "")),
            (1016, "reqAccountUpdatesMulti", lambda i: app.reqAccountUpdatesMulti(i, "DU111111", "", False)),
            (1017, "reqSecDefOptParams", lambda i: app.reqSecDefOptParams(i, "SPY", "", "STK", 756733)),
            (1018, "reqSoftDollarTiers", lambda i: app.reqSoftDollarTiers(i)),
            (1019, "reqMatchingSymbols", lambda i: app.reqMatchingSymbols(i, "SP")),
            (1020, "reqSmartComponents", lambda i: app.reqSmartComponents(i, "9c0001")),
            (1021, "reqNewsArticle", lambda i: app.reqNewsArticle(i, "BRFG", "BRFG$04fb9da2", [])),
            (1022, "reqHistoricalNews", lambda i: app.reqHistoricalNews(i, 756733, "BRFG", "", "", 10, [])),
            (1023, "reqHeadTimeStamp", lambda i: app.reqHeadTimeStamp(i, spy, "TRADES", 0, 1)),
            (1024, "reqHistogramData", lambda i: app.reqHistogramData(i, spy, False, "1 week")),
            (1025, "reqPnL", lambda i: app.reqPnL(i, "DU111111", "")),
            (1026, "reqPnLSingle", lambda i: app.reqPnLSingle(i, "DU111111", "", 756733)),
            (1027, "reqHistoricalTicks", lambda i: app.reqHistoricalTicks(i, spy, "", "20250102 16:00:00 US/Eastern", 10, "TRADES", 0,
                                                    False, [])),
            (1028, "reqTickByTickData", lambda i: app.reqTickByTickData(i, spy, "Last", 0, False)),
            (1029, "reqWshMetaData", lambda i: app.reqWshMetaData(i)),
            (1030, "reqWshEventData", lambda i: app.reqWshEventData(i, wsh)),
            (1031, "reqUserInfo", lambda i: app.reqUserInfo(i)),
            (1032, "reqExecutions", lambda i: app.reqExecutions(i, _execution_filter())),
            (1033, "replaceFA", lambda i: app.replaceFA(i, 1, '<?xml version="1.0"?><ListOfGroups/>')),
        ]
        order_id = app.next_id
        with_id.append((order_id, "placeOrder", lambda i: app.placeOrder(i, spy, order)))
        silent = []
        for req_id, name, call in with_id:
            call(req_id)
            # a real-time bar comes when its 5-second bar closes, as in TWS
            limit = 6.0 if name == "reqRealTimeBars" else ANSWER_SECONDS
            if not _wait(lambda r=req_id: r in app.seen, limit):
                silent.append(req_id)
        assert not silent, f"no answer for request ids {silent}"
        # requests without an id that expect one answer: the answer arrives
        without_id = [
            ("currentTime", app.reqCurrentTime), ("openOrderEnd", app.reqOpenOrders),
            ("openOrderEnd", app.reqAllOpenOrders), ("managedAccounts", app.reqManagedAccts),
            ("receiveFA", lambda: app.requestFA(1)), ("scannerParameters", app.reqScannerParameters),
            ("positionEnd", app.reqPositions), ("familyCodes", app.reqFamilyCodes),
            ("mktDepthExchanges", app.reqMktDepthExchanges), ("newsProviders", app.reqNewsProviders),
            ("completedOrdersEnd", lambda: app.reqCompletedOrders(False)),
            ("accountDownloadEnd", lambda: app.reqAccountUpdates(True, "DU111111")),
            ("marketRule", lambda: app.reqMarketRule(26)), ("nextValidId", lambda: app.reqIds(1)),
        ]
        missing = []
        for callback, call in without_id:
            app.seen.pop(callback, None)
            app.next_id = None if callback == "nextValidId" else app.next_id
            call()
            done = (lambda: app.next_id is not None) if callback == "nextValidId" else (
                lambda c=callback: c in app.seen)
            if not _wait(done, ANSWER_SECONDS):
                missing.append(callback)
        assert not missing, f"no answer for {missing}"
        covered = {name for _i, name, _c in with_id} | {getattr(call, "__name__", "") for _c, call in without_id}
        covered |= {"reqMarketDataType", "reqAutoOpenOrders", "reqGlobalCancel", "reqNewsBulletins", "requestFA",
                    "reqMarketRule", "reqIds", "reqAccountUpdates", "reqCompletedOrders"}
        assert _ibapi_requests() - covered - _NEEDS_NEWER_SERVER == set(), "a new ibapi request needs a case"
        answers = {k: v for k, v in app.seen.items() if isinstance(k, int) and 1000 < k < 1100}
        assert answers[1003] == "error 354" and answers[1029] == "error 10089"
        assert answers[1017] == "securityDefinitionOptionParameterEnd"
        assert answers[1006] == "scannerDataEnd" or answers[1006] == "scannerData"
    finally:
        app.disconnect()
        reader.join(5)


# ibapi sends these only to servers newer than the practice exchange's 176 (it refuses them itself)
_NEEDS_NEWER_SERVER = {"reqCurrentTimeInMillis"}
# requests that only change what is streamed and have no answer of their own in TWS either
_NO_ANSWER = {"verifyRequest", "verifyMessage", "verifyAndAuthRequest", "verifyAndAuthMessage",
              "unsubscribeFromGroupEvents"}


def _ibapi_requests() -> set[str]:
    from ibapi.client import EClient

    verbs = ("req", "calculate", "exercise", "query", "subscribe", "update", "replace", "request", "place")
    return {n for n, _ in inspect.getmembers(EClient, inspect.isfunction)
            if n.startswith(verbs) and not n.endswith("ProtoBuf")} - _NO_ANSWER


def _execution_filter():
    from ibapi.execution import ExecutionFilter as IbFilter

    return IbFilter()


async def test_requests_for_an_unknown_account_end_with_321_instead_of_waiting(sim):
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=64, timeout=5)
    codes = []
    ib.errorEvent += lambda req_id, code, *_: codes.append(code)
    try:
        for call in (lambda: ib.reqAccountUpdatesAsync("DU999999"),
                     lambda: ib.reqAccountUpdatesMultiAsync("DU999999"),
                     lambda: ib.reqPositionsAsync()):
            await asyncio.wait_for(call(), ANSWER_SECONDS)
        assert codes.count(321) == 2
    finally:
        ib.disconnect()
