"""What the broker reports about the link and the accounts, against the practice exchange over a real
socket: connection time and base currency, one plain line when nothing listens, 2110 / 1100 as a degraded
link restored by the right notices, and priced positions of an account other than the selected one."""

from __future__ import annotations

import re
import socket
from decimal import Decimal

import pytest
from broker_helpers import params, wait_for
from ibpanel.broker.exceptions import ConnectError
from ibpanel.broker.models import ConnectionState, FailureKind, OrderRequest, OrderStatus, OrderType, Side


async def test_positions_of_another_account_have_prices(connected):
    other = next(a for a in connected.accounts if a != connected.status.account)
    view = await connected.place(OrderRequest("MSFT", Side.SELL, Decimal(10), OrderType.MKT, account=other))
    await wait_for(lambda: (v := connected.order(view.order_id)) and v.status is OrderStatus.FILLED)
    position = await wait_for(lambda: next((p for p in connected.positions(other)
                                            if p.instrument.symbol == "MSFT" and p.market_price), None))
    assert position.account == other and position.quantity == Decimal(-10)
    assert position.market_value == pytest.approx(-10 * position.market_price, rel=1e-6)
    assert position.unrealized_pnl == pytest.approx(position.market_value + 10 * position.avg_cost, abs=0.01)
    assert all(p.account != other for p in connected.positions())  # the selected account's view is its own


async def test_connection_time_and_base_currency(connected):
    assert re.fullmatch(r"\d{8} \d\d:\d\d:\d\d UTC", connected.status.connection_time or "")
    summary = await wait_for(lambda: connected.account_summary())
    assert summary.base_currency == "USD"


async def test_nothing_listening_is_one_plain_line(broker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError) as caught:
        await broker.connect(params(port, timeout=2))
    failure = caught.value.failure
    assert failure.kind is FailureKind.NOTHING_LISTENING
    assert "Errno" not in failure.message and "Connect call failed" not in failure.message
    assert "\n" not in failure.message and failure.detail  # the OS text is kept for the log


async def test_2110_degrades_and_farm_ok_restores(connected, sim_server):
    sim_server.broadcast_notice(2110, "Connectivity between Trader Workstation and server is broken. "
                                      "It will be restored automatically.")
    await wait_for(lambda: connected.status.state is ConnectionState.DEGRADED)
    sim_server.broadcast_notice(2104, "Market data farm connection is OK:usfarm")
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED)
    # 1100 is cleared only by 1101 / 1102, not by a farm notice
    sim_server.faults.send_connectivity(1100)
    await wait_for(lambda: connected.status.state is ConnectionState.DEGRADED)
    sim_server.broadcast_notice(2104, "Market data farm connection is OK:usfarm")
    sim_server.faults.send_connectivity(1102)
    states = []
    connected.state_changed.connect(lambda s: states.append(s.state))
    await wait_for(lambda: connected.status.state is ConnectionState.CONNECTED)
    assert states == [ConnectionState.CONNECTED]


@pytest.mark.parametrize("asked", ["", "DU222222"])
async def test_account_values_fill_in_before_the_order_sync_ends(broker, sim_server, asked):
    """The chosen account's stream is asked for first at API start, so its values reach the views while
    positions, open and completed orders and executions are still being read (each reply held 0.3 s)."""
    sim_server.faults.delay_replies(0.3)
    synced: list[bool] = []
    broker._ib.connectedEvent += lambda: synced.append(True)  # ib_async's startup sync has ended
    seen: list[tuple[str, bool, object]] = []
    broker.account_changed.connect(lambda s: seen.append((s.account, bool(synced), s.net_liquidation)))
    status = await broker.connect(params(sim_server.port, account=asked))
    chosen = asked or status.accounts[0]
    assert status.account == chosen and synced
    first_account, sync_over_then, net_liquidation = seen[0]
    assert not sync_over_then  # shown while the sync was still reading, not after it
    assert first_account == chosen and net_liquidation is not None
    assert {account for account, _, _ in seen} == {chosen}  # never another account's values in its place
