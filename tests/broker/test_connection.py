"""Connection failures told apart, client id 326 with a probed free id, degraded state,
auto-reconnect after a drop and after TWS refuses for a while (subscriptions back, no order twice)."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal

import pytest
from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import ConnectError
from ibpanel.broker.models import ConnectionState, FailureKind, OrderRequest, OrderStatus, OrderType, Side


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_nothing_listening(broker):
    port = _free_port()
    with pytest.raises(ConnectError) as caught:
        await broker.connect(params(port, timeout=2))
    failure = caught.value.failure
    assert failure.kind is FailureKind.NOTHING_LISTENING
    assert str(port) in failure.message and "7497" in failure.advice
    assert broker.status.state is ConnectionState.DISCONNECTED and broker.status.failure == failure


async def test_handshake_closed_means_api_not_enabled(broker):
    async def slam(reader, writer):
        writer.close()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectError) as caught:
            await broker.connect(params(port, timeout=3))
        assert caught.value.failure.kind is FailureKind.HANDSHAKE_CLOSED
        assert "Enable ActiveX and Socket Clients" in caught.value.failure.advice
    finally:
        server.close()
        await server.wait_closed()


async def test_silent_server_times_out(broker):
    held = []

    async def mute(reader, writer):
        held.append(writer)  # keep the socket open and say nothing

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectError) as caught:
            await broker.connect(params(port, timeout=0.5))
        assert caught.value.failure.kind is FailureKind.TIMEOUT
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_client_id_in_use_suggests_a_free_id(tmp_path, sim_server):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = make_broker(tmp_path / "a"), make_broker(tmp_path / "b")
    try:
        await first.connect(params(sim_server.port, client_id=5))
        # occupy 6 as well, so the suggestion must come from probing, not from "+1"
        third_dir = tmp_path / "c"
        third_dir.mkdir()
        third = make_broker(third_dir)
        await third.connect(params(sim_server.port, client_id=6))
        with pytest.raises(ConnectError) as caught:
            await second.connect(params(sim_server.port, client_id=5))
        failure = caught.value.failure
        assert failure.kind is FailureKind.CLIENT_ID_IN_USE
        assert failure.suggested_client_id == 7
        assert "326" in failure.message
        status = await second.connect(params(sim_server.port, client_id=failure.suggested_client_id))
        assert status.state is ConnectionState.CONNECTED
        await third.close()
    finally:
        await first.close()
        await second.close()


async def test_degraded_on_1100_and_back_on_1102(connected, sim_server):
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    sim_server.faults.send_connectivity(1100)
    await wait_for(lambda: connected.status.state is ConnectionState.DEGRADED)
    assert connected.status.connected
    await wait_for(lambda: (q := connected.quote(aapl)) and q.stale)
    sim_server.faults.send_connectivity(1102)
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED)
    assert not connected.quote(aapl).stale


async def test_reconnect_after_drop_restores_quotes_and_never_resends(connected, sim_server):
    sim_server.set_quote_interval(0.05)
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    quote = await wait_for(lambda: (q := connected.quote(aapl)) and q.bid and q)
    low = (Decimal(str(quote.bid)) * Decimal("0.95")).quantize(Decimal("0.01"))
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(3), OrderType.LMT, limit_price=low))
    await wait_for(lambda: connected.order(view.order_id).status is OrderStatus.SUBMITTED)
    states = []
    connected.state_changed.connect(lambda s: states.append(s.state))

    sim_server.faults.drop_all()
    await wait_for(lambda: ConnectionState.RECONNECTING in states)
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED, timeout=10)
    # the working order is known again (from TWS's open orders), the same one, not a copy
    again = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.SUBMITTED and v)
    assert again.perm_id == view.perm_id or view.perm_id is None
    assert sim_server.stats.count("PLACE_ORDER") == 1
    assert len([v for v in connected.open_orders() if v.journal_id == view.journal_id]) == 1
    # quotes flow again on the new connection (the request may wait its turn in the broker's pacing)
    await wait_for(lambda: sim_server.stats.count("REQ_MKT_DATA") >= 2)
    before = connected.quote(aapl)
    await wait_for(lambda: (q := connected.quote(aapl)) and q is not before and not q.stale)
    # and the order still works: cancel it through the new connection
    assert (await connected.cancel(view.order_id)).status is OrderStatus.CANCELLED


async def test_reconnect_after_refusing_for_a_while(connected, sim_server):
    sim_server.faults.refuse_for(0.8)
    sim_server.faults.drop_all()
    await wait_for(lambda: connected.status.state is ConnectionState.RECONNECTING)
    await wait_for(lambda: connected.status.reconnect_attempt >= 2, timeout=5)
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED, timeout=10)
    assert connected.status.reconnect_attempt == 0 and connected.status.failure is None
    assert await wait_for(lambda: connected.account_summary())


async def test_disconnect_stops_auto_reconnect(connected, sim_server):
    sim_server.faults.refuse_for(5)
    sim_server.faults.drop_all()
    await wait_for(lambda: connected.status.state is ConnectionState.RECONNECTING)
    await connected.disconnect()
    assert connected.status.state is ConnectionState.DISCONNECTED
    await asyncio.sleep(0.4)  # the behaviour under test: no reconnect attempt within this window
    assert connected.status.state is ConnectionState.DISCONNECTED


async def test_1101_data_lost_resubscribes_market_data(connected, sim_server):
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    assert sim_server.stats.count("REQ_MKT_DATA") == 1
    sim_server.faults.send_connectivity(1100)
    await wait_for(lambda: connected.status.state is ConnectionState.DEGRADED)
    sim_server.faults.send_connectivity(1101)
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED)
    await wait_for(lambda: sim_server.stats.count("REQ_MKT_DATA") == 2)
    await wait_for(lambda: (q := connected.quote(aapl)) and q.last and not q.stale)


async def test_live_account_ids_make_a_live_session(tmp_path):
    from ibpanel.sim.server import SimConfig, SimServer

    server = SimServer(SimConfig(port=0, accounts=("U1234567",), quote_interval=0.2))
    await server.start()
    broker = make_broker(tmp_path)
    try:
        status = await broker.connect(params(server.port))
        assert status.is_paper is False and "U1234567" in status.paper_reason
        assert status.account == "U1234567"
    finally:
        await broker.close()
        await server.stop()


async def test_quotes_go_stale_when_the_link_drops(connected, sim_server):
    sim_server.faults.refuse_for(1.0)
    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    await wait_for(lambda: (q := connected.quote(aapl)) and q.last)
    sim_server.faults.drop_all()
    await wait_for(lambda: connected.quote(aapl).stale)
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED, timeout=10)
    await wait_for(lambda: not connected.quote(aapl).stale)


async def test_manual_reconnect_keeps_quotes_other_tws_forgets_them(connected, sim_server):
    from ibpanel.sim.server import SimConfig, SimServer

    aapl = await connected.resolve("AAPL")
    await connected.subscribe(aapl)
    await connected.disconnect()
    assert connected.quote(aapl).stale
    await connected.connect(params(sim_server.port))
    await wait_for(lambda: sim_server.stats.count("REQ_MKT_DATA") == 2)  # same TWS: the line comes back
    await wait_for(lambda: not connected.quote(aapl).stale)

    other = SimServer(SimConfig(port=0, quote_interval=0.2, seed=2))
    await other.start()
    try:
        await connected.connect(params(other.port))
        assert connected.quote(aapl) is None and other.stats.count("REQ_MKT_DATA") == 0
        assert not connected.open_orders() and not connected.fills()
    finally:
        await connected.disconnect()
        await other.stop()


async def test_disconnect_while_connecting_cancels_the_connect(broker):
    held = []

    async def mute(reader, writer):
        held.append(writer)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        attempt = asyncio.ensure_future(broker.connect(params(port, timeout=5)))
        await wait_for(lambda: broker.status.state is ConnectionState.CONNECTING and held)
        await broker.disconnect()
        with pytest.raises(ConnectError) as caught:
            await asyncio.wait_for(attempt, 2)
        assert "cancelled" in caught.value.failure.message
        assert broker.status.state is ConnectionState.DISCONNECTED
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_order_cancelled_while_we_were_away_is_settled_on_reconnect(connected, sim_server):
    aapl = await connected.resolve("AAPL")
    quote = await connected.snapshot(aapl)
    low = (Decimal(str(quote.bid)) * Decimal("0.95")).quantize(Decimal("0.01"))
    view = await connected.place(OrderRequest("AAPL", Side.BUY, Decimal(4), OrderType.LMT, limit_price=low))
    await wait_for(lambda: connected.order(view.order_id).status is OrderStatus.SUBMITTED)
    sim_server.faults.refuse_for(0.6)
    sim_server.faults.drop_all()
    await wait_for(lambda: connected.status.state is ConnectionState.RECONNECTING)
    sim_server.exchange.cancel(connected.status.params.client_id, view.order_id)  # e.g. cancelled in TWS itself
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED, timeout=10)
    settled = await wait_for(lambda: (v := connected.order(view.order_id)) and v.status.is_done and v)
    assert settled.status is OrderStatus.CANCELLED
    assert connected.journal.entry(view.journal_id).status == "Cancelled"
    assert sim_server.stats.count("PLACE_ORDER") == 1


async def test_without_auto_reconnect_a_drop_is_said_and_stays_down(broker, sim_server):
    await broker.connect(params(sim_server.port, auto_reconnect=False))
    sim_server.faults.drop_all()
    await wait_for(lambda: broker.status.state is ConnectionState.DISCONNECTED)
    assert broker.status.failure.kind is FailureKind.NOT_CONNECTED and "lost" in broker.status.failure.message
    await asyncio.sleep(0.3)  # the behaviour under test: no reconnect attempt within this window
    assert broker.status.state is ConnectionState.DISCONNECTED and sim_server.stats.count("START_API") == 1


def test_backoff_grows_to_the_cap_with_jitter():
    from ib_async import IB
    from ibpanel.broker.session import Session

    session = Session(IB(), backoff=(1.0, 30.0), on_status=lambda s: None, on_ready=None, on_lost=lambda: None,
                      on_data_lost=lambda: None)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (12, 30.0)):
        delays = {session.retry_delay(attempt) for _ in range(50)}
        assert all(0.75 * base <= d <= 1.25 * base for d in delays)
        assert len(delays) > 1  # jittered, so many clients do not knock on TWS in step


async def test_unknown_account_refuses_to_connect_rather_than_pick_another(broker, sim_server):
    with pytest.raises(ConnectError) as caught:
        await broker.connect(params(sim_server.port, account="U7777777"))
    assert "U7777777" in caught.value.failure.message and "DU111111" in caught.value.failure.advice
    assert caught.value.failure.kind is FailureKind.UNKNOWN_ACCOUNT  # its own code for scripts (QA F6 nit)
    assert broker.status.state is ConnectionState.DISCONNECTED
