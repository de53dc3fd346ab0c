"""A quote lost to IB's pacing limit (error 100) is a 503 that says so, not a market-closed guess (QA F41)."""

from __future__ import annotations

from ibpanel.api import routes
from ibpanel.broker.exceptions import PACING_MESSAGE


async def test_quote_lost_to_pacing_is_503_with_the_pacing_reason(connected_api, broker, monkeypatch):
    status, body = await connected_api.get("quote", params={"symbol": "AAPL"})  # qualified and cached
    assert status == 200, body
    assert broker.quote(await broker.resolve("AAPL")) is None  # the snapshot's line is closed: the next asks again
    monkeypatch.setattr(routes, "QUOTE_TIMEOUT", 1.0)
    connected_api.sim.faults.set_pacing(True)
    broker._ib.client.MaxRequests = 0  # another program on this client floods TWS: throttle off for the flood
    for _ in range(60):  # over the 50/s limit, under the exchange's disconnect threshold
        broker._ib.client.reqCurrentTime()
    status, body = await connected_api.get("quote", params={"symbol": "AAPL"})
    assert status == 503, body
    assert body["error"] == PACING_MESSAGE and body["code"] == "pacing_limit"
