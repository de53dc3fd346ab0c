"""Record what the broker streams from the practice exchange, replay the file on a second exchange, and a
client sees the same quotes in the same order, through the same TWS protocol."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import params, wait_for
from ib_async import IB, Stock
from ibpanel.broker.recorder import start_recording, stop_recording
from ibpanel.sim.recording import load_recording
from ibpanel.sim.replay import open_replay
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config

pytestmark = pytest.mark.timeout(60)
QUOTES = 20
# tick types -> the recorded quote's fields: bid, ask, last, bid size, ask size, last size, volume, high, low
_FIELDS = {1: 0, 2: 1, 4: 2, 0: 3, 3: 4, 5: 5, 8: 6, 6: 7, 7: 8}
_SIZE_OF_PRICE = {1: 3, 2: 4, 4: 5}


def _number(value) -> Decimal | None:
    if value is None or value != value:
        return None
    return Decimal(repr(float(value))).normalize()


def _state(q) -> tuple:
    return tuple(_number(v) for v in (q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.last_size, q.volume, q.high,
                                      q.low))


def _watch_ticks(ib: IB, states: list[tuple]) -> None:
    """Keep the quote state after every single tick message (ib_async merges a packet's ticks into one update)."""
    state: list[Decimal | None] = [None] * 9
    price_size, tick_size = ib.wrapper.priceSizeTick, ib.wrapper.tickSize

    def on_price(req_id, tick_type, price, size):
        if tick_type in _FIELDS:
            state[_FIELDS[tick_type]] = _number(price)
            if tick_type in _SIZE_OF_PRICE:  # bid, ask and last carry their size
                state[_SIZE_OF_PRICE[tick_type]] = _number(size)
            states.append(tuple(state))
        price_size(req_id, tick_type, price, size)

    def on_size(req_id, tick_type, size):
        if tick_type in _FIELDS:
            state[_FIELDS[tick_type]] = _number(size)
            states.append(tuple(state))
        tick_size(req_id, tick_type, size)

    ib.wrapper.priceSizeTick, ib.wrapper.tickSize = on_price, on_size


async def test_a_recording_replays_to_the_same_quotes_in_the_same_order(broker, tmp_path):
    live = SimServer(sim_test_config(quote_interval=0.05))
    await live.start()
    try:
        await broker.connect(params(live.port))
        recorder = await start_recording(broker, ["AAPL"], tmp_path / "live")
        await wait_for(lambda: recorder.status().quotes >= QUOTES, timeout=20)
        status = recorder.status()
        stop_recording(broker, recorder)
        await broker.disconnect()
    finally:
        await live.stop()
    assert status.size_bytes > 0 and status.symbols == ("AAPL",) and status.bars > 0
    original = load_recording(status.path)
    assert original.instruments[0].symbol == "AAPL" and original.instruments[0].market_rule_id == 26

    session = open_replay(status.path, speed=10.0, playing=False)
    replay = SimServer(sim_test_config(quote_interval=0.05, replay=session))
    await replay.start()
    client = IB()
    states: list[tuple] = []
    try:
        await client.connectAsync("127.0.0.1", replay.port, clientId=41, timeout=5)
        _watch_ticks(client, states)
        contract = Stock("AAPL", "SMART", "USD")
        await client.qualifyContractsAsync(contract)
        client.reqMktData(contract)
        final = _state(original.quotes[-1])
        await wait_for(lambda: states and states[-1] == _state(original.quotes[0]))
        session.clock.play()
        await wait_for(lambda: session.clock.state().finished and states[-1] == final, timeout=20)
    finally:
        client.disconnect()
        await replay.stop()
    # every recorded quote reached the client, in the recorded order (each as the state after its ticks)
    position = 0
    for n, quote in enumerate(original.quotes):
        wanted = _state(quote)
        while position < len(states) and states[position] != wanted:
            position += 1
        assert position < len(states), f"recorded quote {n} {wanted} never reached the client in order"
