"""Every endpoint over real HTTP against the practice exchange: success and error shapes, trading rules."""

from __future__ import annotations

import asyncio
import csv
import socket
from decimal import ROUND_DOWN, Decimal

import pytest
from ibpanel.broker.models import ConnectionParams

NOT_CONNECTED = "Not connected to IBKR"


async def _eventually(fetch, predicate, timeout=5.0):
    """Poll ``fetch()`` until ``predicate(result)``; returns the last result."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await fetch()
        if predicate(result) or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)  # poll interval of this condition wait


async def _quote(api, symbol, market):
    status, body = await api.get("quote", params={"symbol": symbol, "marketType": market})
    assert status == 200, body
    return body["data"]


def _on_tick(price: float, tick: str) -> Decimal:
    step = Decimal(tick)
    return (Decimal(repr(price)) / step).to_integral_value(ROUND_DOWN) * step


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "account", None),
        ("GET", "positions", None),
        ("GET", "orders", None),
        ("GET", "quote?symbol=AAPL", None),
        ("POST", "order", {"symbol": "AAPL", "side": "buy", "quantity": 10, "marketType": "USStock"}),
        ("DELETE", "order/1", None),
    ],
)
async def test_not_connected_is_400_with_what_to_do(api, method, path, body):
    status, answer = await api.call(method, path, json=body)
    assert status == 400
    assert answer["success"] is False and answer["error"].startswith(NOT_CONNECTED)
    assert "POST /api/ibkr/connect" in answer["error"]


async def test_status_before_and_after_connect(practice_api):
    status, body = await practice_api.get("status")
    assert status == 200 and body["success"] is True
    assert body["data"]["connected"] is False and body["data"]["state"] == "disconnected"
    status, body = await practice_api.post("connect", {"host": "127.0.0.1", "port": 7497, "clientId": 7})
    assert status == 200, body
    assert body["message"].startswith("Connected successfully")
    data = body["data"]
    assert data["connected"] is True and data["clientId"] == 7 and data["practice"] is True
    assert data["port"] == practice_api.sim.port and data["readonly"] is False
    assert data["account"] in data["accounts"]
    # Same target again: still connected, no reconnect needed.
    status, again = await practice_api.post("connect", {"port": 7497, "clientId": 7})
    assert status == 200 and again["data"]["connectionTime"] == data["connectionTime"]
    status, body = await practice_api.post("disconnect")
    assert (status, body) == (200, {"success": True, "message": "Disconnected"})
    assert (await practice_api.get("status"))[1]["data"]["connected"] is False


async def test_demo_server_refuses_a_real_tws_port(practice_api):
    status, body = await practice_api.post("connect", {"host": "127.0.0.1", "port": 7496})
    assert status == 400 and body["field"] == "port" and "--demo" in body["error"]


async def test_connect_failure_is_400_with_the_plain_reason(api):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    status, body = await api.post("connect", {"port": free_port, "clientId": 3, "timeout": 2})
    assert status == 400 and body["success"] is False
    assert body["code"] == "nothing_listening" and body["error"]


async def test_connect_refuses_an_empty_host_and_shows_a_fractional_client_id(api, broker):
    """QA F35: "" is not a host (an omitted one is 127.0.0.1); 1.5 is named in the message. Nothing connects."""
    for host in ("", "   "):
        status, body = await api.post("connect", {"host": host, "port": 7497})
        assert status == 400 and body["field"] == "host", body
        assert body["error"] == "Field 'host' must not be empty (omit it for 127.0.0.1)."
    status, body = await api.post("connect", {"clientId": 1.5})
    assert status == 400 and body["field"] == "clientId"
    assert body["error"] == "Field 'clientId' must be a whole number, not 1.5."
    assert broker.status.params is None  # no connection was attempted


async def test_quote_accepts_a_us_suffix_like_the_hk_one(connected_api):
    """QA F35: AAPL.US is the US twin of 0700.HK."""
    plain = await _quote(connected_api, "AAPL", "USStock")
    status, body = await connected_api.get("quote", params={"symbol": "aapl.us"})
    assert status == 200, body
    assert body["data"]["symbol"] == plain["symbol"] == "AAPL" and body["data"]["currency"] == "USD"
    status, body = await connected_api.get("quote", params={"symbol": "AAPL.US", "marketType": "HShare"})
    assert status == 400 and body["field"] == "symbol" and "marketType is HShare" in body["error"]


async def test_account_positions_and_market_value(connected_api):
    status, body = await connected_api.get("account")
    assert status == 200, body
    account = body["data"]
    assert account["account"].startswith("DU") and "NetLiquidation" in account["summary"]
    assert account["netLiquidation"] and account["netLiquidation"] > 0

    order = {"symbol": "AAPL", "side": "buy", "quantity": 10, "marketType": "USStock"}
    status, placed = await connected_api.post("order", order)
    assert status == 200, placed
    assert placed["data"]["status"] in ("Filled", "Submitted") and placed["data"]["journalId"]
    if placed["data"]["status"] == "Filled":  # the usual case: the practice exchange fills at once
        assert placed["data"]["filled"] == 10 and placed["data"]["avgPrice"] > 0

    def has_aapl(result):
        return any(p["symbol"] == "AAPL" and p["quantity"] == 10 and p["marketPrice"] for p in result[1]["data"])

    status, body = await _eventually(lambda: connected_api.get("positions"), has_aapl)
    aapl = next(p for p in body["data"] if p["symbol"] == "AAPL")
    assert aapl["quantity"] == 10 and aapl["secType"] == "STK" and aapl["currency"] == "USD"
    # marketValue is the market's value (quantity x price), not the cost basis.
    assert aapl["marketValue"] == pytest.approx(10 * aapl["marketPrice"], rel=1e-6)
    assert aapl["costBasis"] == pytest.approx(10 * aapl["avgCost"], rel=1e-6)


async def test_orders_cancel_semantics(connected_api, broker):
    quote = await _quote(connected_api, "AAPL", "USStock")
    resting = _on_tick(quote["bid"] * 0.95, "0.01")  # below the market, within the fat-finger limit
    status, placed = await connected_api.post(
        "order", {"symbol": "AAPL", "side": "buy", "quantity": 5, "orderType": "limit", "price": float(resting)})
    assert status == 200, placed
    order_id = placed["data"]["orderId"]
    assert placed["data"]["status"] in ("Submitted", "PreSubmitted")

    status, orders = await connected_api.get("orders")
    assert status == 200
    listed = next(o for o in orders["data"] if o["orderId"] == order_id)
    assert listed["action"] == "BUY" and listed["limitPrice"] == float(resting) and listed["remaining"] == 5
    assert broker.order(order_id) is not None  # the panel's broker holds the same order

    status, body = await connected_api.delete(f"order/{order_id}")
    assert status == 200, body
    assert body["data"]["status"] in ("Cancelled", "ApiCancelled")  # confirmed, not merely requested
    status, body = await connected_api.delete(f"order/{order_id}")
    assert status == 409 and body["success"] is False
    status, body = await connected_api.delete("order/987654")
    assert status == 404 and body["success"] is False and "GET /api/ibkr/orders" in body["error"]
    status, body = await connected_api.delete("order/abc")
    assert status == 404 and body["field"] == "orderId"
    status, completed = await connected_api.get("orders", params={"status": "completed"})
    assert any(o["orderId"] == order_id for o in completed["data"])


async def test_hk_odd_lot_and_off_tick_are_refused_before_sending(connected_api):
    sim = connected_api.sim
    quote = await _quote(connected_api, "0700.HK", "HShare")
    near = _on_tick(quote["bid"], "0.5")
    before = sim.stats.count("PLACE_ORDER")
    status, body = await connected_api.post("order", {"symbol": "700", "side": "buy", "quantity": 50,
                                                      "marketType": "HShare", "orderType": "limit", "price": float(near)})
    assert status == 400 and body["field"] == "quantity"
    assert any(i["code"] == "odd_lot" for i in body["issues"])
    status, body = await connected_api.post("order", {"symbol": "00700", "side": "buy", "quantity": 100,
                                                      "orderType": "limit", "price": float(near) + 0.05})  # off any 0.1+ tick
    assert status == 400 and body["field"] == "price"
    assert any(i["code"] == "off_tick" for i in body["issues"])
    assert sim.stats.count("PLACE_ORDER") == before


async def test_readonly_blocks_orders_at_the_broker(practice_api):
    sim = practice_api.sim
    status, body = await practice_api.post("connect", {"port": 7497, "clientId": 9, "readonly": True})
    assert status == 200 and body["data"]["readonly"] is True
    status, body = await practice_api.post("order", {"symbol": "AAPL", "side": "buy", "quantity": 1})
    assert status == 400 and body["code"] == "order_rejected"
    assert any(i["code"] == "readonly" for i in body["issues"])
    assert sim.stats.count("PLACE_ORDER") == 0


async def test_quote_success_and_errors(connected_api):
    quote = await _quote(connected_api, "AAPL", "USStock")
    assert quote["symbol"] == "AAPL" and quote["marketDataType"] == 1
    assert 0 < quote["bid"] <= quote["ask"]
    hk = await _quote(connected_api, "0700.HK", "HShare")
    assert hk["currency"] == "HKD" and hk["ib_symbol"] == "700"
    for params in ({"symbol": "ZZZZ", "marketType": "USStock"}, {"symbol": "$$$"}, {"symbol": ""}):
        status, body = await connected_api.get("quote", params=params)
        assert 400 <= status < 600 and status != 200, params
        assert body["success"] is False and body["field"] == "symbol"
    status, body = await connected_api.get("quote")
    assert status == 400 and body["field"] == "symbol"


async def test_api_orders_are_journaled_as_api(connected_api, broker, tmp_path):
    status, placed = await connected_api.post("order", {"symbol": "MSFT", "side": "buy", "quantity": 1})
    assert status == 200, placed
    out = tmp_path / "journal.csv"
    broker.export_journal_csv(out)
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next(r for r in rows if r.get("journal_id") == placed["data"]["journalId"])
    assert row["source"] == "api"


async def test_exchange_rejection_is_not_a_success(connected_api, broker):
    # Broker validation passes (one lot, on tick, near the market) but the practice exchange
    # refuses HK short sales: the answer must say so, not report success.
    quote = await _quote(connected_api, "5", "HShare")
    price = _on_tick(quote["bid"], "0.05")
    status, body = await connected_api.post("order", {"symbol": "0005.HK", "side": "sell", "quantity": 400,
                                                      "marketType": "HShare", "orderType": "limit", "price": float(price)})
    assert status == 422 and body["success"] is False and body["code"] == "exchange_rejected"
    assert body["data"]["orderId"] > 0


async def test_connect_joins_the_existing_connection_and_never_steals_it(api, broker, sim_server):
    # e.g. the panel's own session
    await broker.connect(ConnectionParams(host="127.0.0.1", port=sim_server.port, client_id=21, timeout=5.0))
    status, body = await api.post("connect", {"host": "localhost", "port": sim_server.port, "clientId": 1})
    assert status == 200 and body["data"]["clientId"] == 21 and "sharing" in body["message"]
    status, body = await api.post("connect", {"port": 7497})
    assert status == 409 and body["code"] == "already_connected" and "disconnect" in body["error"]
    status, body = await api.post("connect", {"port": sim_server.port, "readonly": True})
    assert status == 409 and "read-only" in body["error"]
    status, body = await api.post("connect", {"port": sim_server.port, "account": "DU999999"})
    assert status == 400 and body["field"] == "account"
    assert broker.status.connected and broker.status.params.client_id == 21


async def test_concurrent_orders_each_sent_once(connected_api):
    sim = connected_api.sim
    before = sim.stats.count("PLACE_ORDER")
    body = {"symbol": "MSFT", "side": "buy", "quantity": 1, "marketType": "USStock"}
    answers = await asyncio.gather(*(connected_api.post("order", body) for _ in range(15)))
    assert all(status == 200 for status, _ in answers), answers
    ids = {answer["data"]["orderId"] for _, answer in answers}
    journal_ids = {answer["data"]["journalId"] for _, answer in answers}
    assert len(ids) == len(journal_ids) == 15
    assert sim.stats.count("PLACE_ORDER") - before == 15


def _places(value) -> int:
    """Decimal places of a JSON number as sent (repr is what json.dumps writes for floats)."""
    text = repr(value)
    return 0 if "." not in text or "e" in text.lower() else len(text.split(".")[1])


async def test_money_is_rounded_without_float_noise(connected_api):
    """QA F9: commissions fold into IB's average cost (600.06306), whose products were 600063.0599999999."""
    for order in ({"symbol": "0700.HK", "side": "buy", "quantity": 100, "marketType": "HShare"},
                  {"symbol": "MSFT", "side": "buy", "quantity": 7, "marketType": "USStock"}):
        status, placed = await connected_api.post("order", order)
        assert status == 200, placed

    def has_both(result):
        held = {p["symbol"]: p for p in result[1]["data"]}
        return all(held.get(s, {}).get("marketPrice") and held[s]["avgCost"] for s in ("0700.HK", "MSFT"))

    status, body = await _eventually(lambda: connected_api.get("positions"), has_both)
    assert has_both((status, body)), body
    for position in body["data"]:
        for key in ("costBasis", "marketValue", "unrealizedPnL", "realizedPnL"):
            assert position[key] is None or _places(position[key]) <= 2, (key, position)
        for key in ("avgCost", "marketPrice"):
            assert position[key] is None or _places(position[key]) <= 4, (key, position)
        # Rounded, not changed: the cost basis is still quantity x average cost, to the cent.
        assert position["costBasis"] == pytest.approx(position["quantity"] * position["avgCost"], abs=0.01 * position["quantity"])
    status, body = await connected_api.get("account")
    account = body["data"]
    for key in ("netLiquidation", "totalCash", "buyingPower", "availableFunds", "initMargin", "grossPositionValue"):
        assert account[key] is None or _places(account[key]) <= 2, (key, account[key])
    assert all(_places(v) <= 2 for v in account["cashByCurrency"].values() if v is not None)


async def test_stop_orders_take_the_trigger_from_stop_price_only(connected_api):
    """QA F31: ``price`` alone on a stop order is refused (naming the field), nothing is sent; stopPrice works."""
    sim = connected_api.sim
    quote = await _quote(connected_api, "AAPL", "USStock")
    trigger = float(_on_tick(quote["bid"] * 0.95, "0.01"))  # a sell stop below the market: it rests
    before = sim.stats.count("PLACE_ORDER")
    base = {"symbol": "AAPL", "side": "sell", "quantity": 1, "marketType": "USStock"}
    status, body = await connected_api.post("order", {**base, "orderType": "stop", "price": trigger})
    assert status == 400 and body["field"] == "price" and "use stopPrice" in body["error"], body
    status, body = await connected_api.post("order", {**base, "orderType": "stop_limit", "price": trigger})
    assert status == 400 and body["field"] == "stopPrice", body
    assert sim.stats.count("PLACE_ORDER") == before

    status, placed = await connected_api.post("order", {**base, "orderType": "stop", "stopPrice": trigger})
    assert status == 200, placed
    assert placed["data"]["orderType"] == "STP" and placed["data"]["stopPrice"] == trigger
    assert placed["data"]["limitPrice"] is None
    assert sim.stats.count("PLACE_ORDER") == before + 1
    status, body = await connected_api.delete(f"order/{placed['data']['orderId']}")
    assert status == 200, body


async def test_openapi_describes_price_and_stop_price_apart(api):
    status, spec = await api.get("openapi.json")
    assert status == 200
    props = spec["paths"]["/api/ibkr/order"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "stop" in props["price"]["description"] and "stopPrice" in props["price"]["description"]
    assert "required for stop and stop_limit" in props["stopPrice"]["description"]
