"""The API's guards over real HTTP: bind/token rules, Host (DNS rebinding), Origin, Content-Type, size, errors."""

from __future__ import annotations

import asyncio
import errno
import logging

import aiohttp
import pytest
from aiohttp import web
from ibpanel.api.security import MAX_BODY_BYTES, ApiConfigError, SecurityPolicy, check_bind
from ibpanel.api.server import build_app, start_api

TOKEN = "test-token-0123456789abcdef"


def test_binding_beyond_loopback_needs_a_long_token():
    check_bind("127.0.0.1", None)
    check_bind("localhost", None)
    check_bind("::1", None)
    for host in ("0.0.0.0", "192.168.1.10", "::", ""):
        with pytest.raises(ApiConfigError, match="without a token"):
            check_bind(host, None)
    with pytest.raises(ApiConfigError, match="at least 16"):
        check_bind("0.0.0.0", "short")
    check_bind("0.0.0.0", TOKEN)


async def test_start_api_refuses_an_open_bind_without_token(broker):
    with pytest.raises(ApiConfigError):
        await start_api(broker, host="0.0.0.0", port=0)


async def test_host_header_must_name_this_server(api):
    assert (await api.get("status"))[0] == 200
    assert (await api.get("status", headers={"Host": f"localhost:{api.handle.port}"}))[0] == 200
    for host in ("evil.example", f"evil.example:{api.handle.port}", "127.0.0.1.nip.io", "[::2]"):
        status, body = await api.get("status", headers={"Host": host})
        assert status == 421, host
        assert body["success"] is False and "host name" in body["error"]


async def test_missing_host_header_is_refused(api):
    reader, writer = await asyncio.open_connection("127.0.0.1", api.handle.port)
    writer.write(b"GET /api/ibkr/status HTTP/1.0\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert raw.startswith(b"HTTP/1.0 400") or raw.startswith(b"HTTP/1.1 400")
    assert b"Host header is missing" in raw


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another local port is another origin
        {"Origin": "https://127.0.0.1"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cross_origin_browser_requests_are_refused(api, headers):
    status, body = await api.post("disconnect", headers=headers)
    assert status == 403
    assert "Cross-origin" in body["error"]


async def test_same_origin_is_allowed(api):
    status, _ = await api.get("status", headers={"Origin": f"http://127.0.0.1:{api.handle.port}"})
    assert status == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
async def test_bodies_must_be_declared_json(api, content_type):
    status, body = await api.call("POST", "order", data=b'{"symbol": "AAPL"}', headers={"Content-Type": content_type})
    assert status == 415
    assert "application/json" in body["error"]


async def test_body_size_is_capped(api):
    big = b'{"symbol": "' + b"A" * (MAX_BODY_BYTES + 10) + b'"}'
    status, body = await api.call("POST", "order", data=big, headers={"Content-Type": "application/json"})
    assert status == 413 and "too large" in body["error"]


async def test_empty_post_needs_no_content_type(api):
    status, body = await api.post("disconnect")
    assert (status, body) == (200, {"success": True, "message": "Disconnected"})


async def test_bad_json_and_unknown_fields_name_the_problem(api):
    status, body = await api.call("POST", "connect", data=b"{bad", headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in body["error"]
    status, body = await api.post("connect", {"port": "7497"})
    assert status == 400 and body["field"] == "port"
    status, body = await api.post("disconnect", {"force": True})
    assert status == 400 and body["field"] == "force"
    status, body = await api.get("positions", params={"acct": "DU1"})
    assert status == 400 and body["field"] == "acct"


async def test_token_is_required_when_configured(broker):
    handle = await start_api(broker, host="127.0.0.1", port=0, token=TOKEN)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{handle.url}/api/ibkr/status"
            async with session.get(url) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert "Authorization: Bearer" in (await response.json())["error"]
            async with session.get(url, headers={"Authorization": "Bearer wrong-token-wrong-token"}) as response:
                assert response.status == 401
            async with session.get(url, headers={"Authorization": f"Basic {TOKEN}"}) as response:
                assert response.status == 401
            async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                assert response.status == 200 and (await response.json())["success"] is True
    finally:
        await handle.close()


async def test_any_address_bind_with_token_answers_on_loopback(broker):
    handle = await start_api(broker, host="0.0.0.0", port=0, token=TOKEN)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{handle.port}/api/ibkr/status"
            async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                assert response.status == 200
            async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}", "Host": "rebind.example"}) as response:
                assert response.status == 421
    finally:
        await handle.close()


async def test_unknown_routes_and_methods_answer_json(api):
    status, body = await api.get("nothing-here")
    assert status == 404 and body["success"] is False and "openapi.json" in body["error"]
    status, body = await api.call("PUT", "order")
    assert status == 405 and "use POST" in body["error"]
    assert "POST" in api.last_headers["Allow"]


async def test_internal_errors_never_leak_a_stack_trace(broker, caplog):
    policy = SecurityPolicy(bind_host="127.0.0.1")
    app = build_app(broker, policy)

    async def explode(request):
        raise RuntimeError("secret internal detail")

    app.router.add_get("/api/ibkr/explode", explode)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    policy.port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.ERROR, logger="ibpanel.api.security"):
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{policy.port}/api/ibkr/explode") as response:
                    text = await response.text()
                    assert response.status == 500
        assert "secret internal detail" not in text and "Traceback" not in text
        assert '"success": false' in text
        assert "secret internal detail" in caplog.text  # ...but the log has it
    finally:
        await runner.cleanup()


async def test_a_taken_port_is_reported_plainly_and_close_is_idempotent(broker):
    first = await start_api(broker, port=0)
    try:
        with pytest.raises(OSError, match="in use by another program") as taken:
            await start_api(broker, port=first.port)
        # errno kept for callers (the panel says "port N in use", serve names --port); the text is one plain line.
        assert taken.value.errno == errno.EADDRINUSE and str(first.port) in taken.value.strerror
        assert "[Errno" not in taken.value.strerror and "\n" not in taken.value.strerror
    finally:
        await first.close()
        await first.close()


async def test_extra_host_names_can_be_allowed(broker, monkeypatch):
    monkeypatch.setenv("IBPANEL_API_ALLOWED_HOSTS", "ibpanel-api, other.internal")
    handle = await start_api(broker, port=0, allowed_hosts=["panel.local"])
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{handle.port}/api/ibkr/status"
            for name, expected in (("panel.local", 200), ("ibpanel-api:5000", 200), ("other.internal", 200),
                                   ("evil.example", 421)):
                async with session.get(url, headers={"Host": name}) as response:
                    assert response.status == expected, name
    finally:
        await handle.close()
