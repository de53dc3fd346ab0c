"""A runtime Session: the practice exchange, the broker and the REST API start through it and stop in one close()."""

from __future__ import annotations

import asyncio
import json

import pytest
from ibpanel.broker.models import ConnectionParams, ConnectionState
from ibpanel.runtime.rest_api import ApiRefused
from ibpanel.runtime.session import Session


async def _get_status(port: int) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/ibkr/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"{}")


async def test_a_session_serves_its_own_broker_and_close_stops_api_broker_and_exchange():
    session = Session("default", scratch_journals=True)
    try:
        practice = await session.start_practice(persistent=False)
        assert await session.start_practice() is practice  # one exchange per session
        assert session.practice_address() == (practice.host, practice.port)
        await session.broker.connect(ConnectionParams(host=practice.host, port=practice.port, client_id=1,
                                                      practice=True))
        handle = await session.api.start("127.0.0.1", 0)
        status, body = await _get_status(handle.port)
        assert status == 200 and "DU" in json.dumps(body)  # the API answers for the session's broker
    finally:
        await session.close()
    assert session.api.handle is None and session.practice is None
    assert session.broker.status.state is ConnectionState.DISCONNECTED
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", handle.port)  # the API no longer listens
    with pytest.raises(OSError):
        await asyncio.open_connection(practice.host, practice.port)  # nor the practice exchange


async def test_the_api_refuses_another_address_without_a_token_and_binds_nothing():
    session = Session("default", scratch_journals=True)
    try:
        with pytest.raises(ApiRefused, match="without a token"):
            await session.api.start("0.0.0.0", 0)
        assert session.api.handle is None
    finally:
        await session.close()
