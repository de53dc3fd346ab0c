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
            await asyncio.sleep(0.03)
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
        assert data["format"] == 1 and data["exchange"]["orders"]
    leftovers = [p for p in tmp_path.iterdir() if p.name != "state.json"]
    assert all(p.name.endswith(".tmp") for p in leftovers)  # at most an abandoned temp file, never the state


async def test_unreadable_state_file_says_what_to_do(tmp_path):
    state = tmp_path / "broken.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match="move it away"):
        SimServer(sim_test_config(state_file=state))
