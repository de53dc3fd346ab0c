"""Hostile input: ids that only look like numbers, duplicate JSON keys, blank tokens, broken HTTP.

Every refusal is JSON, names what was wrong, and nothing reaches the practice exchange.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from ibpanel.api.security import ApiConfigError, check_bind
from ibpanel.cli import parse_args
from ibpanel.runtime.serve import serve


async def _resting_buy(api) -> int:
    status, body = await api.get("quote", params={"symbol": "AAPL"})
    assert status == 200, body
    resting = round(body["data"]["bid"] * 0.95, 2)  # below the market, within the fat-finger limit
    status, placed = await api.post("order", {"symbol": "AAPL", "side": "buy", "quantity": 1,
                                              "orderType": "limit", "price": resting})
    assert status == 200, placed
    return placed["data"]["orderId"]


def _lookalikes(order_id: int) -> list[str]:
    """The id spelled in digits int() reads but HTTP clients never send: Arabic-Indic, full-width, superscript."""
    text = str(order_id)
    arabic = "".join(chr(0x0660 + int(d)) for d in text)
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in text)
    return [arabic, fullwidth, "²", f"{text}²", f" {text}", f"+{text}", f"{text}_0", f"0x{text}"]


async def test_order_ids_in_paths_are_ascii_digits_only(connected_api):
    sim = connected_api.sim
    order_id = await _resting_buy(connected_api)
    cancels = sim.stats.count("CANCEL_ORDER")
    for spelling in _lookalikes(order_id):
        status, body = await connected_api.call("DELETE", f"/api/ibkr/order/{spelling}")
        assert status == 404, (spelling, body)
        assert body["success"] is False and body["field"] == "orderId" and "ASCII digits" in body["error"]
    # The percent-encoded superscript two that used to answer 500.
    status, body = await connected_api.call("DELETE", "/api/ibkr/order/%C2%B2")
    assert status == 404 and body["code"] == "order_not_found", body
    assert sim.stats.count("CANCEL_ORDER") == cancels  # nothing was cancelled
    status, orders = await connected_api.get("orders")
    assert any(o["orderId"] == order_id and o["remaining"] == 1 for o in orders["data"])
    status, body = await connected_api.delete(f"order/{order_id}")  # the real spelling still works
    assert status == 200, body


async def test_duplicate_json_keys_are_refused_naming_the_key(connected_api):
    sim = connected_api.sim
    places = sim.stats.count("PLACE_ORDER")
    raw = '{"symbol": "AAPL", "side": "sell", "quantity": 1, "orderType": "market", "side": "buy"}'
    status, body = await connected_api.call(
        "POST", "/api/ibkr/order", data=raw, headers={"Content-Type": "application/json"})
    assert status == 400 and body["field"] == "side" and "'side' twice" in body["error"], body
    nested = '{"host": "127.0.0.1", "port": 7497, "port": 7496}'
    status, body = await connected_api.call(
        "POST", "/api/ibkr/connect", data=nested, headers={"Content-Type": "application/json"})
    assert status == 400 and body["field"] == "port", body
    assert sim.stats.count("PLACE_ORDER") == places


@pytest.mark.parametrize("token", ["", " ", " " * 20, "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t", "token with spaces 123456",
                                   "tökén-0123456789abcdef"])
def test_blank_or_spaced_tokens_are_refused(token):
    with pytest.raises(ApiConfigError, match="blank|visible ASCII"):
        check_bind("127.0.0.1", token)


@pytest.mark.parametrize("argv", [["serve", "--api-token", "   "], ["--api", "--api-token", ""]])
def test_blank_token_on_the_command_line_stops_at_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2 and "token is blank" in capsys.readouterr().err


async def test_serve_refuses_a_blank_token_from_the_environment(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path))
    monkeypatch.setenv("IBPANEL_API_TOKEN", "    ")
    code = await serve(parse_args(["serve", "--port", "0"]), stop=asyncio.Event())
    assert code == 2 and "token is blank" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--client-id", "١"], ["--client-id", "１２"], ["--tws-port", "７４９７"],
                                  ["serve", "--seed", "²"]])
def test_command_line_numbers_are_ascii_digits(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "0-9" in capsys.readouterr().err


# --- malformed HTTP on a raw socket ----------------------------------------------------------

MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # a TLS ClientHello on the plain port
    b"GET /api/ibkr/status HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /api/ibkr/status HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n",
    b"GET /api/ibkr/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"POST /api/ibkr/order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /api/ibkr/order HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET /api/ibkr/order/١٢ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    b"GET /api/ibkr/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Nul: a\x00b\r\n\r\n",
    b"POST /api/ibkr/order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: 99999999\r\n\r\n{",  # an oversize body, refused before it is read
    b"DELETE /api/ibkr/order/%EF%BC%91%EF%BC%92 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
]


def _complete(received: bytes) -> bool:
    """Has one whole response (head and Content-Length body) arrived?"""
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return bool(lengths) and len(body) >= int(lengths[0])


def _exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes; return the answer once complete (or whatever came before the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):  # the server may answer and close before all was sent
            pass
        received = b""
        while not _complete(received):
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_http_is_answered_in_json_without_echoing_it(api, data):
    answer = await asyncio.get_running_loop().run_in_executor(None, _exchange, api.handle.port, data)
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    assert status_line.split()[1] in ("400", "404", "413", "431"), answer[:300]
    assert any(h.lower().startswith("content-type: application/json") for h in headers), head
    payload = json.loads(body)
    assert payload["success"] is False and payload["error"].endswith(".")
    for marker in (b"GARBAGE", b"No colon", b"aaaaaaaaaa", b"zz", b"HTTP/9.9"):
        if marker in data:
            assert marker.decode() not in payload["error"]


async def test_the_server_still_answers_after_a_burst_of_malformed_requests(api):
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, _exchange, api.handle.port, d) for d in MALFORMED * 3))
    status, body = await api.get("status")
    assert status == 200 and body["success"] is True
