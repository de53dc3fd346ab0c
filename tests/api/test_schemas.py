"""Request parsing of the REST API without a server: shapes, names of bad fields, order mapping."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from ibpanel.api.schemas import (
    CONNECT_FIELDS,
    ApiError,
    api_symbol,
    num,
    order_request_from_body,
    parse_fields,
    parse_json_object,
)
from ibpanel.broker.models import Market, OrderType, Side, TimeInForce

AAPL_MARKET = {"symbol": "AAPL", "side": "buy", "quantity": 10, "marketType": "USStock"}
TENCENT_LIMIT = {"symbol": "0700.HK", "side": "sell", "quantity": 100, "marketType": "HShare",
                 "orderType": "limit", "price": 300}


def test_module_examples_become_the_intended_requests():
    buy = order_request_from_body(AAPL_MARKET)
    assert (buy.symbol, buy.side, buy.quantity, buy.order_type, buy.market) == (
        "AAPL", Side.BUY, Decimal(10), OrderType.MKT, Market.US)
    assert buy.limit_price is None and buy.source == "api" and buy.tif is TimeInForce.DAY
    sell = order_request_from_body(TENCENT_LIMIT)
    assert (sell.side, sell.quantity, sell.order_type, sell.limit_price, sell.market) == (
        Side.SELL, Decimal(100), OrderType.LMT, Decimal(300), Market.HK)


def _refusal(body: dict) -> ApiError:
    with pytest.raises(ApiError) as info:
        order_request_from_body(body)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"symbol": None}, "symbol", "required"),
        ({"side": "hold"}, "side", "one of buy, sell"),
        ({"side": 1}, "side", "must be a string"),
        ({"quantity": "10"}, "quantity", "must be a number"),
        ({"quantity": True}, "quantity", "not a boolean"),
        ({"quantity": 0}, "quantity", "greater than 0"),
        ({"quantity": -5}, "quantity", "greater than 0"),
        ({"marketType": "Crypto"}, "marketType", "one of"),
        ({"orderType": "trailing"}, "orderType", "one of"),
        ({"tif": "FOK"}, "tif", "one of"),
        ({"outsideRth": "yes"}, "outsideRth", "true or false"),
        ({"account": ["DU1"]}, "account", "not a list"),
        ({"leverage": 10}, "leverage", "Unknown field"),
        ({"symbol": "A" * 40}, "symbol", "longer than"),
    ],
)
def test_each_bad_field_is_named(change, field, words):
    body = {**AAPL_MARKET, **change}
    body = {k: v for k, v in body.items() if v is not None}
    error = _refusal(body)
    assert error.field == field
    assert words in error.message and field in error.message


def test_price_rules_that_the_shape_decides():
    assert "takes no price" in _refusal({**AAPL_MARKET, "orderType": "market", "price": 1}).message
    # A price without orderType is ambiguous: the old module silently sent a market order.
    assert _refusal({**AAPL_MARKET, "price": 230}).field == "orderType"
    assert _refusal({**AAPL_MARKET, "orderType": "limit", "price": 230, "stopPrice": 1}).field == "stopPrice"
    assert _refusal({**AAPL_MARKET, "orderType": "limit", "price": math.inf}).field == "price"


def test_order_type_spellings_and_stop_trigger():
    assert order_request_from_body({**AAPL_MARKET, "orderType": "LMT", "price": 1.5}).order_type is OrderType.LMT
    assert order_request_from_body({**AAPL_MARKET, "orderType": "STP LMT", "price": 2, "stopPrice": 2.1}
                                   ).order_type is OrderType.STP_LMT
    stop = order_request_from_body({**AAPL_MARKET, "orderType": "stop", "stopPrice": 200})
    assert stop.order_type is OrderType.STP and stop.stop_price == Decimal(200) and stop.limit_price is None
    stop_limit = order_request_from_body({**AAPL_MARKET, "orderType": "stop_limit", "price": 199, "stopPrice": 200})
    assert (stop_limit.limit_price, stop_limit.stop_price) == (Decimal(199), Decimal(200))
    assert order_request_from_body({**AAPL_MARKET, "side": "SELL", "tif": "gtc"}).tif is TimeInForce.GTC
    # Floats become the Decimal the user typed, not binary noise.
    assert order_request_from_body({**AAPL_MARKET, "orderType": "limit", "price": 230.1}).limit_price == Decimal("230.1")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        # QA F31: price is never re-read as a stop trigger.
        ({"orderType": "stop", "price": 225}, "price", "use stopPrice for a stop order's trigger"),
        ({"orderType": "stop"}, "stopPrice", "needs stopPrice"),
        ({"orderType": "stop", "price": 225, "stopPrice": 226}, "price", "use orderType stop_limit"),
        ({"orderType": "stop_limit", "price": 225}, "stopPrice", "needs stopPrice"),
        ({"orderType": "STP LMT", "stopPrice": 226}, "price", "needs price"),
    ],
)
def test_stop_orders_one_field_one_meaning(change, field, words):
    error = _refusal({**AAPL_MARKET, **change})
    assert error.field == field and words in error.message


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{", "not valid JSON"),
        (b'{"quantity": NaN}', "not valid JSON"),
        (b'{"price": Infinity}', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_bodies_that_are_not_one_json_object(raw, words):
    with pytest.raises(ApiError) as info:
        parse_json_object(raw)
    assert info.value.status == 400 and words in info.value.message


def test_connect_defaults_match_the_module():
    values = parse_fields(CONNECT_FIELDS, {})
    assert (values["host"], values["port"], values["clientId"], values["account"], values["readonly"]) == (
        "127.0.0.1", 7497, 1, "", False)
    assert parse_fields(CONNECT_FIELDS, {"port": 4002.0})["port"] == 4002
    with pytest.raises(ApiError) as info:
        parse_fields(CONNECT_FIELDS, {"port": 70000})
    assert info.value.field == "port"


def test_connect_host_must_not_be_empty_and_integers_show_the_number_given():
    for host in ("", " \t"):
        with pytest.raises(ApiError) as info:
            parse_fields(CONNECT_FIELDS, {"host": host})
        assert info.value.field == "host" and "omit it for 127.0.0.1" in info.value.message
    with pytest.raises(ApiError) as info:
        parse_fields(CONNECT_FIELDS, {"clientId": 1.5})
    assert info.value.message.endswith("must be a whole number, not 1.5.")
    with pytest.raises(ApiError) as info:
        parse_fields(CONNECT_FIELDS, {"clientId": "7"})
    assert info.value.message.endswith("must be a whole number, not a string.")
    host = next(f for f in CONNECT_FIELDS if f.name == "host")
    assert host.json_schema()["minLength"] == 1  # generated clients and fuzzers see it too


@pytest.mark.parametrize(
    ("given", "market", "expected"),
    [
        ("AAPL.US", None, ("AAPL", Market.US)),
        (" brk.b.us ", None, ("brk.b", Market.US)),
        ("AAPL.US", Market.US, ("AAPL", Market.US)),
        ("AAPL", None, ("AAPL", None)),
        ("0700.HK", Market.HK, ("0700.HK", Market.HK)),
        (".US", None, (".US", None)),  # nothing before the suffix: the broker says what is wrong
    ],
)
def test_a_us_suffix_means_a_us_ticker(given, market, expected):
    assert api_symbol(given, market) == expected


def test_a_us_suffix_with_hong_kong_market_is_refused():
    with pytest.raises(ApiError) as info:
        api_symbol("AAPL.US", Market.HK)
    assert info.value.field == "symbol" and "USStock" in info.value.message
    request = order_request_from_body({"symbol": "MSFT.US", "side": "buy", "quantity": 1})
    assert (request.symbol, request.market) == ("MSFT", Market.US)


def test_numbers_in_answers_are_json_safe():
    assert num(Decimal("100")) == 100 and isinstance(num(Decimal("100")), int)
    assert num(Decimal("0.5")) == 0.5
    assert num(float("nan")) is None and num(float("inf")) is None and num(None) is None


def test_money_and_prices_are_rounded_half_up_without_binary_noise():
    from ibpanel.api.schemas import as_money, as_price

    assert as_money(600063.0599999999) == 600063.06
    assert as_money(0.125) == 0.13 and as_money(-0.125) == -0.13  # half-up, away from zero
    assert as_money(1500.0) == 1500 and isinstance(as_money(1500.0), int)
    assert as_price(600.06306) == 600.0631 and as_price(0.00015) == 0.0002
    assert as_money(Decimal("12.345")) == 12.35 and as_money(None) is None and as_money(math.nan) is None
    assert as_price(7) == 7
