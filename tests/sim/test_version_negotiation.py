"""The handshake negotiates the API version down as TWS does: a client declaring versions up to 151 (or 157)
is answered at its own maximum and every message it gets decodes at that version; a client whose range the
practice exchange cannot meet is closed."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from decimal import Decimal

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from tests.helpers import wait_for, wait_until

# a message that does not decode at the negotiated version kills ibapi's reader thread: fail the test on it
pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]


@pytest.mark.parametrize("max_version", [151, 163, 165])
def test_ibapi_declaring_an_older_maximum_is_served_at_that_version(sim, monkeypatch, max_version):
    import ibapi.client
    from ibapi.client import EClient
    from ibapi.contract import Contract
    from ibapi.order import Order
    from ibapi.wrapper import EWrapper

    monkeypatch.setattr(ibapi.client, "MAX_CLIENT_VER", max_version)

    class App(EWrapper, EClient):
        def __init__(self):
            EWrapper.__init__(self)
            EClient.__init__(self, wrapper=self)
            self.next_id = None
            self.details = []
            self.statuses: dict[int, list[str]] = {}
            self.open_orders = []
            self.completed = []
            self.errors = []
            self.executions = []

        def nextValidId(self, orderId):  # noqa: N802 - ibapi callback names
            self.next_id = orderId

        def contractDetails(self, reqId, contractDetails):  # noqa: N802
            self.details.append(contractDetails)

        def orderStatus(self, orderId, status, *args):  # noqa: N802
            self.statuses.setdefault(orderId, []).append(status)

        def openOrder(self, orderId, contract, order, orderState):  # noqa: N802
            self.open_orders.append((orderId, contract.conId, order.totalQuantity, order.lmtPrice, orderState.status))

        def execDetails(self, reqId, contract, execution):  # noqa: N802
            self.executions.append((execution.orderId, execution.shares, execution.price))

        def completedOrder(self, contract, order, orderState):  # noqa: N802
            self.completed.append((contract.conId, order.permId, orderState.status))

        def error(self, reqId, *args):  # errorTime was added in newer ibapi; accept both shapes
            code, text = (args[1], args[2]) if len(args) >= 3 and isinstance(args[1], int) else (args[0], args[1])
            self.errors.append((reqId, code, text))

    app = App()
    app.connect("127.0.0.1", sim.port, clientId=91)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        wait_until(lambda: app.next_id is not None)
        assert app.serverVersion() == max_version
        aapl = Contract()
        aapl.symbol, aapl.secType, aapl.exchange, aapl.currency = "AAPL", "STK", "SMART", "USD"
        app.reqContractDetails(1, aapl)
        wait_until(lambda: app.details)
        d = app.details[0]
        assert d.contract.conId == 265598 and d.longName == "APPLE INC" and d.marketRuleIds
        assert d.contract.exchange == "SMART" and d.timeZoneId
        order_id = app.next_id
        buy = Order()
        buy.action, buy.orderType, buy.totalQuantity, buy.account = "BUY", "MKT", Decimal(10), "DU111111"
        app.placeOrder(order_id, aapl, buy)
        wait_until(lambda: "Filled" in app.statuses.get(order_id, []) and app.executions)
        assert app.executions[0][:2] == (order_id, Decimal(10))
        rest = Order()
        rest.action, rest.orderType, rest.totalQuantity, rest.lmtPrice = "BUY", "LMT", Decimal(5), 1.25
        rest.account = "DU111111"
        app.placeOrder(order_id + 1, aapl, rest)
        wait_until(lambda: any(o[0] == order_id + 1 and o[4] == "Submitted" for o in app.open_orders))
        assert (order_id + 1, 265598, Decimal(5), 1.25, "Submitted") in app.open_orders
        app.cancelOrder(order_id + 1, _cancel_arg())
        wait_until(lambda: any(e[0] == order_id + 1 and e[1] == 202 for e in app.errors))
        app.reqCompletedOrders(False)
        wait_until(lambda: any(c[2] == "Filled" for c in app.completed))
        assert app.isConnected()
    finally:
        app.disconnect()
        reader.join(5)


async def test_ib_async_at_its_oldest_version_trades(sim):
    ib = IB()
    ib.client.MaxClientVersion = 157
    await ib.connectAsync("127.0.0.1", sim.port, clientId=92, timeout=5)
    try:
        assert ib.client.serverVersion() == 157
        aapl = Stock("AAPL", "SMART", "USD")
        [details] = await ib.reqContractDetailsAsync(aapl)
        assert details.contract.conId == 265598 and details.stockType == "COMMON"
        filled = ib.placeOrder(details.contract, MarketOrder("BUY", 10, account="DU111111"))
        await wait_for(lambda: filled.orderStatus.status == "Filled" and filled.fills)
        resting = ib.placeOrder(details.contract, LimitOrder("BUY", 5, 1.25, account="DU111111"))
        await wait_for(lambda: resting.orderStatus.status == "Submitted")
        assert resting.order.lmtPrice == 1.25 and resting.order.permId
        ib.cancelOrder(resting.order)
        await wait_for(lambda: resting.orderStatus.status == "Cancelled")
    finally:
        ib.disconnect()


@pytest.mark.parametrize("declared", ["v100..140", "v177..190"])
async def test_client_whose_versions_cannot_be_met_is_closed(sim, declared):
    def handshake() -> bytes:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
            s.sendall(b"API\0" + struct.pack(">I", len(declared)) + declared.encode())
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    return b"".join(chunks)
                chunks.append(data)

    assert await asyncio.to_thread(handshake) == b""  # closed without a hello


def _cancel_arg():
    """ibapi >= 10.30 takes an OrderCancel object; older versions a manual cancel time string."""
    try:
        from ibapi.order_cancel import OrderCancel
    except ImportError:
        return ""
    return OrderCancel()
