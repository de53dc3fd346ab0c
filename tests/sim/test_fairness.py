"""Per-client fairness: one client's flood of contract-detail and history requests does not hold up another
client. Expensive requests wait in their client's own queue and the queues are served in turn, so the other
client's request is answered within a few turns, not after the whole flood."""

from __future__ import annotations

import pytest
from ib_async import IB, LimitOrder, Stock

from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(90)

FLOOD_DETAILS = 600
FLOOD_HISTORY = 150


async def test_one_clients_flood_does_not_hold_up_another_client(sim):
    flooder, other = IB(), IB()
    await flooder.connectAsync("127.0.0.1", sim.port, clientId=81, timeout=5)
    await other.connectAsync("127.0.0.1", sim.port, clientId=82, timeout=5)
    try:
        answered = {"details": 0, "bars": 0}

        def count(fields):
            if fields[0] == "52":  # CONTRACT_DATA_END
                answered["details"] += 1
            elif fields[0] == "17":  # HISTORICAL_DATA
                answered["bars"] += 1
            return original(fields)

        original = flooder.client.decoder.interpret
        flooder.client.decoder.interpret = count
        spy = Stock("SPY", "SMART", "USD")
        await other.qualifyContractsAsync(spy)
        # the whole flood in one write, as a client without ib_async's own request throttle sends it
        flooder.client.MaxRequests = 0
        burst: list[bytes] = []
        conn = flooder.client.conn
        send, conn.sendMsg = conn.sendMsg, burst.append
        for i in range(FLOOD_DETAILS):
            flooder.client.reqContractDetails(100_000 + i, Stock("AAPL", "SMART", "USD"))
        for i in range(FLOOD_HISTORY):
            flooder.client.reqHistoricalData(200_000 + i, spy, "", "2 D", "1 min", "TRADES", 0, 1, False, [])
        conn.sendMsg = send
        send(b"".join(burst))
        await wait_for(lambda: answered["details"] > 0)  # the flood is being served
        details = await other.reqContractDetailsAsync(Stock("MSFT", "SMART", "USD"))
        bars = await other.reqHistoricalDataAsync(spy, "", "1 D", "1 hour", "TRADES", False)
        served_first = dict(answered)
        assert details and details[0].contract.symbol == "MSFT" and bars
        # the flooding client's own order does not wait behind its history requests either
        order = flooder.placeOrder(spy, LimitOrder("BUY", 1, 1.00, account="DU111111"))
        await wait_for(lambda: order.orderStatus.status == "Submitted")
        assert answered["bars"] < FLOOD_HISTORY // 2, answered
        # the other client was answered long before the flood was: round-robin, not first come first served
        assert served_first["bars"] < FLOOD_HISTORY // 2, served_first
        # and the flood itself is served completely
        await wait_for(lambda: answered == {"details": FLOOD_DETAILS, "bars": FLOOD_HISTORY}, timeout=60)
    finally:
        flooder.disconnect()
        other.disconnect()
