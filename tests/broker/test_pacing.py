"""IB's 50 messages/s pacing (error 100): a burst of quote snapshots through the broker stays under it,
every snapshot is answered, and a pacing refusal is named as such instead of a market-closed guess (QA F41)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import PACING_MESSAGE, PacingLimit
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config

US = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "BRK B", "JPM", "NFLX"]

HK = ["700", "5", "1299", "941", "2800", "883", "9618", "1211", "388", "3690"]


def _practice_symbols() -> list[str]:
    """Every stock the practice exchange lists (resources/sim/instruments.json)."""
    data = json.loads((Path(__file__).resolve().parents[2] / "resources/sim/instruments.json").read_text())
    return [entry["symbol"] for entry in (data if isinstance(data, list) else data["instruments"])]


async def test_burst_of_80_snapshots_over_20_symbols_stays_within_pacing(tmp_path):
    server = SimServer(sim_test_config(pacing=True))
    await server.start()
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(server.port))
        notices = []
        broker.notice.connect(notices.append)

        async def one(text: str):
            instrument = await broker.resolve(text)
            return await broker.snapshot(instrument, timeout=5.0)

        quotes = await asyncio.gather(*[one(s) for s in (US + HK) * 4], return_exceptions=True)
        failures = [q for q in quotes if isinstance(q, BaseException)]
        assert failures == []
        assert all(q.last is not None or q.bid is not None for q in quotes)
        assert [n.text for n in notices if n.code == 100] == []
        # one qualification per symbol, however many callers asked at once
        assert server.stats.count("REQ_CONTRACT_DATA") <= len(US + HK)
        # concurrent snapshots of one stock share one line
        assert server.stats.count("REQ_MKT_DATA") <= len(US + HK)
    finally:
        await broker.close()
        await server.stop()


async def test_a_snapshot_lost_to_pacing_says_so_instead_of_guessing_the_market_is_closed(tmp_path):
    server = SimServer(sim_test_config(pacing=True))
    await server.start()
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(server.port))
        aapl = await broker.resolve("AAPL")
        broker._ib.client.MaxRequests = 0  # another program on this client floods TWS: throttle off for the flood
        for _ in range(60):  # over the 50/s limit, under the exchange's disconnect threshold
            broker._ib.client.reqCurrentTime()
        with pytest.raises(PacingLimit) as caught:
            await broker.snapshot(aapl, timeout=1.0)  # its request is dropped in the same second
        assert "No quote for AAPL within 1 s." in str(caught.value)
        assert caught.value.advice == PACING_MESSAGE
        assert "market may be closed" not in str(caught.value)
    finally:
        await broker.close()
        await server.stop()



async def test_every_practice_stock_at_once_stays_within_pacing(tmp_path):
    """A lookup, a line and a cancel for each of the exchange's 42 stocks at once (126 messages): the broker
    spreads them under IB's 50/s (ib_async's own 45-per-second bursts trip error 100 here)."""
    symbols = _practice_symbols()
    assert len(symbols) > 40
    server = SimServer(sim_test_config(pacing=True))
    await server.start()
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(server.port))
        notices = []
        broker.notice.connect(notices.append)

        async def one(text: str):
            return await broker.snapshot(await broker.resolve(text), timeout=5.0)

        quotes = await asyncio.gather(*[one(symbol) for symbol in symbols], return_exceptions=True)
        assert [q for q in quotes if isinstance(q, BaseException)] == []
        assert [n.text for n in notices if n.code == 100] == []
    finally:
        await broker.close()
        await server.stop()


async def test_close_cancels_symbol_lookups_still_in_flight(tmp_path, sim_server):
    """A lookup shared by several callers is shielded from them; closing the broker must not leave it running."""
    import asyncio

    from broker_helpers import make_broker, params

    broker = make_broker(tmp_path)
    await broker.connect(params(sim_server.port))
    sim_server.faults.delay_replies(1.0)  # keep the contract lookup in flight
    waiter = asyncio.ensure_future(broker.resolve("MSFT"))
    await wait_for(lambda: broker._qualifying)  # the lookup is in flight
    lookups = list(broker._qualifying.values())
    await broker.close()
    assert all(lookup.done() for lookup in lookups)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
