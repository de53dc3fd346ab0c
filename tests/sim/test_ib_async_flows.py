"""Flows across clients: events go to the client that owns the order, OPEN_ORDER echoes what was placed,
brackets, modify keeps the permId, and several clients trade at once without mixing their orders."""

from __future__ import annotations

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from tests.helpers import wait_for as _wait_for

pytestmark = pytest.mark.timeout(60)


async def _client(port: int, client_id: int) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5)
    return ib


async def test_order_events_reach_only_the_owner_and_echo_the_order(sim_server):
    owner, other = await _client(sim_server.port, 51), await _client(sim_server.port, 52)
    try:
        seen_by_other = []
        other.orderStatusEvent += lambda trade: seen_by_other.append(trade)
        aapl = Stock("AAPL", "SMART", "USD")
        await owner.qualifyContractsAsync(aapl)
        tickers = await owner.reqTickersAsync(aapl)
        order = LimitOrder("BUY", 7, round(tickers[0].bid * 0.9, 2), account="DU222222", tif="GTC",
                           outsideRth=True, orderRef="echo-me", ocaGroup="grp1")
        trade = owner.placeOrder(aapl, order)
        await _wait_for(lambda: trade.orderStatus.status == "Submitted")
        await other.reqCurrentTimeAsync()  # answered after anything the exchange sent it about the order
        assert seen_by_other == []  # not its order
        # a fresh decode of OPEN_ORDER (another client asking for all open orders) shows what was placed
        all_open = await other.reqAllOpenOrdersAsync()
        echoed = [t for t in all_open if t.order.permId == trade.order.permId]
        assert echoed, "the other client sees the order in reqAllOpenOrders"
        o = echoed[0].order
        assert (o.clientId, o.orderId, o.action, o.totalQuantity, o.lmtPrice) == (51, trade.order.orderId, "BUY",
                                                                                 7, order.lmtPrice)
        assert (o.tif, o.outsideRth, o.orderRef, o.ocaGroup, o.account) == ("GTC", True, "echo-me", "grp1",
                                                                          "DU222222")
        assert echoed[0].contract.conId == 265598
        # modify: same orderId, same permId, new quantity
        order.totalQuantity = 9
        owner.placeOrder(aapl, order)
        await _wait_for(lambda: trade.orderStatus.remaining == 9)
        assert trade.order.permId == echoed[0].order.permId
        owner.cancelOrder(order)
        await _wait_for(lambda: trade.orderStatus.status == "Cancelled")
    finally:
        owner.disconnect()
        other.disconnect()


async def test_two_clients_same_order_ids_do_not_mix(sim_server):
    a, b = await _client(sim_server.port, 61), await _client(sim_server.port, 62)
    try:
        msft = Stock("MSFT", "SMART", "USD")
        await a.qualifyContractsAsync(msft)
        await b.qualifyContractsAsync(msft)
        order_id = max(a.client.getReqId(), b.client.getReqId()) + 10
        ta = a.placeOrder(msft, MarketOrder("BUY", 3, account="DU111111", orderId=order_id))
        tb = b.placeOrder(msft, MarketOrder("SELL", 4, account="DU222222", orderId=order_id))
        await _wait_for(lambda: ta.orderStatus.status == "Filled" and tb.orderStatus.status == "Filled")
        assert ta.orderStatus.filled == 3 and tb.orderStatus.filled == 4
        assert ta.order.permId != tb.order.permId
        assert {f.execution.side for f in ta.fills} == {"BOT"} and {f.execution.side for f in tb.fills} == {"SLD"}
    finally:
        a.disconnect()
        b.disconnect()


async def test_bracket_children_wait_for_the_parent(sim_server):
    ib = await _client(sim_server.port, 71)
    try:
        aapl = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(aapl)
        tickers = await ib.reqTickersAsync(aapl)
        ask = tickers[0].ask
        bracket = ib.bracketOrder("BUY", 10, limitPrice=round(ask * 1.02, 2), takeProfitPrice=round(ask * 1.5, 2),
                                  stopLossPrice=round(ask * 0.5, 2), account="DU111111")
        trades = [ib.placeOrder(aapl, o) for o in bracket]
        await _wait_for(lambda: trades[0].orderStatus.status == "Filled")
        await _wait_for(lambda: trades[1].orderStatus.status == "Submitted"
                        and trades[2].orderStatus.status in ("PreSubmitted", "Submitted"))
        assert trades[1].order.parentId == trades[0].order.orderId
        ib.reqGlobalCancel()
        await _wait_for(lambda: all(t.orderStatus.status == "Cancelled" for t in trades[1:]))
    finally:
        ib.disconnect()
