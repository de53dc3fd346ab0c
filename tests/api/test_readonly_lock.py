"""Read-only chosen at start (`serve --readonly`) cannot be lifted from the API: not by /connect, not by
/disconnect then /connect. The refusals and notes say so; nothing reaches the practice exchange."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from ibpanel.api.server import start_api
from ibpanel.cli import parse_args
from ibpanel.runtime.serve import serve


@pytest.fixture
async def readonly_serve(tmp_path, monkeypatch):
    """`ibpanel serve --demo --readonly` in-process on an ephemeral port: (base URL, HTTP session)."""
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IBPANEL_API_TOKEN", raising=False)
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(parse_args(["serve", "--demo", "--readonly", "--port", "0", "--seed", "3"]),
                                       ready=ready, stop=stop))
    await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    assert ready.done(), task.result()
    handle = ready.result()
    async with aiohttp.ClientSession() as session:
        yield handle, session
    stop.set()
    assert await task == 0


async def _call(session, handle, method, path, body=None):
    async with session.request(method, f"{handle.url}/api/ibkr/{path}", json=body) as response:
        return response.status, await response.json()


async def test_serve_readonly_cannot_be_lifted_by_disconnect_then_connect(readonly_serve):
    handle, session = readonly_serve
    status, body = await _call(session, handle, "GET", "status")
    assert body["data"]["connected"] and body["data"]["readonly"] is True
    assert body["data"]["readonlyLocked"] is True and "serve --readonly" in body["data"]["readonlyReason"]

    status, body = await _call(session, handle, "POST", "disconnect")
    assert status == 200
    status, body = await _call(session, handle, "POST", "connect", {"port": 7497, "readonly": False})
    assert status == 403 and body["code"] == "readonly_locked" and body["field"] == "readonly", body
    assert "serve --readonly" in body["error"] and "restart" in body["error"]
    status, body = await _call(session, handle, "GET", "status")
    assert body["data"]["connected"] is False  # refused outright: no trading connection was made meanwhile

    status, body = await _call(session, handle, "POST", "connect", {"port": 7497})
    assert status == 200 and body["data"]["readonly"] is True, body
    assert "read-only" in body["message"] and "serve --readonly" in body["message"]

    status, body = await _call(session, handle, "POST", "order",
                               {"symbol": "AAPL", "side": "buy", "quantity": 1, "orderType": "market"})
    assert status == 400 and body["success"] is False and "read-only" in body["error"].lower(), body
    status, body = await _call(session, handle, "GET", "orders", None)
    assert status == 200 and body["data"] == []


async def test_without_a_lock_the_api_chooses_and_status_says_unlocked(practice_api):
    status, body = await practice_api.get("status")
    assert body["data"]["readonlyLocked"] is False and "readonlyReason" not in body["data"]
    status, body = await practice_api.post("connect", {"port": 7497, "readonly": False})
    assert status == 200 and body["data"]["readonly"] is False


async def test_a_lock_given_as_a_callable_follows_the_panels_switch(broker, sim_server):
    switch = {"on": True}
    handle = await start_api(broker, port=0, practice=sim_server,
                             readonly=lambda: "Read-only is switched on in the panel." if switch["on"] else None)
    try:
        async with aiohttp.ClientSession() as session:
            status, body = await _call(session, handle, "POST", "connect", {"port": 7497, "readonly": False})
            assert status == 403 and "switched on in the panel" in body["error"]
            switch["on"] = False  # the trader at the panel untick it: the API may choose again
            status, body = await _call(session, handle, "POST", "connect", {"port": 7497, "readonly": False})
            assert status == 200 and body["data"]["readonly"] is False and body["data"]["readonlyLocked"] is False
    finally:
        await handle.close()
