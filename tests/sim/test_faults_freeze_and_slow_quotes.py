"""Practice-exchange faults for issue 10: a frozen TWS (socket open, nothing answered or written, requests
served in order on thaw) and a slow quote feed (market-data requests served late, everything else at once)."""

from __future__ import annotations

import asyncio
import math

from ib_async import IB, Stock

from tests.helpers import wait_for


async def _connect(port: int, client_id: int) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5)
    return ib


async def test_freeze_answers_nothing_keeps_the_socket_and_thaw_serves_what_was_held(sim_server):
    ib = await _connect(sim_server.port, 31)
    try:
        sim_server.faults.freeze()
        asked = asyncio.ensure_future(ib.reqCurrentTimeAsync())
        done, _ = await asyncio.wait({asked}, timeout=0.5)
        assert not done and ib.isConnected()  # no answer, no disconnect
        assert sim_server.stats.count("REQ_CURRENT_TIME") == 0  # held unread, as by a hung TWS
        sim_server.faults.thaw()
        assert await asyncio.wait_for(asked, 5) is not None
        assert sim_server.stats.count("REQ_CURRENT_TIME") == 1
    finally:
        ib.disconnect()


async def test_slow_market_data_delays_quotes_only(sim_server):
    ib = await _connect(sim_server.port, 32)
    try:
        aapl = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(aapl)
        sim_server.faults.delay_market_data(1.0)
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.5)  # answered at once
        assert sim_server.stats.count("REQ_MKT_DATA") == 0
        ticker = ib.reqMktData(aapl)
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.5)  # a request sent after it is answered first
        assert sim_server.stats.count("REQ_MKT_DATA") == 0 and math.isnan(ticker.last)  # not served yet
        await wait_for(lambda: not math.isnan(ticker.last) and ticker.last > 0, timeout=5)
        assert sim_server.stats.count("REQ_MKT_DATA") == 1
    finally:
        ib.disconnect()
