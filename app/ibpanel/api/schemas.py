"""Request parsing and response shapes of the local REST API (the trading module's /api/ibkr).

Over 500 lines because every body, query and answer shape of the API is declared here, once.

Every request body and query is described once, here, as a tuple of :class:`FieldSpec`; the
same descriptions validate requests and generate ``openapi.json``, so the document cannot drift
from what the server accepts. Anything malformed raises :class:`ApiError` (HTTP 400) naming the
field. Responses are built from the broker's frozen dataclasses: prices as JSON numbers,
unknown values as ``null``, never NaN.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ibpanel import numbers
from ibpanel.broker.models import (
    AccountSummary,
    ConnectionStatus,
    Instrument,
    Market,
    OrderRequest,
    OrderType,
    OrderView,
    Position,
    Quote,
    Side,
    TimeInForce,
    ValidationIssue,
)

# --- errors ---------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than success: HTTP ``status`` and one plain sentence that says what to do."""

    def __init__(self, status: int, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"success": False, "error": self.message}
        if self.field is not None:
            payload["field"] = self.field
        payload.update(self.extra)
        return payload


def bad_request(message: str, field: str | None = None, **extra: Any) -> ApiError:
    return ApiError(400, message, field=field, **extra)


# --- field descriptions -----------------------------------------------------------------------

_JSON_TYPE_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false"}


@dataclass(frozen=True)
class FieldSpec:
    """One field of a JSON body or query string. ``choices`` are matched case-insensitively."""

    name: str
    kind: str  # JSON type: "string", "integer", "number", "boolean"
    description: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    max_length: int | None = None
    example: Any = None
    #: When set, an empty (or blank) string is refused with this hint, e.g. "omit it for 127.0.0.1".
    empty_hint: str = ""

    def json_schema(self) -> dict[str, Any]:
        """The OpenAPI schema of this field."""
        schema: dict[str, Any] = {"type": self.kind, "description": self.description}
        if self.choices:
            # Both spellings are listed so generated clients and fuzzers see every accepted value.
            schema["enum"] = list(dict.fromkeys([*self.choices, *(c.upper() for c in self.choices)]))
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.exclusive_minimum is not None:
            schema["exclusiveMinimum"] = self.exclusive_minimum
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.empty_hint:
            schema["minLength"] = 1
        if self.default is not None:
            schema["default"] = self.default
        if self.example is not None:
            schema["example"] = self.example
        return schema


def _check_value(spec: FieldSpec, value: Any) -> Any:
    """Type- and range-check one JSON value; returns it normalised (choices lower-cased)."""
    kind = spec.kind
    if kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        # bool is an int in Python; JSON true is not a number. 10.0 is accepted as 10.
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value, ok = int(value), True
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, float) and not math.isfinite(value):
            raise bad_request(f"Field '{spec.name}' must be a finite number.", spec.name)
    else:
        ok = isinstance(value, str)
    if not ok:
        # A number where a whole number belongs: show it ("not 1.5"), the caller sees the typo at once.
        got = _num(value) if kind == "integer" and isinstance(value, float) else _json_type_name(value)
        raise bad_request(f"Field '{spec.name}' must be {_JSON_TYPE_WORDS[kind]}, not {got}.", spec.name)
    if kind == "string":
        if spec.max_length is not None and len(value) > spec.max_length:
            raise bad_request(f"Field '{spec.name}' is longer than {spec.max_length} characters.", spec.name)
        if spec.choices:
            folded = value.strip().lower()
            for choice in spec.choices:
                if choice.lower() == folded:
                    return choice
            raise bad_request(
                f"Field '{spec.name}' must be one of {', '.join(spec.choices)} (got {value[:40]!r}).", spec.name
            )
        if "\x00" in value:
            raise bad_request(f"Field '{spec.name}' contains a NUL character.", spec.name)
        if spec.empty_hint and not value.strip():
            raise bad_request(f"Field '{spec.name}' must not be empty ({spec.empty_hint}).", spec.name)
    if kind in ("integer", "number"):
        if spec.minimum is not None and value < spec.minimum:
            raise bad_request(f"Field '{spec.name}' must be at least {_num(spec.minimum)}.", spec.name)
        if spec.maximum is not None and value > spec.maximum:
            raise bad_request(f"Field '{spec.name}' must be at most {_num(spec.maximum)}.", spec.name)
        if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
            raise bad_request(f"Field '{spec.name}' must be greater than {_num(spec.exclusive_minimum)}.", spec.name)
    return value


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_fields(specs: tuple[FieldSpec, ...], data: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``data`` against ``specs``: unknown, missing, mistyped fields -> ApiError(400) naming it.

    Returns every field: given values checked and normalised, absent ones as their default.
    A JSON ``null`` counts as absent for optional fields.
    """
    by_name = {s.name: s for s in specs}
    for key in data:
        if key not in by_name:
            known = ", ".join(by_name) or "none"
            raise bad_request(f"Unknown field '{str(key)[:40]}'. Accepted fields: {known}.", str(key)[:40])
    values: dict[str, Any] = {}
    for spec in specs:
        raw = data.get(spec.name)
        if raw is None:
            if spec.required:
                raise bad_request(f"Field '{spec.name}' is required: {spec.description}", spec.name)
            values[spec.name] = spec.default
            continue
        values[spec.name] = _check_value(spec, raw)
    return values


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKey(ValueError):
    """A JSON object names one key twice; ``json.loads`` alone would keep the last silently."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"side": "sell", "side": "buy"} must not quietly become a buy: which one the sender meant is unknowable.
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise DuplicateKey(key)
        data[key] = value
    return data


#: Digits as HTTP clients type them. Python's int() and str.isdigit() also take "²", "٣" or "１２".
ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_int(text: str) -> int | None:
    """``text`` as a whole number when it is ASCII digits with at most one leading minus; else None."""
    body = text[1:] if text.startswith("-") else text
    return int(text) if ASCII_DIGITS.fullmatch(body) else None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object; an empty body is ``{}``."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("The request body is not UTF-8 text; send a JSON object.") from None
    try:
        # NaN / Infinity are not JSON: refuse them instead of letting them reach a price.
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicate_keys)
    except DuplicateKey as exc:
        raise bad_request(
            f"The request body names the field '{exc.key[:40]}' twice; send each field once.", exc.key[:40]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"The request body is not valid JSON ({_short(exc)}); send a JSON object.") from None
    if not isinstance(data, dict):
        raise bad_request(f"The request body must be a JSON object, not {_json_type_name(data)}.")
    return data


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def parse_query(specs: tuple[FieldSpec, ...], query: Mapping[str, str], multi: Any = None) -> dict[str, Any]:
    """Check a query string: every parameter is a string here; integers and booleans are converted."""
    data: dict[str, Any] = {}
    for key in query:
        if multi is not None and len(multi.getall(key)) > 1:
            raise bad_request(f"Query parameter '{key[:40]}' is given more than once.", key[:40])
        value = query[key]
        spec = next((s for s in specs if s.name == key), None)
        if spec is not None and spec.kind == "boolean":
            folded = value.strip().lower()
            if folded not in ("true", "false", "1", "0"):
                raise bad_request(f"Query parameter '{key}' must be true or false.", key)
            data[key] = folded in ("true", "1")
        elif spec is not None and spec.kind == "integer":
            number = ascii_int(value) if len(value) <= 20 else None
            if number is None:
                raise bad_request(f"Query parameter '{key}' must be a whole number in ASCII digits (0-9).", key)
            data[key] = number
        else:
            data[key] = value
    return parse_fields(specs, data)


# --- request bodies ---------------------------------------------------------------------------

CONNECT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("host", "string", "TWS / IB Gateway host.", default="127.0.0.1", max_length=255, example="127.0.0.1",
              empty_hint="omit it for 127.0.0.1"),
    FieldSpec(
        "port",
        "integer",
        "API socket port: TWS paper 7497, TWS live 7496, Gateway paper 4002, Gateway live 4001.",
        default=7497,
        minimum=1,
        maximum=65535,
        example=7497,
    ),
    FieldSpec("clientId", "integer", "API client id; each program on one TWS needs its own.", default=1,
              minimum=0, maximum=2147483646, example=1),
    FieldSpec("account", "string", "Account to use when several are managed (empty: the first).", default="",
              max_length=64),
    FieldSpec("readonly", "boolean", "Connect read-only: queries only, every order is refused.", default=False),
    FieldSpec("timeout", "number", "Seconds to wait for the connection.", default=8.0, exclusive_minimum=0,
              maximum=60),
)

ORDER_SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trail", "trail_limit", "market_on_close",
               "limit_on_close")
_ORDER_TYPE_ALIASES = {"mkt": "market", "lmt": "limit", "stp": "stop", "stp lmt": "stop_limit",
                       "stp_lmt": "stop_limit", "stop limit": "stop_limit", "stoplimit": "stop_limit",
                       "trail limit": "trail_limit", "traillmt": "trail_limit", "moc": "market_on_close",
                       "loc": "limit_on_close"}
MARKET_TYPES = ("USStock", "HShare", "US", "HK")
TIFS = ("DAY", "GTC", "IOC", "GTD", "OPG")
_MAX_PRICE = 1_000_000_000  # a sanity ceiling on JSON numbers; the broker's order value limit is far below

ORDER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("symbol", "string", "US ticker (AAPL, BRK.B) or Hong Kong code (0700.HK, 00700, 700).",
              required=True, max_length=32, example="AAPL"),
    FieldSpec("side", "string", "buy or sell.", required=True, choices=ORDER_SIDES, example="buy"),
    FieldSpec("quantity", "number", "Shares; whole shares, and whole board lots in Hong Kong.", required=True,
              exclusive_minimum=0, maximum=_MAX_PRICE, example=10),
    FieldSpec("marketType", "string", "USStock or HShare (detected from the symbol when left out).",
              choices=MARKET_TYPES, example="USStock"),
    FieldSpec("orderType", "string", "market (default), limit, stop, stop_limit, trail, trail_limit, "
              "market_on_close or limit_on_close (US only); MKT, LMT, STP, STP LMT, TRAIL, TRAIL LIMIT, MOC, LOC "
              "accepted.", choices=(*ORDER_TYPES, "MKT", "LMT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MOC", "LOC"),
              default="market", example="limit"),
    FieldSpec("price", "number", "Limit price: required for limit and stop_limit, refused for market and stop "
              "(a stop's trigger is stopPrice).", exclusive_minimum=0, maximum=_MAX_PRICE, example=300),
    FieldSpec("stopPrice", "number", "Trigger price: required for stop and stop_limit, refused for market and "
              "limit.", exclusive_minimum=0, maximum=_MAX_PRICE),
    FieldSpec("tif", "string", "Time in force: DAY (default), GTC, IOC, GTD (with goodTillDate) or OPG (US opening "
              "auction, market or limit orders).", choices=TIFS, default="DAY"),
    FieldSpec("outsideRth", "boolean", "Allow the order to work outside regular trading hours.", default=False),
    FieldSpec("account", "string", "Account for the order (default: the connected account).", max_length=64),
    FieldSpec("trailingAmount", "number", "trail / trail_limit: the stop trails the market by this amount "
              "(a whole number of ticks).", exclusive_minimum=0, maximum=_MAX_PRICE),
    FieldSpec("trailingPercent", "number", "trail / trail_limit: ... or by this percent (instead of "
              "trailingAmount).", exclusive_minimum=0, maximum=100),
    FieldSpec("trailStopPrice", "number", "trail / trail_limit: the initial stop (default: the trailing distance "
              "from the last price).", exclusive_minimum=0, maximum=_MAX_PRICE),
    FieldSpec("limitOffset", "number", "trail_limit: the limit sits this far beyond the stop once it triggers.",
              minimum=0, maximum=_MAX_PRICE),
    FieldSpec("goodTillDate", "string", "tif GTD: good till 'YYYYMMDD HH:MM:SS' in the exchange's time zone.",
              max_length=32, example="20261231 16:00:00"),
    FieldSpec("takeProfit", "number", "Attach a take-profit limit order (bracket child) at this price.",
              exclusive_minimum=0, maximum=_MAX_PRICE),
    FieldSpec("stopLoss", "number", "Attach a stop-loss stop order (bracket child) at this price.",
              exclusive_minimum=0, maximum=_MAX_PRICE),
    FieldSpec("stopLossTrail", "number", "Attach a trailing stop-loss (bracket child) trailing by this amount "
              "instead of stopLoss.", exclusive_minimum=0, maximum=_MAX_PRICE),
)

QUOTE_QUERY: tuple[FieldSpec, ...] = (
    FieldSpec("symbol", "string", "US ticker or Hong Kong code.", required=True, max_length=32, example="AAPL"),
    FieldSpec("marketType", "string", "USStock or HShare (detected from the symbol when left out).",
              choices=MARKET_TYPES),
)

ACCOUNT_QUERY: tuple[FieldSpec, ...] = (
    FieldSpec("account", "string", "Which managed account (default: the connected account).", max_length=64),
)

ORDERS_QUERY: tuple[FieldSpec, ...] = (
    *ACCOUNT_QUERY,
    FieldSpec("status", "string", "open (default: working orders), completed, or all.",
              choices=("open", "completed", "all"), default="open"),
)


def to_decimal(value: int | float) -> Decimal:
    """A JSON number as Decimal, by its shortest repr (300.1 -> Decimal('300.1'), not binary noise)."""
    try:
        return numbers.to_decimal(value)
    except (TypeError, ValueError):  # pragma: no cover - finite floats always convert
        raise bad_request(f"{value!r} is not a number.") from None


_TYPE_FROM_API = {"market": OrderType.MKT, "limit": OrderType.LMT, "stop": OrderType.STP,
                  "stop_limit": OrderType.STP_LMT, "MKT": OrderType.MKT, "LMT": OrderType.LMT,
                  "STP": OrderType.STP, "STP LMT": OrderType.STP_LMT, "trail": OrderType.TRAIL,
                  "trail_limit": OrderType.TRAIL_LIMIT, "market_on_close": OrderType.MOC,
                  "limit_on_close": OrderType.LOC, "TRAIL": OrderType.TRAIL, "TRAIL LIMIT": OrderType.TRAIL_LIMIT,
                  "MOC": OrderType.MOC, "LOC": OrderType.LOC}


def order_request_from_body(body: Mapping[str, Any]) -> OrderRequest:
    """Turn a POST /order body into the broker's OrderRequest (source "api"); ApiError 400 on bad shape.

    Only the shape is checked here; every trading rule (lots, ticks, read-only, accounts, limits)
    is the broker's, so the panel and the API refuse exactly the same orders.
    """
    data = dict(body)
    if isinstance(data.get("orderType"), str):
        alias = _ORDER_TYPE_ALIASES.get(data["orderType"].strip().lower())
        if alias:
            data["orderType"] = alias
    fields = parse_fields(ORDER_FIELDS, data)
    order_type = _TYPE_FROM_API[fields["orderType"]]
    price, stop = fields["price"], fields["stopPrice"]
    if order_type is OrderType.MKT and body.get("orderType") is None and price is not None:
        raise bad_request(
            "A price was given without an orderType: send \"orderType\": \"limit\" for a limit order, "
            "or leave out the price for a market order.",
            "orderType",
        )
    if order_type is OrderType.MKT and (price is not None or stop is not None):
        raise bad_request("A market order takes no price: leave out price / stopPrice, or use orderType limit.",
                          "price" if price is not None else "stopPrice")
    if order_type is OrderType.LMT and stop is not None:
        raise bad_request("A limit order takes no stopPrice: use orderType stop_limit for a stop-limit order.",
                          "stopPrice")
    # One field, one meaning: price is always a limit price, stopPrice always a trigger.
    if order_type in (OrderType.STP, OrderType.STP_LMT) and stop is None:
        if order_type is OrderType.STP and price is not None:
            raise bad_request("price is a limit price: use stopPrice for a stop order's trigger.", "price")
        kind = "stop" if order_type is OrderType.STP else "stop_limit"
        raise bad_request(f"A {kind} order needs stopPrice (its trigger price).", "stopPrice")
    if order_type is OrderType.STP and price is not None:
        raise bad_request("A stop order takes no price (limit): leave it out, or use orderType stop_limit "
                          "for a stop with a limit price.", "price")
    if order_type is OrderType.STP_LMT and price is None:
        raise bad_request("A stop_limit order needs price (its limit price) as well as stopPrice.", "price")
    _check_special_shape(order_type, fields, price, stop)
    market = Market.from_market_type(fields["marketType"]) if fields["marketType"] else None
    symbol, market = api_symbol(fields["symbol"], market)
    return OrderRequest(
        symbol=symbol,
        side=Side.BUY if fields["side"] == "buy" else Side.SELL,
        quantity=to_decimal(fields["quantity"]),
        order_type=order_type,
        limit_price=None if price is None else to_decimal(price),
        stop_price=_dec_or_none(fields["trailStopPrice"] if fields["trailStopPrice"] is not None else stop),
        tif=TimeInForce(fields["tif"]),
        outside_rth=fields["outsideRth"],
        account=fields["account"] or None,
        market=market,
        trailing_amount=_dec_or_none(fields["trailingAmount"]),
        trailing_percent=_dec_or_none(fields["trailingPercent"]),
        limit_offset=_dec_or_none(fields["limitOffset"]),
        good_till=fields["goodTillDate"] or None,
        take_profit=_dec_or_none(fields["takeProfit"]),
        stop_loss=_dec_or_none(fields["stopLoss"]),
        stop_loss_trail=_dec_or_none(fields["stopLossTrail"]),
        source="api",
    )


def _dec_or_none(value: int | float | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


def _check_special_shape(order_type: OrderType, fields: Mapping[str, Any], price: Any, stop: Any) -> None:
    """Field shapes of trail / trail_limit / market_on_close / limit_on_close (the broker checks the rest)."""
    trail = order_type in (OrderType.TRAIL, OrderType.TRAIL_LIMIT)
    if trail:
        if (fields["trailingAmount"] is None) == (fields["trailingPercent"] is None):
            raise bad_request("A trail order needs trailingAmount or trailingPercent (one of them).", "trailingAmount")
        if price is not None or stop is not None:
            raise bad_request("A trail order takes no price / stopPrice: give trailingAmount or trailingPercent "
                              "(and trailStopPrice for the initial stop).", "price" if price is not None else "stopPrice")
        if order_type is OrderType.TRAIL_LIMIT and fields["limitOffset"] is None:
            raise bad_request("A trail_limit order needs limitOffset (the limit beyond the stop).", "limitOffset")
    else:
        for name in ("trailingAmount", "trailingPercent", "trailStopPrice", "limitOffset"):
            if fields[name] is not None:
                raise bad_request(f"{name} is only for trail / trail_limit orders: leave it out.", name)
    if order_type is OrderType.MOC and (price is not None or stop is not None):
        raise bad_request("A market_on_close order takes no price.", "price" if price is not None else "stopPrice")
    if order_type is OrderType.LOC and (price is None or stop is not None):
        raise bad_request("A limit_on_close order needs price (its limit) and no stopPrice.",
                          "price" if price is None else "stopPrice")
    if (fields["tif"] == "GTD") != bool(fields["goodTillDate"]):
        raise bad_request("goodTillDate goes with tif GTD, and tif GTD needs it ('YYYYMMDD HH:MM:SS').",
                          "goodTillDate")


US_SUFFIX = ".US"


def api_symbol(symbol: str, market: Market | None, field: str = "symbol") -> tuple[str, Market | None]:
    """The symbol as the broker reads it: a trailing ``.US`` (the US twin of ``.HK``) means a US ticker.

    ``AAPL.US`` -> (``AAPL``, US); ``BRK.B.US`` -> (``BRK.B``, US). With marketType HShare that is a
    contradiction: 400 naming both.
    """
    text = symbol.strip()
    if len(text) <= len(US_SUFFIX) or not text.upper().endswith(US_SUFFIX):
        return text, market
    if market is Market.HK:
        raise bad_request(
            f"{text!r} is a US ticker (.US), but marketType is HShare: leave out the .US suffix and give a Hong Kong "
            "code such as 0700.HK, or use marketType USStock.",
            field,
        )
    return text[: -len(US_SUFFIX)].rstrip(), Market.US


# Broker issue fields -> the API's field names, so a 400 names what the caller sent.
_ISSUE_FIELD_NAMES = {
    "limit_price": "price",
    "stop_price": "stopPrice",
    "order_type": "orderType",
    "outside_rth": "outsideRth",
    "market": "marketType",
    "take_profit": "takeProfit",
    "stop_loss": "stopLoss",
    "stop_loss_trail": "stopLossTrail",
    "trailing_amount": "trailingAmount",
    "trailing_percent": "trailingPercent",
    "limit_offset": "limitOffset",
    "good_till": "goodTillDate",
}


def api_field_name(broker_field: str) -> str:
    return _ISSUE_FIELD_NAMES.get(broker_field, broker_field)


def issue_json(issue: ValidationIssue) -> dict[str, str]:
    return {"field": api_field_name(issue.field), "code": issue.code, "message": issue.message}


# --- responses --------------------------------------------------------------------------------


def num(value: Any) -> int | float | None:
    """A JSON-safe number: Decimal/float/int -> int when whole Decimal, float otherwise; NaN/inf -> None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


#: Decimal places in API answers: money amounts to the cent, per-share prices and costs to 4 places
#: (US sub-dollar ticks are 0.0001; HK ticks 0.001). TWS computes these in binary floats
#: (600063.0599999999); the answer carries the value a trader would write down.
MONEY_PLACES = 2
PRICE_PLACES = 4


def rounded(value: Any, places: int) -> int | float | None:
    """``num(value)`` rounded half-up to ``places`` decimals (via its shortest repr, so 0.125 -> 0.13)."""
    number = num(value)
    if number is None or isinstance(number, int):
        return number
    exact = Decimal(repr(number)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(exact) if exact == exact.to_integral_value() else float(exact)


def as_money(value: Any) -> int | float | None:
    """An amount of money (market value, cost basis, P&L, cash) to the cent."""
    return rounded(value, MONEY_PLACES)


def as_price(value: Any) -> int | float | None:
    """A per-share price or cost (average cost, market price, fill price) to 4 decimals."""
    return rounded(value, PRICE_PLACES)


def status_json(status: ConnectionStatus, *, practice: bool = False) -> dict[str, Any]:
    params = status.params
    failure = status.failure
    return {
        "connected": status.connected,
        "host": params.host if params else None,
        "port": params.port if params else None,
        "clientId": params.client_id if params else None,
        "account": status.account or (params.account if params and params.account else None),
        "readonly": bool(status.readonly),
        "state": status.state.value,
        "accounts": list(status.accounts),
        "paper": status.is_paper,
        "paperReason": status.paper_reason,
        "practice": practice,
        "serverVersion": status.server_version,
        "connectionTime": status.connection_time,
        "reconnectAttempt": status.reconnect_attempt,
        "nextRetryIn": num(status.next_retry_in),
        "stale": status.stale,  # TWS stopped answering the heartbeat: orders are refused
        "staleReason": status.stale_reason,
        "lastFailure": None
        if failure is None
        else {
            "kind": failure.kind.value,
            "message": failure.message,
            "advice": failure.advice,
            "suggestedClientId": failure.suggested_client_id,
        },
    }


def _instrument_fields(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.display,
        "ib_symbol": instrument.symbol,
        "marketType": "HShare" if instrument.market is Market.HK else "USStock",
        "secType": "STK",
        "exchange": instrument.exchange,
        "primaryExchange": instrument.primary_exchange,
        "currency": instrument.currency,
        "conId": instrument.con_id,
    }


def order_json(order: OrderView) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "permId": order.perm_id,
        "clientId": order.client_id,
        "journalId": order.journal_id,
        "account": order.account,
        **_instrument_fields(order.instrument),
        "action": order.side.value,
        "quantity": num(order.quantity),
        "orderType": order.order_type,
        "limitPrice": num(order.limit_price),
        "stopPrice": num(order.stop_price),
        "tif": order.tif,
        "outsideRth": order.outside_rth,
        "status": order.status.value,
        "filled": num(order.filled),
        "remaining": num(order.remaining),
        "avgFillPrice": as_price(order.avg_fill_price),
        "message": order.message,
        "createdAt": order.created_at.isoformat() if order.created_at else None,
        "updatedAt": order.updated_at.isoformat() if order.updated_at else None,
    }


def placed_order_json(order: OrderView) -> dict[str, Any]:
    """POST /order's data: the module's {orderId, status, filled, avgPrice} plus the journal id and the rest."""
    data = order_json(order)
    data["avgPrice"] = data["avgFillPrice"]
    return data


def position_json(position: Position) -> dict[str, Any]:
    return {
        "account": position.account,
        **_instrument_fields(position.instrument),
        "quantity": num(position.quantity),
        "avgCost": as_price(position.avg_cost),
        "costBasis": as_money(position.cost_basis),
        "marketPrice": as_price(position.market_price),
        "marketValue": as_money(position.market_value),
        "unrealizedPnL": as_money(position.unrealized_pnl),
        "realizedPnL": as_money(position.realized_pnl),
    }


def account_json(summary: AccountSummary, daily_pnl: float | None = None) -> dict[str, Any]:
    """The module's {account, summary:{Tag:{value, currency}}} plus named numeric fields.

    When TWS sends one tag in several currencies, ``summary`` keeps the base-currency row
    (or "BASE") and ``values`` lists every row.
    """
    base = summary.base_currency
    chosen: dict[str, tuple[int, dict[str, str]]] = {}
    for value in summary.values:
        rank = 0 if value.currency in ("BASE", base) else 1 if not value.currency else 2
        current = chosen.get(value.tag)
        if current is None or rank < current[0]:
            chosen[value.tag] = (rank, {"value": value.value, "currency": value.currency})
    return {
        "account": summary.account,
        "baseCurrency": base,
        "netLiquidation": as_money(summary.net_liquidation),
        "totalCash": as_money(summary.total_cash),
        "cashByCurrency": {cur: as_money(v) for cur, v in summary.cash_by_currency.items()},
        "buyingPower": as_money(summary.buying_power),
        "availableFunds": as_money(summary.available_funds),
        "excessLiquidity": as_money(summary.excess_liquidity),
        "initMargin": as_money(summary.init_margin),
        "maintMargin": as_money(summary.maint_margin),
        "grossPositionValue": as_money(summary.gross_position_value),
        "unrealizedPnL": as_money(summary.unrealized_pnl),
        "realizedPnL": as_money(summary.realized_pnl),
        "dailyPnL": as_money(summary.daily_pnl if summary.daily_pnl is not None else daily_pnl),
        "summary": {tag: entry for tag, (_, entry) in chosen.items()},
        "values": [{"tag": v.tag, "value": v.value, "currency": v.currency} for v in summary.values],
        "updatedAt": summary.updated_at.isoformat() if summary.updated_at else None,
    }


def quote_json(quote: Quote) -> dict[str, Any]:
    return {
        **_instrument_fields(quote.instrument),
        "bid": as_price(quote.bid),
        "ask": as_price(quote.ask),
        "last": as_price(quote.last),
        "bidSize": num(quote.bid_size),
        "askSize": num(quote.ask_size),
        "open": as_price(quote.open),
        "high": as_price(quote.high),
        "low": as_price(quote.low),
        "close": as_price(quote.close),
        "volume": num(quote.volume),
        "marketDataType": int(quote.data_type),
        "marketDataTypeName": quote.data_type.label,
        "stale": quote.stale,
        "time": quote.time.isoformat() if quote.time else None,
    }
