"""The market-data hot path: both quote paths agree, slow readers are paused and refreshed, unsupported
requests are answered, several clients share one instrument's updates."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from ib_async import IB, Stock
from ibpanel.sim import protocol as P
from ibpanel.sim.server import ClientSession, SimServer

from tests.conftest import sim_test_config
from tests.helpers import wait_for as _wait_for

pytestmark = pytest.mark.timeout(60)


class _Transport:
    """Collects what the server writes to one in-process session."""

    def __init__(self):
        self.data = bytearray()

    def write(self, data):
        self.data += data

    def get_extra_info(self, name):
        return None

    def close(self):
        pass

    def abort(self):
        pass

    def messages(self) -> list[list[str]]:
        buf = P.FrameBuffer()
        out = [P.split_fields(p) for p in buf.feed(bytes(self.data))]
        self.data.clear()
        return out


async def _session(server: SimServer, client_id: int = 1) -> tuple[ClientSession, _Transport]:
    server.loop = asyncio.get_running_loop()
    session = ClientSession(server)
    transport = _Transport()
    session.connection_made(transport)
    server.handle_message(session, P.encode_payload(["71", "2", client_id, ""]))
    session.flush()
    transport.messages()
    return session, transport


def _subscribe(server, session, req_id: int, con_id: int) -> None:
    server.handle_message(session, P.encode_payload(
        ["1", "11", req_id, con_id, "", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "", "0", "", "0", "0", ""]))
    session.flush()


def _last_values(messages: list[list[str]]) -> dict[int, str]:
    """tick type -> latest price (TICK_PRICE) or size (TICK_SIZE)."""
    seen: dict[int, str] = {}
    for m in messages:
        if m[0] == "1":
            seen[int(m[3])] = m[4]
        elif m[0] == "2":
            seen[int(m[3])] = m[4]
    return seen


@pytest.mark.parametrize("fast", [True, False], ids=["integer-states", "PracticeMarket.top"])
async def test_streamed_ticks_track_the_market(fast):
    server = SimServer(sim_test_config())
    assert server._quotes.fast  # the market exposes what the fast path needs
    server._quotes.fast = fast
    session, transport = await _session(server)
    _subscribe(server, session, 5, 265598)
    view = _last_values(transport.messages())
    for _ in range(30):
        server.tick()
        session.flush()
        view.update(_last_values(transport.messages()))
        top = server.market.top(265598)
        assert Decimal(view[1]) == top.bid and Decimal(view[2]) == top.ask
        assert Decimal(view[4]) == top.last and int(view[8]) == top.volume
        assert Decimal(view[6]) == top.high and Decimal(view[7]) == top.low


async def test_paused_reader_gets_no_ticks_then_a_full_refresh():
    server = SimServer(sim_test_config())
    session, transport = await _session(server)
    _subscribe(server, session, 9, 265598)
    transport.messages()
    session.pause_writing()
    for _ in range(5):
        server.tick()
    session.flush()
    assert not [m for m in transport.messages() if m[0] in ("1", "2")]
    session.resume_writing()
    session.flush()
    view = _last_values(transport.messages())
    top = server.market.top(265598)
    assert Decimal(view[1]) == top.bid and Decimal(view[2]) == top.ask and int(view[8]) == top.volume


async def test_two_clients_on_one_instrument_both_stream(sim_server):
    a, b = IB(), IB()
    await a.connectAsync("127.0.0.1", sim_server.port, clientId=1, timeout=5)
    await b.connectAsync("127.0.0.1", sim_server.port, clientId=2, timeout=5)
    try:
        contract = Stock("AAPL", "SMART", "USD")
        await a.qualifyContractsAsync(contract)
        await b.qualifyContractsAsync(contract)
        ta, tb = a.reqMktData(contract), b.reqMktData(contract)
        await _wait_for(lambda: ta.bid > 0 and tb.bid > 0)
        seen_a, seen_b = {ta.bid}, {tb.bid}
        ta.updateEvent += lambda ticker: seen_a.add(ticker.bid)
        tb.updateEvent += lambda ticker: seen_b.add(ticker.bid)
        await _wait_for(lambda: len(seen_a) > 1 and len(seen_b) > 1)  # both lines see the price move
        assert len(sim_server._subs_by_con[265598]) == 2
        a.cancelMktData(contract)
        await _wait_for(lambda: len(sim_server._subs_by_con.get(265598, {})) == 1)
    finally:
        a.disconnect()
        b.disconnect()


async def test_unknown_message_id_is_answered_not_ignored(sim_server):
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim_server.port, clientId=3, timeout=5)
    codes = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append((req_id, code))
    try:
        ib.client.send(250, 1, 5)  # no TWS message has this id
        await _wait_for(lambda: (-1, 321) in codes)
        assert sim_server.stats.count("UNKNOWN_250") == 1
        assert ib.isConnected()
    finally:
        ib.disconnect()


async def test_after_a_pause_only_the_lines_that_moved_are_refreshed():
    server = SimServer(sim_test_config())
    session, transport = await _session(server)
    _subscribe(server, session, 9, 265598)  # AAPL moves below
    _subscribe(server, session, 10, 272093)  # MSFT stays where it is
    transport.messages()
    session.pause_writing()
    server.market.move_to(265598, server.market.top(265598).last + Decimal("1.00"))
    server._stream_quotes([265598])  # the step that moved AAPL, while the client was paused
    session.flush()
    assert not [m for m in transport.messages() if m[0] in ("1", "2")]
    session.resume_writing()
    session.flush()
    refreshed = {int(m[2]) for m in transport.messages() if m[0] in ("1", "2")}
    assert refreshed == {9}  # MSFT did not move: nothing to send for it
    assert session.missed == set()
