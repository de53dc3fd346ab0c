"""Every fault of the practice exchange, switched at run time through the handle and at start by CLI flags."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock
from ibpanel.sim.cli import build_parser, config_from_args
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config
from tests.helpers import wait_for as _wait_for

pytestmark = pytest.mark.timeout(60)


async def _connect(port: int, client_id: int, **kw) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5, **kw)
    return ib


async def test_drop_all_disconnects_every_client(sim_server):
    a, b = await _connect(sim_server.port, 1), await _connect(sim_server.port, 2)
    sim_server.faults.drop_all()
    await _wait_for(lambda: not a.isConnected() and not b.isConnected())
    c = await _connect(sim_server.port, 1)  # the same clientId is free again
    assert c.isConnected()
    c.disconnect()


async def test_refuse_for_then_accepts_again(sim_server):
    sim_server.faults.refuse_for(0.5)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", sim_server.port)
    await _wait_for(lambda: sim_server._server is not None, timeout=5)  # listening again
    ib = await _connect(sim_server.port, 3)
    assert ib.isConnected()
    ib.disconnect()


async def test_connectivity_codes_reach_every_client(sim_server):
    ib = await _connect(sim_server.port, 4)
    codes = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    ticker = ib.reqMktData(aapl)
    await _wait_for(lambda: ticker.bid > 0)
    sim_server.faults.send_connectivity(1100)
    await _wait_for(lambda: 1100 in codes)
    stamp = ticker.time
    await asyncio.sleep(0.3)  # the behaviour under test: nothing streams within this window
    assert ticker.time == stamp  # nothing streams while "connectivity is lost"
    sim_server.faults.send_connectivity(1102)
    await _wait_for(lambda: 1102 in codes and ticker.time != stamp)
    sim_server.faults.send_connectivity(1101)
    await _wait_for(lambda: 1101 in codes)
    assert not sim_server._subs_by_con  # data lost: subscriptions dropped
    with pytest.raises(ValueError):
        sim_server.faults.send_connectivity(1234)
    ib.disconnect()


async def test_reject_next_order_only_once(sim_server):
    ib = await _connect(sim_server.port, 5)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    sim_server.faults.reject_next_order("practice rejection")
    first = ib.placeOrder(aapl, MarketOrder("BUY", 1, account="DU111111"))
    await _wait_for(lambda: first.orderStatus.status == "Cancelled")
    assert (first.order.orderId, 201, "Order rejected - reason:practice rejection") in errors
    second = ib.placeOrder(aapl, MarketOrder("BUY", 1, account="DU111111"))
    await _wait_for(lambda: second.orderStatus.status == "Filled")
    ib.disconnect()


async def test_delay_replies(sim_server):
    ib = await _connect(sim_server.port, 6)
    sim_server.faults.delay_replies(0.4)
    start = time.monotonic()
    await ib.reqCurrentTimeAsync()
    assert time.monotonic() - start >= 0.35
    sim_server.faults.delay_replies(0)
    start = time.monotonic()
    await ib.reqCurrentTimeAsync()
    assert time.monotonic() - start < 0.3
    ib.disconnect()


async def test_readonly_orders_get_321(sim_server):
    ib = await _connect(sim_server.port, 7, readonly=True)
    sim_server.faults.set_readonly(True)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 1.0, account="DU111111"))
    await _wait_for(lambda: any(e[1] == 321 for e in errors))
    assert "Read-Only" in [e for e in errors if e[1] == 321][0][2]
    assert sim_server.exchange.order(7, trade.order.orderId) is None
    ib.disconnect()


async def test_pacing_error_100(sim_server):
    sim_server.faults.set_pacing(True)
    ib = await _connect(sim_server.port, 8)
    ib.client.MaxRequests = 0  # switch off ib_async's own throttle to overrun the exchange
    codes = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    for _ in range(70):
        ib.client.reqCurrentTime()
    await _wait_for(lambda: 100 in codes)
    assert ib.isConnected()
    ib.disconnect()


async def test_no_market_data_subscription_gives_10167_and_delayed_ticks(sim_server):
    sim_server.faults.set_market_data_live(False)
    ib = await _connect(sim_server.port, 9)
    codes = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    ib.reqMarketDataType(4)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    ticker = ib.reqMktData(aapl)
    await _wait_for(lambda: 10167 in codes and ticker.bid > 0 and ticker.marketDataType == 4)
    ib.disconnect()


def test_fault_handle_from_another_thread(sim):
    async def main():
        ib = await _connect(sim.port, 10)
        await asyncio.to_thread(sim.faults.drop_all)  # called from a third thread
        await _wait_for(lambda: not ib.isConnected())

    asyncio.run(main())
    assert sim.stats.count("START_API") == 1


def test_cli_flags_map_onto_config():
    args = build_parser().parse_args([
        "--port", "0", "--accounts", "DU1,DU2", "--seed", "3", "--no-market-data", "--readonly", "--pacing",
        "--refuse-for", "2", "--delay-replies", "0.1", "--session", "real", "--cash", "USD=5000",
        "--log-requests", "--max-lines", "100"])
    cfg = config_from_args(args)
    assert cfg.accounts == ("DU1", "DU2") and cfg.seed == 3 and cfg.session_mode == "real"
    assert not cfg.market_data_live and cfg.readonly and cfg.pacing and cfg.refuse_for == 2
    assert cfg.delay_replies == 0.1 and cfg.log_requests and cfg.max_market_data_lines == 100
    assert str(cfg.starting_cash["USD"]) == "5000"
    with pytest.raises(ValueError, match="CCY=AMOUNT"):
        config_from_args(build_parser().parse_args(["--cash", "lots"]))


async def test_start_flags_apply_at_start():
    server = SimServer(sim_test_config(readonly=True, refuse_for=0.4, market_data_live=False))
    await server.start()
    try:
        assert server.faults.readonly and not server.faults.market_data_live
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", server.port)
        await _wait_for(lambda: server._server is not None, timeout=5)  # listening again after the refusal
        ib = await _connect(server.port, 1, readonly=True)
        ib.disconnect()
    finally:
        await server.stop()


def test_cli_process_serves_and_stops_cleanly(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ibpanel.sim.cli", "--port", "0", "--log-requests",
                             "--state", str(tmp_path / "state.json"), "--quote-interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r":(\d+) accounts", line).group(1))

        async def main():
            ib = await _connect(port, 1)
            ib.disconnect()

        asyncio.run(main())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "START_API" in proc.stderr.read()  # --log-requests logs every request
        assert (tmp_path / "state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
