"""The broker's stream reader (broker/framing.py) on a real ib_async client connected to the practice exchange.

Real TWS bytes (the practice exchange's own TICK_PRICE encoder) are handed to the client's connection
as one socket read would hand them: a burst far larger than one loop turn's budget, reads split at
every size, a read still being handled when the socket closes, and a backlog over the limit.
"""

from __future__ import annotations

import asyncio

import pytest
from broker_helpers import wait_for
from ib_async import Stock
from ibpanel.sim.protocol.replies import tick_price

LAST = 4  # tick type: last trade price
REQ_ID = 90_001


def _ticker(broker):
    """A ticker registered for REQ_ID in ib_async (as reqMktData would), fed only by the bytes a test hands in."""
    ib = broker._ib
    return ib.wrapper.startTicker(REQ_ID, Stock("TEST", "SMART", "USD", conId=1), "mktData")


async def _at_a_message_boundary(connected, *, stop_reading: bool = False) -> None:
    """Wait until no partial message of the exchange's own is buffered, so bytes handed in start a message.

    ``stop_reading``: also stop reading the socket (for tests that hand in several pieces, between which a
    real read would otherwise land in the middle of a message). Nothing awaits between the check and the
    pause, so no read can come in between.
    """
    await wait_for(lambda: connected.stream_reader.backlog == 0)
    if stop_reading:
        connected._ib.client.conn.transport.pause_reading()


def _burst(count: int, start: int = 0) -> tuple[bytes, list[float]]:
    prices = [round(100 + (start + i) * 0.01, 2) for i in range(count)]
    return b"".join(tick_price(REQ_ID, LAST, f"{p:.2f}", 1) for p in prices), prices


def _record_prices(broker, ticker) -> list[float]:
    """Every last price the ticker received, in the order ib_async handled them (its per-packet tick list)."""
    seen: list[float] = []

    def on_pending(tickers) -> None:
        if ticker in tickers:
            seen.extend(t.price for t in ticker.ticks if t.tickType == LAST)

    broker._ib.pendingTickersEvent += on_pending
    return seen


async def test_a_burst_is_handled_over_several_loop_turns_in_order_and_complete(connected):
    reader = connected.stream_reader
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    payload, prices = _burst(20_000)
    turns_before, yields_before = reader.turns, reader.yields
    backlog_midway: list[int] = []

    await _at_a_message_boundary(connected)
    connected._ib.client.conn.data_received(payload)
    # Scheduled after the first turn: it runs between two turns, while the burst is still being handled.
    asyncio.get_running_loop().call_soon(lambda: backlog_midway.append(reader.backlog))
    await wait_for(lambda: reader.backlog == 0 and len(seen) == len(prices), timeout=30)

    assert seen == prices  # every tick, in arrival order
    assert ticker.last == prices[-1]
    assert reader.yields - yields_before >= 2 and reader.turns - turns_before >= 3
    assert backlog_midway and backlog_midway[0] > 0  # other work ran while the burst was in progress


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096, 65_536])
async def test_reads_split_at_any_byte_give_the_same_messages(connected, chunk):
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    payload, prices = _burst(300 if chunk < 10 else 3_000)
    conn = connected._ib.client.conn
    await _at_a_message_boundary(connected, stop_reading=True)
    for offset in range(0, len(payload), chunk):
        conn.data_received(payload[offset:offset + chunk])
    await wait_for(lambda: len(seen) == len(prices) and connected.stream_reader.backlog == 0, timeout=30)
    assert seen == prices
    conn.transport.resume_reading()


async def test_messages_already_received_are_handled_before_the_disconnect_is_reported(connected):
    reader = connected.stream_reader
    reader.budget_s = 0.0  # a turn handles a handful of messages, so most of the read is still waiting
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    at_disconnect: list[tuple[int, int]] = []
    connected._ib.disconnectedEvent += lambda: at_disconnect.append((len(seen), reader.backlog))
    payload, prices = _burst(5_000)
    conn = connected._ib.client.conn

    await _at_a_message_boundary(connected)
    conn.data_received(payload)
    assert reader.backlog > 0
    conn.transport.close()  # the socket closes with most of the read not yet handled
    await wait_for(lambda: bool(at_disconnect), timeout=10)

    assert at_disconnect[0] == (len(prices), 0)  # all of it handled before ib_async reported the disconnect
    assert seen == prices


async def test_a_backlog_over_the_limit_stops_reading_the_socket_until_it_is_handled(connected):
    reader = connected.stream_reader
    reader.max_backlog = 16 * 1024
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    payload, prices = _burst(5_000)
    transport = connected._ib.client.conn.transport

    await _at_a_message_boundary(connected)
    connected._ib.client.conn.data_received(payload)
    assert reader.backlog > reader.max_backlog
    assert not transport.is_reading()  # TCP holds the exchange back instead of this process buffering
    await wait_for(lambda: reader.backlog == 0 and transport.is_reading(), timeout=30)
    assert seen == prices
    # and the connection still works: the exchange's own answers arrive after the pause
    instrument = await connected.resolve("AAPL")
    assert instrument.con_id


async def test_hanging_up_handles_what_already_arrived_first(connected):
    reader = connected.stream_reader
    reader.budget_s = 0.0
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    payload, prices = _burst(5_000)

    await _at_a_message_boundary(connected)
    connected._ib.client.conn.data_received(payload)
    assert reader.backlog > 0
    await connected.disconnect()  # the trader's Disconnect while a burst is still being handled

    assert seen == prices
    assert reader.backlog == 0


async def test_random_read_boundaries_and_budgets_keep_every_message_in_order(connected):
    """Seeded random cases: reads cut anywhere, turns from a handful of messages to the whole read."""
    import random

    rng = random.Random(13)
    reader = connected.stream_reader
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    conn = connected._ib.client.conn
    await _at_a_message_boundary(connected, stop_reading=True)
    expected: list[float] = []
    for case in range(20):
        reader.budget_s = rng.choice((0.0, 0.0005, 0.002, 1.0))
        payload, prices = _burst(rng.randint(1, 400), start=len(expected))
        expected.extend(prices)
        cuts = sorted(rng.sample(range(1, len(payload)), k=min(len(payload) - 1, rng.randint(0, 30))))
        for begin, end in zip([0, *cuts], [*cuts, len(payload)], strict=True):
            conn.data_received(payload[begin:end])
            if rng.random() < 0.3:
                await asyncio.sleep(0)  # sometimes a loop turn between two reads
        await wait_for(lambda: reader.backlog == 0 and len(seen) == len(expected), timeout=10)
        assert seen == expected, f"case {case}"
    conn.transport.resume_reading()


async def test_a_handler_that_hangs_up_does_not_handle_any_message_twice(connected):
    ticker = _ticker(connected)
    seen = _record_prices(connected, ticker)
    prices_handled: list[float] = []
    wrapper = connected._ib.wrapper
    original = wrapper.priceSizeTick

    def hang_up_at_the_tenth(*args, **kwargs):
        original(*args, **kwargs)
        prices_handled.append(args[2])
        if len(prices_handled) == 10:
            connected._ib.client.disconnect()  # e.g. a handler that decides the link must go

    wrapper.priceSizeTick = hang_up_at_the_tenth
    payload, prices = _burst(100)
    await _at_a_message_boundary(connected)
    connected._ib.client.conn.data_received(payload)
    await wait_for(lambda: not connected._ib.isConnected(), timeout=10)

    assert prices_handled == prices[:10]  # each once, in order, and nothing after the hang-up
    assert seen == prices[:10]  # the views got those ten, once
