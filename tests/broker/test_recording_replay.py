"""Record what the broker streams from the practice exchange, replay the file on a second exchange, and a
client sees the same quotes in the same order (through the same TWS protocol, recorded the same way)."""

from __future__ import annotations

import pytest
from broker_helpers import params, wait_for
from ibpanel.broker.recorder import start_recording, stop_recording
from ibpanel.sim.recording import load_recording
from ibpanel.sim.replay import open_replay
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config

pytestmark = pytest.mark.timeout(60)
QUOTES = 20


def _states(recording):
    return [(q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.last_size, q.volume, q.high, q.low)
            for q in recording.quotes]


async def test_a_recording_replays_to_the_same_quotes_in_the_same_order(broker, tmp_path):
    live = SimServer(sim_test_config(quote_interval=0.1))  # quotes far enough apart to arrive one per packet
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

    session = open_replay(status.path, speed=1.0, playing=False)
    replay = SimServer(sim_test_config(quote_interval=0.05, replay=session))
    await replay.start()
    try:
        await broker.connect(params(replay.port))
        again = await start_recording(broker, ["AAPL"], tmp_path / "replayed")
        session.clock.play()
        await wait_for(lambda: session.clock.state().finished and again.status().quotes >= len(original.quotes),
                       timeout=20)
        path = again.status().path
        stop_recording(broker, again)
    finally:
        await replay.stop()
    replayed = load_recording(path)
    assert _states(replayed) == _states(original)
