"""The REST API's trailing, on-close, GTD and attached orders: parsed to the same OrderRequest the ticket
builds, described in openapi.json, and placed at the practice exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.api.schemas import ApiError, order_request_from_body
from ibpanel.broker.models import OrderType, TimeInForce

AAPL = {"symbol": "AAPL", "side": "sell", "quantity": 2}


def test_trail_limit_gtd_and_attached_fields_parse_into_the_order_request():
    request = order_request_from_body({**AAPL, "orderType": "TRAIL LIMIT", "trailingPercent": 1.5,
                                       "limitOffset": 0.1, "tif": "gtd", "goodTillDate": "20991231 16:00:00"})
    assert (request.order_type, request.trailing_percent, request.limit_offset, request.tif, request.good_till) == (
        OrderType.TRAIL_LIMIT, Decimal("1.5"), Decimal("0.1"), TimeInForce.GTD, "20991231 16:00:00")
    bracket = order_request_from_body({**AAPL, "side": "buy", "orderType": "limit", "price": 200,
                                       "takeProfit": 210, "stopLossTrail": 2.5})
    assert (bracket.take_profit, bracket.stop_loss_trail) == (Decimal(210), Decimal("2.5"))
    assert order_request_from_body({**AAPL, "orderType": "loc", "price": 199}).order_type is OrderType.LOC
    assert order_request_from_body({**AAPL, "orderType": "MOC"}).order_type is OrderType.MOC


@pytest.mark.parametrize(("body", "field"), [
    ({"orderType": "trail"}, "trailingAmount"),
    ({"orderType": "trail", "trailingAmount": 1, "trailingPercent": 1}, "trailingAmount"),
    ({"orderType": "trail", "trailingAmount": 1, "price": 200}, "price"),
    ({"orderType": "trail_limit", "trailingAmount": 1}, "limitOffset"),
    ({"orderType": "limit", "price": 200, "trailingAmount": 1}, "trailingAmount"),
    ({"orderType": "market_on_close", "price": 200}, "price"),
    ({"orderType": "limit_on_close"}, "price"),
    ({"orderType": "market", "tif": "GTD"}, "goodTillDate"),
    ({"orderType": "market", "goodTillDate": "20991231"}, "goodTillDate"),
])
def test_misshapen_special_orders_are_refused_naming_the_field(body, field):
    with pytest.raises(ApiError) as caught:
        order_request_from_body({**AAPL, **body})
    assert caught.value.field == field


async def test_trailing_stop_and_bracket_through_the_api_reach_the_exchange(connected_api):
    sim = connected_api.sim
    before = sim.stats.count("PLACE_ORDER")
    status, body = await connected_api.post("order", {**AAPL, "side": "buy", "orderType": "trail",
                                                      "trailingAmount": 2})
    assert status == 200, body
    assert body["data"]["orderType"] == "TRAIL" and body["data"]["stopPrice"] > 0
    status, refused = await connected_api.post("order", {"symbol": "0700.HK", "side": "buy", "quantity": 100,
                                                         "orderType": "market_on_close"})
    assert status == 400 and refused["field"] == "orderType" and "US stocks only" in refused["error"], refused
    assert sim.stats.count("PLACE_ORDER") == before + 1


async def test_openapi_lists_the_new_order_types_and_fields(api):
    status, spec = await api.get("openapi.json")
    assert status == 200
    props = spec["paths"]["/api/ibkr/order"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"trail", "trail_limit", "market_on_close", "limit_on_close"} <= set(props["orderType"]["enum"])
    assert {"GTD", "OPG"} <= set(props["tif"]["enum"])
    assert {"trailingAmount", "trailingPercent", "limitOffset", "goodTillDate", "takeProfit", "stopLoss",
            "stopLossTrail"} <= set(props)
