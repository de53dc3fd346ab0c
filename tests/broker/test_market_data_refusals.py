"""Market data the exchange refuses, against the practice exchange: live data refused falls back to
delayed data marked as such, and a chart request refused by IB's pacing is said with its code."""

from __future__ import annotations

import pytest
from broker_helpers import wait_for
from ibpanel.broker.models import MarketDataType


async def test_delayed_fallback_marks_quotes(connected, sim_server):
    sim_server.faults.set_market_data_live(False)
    notices = []
    connected.notice.connect(notices.append)
    msft = await connected.resolve("MSFT")
    await connected.subscribe(msft)
    quote = await wait_for(lambda: (q := connected.quote(msft)) and q.last and q)
    assert quote.data_type is MarketDataType.DELAYED
    # live was refused (354): the broker asked for delayed data once and requested the line again
    assert any(n.code == 354 for n in notices)
    assert sim_server.stats.count("REQ_MARKET_DATA_TYPE") == 1 and sim_server.stats.count("REQ_MKT_DATA") == 2
    # a second stock goes straight to delayed (TWS says 10167), no new round trip needed
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    second = await wait_for(lambda: (q := connected.quote(aapl)) and q.last and q)
    assert second.data_type is MarketDataType.DELAYED
    assert sim_server.stats.count("REQ_MARKET_DATA_TYPE") == 1 and sim_server.stats.count("REQ_MKT_DATA") == 3


async def test_chart_request_refused_by_ib_is_said(connected, sim_server):
    from ibpanel.broker.exceptions import BrokerError

    sim_server.faults.set_pacing(True)
    aapl = await connected.resolve("AAPL")
    assert await connected.bars(aapl, "1 D", "5 mins")
    with pytest.raises(BrokerError) as caught:  # the identical request within 15 s: IB's pacing error 162
        await connected.bars(aapl, "1 D", "5 mins")
    assert "162" in caught.value.message
