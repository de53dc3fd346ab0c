"""--state: accounts, orders and fills survive a restart, and a kill at any moment leaves a readable file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock
from ibpanel.sim.persistence import StateStore
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config
from tests.helpers import wait_for as _wait_for

pytestmark = pytest.mark.timeout(90)


async def test_state_survives_restart(tmp_path):
    state = tmp_path / "sim-state.json"
    server = SimServer(sim_test_config(state_file=state))
    await server.start()
    ib = IB()
    await ib.connectAsync("127.0.0.1", server.port, clientId=1, timeout=5)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    filled = ib.placeOrder(aapl, MarketOrder("BUY", 25, account="DU111111"))
    await _wait_for(lambda: filled.orderStatus.status == "Filled")
    resting = ib.placeOrder(aapl, LimitOrder("BUY", 5, 1.00, account="DU111111", tif="GTC"))
    await _wait_for(lambda: resting.orderStatus.status == "Submitted")
    ib.disconnect()
    await server.stop()
    assert json.loads(state.read_text())["format"] == 1

    again = SimServer(sim_test_config(state_file=state))
    await again.start()
    ib2 = IB()
    try:
        await ib2.connectAsync("127.0.0.1", again.port, clientId=1, timeout=5)
        assert any(p.contract.conId == 265598 and p.position == 25 for p in ib2.positions("DU111111"))
        assert any(f.execution.permId == filled.order.permId for f in ib2.fills())
        assert any(t.order.permId == resting.order.permId for t in ib2.openTrades())
        completed = await ib2.reqCompletedOrdersAsync(False)
        assert any(t.order.permId == filled.order.permId for t in completed)
        # order ids keep growing across restarts, so a new order cannot reuse an old id
        assert ib2.client.getReqId() > resting.order.orderId
    finally:
        ib2.disconnect()
        await again.stop()


async def test_a_fill_wakes_the_state_writer_and_reaches_the_snapshot_at_once(tmp_path):
    state = tmp_path / "sim-state.json"
    server = SimServer(sim_test_config(state_file=state))
    await server.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", server.port, clientId=1, timeout=5)
        trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 7, account="DU111111"))
        await _wait_for(lambda: trade.orderStatus.status == "Filled")

        def held() -> list[str]:
            positions = json.loads(state.read_text())["accounts"]["accounts"]["DU111111"]["positions"]
            return [p["quantity"] for p in positions if p["con_id"] == 265598]

        # The state writer sleeps until a save is due (price moves alone: every MARKET_SAVE_SECONDS = 5 s);
        # the fill wakes it, so the snapshot has the position well before that.
        await _wait_for(lambda: held() == ["7"], timeout=2)
    finally:
        ib.disconnect()
        await server.stop()


def test_kill_at_any_moment_leaves_a_readable_state(tmp_path):
    state = tmp_path / "state.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    async def trade_until_killed(proc: subprocess.Popen, port: int, delay: float) -> None:
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
        aapl = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(aapl)
        loop = asyncio.get_running_loop()
        end = loop.time() + delay
        while loop.time() < end:  # every fill makes the exchange save its state within 0.5 s
            ib.placeOrder(aapl, MarketOrder("BUY", 1, account="DU111111"))
            await asyncio.sleep(0.03)  # the order rate of the traffic the kill interrupts, not a wait
        proc.send_signal(signal.SIGKILL)
        ib.disconnect()

    for delay in (0.6, 0.9, 1.25, 1.6):
        proc = subprocess.Popen([sys.executable, "-m", "ibpanel.sim.cli", "--port", "0", "--state", str(state),
                                 "--quote-interval", "0.02", "--synthetic", "200"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            port = int(proc.stdout.readline().split(":")[2].split()[0])
            asyncio.run(trade_until_killed(proc, port, delay))
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        data = json.loads(state.read_text())  # never a torn file
        assert data["format"] == 1
        assert StateStore(state).load()["exchange"]["orders"]  # with the journal: every acknowledged order
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.json"]
    # the journal of changes since the last snapshot, and at most the one temporary file the last kill left
    # (each start removes those of earlier kills)
    assert all(n.startswith("state.json.journal-") or n == ".state.json.tmp" for n in leftovers), leftovers


def test_acknowledged_orders_and_fills_survive_kill_9_right_after_the_ack(tmp_path):
    """kill -9 the moment a client sees an order acknowledged or filled: a restart from --state has it."""
    state = tmp_path / "state.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    async def trade_and_kill(proc: subprocess.Popen, port: int, acks_before_kill: int):
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
        aapl = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(aapl)
        acked: set[int] = set()
        fills: set[str] = set()

        def on_status(trade):
            if trade.orderStatus.status in ("Submitted", "Filled") and trade.order.permId:
                acked.add(trade.order.permId)
                if len(acked) >= acks_before_kill and proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)  # at once, from the ack callback

        ib.orderStatusEvent += on_status
        ib.execDetailsEvent += lambda trade, fill: fills.add(fill.execution.execId)
        for i in range(acks_before_kill + 5):
            order = (MarketOrder("BUY", 1, account="DU111111") if i % 2 else
                     LimitOrder("BUY", 1, 1.00, account="DU111111", tif="GTC"))
            try:
                ib.placeOrder(aapl, order)
            except ConnectionError:  # killed meanwhile
                break
            await asyncio.sleep(0.01)  # the order rate of the traffic the kill interrupts, not a wait
        await _wait_for(lambda: proc.poll() is not None, timeout=10)
        ib.disconnect()
        return acked, fills

    for acks_before_kill in (1, 3, 8):
        proc = subprocess.Popen([sys.executable, "-m", "ibpanel.sim.cli", "--port", "0", "--state", str(state),
                                 "--quote-interval", "0.02"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            port = int(proc.stdout.readline().split(":")[2].split()[0])
            acked, fills = asyncio.run(trade_and_kill(proc, port, acks_before_kill))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        assert acked
        restored = SimServer(sim_test_config(state_file=state))
        perm_ids = {o.perm_id for o in restored.exchange.orders_of(1)}
        exec_ids = {e.exec_id for e in restored.exchange.executions()}
        assert acked <= perm_ids, f"acknowledged orders lost: {acked - perm_ids}"
        assert fills <= exec_ids, f"fills lost: {fills - exec_ids}"
        held = sum(p.quantity for p in restored.accounts.positions("DU111111") if p.con_id == 265598)
        assert held >= len(fills)  # the fills' position changes were kept with them


async def test_unreadable_state_file_says_what_to_do(tmp_path):
    state = tmp_path / "broken.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match="move it away"):
        SimServer(sim_test_config(state_file=state))


def test_state_store_removes_abandoned_temp_files_and_ignores_a_torn_journal_line(tmp_path):
    state = tmp_path / "state.json"
    for name in (".state.json.tmp", ".state.json.4242.139871.tmp"):
        (tmp_path / name).write_text("half a snapshot")
    order = {"client_id": 1, "order_id": 7, "perm_id": 99}
    (tmp_path / "state.json.journal-000003").write_text(
        json.dumps({"k": "order", "id": None, "v": order}) + "\n" + '{"k": "order", "v": {"client_')
    store = StateStore(state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json.journal-000003"]
    data = store.load()
    assert data["exchange"]["orders"] == [order]
    # the next journal continues after the replayed one; a snapshot drops the journals it contains
    store.record("order", dict(order, perm_id=100))
    store.sync()
    assert (tmp_path / "state.json.journal-000004").exists()
    seq = store.rotate()
    store.write_snapshot(json.dumps({"format": 1, "journal_seq": seq, "exchange": {"orders": [order]}}), seq)
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    # after a clean stop the next run's journal is numbered so that a load after a kill replays it
    again = StateStore(state)
    assert again.load()["exchange"]["orders"] == [order]
    again.record("order", {"client_id": 1, "order_id": 8, "perm_id": 101})
    again.sync()  # ... and the process is killed here
    assert [o["order_id"] for o in StateStore(state).load()["exchange"]["orders"]] == [7, 8]
