"""The core flow with IB's official Python client (ibapi-stable), so the exchange is not tuned to ib_async:
connect, contract details, market data, place, fill, cancel."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)


class Recorder(EWrapper, EClient):
    """Records every callback the flow needs; each list is appended on ibapi's reader thread."""

    def __init__(self):
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.next_id: int | None = None
        self.accounts = ""
        self.details: list = []
        self.details_done = threading.Event()
        self.prices: dict[int, float] = {}
        self.statuses: dict[int, list[str]] = {}
        self.open_orders: list = []
        self.executions: list = []
        self.commissions: list = []
        self.errors: list[tuple[int, int, str]] = []
        self.completed: list = []
        self.bars: list = []
        self.account_values: list = []
        self.portfolio: list = []
        self.positions: list = []
        self.rules: dict = {}
        self.done: set[str] = set()

    def nextValidId(self, orderId):  # noqa: N802 - ibapi callback names
        self.next_id = orderId

    def managedAccounts(self, accountsList):  # noqa: N802
        self.accounts = accountsList

    def contractDetails(self, reqId, contractDetails):  # noqa: N802
        self.details.append(contractDetails)

    def contractDetailsEnd(self, reqId):  # noqa: N802
        self.details_done.set()

    def tickPrice(self, reqId, tickType, price, attrib):  # noqa: N802
        self.prices[tickType] = price

    def orderStatus(self, orderId, status, filled, remaining, avgFillPrice, permId, parentId,  # noqa: N802
                    lastFillPrice, clientId, whyHeld, mktCapPrice):
        self.statuses.setdefault(orderId, []).append(status)

    def openOrder(self, orderId, contract, order, orderState):  # noqa: N802
        self.open_orders.append((orderId, contract.symbol, order.permId, orderState.status))

    def execDetails(self, reqId, contract, execution):  # noqa: N802
        self.executions.append((execution.orderId, execution.execId, execution.shares))

    def commissionAndFeesReport(self, commissionAndFeesReport):  # noqa: N802
        self.commissions.append(commissionAndFeesReport)

    def commissionReport(self, commissionReport):  # noqa: N802 - older ibapi name
        self.commissions.append(commissionReport)

    def completedOrder(self, contract, order, orderState):  # noqa: N802
        self.completed.append((contract.symbol, order.permId, orderState.status))

    def completedOrdersEnd(self):  # noqa: N802
        self.done.add("completed")

    def historicalData(self, reqId, bar):  # noqa: N802
        self.bars.append(bar)

    def historicalDataEnd(self, reqId, start, end):  # noqa: N802
        self.done.add("bars")

    def updateAccountValue(self, key, val, currency, accountName):  # noqa: N802
        self.account_values.append((key, val, currency, accountName))

    def updatePortfolio(self, contract, position, marketPrice, marketValue, averageCost,  # noqa: N802
                        unrealizedPNL, realizedPNL, accountName):
        self.portfolio.append((contract.conId, position, accountName))

    def accountDownloadEnd(self, accountName):  # noqa: N802
        self.done.add("account")

    def position(self, account, contract, position, avgCost):
        self.positions.append((account, contract.conId, position))

    def positionEnd(self):  # noqa: N802
        self.done.add("positions")

    def marketRule(self, marketRuleId, priceIncrements):  # noqa: N802
        self.rules[marketRuleId] = priceIncrements

    def error(self, reqId, *args):  # errorTime was added in newer ibapi; accept both shapes
        code, text = (args[1], args[2]) if len(args) >= 3 and isinstance(args[1], int) else (args[0], args[1])
        self.errors.append((reqId, code, text))


def test_ibapi_core_flow(sim):
    app = Recorder()
    app.connect("127.0.0.1", sim.port, clientId=42)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        wait_until(lambda: app.next_id is not None and app.accounts)
        assert app.serverVersion() == 176
        assert app.accounts.split(",") == ["DU111111", "DU222222"]

        contract = Contract()
        contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
        app.reqContractDetails(1, contract)
        assert app.details_done.wait(5)
        assert app.details[0].contract.conId == 265598
        assert app.details[0].longName == "APPLE INC"

        app.reqMktData(2, contract, "", False, False, [])
        wait_until(lambda: app.prices.get(1, 0) > 0 and app.prices.get(2, 0) > 0)
        bid, ask = app.prices[1], app.prices[2]
        assert ask > bid

        order_id = app.next_id
        buy = Order()
        buy.action, buy.orderType, buy.totalQuantity = "BUY", "LMT", Decimal(10)
        buy.lmtPrice = round(ask * 1.05, 2)
        buy.account = "DU111111"
        app.placeOrder(order_id, contract, buy)
        wait_until(lambda: "Filled" in app.statuses.get(order_id, []))
        wait_until(lambda: app.executions and app.commissions)
        assert app.executions[0][0] == order_id and app.executions[0][2] == Decimal(10)

        rest_id = order_id + 1
        rest = Order()
        rest.action, rest.orderType, rest.totalQuantity = "BUY", "LMT", Decimal(10)
        rest.lmtPrice = round(bid * 0.8, 2)
        rest.account = "DU111111"
        app.placeOrder(rest_id, contract, rest)
        wait_until(lambda: "Submitted" in app.statuses.get(rest_id, []))
        assert any(o[0] == rest_id and o[2] > 0 for o in app.open_orders)
        app.cancelOrder(rest_id, _cancel_arg())
        wait_until(lambda: "Cancelled" in app.statuses.get(rest_id, []))
        wait_until(lambda: any(e[0] == rest_id and e[1] == 202 for e in app.errors))
        assert sim.stats.count("PLACE_ORDER") == 2

        # the rest of the startup replies decode in IB's client too
        app.reqCompletedOrders(False)
        app.reqPositions()
        app.reqAccountUpdates(True, "DU111111")
        app.reqHistoricalData(7, contract, "20261120 11:00:00 US/Eastern", "3600 S", "5 mins", "TRADES", 1, 1, False,
                              [])
        app.reqMarketRule(26)
        wait_until(lambda: {"completed", "positions", "account", "bars"} <= app.done and 26 in app.rules)
        assert any(c[1] > 0 and c[2] == "Filled" for c in app.completed)
        assert ("DU111111", 265598, Decimal(10)) in app.positions
        assert any(k == "NetLiquidation" and a == "DU111111" for k, _v, _c, a in app.account_values)
        assert (265598, Decimal(10), "DU111111") in app.portfolio
        assert len(app.bars) == 12 and all(b.high >= b.low for b in app.bars)  # 10:00 to 10:55, Friday
        assert len(app.rules[26]) == 2
        assert not [e for e in app.errors if e[1] not in (202, 2104, 2106, 2158)]
    finally:
        app.disconnect()
        reader.join(5)


def _cancel_arg():
    """ibapi >= 10.30 takes an OrderCancel object; older versions a manual cancel time string."""
    try:
        from ibapi.order_cancel import OrderCancel
    except ImportError:
        return ""
    return OrderCancel()
