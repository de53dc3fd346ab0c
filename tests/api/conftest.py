"""Fixtures for the REST API tests: a real Broker, the API on an ephemeral port, an HTTP client.

Everything runs on the test's own asyncio loop, as in the product (no threads): the practice
exchange (``sim_server`` from tests/conftest.py), the Broker connected to it, and aiohttp.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import aiohttp
import pytest
from ibpanel.api.server import ApiHandle, start_api
from ibpanel.broker.service import Broker

_client_ids = itertools.count(41)


class Api:
    """An HTTP client bound to one running API; ``call`` returns (status, json body)."""

    def __init__(self, handle: ApiHandle, session: aiohttp.ClientSession) -> None:
        self.handle = handle
        self.session = session
        self.base = handle.url

    async def call(self, method: str, path: str, *, json=None, data=None, headers=None, params=None):
        url = self.base + (path if path.startswith("/") else "/api/ibkr/" + path)
        async with self.session.request(method, url, json=json, data=data, headers=headers, params=params) as response:
            body = await response.json(content_type=None)
            self.last_headers = response.headers
            return response.status, body

    async def get(self, path: str, **kwargs):
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body=None, **kwargs):
        return await self.call("POST", path, json=body, **kwargs)

    async def delete(self, path: str, **kwargs):
        return await self.call("DELETE", path, **kwargs)


@pytest.fixture
async def broker(tmp_path) -> AsyncIterator[Broker]:
    broker = Broker(tmp_path / "journal.sqlite3")
    try:
        yield broker
    finally:
        await broker.close()


async def _serve(broker: Broker, **kwargs) -> AsyncIterator[Api]:
    handle = await start_api(broker, port=0, **kwargs)
    session = aiohttp.ClientSession()
    try:
        yield Api(handle, session)
    finally:
        await session.close()
        await handle.close()


@pytest.fixture
async def api(broker) -> AsyncIterator[Api]:
    """The API over an unconnected broker."""
    async for client in _serve(broker):
        yield client


@pytest.fixture
async def practice_api(broker, sim_server) -> AsyncIterator[Api]:
    """The API over a broker, with the practice exchange registered (as ``serve --demo`` does); not connected."""
    async for client in _serve(broker, practice=sim_server):
        client.sim = sim_server
        yield client


@pytest.fixture
async def connected_api(practice_api) -> Api:
    """``practice_api`` after the module's own connect call (port 7497 -> the practice exchange)."""
    status, body = await practice_api.post("connect", {"host": "127.0.0.1", "port": 7497, "clientId": next(_client_ids)})
    assert status == 200, body
    return practice_api
