"""Unmodified ib_async connects to the practice exchange: handshake, startup sync, several clients."""

from __future__ import annotations

import asyncio
import logging

import pytest
from ib_async import IB
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config

pytestmark = pytest.mark.timeout(60)


async def _connect(port: int, client_id: int = 1, **kwargs) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5, **kwargs)
    return ib


async def test_connect_syncs_accounts_and_values(sim_server):
    errors = []
    ib = IB()
    ib.errorEvent += lambda *a: errors.append(a)
    await ib.connectAsync("127.0.0.1", sim_server.port, clientId=7, timeout=5, raiseSyncErrors=True)
    try:
        assert ib.isConnected()
        assert ib.managedAccounts() == ["DU111111", "DU222222"]
        assert ib.client.serverVersion() == 176
        values = {(v.account, v.tag, v.currency) for v in ib.accountValues()}
        # multi-account: values arrive through reqAccountUpdatesMulti for every account
        assert ("DU111111", "NetLiquidation", "USD") in values
        assert ("DU222222", "NetLiquidation", "USD") in values
        assert ib.positions() == []
        assert ib.openTrades() == []
        assert sim_server.stats.count("START_API") == 1
        assert sim_server.stats.count("REQ_POSITIONS") == 1
        assert sim_server.stats.count("REQ_COMPLETED_ORDERS") == 1
        assert sim_server.stats.count("REQ_EXECUTIONS") == 1
        farm_codes = {e[1] for e in errors}
        assert {2104, 2106, 2158} <= farm_codes
    finally:
        ib.disconnect()


async def test_readonly_connect_skips_order_requests(sim_server):
    ib = await _connect(sim_server.port, 3, readonly=True)
    try:
        assert ib.isConnected()
        assert sim_server.stats.count("REQ_OPEN_ORDERS") == 0
        assert sim_server.stats.count("REQ_COMPLETED_ORDERS") == 0
    finally:
        ib.disconnect()


async def test_single_account_gets_account_updates():
    server = SimServer(sim_test_config(accounts=("DU333333",)))
    await server.start()
    try:
        ib = await _connect(server.port, 1)
        try:
            assert ib.managedAccounts() == ["DU333333"]
            assert server.stats.count("REQ_ACCT_DATA") == 1
            tags = {v.tag for v in ib.accountValues("DU333333")}
            assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds"} <= tags
        finally:
            ib.disconnect()
    finally:
        await server.stop()


async def test_several_clients_and_duplicate_client_id_gets_326(sim_server, caplog):
    first = await _connect(sim_server.port, 5)
    second = await _connect(sim_server.port, 6)
    dup = IB()
    errors = []
    dup.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    try:
        with pytest.raises((asyncio.TimeoutError, ConnectionError, TimeoutError)):
            await dup.connectAsync("127.0.0.1", sim_server.port, clientId=5, timeout=2)
        assert 326 in errors
        assert not dup.isConnected()
        assert first.isConnected() and second.isConnected()
        assert sorted(sim_server.by_client_id) == [5, 6]
    finally:
        dup.disconnect()
        first.disconnect()
        second.disconnect()


async def test_client_version_range_below_151_is_closed_with_log(sim_server, caplog):
    caplog.set_level(logging.WARNING, logger="ibpanel.sim")
    reader, writer = await asyncio.open_connection("127.0.0.1", sim_server.port)
    text = b"v100..150"
    writer.write(b"API\0" + len(text).to_bytes(4, "big") + text)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # server closes: EOF
    assert data == b""
    writer.close()
    assert any("100..150" in r.getMessage() and "151..176" in r.getMessage() for r in caplog.records)


def test_sync_fixture_thread(sim):
    async def main():
        ib = await _connect(sim.port, 9)
        try:
            return ib.managedAccounts()
        finally:
            ib.disconnect()

    assert asyncio.run(main()) == ["DU111111", "DU222222"]
    assert sim.stats.count("START_API") == 1
