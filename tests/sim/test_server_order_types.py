"""The order types traders learn, end to end over the socket with ib_async and IB's own client (ibapi):
trailing stops (trailStopPrice in openOrder), REL, MOC waiting for the close, OPG, GTD expiry and refusal,
SEHK at-auction orders and odd lots."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from ib_async import IB, LimitOrder, Order, Stock
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order as ApiOrder
from ibapi.wrapper import EWrapper

from tests.helpers import wait_for as _wait_for
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ib(sim_server):
    client = IB()
    await client.connectAsync("127.0.0.1", sim_server.port, clientId=31, timeout=5)
    yield client
    client.disconnect()


@pytest.fixture
async def watcher(sim_server):
    """A second client that reads every open order as the exchange echoes it (ib_async keeps the first
    client's own Order objects and does not copy trailStopPrice into them)."""
    client = IB()
    await client.connectAsync("127.0.0.1", sim_server.port, clientId=32, timeout=5)
    yield client
    client.disconnect()


async def _qualified(ib: IB, contract):
    await ib.qualifyContractsAsync(contract)
    return contract


async def _echo(watcher: IB, perm_id: int):
    trades = await watcher.reqAllOpenOrdersAsync()
    return next(t for t in trades if t.order.permId == perm_id)


async def test_trailing_stop_shows_its_stop_and_follows_the_touch(ib, watcher, sim_server):
    aapl = await _qualified(ib, Stock("AAPL", "SMART", "USD"))
    sim_server.market.move_to(aapl.conId, Decimal("200.00"))
    trade = ib.placeOrder(aapl, Order(action="SELL", totalQuantity=10, orderType="TRAIL", auxPrice=1.0,
                                      account="DU111111", tif="GTC"))
    await _wait_for(lambda: trade.order.permId > 0 and trade.orderStatus.status == "PreSubmitted")
    echo = await _echo(watcher, trade.order.permId)
    assert echo.order.orderType == "TRAIL" and echo.order.auxPrice == 1.0
    assert 190 < echo.order.trailStopPrice < 205  # the bid less 1.00, as the market stood
    sim_server.market.move_to(aapl.conId, Decimal("260.00"))
    # the stop rose with the bid at the exchange (ibapi's test below reads the pushed openOrder updates)
    await _wait_for(lambda: Decimal(sim_server.exchange.order(31, trade.order.orderId).extra["trailStopPrice"])
                    > 250)
    assert trade.orderStatus.status == "PreSubmitted"
    sim_server.market.move_to(aapl.conId, Decimal("150.00"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    assert trade.fills and trade.fills[-1].execution.side == "SLD"


async def test_market_on_close_waits_submitted_and_cancels_cleanly(ib):
    aapl = await _qualified(ib, Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, Order(action="BUY", totalQuantity=10, orderType="MOC", account="DU111111"))
    await _wait_for(lambda: trade.orderStatus.status == "Submitted")
    assert not trade.fills  # it meets the next regular close, not the practice market now
    ib.cancelOrder(trade.order)
    await _wait_for(lambda: trade.orderStatus.status == "Cancelled")


async def test_good_till_date_expires_at_its_time_and_a_past_date_is_refused(ib):
    aapl = await _qualified(ib, Stock("AAPL", "SMART", "USD"))
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)).strftime("%Y%m%d-%H:%M:%S")
    living = ib.placeOrder(aapl, LimitOrder("BUY", 10, 1.00, account="DU111111", tif="GTD", goodTillDate=soon))
    await _wait_for(lambda: living.orderStatus.status == "Submitted")
    await _wait_for(lambda: living.orderStatus.status == "Cancelled", timeout=8)
    past = ib.placeOrder(aapl, LimitOrder("BUY", 10, 1.00, account="DU111111", tif="GTD",
                                          goodTillDate="20200101 10:00:00 US/Eastern"))
    await _wait_for(lambda: (past.order.orderId, 201) in errors)
    await _wait_for(lambda: past.orderStatus.status in ("Inactive", "Cancelled"))


async def test_relative_order_fills_when_its_peg_reaches_the_ask(ib):
    aapl = await _qualified(ib, Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, Order(action="BUY", totalQuantity=10, orderType="REL", auxPrice=0.50,
                                      account="DU111111"))
    await _wait_for(lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.shares == 10


async def test_hk_odd_lot_fills_and_at_auction_waits_for_the_auction(ib):
    tencent = await _qualified(ib, Stock("700", "SEHK", "HKD"))
    tickers = await ib.reqTickersAsync(tencent)
    odd = ib.placeOrder(tencent, LimitOrder("BUY", 30, tickers[0].ask + 5, account="DU111111"))
    await _wait_for(lambda: odd.orderStatus.status == "Filled")
    assert odd.fills[0].execution.shares == 30
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    above = ib.placeOrder(tencent, LimitOrder("BUY", 150, tickers[0].ask, account="DU111111"))
    await _wait_for(lambda: (above.order.orderId, 321) in errors)
    auction = ib.placeOrder(tencent, Order(action="BUY", totalQuantity=100, orderType="MTL", tif="AUC",
                                           account="DU111111"))
    await _wait_for(lambda: auction.orderStatus.status == "Submitted")
    assert not auction.fills
    ib.cancelOrder(auction.order)
    await _wait_for(lambda: auction.orderStatus.status == "Cancelled")


class _TrailRecorder(EWrapper, EClient):
    def __init__(self):
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.next_id: int | None = None
        self.open_orders: list = []
        self.statuses: list = []

    def nextValidId(self, orderId):  # noqa: N802 - ibapi callback names
        self.next_id = orderId

    def openOrder(self, orderId, contract, order, orderState):  # noqa: N802
        self.open_orders.append((orderId, order.orderType, order.trailStopPrice, order.auxPrice))

    def orderStatus(self, orderId, status, *rest):  # noqa: N802
        self.statuses.append((orderId, status))


def test_ibapi_sees_the_trailing_stop_price_in_open_order(sim):
    app = _TrailRecorder()
    app.connect("127.0.0.1", sim.port, clientId=33)
    reader = threading.Thread(target=app.run, daemon=True)
    reader.start()
    try:
        wait_until(lambda: app.next_id is not None, timeout=10)
        contract = Contract()
        contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
        order = ApiOrder()
        order.action, order.totalQuantity, order.orderType = "BUY", Decimal(5), "TRAIL"
        order.trailingPercent = 50  # far from the market: it rests
        order.account, order.tif = "DU111111", "GTC"
        app.placeOrder(app.next_id, contract, order)
        wait_until(lambda: app.open_orders, timeout=10)
        order_id, order_type, trail_stop, _aux = app.open_orders[0]
        assert order_id == app.next_id and order_type == "TRAIL"
        assert 100 < trail_stop < 1e9  # the ask plus half again, not unset
        aapl = sim.server.book.find("AAPL")[0].con_id
        sim.call(sim.server.market.move_to, aapl, Decimal("100.00"))  # the ask falls: the buy stop follows
        wait_until(lambda: any(o[2] < 151 for o in app.open_orders), timeout=10)
        assert min(o[2] for o in app.open_orders) == pytest.approx(150.02, abs=0.05)  # ask 100.01 + 50 %
        app.cancelOrder(app.next_id, _cancel_arg())
        wait_until(lambda: (app.next_id, "Cancelled") in app.statuses, timeout=10)
        assert (app.next_id, "Cancelled") in app.statuses
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
