"""openapi.json (OpenAPI 3.1) for the /api/ibkr endpoints, built from the same field specs that validate.

Served at GET /api/ibkr/openapi.json. Request bodies and query parameters come from
``ibpanel.api.schemas`` (so they match what is accepted, including ``additionalProperties:
false``); response shapes are written out here and checked against real answers in tests.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from ibpanel import __version__
from ibpanel.api.schemas import (
    ACCOUNT_QUERY,
    CONNECT_FIELDS,
    ORDER_FIELDS,
    ORDERS_QUERY,
    QUOTE_QUERY,
    FieldSpec,
)
from ibpanel.api.security import MAX_BODY_BYTES

PREFIX = "/api/ibkr"


def _nullable(kind: str | list[str], **extra: Any) -> dict[str, Any]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {"type": [*kinds, "null"], **extra}


NUM = _nullable("number")
INT = _nullable("integer")
STR = _nullable("string")


def _object(properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


def _body_schema(specs: tuple[FieldSpec, ...]) -> dict[str, Any]:
    return _object(
        {s.name: s.json_schema() for s in specs},
        [s.name for s in specs if s.required],
        closed=True,
    )


def _query_parameters(specs: tuple[FieldSpec, ...]) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "in": "query", "required": s.required, "description": s.description, "schema": s.json_schema()}
        for s in specs
    ]


_INSTRUMENT = {
    "symbol": {"type": "string", "description": "Display symbol: AAPL, BRK.B, 0700.HK."},
    "ib_symbol": {"type": "string", "description": "IB's spelling: AAPL, BRK B, 700."},
    "marketType": {"type": "string", "enum": ["USStock", "HShare"]},
    "secType": {"type": "string", "enum": ["STK"]},
    "exchange": {"type": "string"},
    "primaryExchange": STR,
    "currency": {"type": "string"},
    "conId": INT,
}

_SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "success": {"type": "boolean", "const": False},
            "error": {"type": "string", "description": "One plain sentence: what happened and what to do."},
            "field": {"type": "string", "description": "The request field at fault, when there is one."},
            "code": {"type": "string", "description": "Stable machine-readable reason."},
            "issues": {
                "type": "array",
                "description": "Every rule an order breaks (orderRejected).",
                "items": _object(
                    {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
                    ["field", "code", "message"],
                ),
            },
            "advice": {"type": "string"},
            "suggestedClientId": INT,
            "data": {"description": "For an order the exchange refused: the order as it stands."},
        },
        ["success", "error"],
    ),
    "Status": _object(
        {
            "connected": {"type": "boolean"},
            "host": STR,
            "port": INT,
            "clientId": INT,
            "account": STR,
            "readonly": {"type": "boolean"},
            "readonlyLocked": {
                "type": "boolean",
                "description": "Read-only was chosen outside the API (ibpanel serve --readonly, or the panel's "
                "--readonly / Read-only switch): every connection this API makes is read-only, and no call here "
                "(not /connect, not /disconnect then /connect) can lift it.",
            },
            "readonlyReason": {"type": "string", "description": "Who chose read-only and how to lift it "
                               "(only while readonlyLocked)."},
            "state": {"type": "string", "enum": ["disconnected", "connecting", "connected", "degraded", "reconnecting"]},
            "accounts": {"type": "array", "items": {"type": "string"}},
            "paper": _nullable("boolean"),
            "paperReason": {"type": "string"},
            "practice": {"type": "boolean", "description": "Connected to the built-in practice exchange."},
            "serverVersion": INT,
            "connectionTime": STR,
            "reconnectAttempt": {"type": "integer"},
            "nextRetryIn": NUM,
            "stale": {"type": "boolean", "description": "TWS stopped answering the heartbeat while the socket stays "
                      "open (a frozen TWS): orders are refused until it answers again."},
            "staleReason": {"type": "string"},
            "lastFailure": _nullable(
                "object",
                properties={
                    "kind": {"type": "string"},
                    "message": {"type": "string"},
                    "advice": {"type": "string"},
                    "suggestedClientId": INT,
                },
            ),
        },
        ["connected", "host", "port", "clientId", "account", "readonly", "state"],
    ),
    "Order": _object(
        {
            "orderId": {"type": "integer"},
            "permId": INT,
            "clientId": INT,
            "journalId": STR,
            "account": STR,
            **_INSTRUMENT,
            "action": {"type": "string", "enum": ["BUY", "SELL"]},
            "quantity": {"type": "number"},
            "orderType": {"type": "string", "description": "MKT, LMT, STP, STP LMT (or any type TWS shows)."},
            "limitPrice": NUM,
            "stopPrice": NUM,
            "tif": {"type": "string"},
            "outsideRth": {"type": "boolean"},
            "status": {"type": "string"},
            "filled": {"type": "number"},
            "remaining": {"type": "number"},
            "avgFillPrice": NUM,
            "avgPrice": {**NUM, "description": "POST /order only: the module's name for avgFillPrice."},
            "message": {"type": "string"},
            "createdAt": STR,
            "updatedAt": STR,
        },
        ["orderId", "permId", "symbol", "action", "quantity", "orderType", "limitPrice", "status", "filled",
         "remaining", "avgFillPrice"],
    ),
    "OrderFate": _object(
        {
            "journalId": {"type": "string"},
            "status": {"type": "string", "description": "The order's status now: NotSent (never reached TWS), "
                       "Unconfirmed / PendingSubmit (queued or in flight), a TWS status once acknowledged, or "
                       "Unknown (TWS no longer lists it)."},
            "journalStatus": {"type": "string", "description": "The status in the order journal."},
            "acknowledged": {"type": "boolean", "description": "TWS said it has the order."},
            "final": {"type": "boolean", "description": "Nothing more will happen to it."},
            "sent": {"type": "boolean", "description": "False only for NotSent: nothing reached the exchange."},
            "orderId": INT,
            "permId": INT,
            "filled": {"type": "number"},
            "message": {"type": "string"},
            "order": {"description": "The live order (as in GET /orders) while the broker holds one, else null."},
        },
        ["journalId", "status", "acknowledged", "final", "sent"],
    ),
    "Position": _object(
        {
            "account": {"type": "string"},
            **_INSTRUMENT,
            "quantity": {"type": "number"},
            "avgCost": {**NUM, "description": "Average cost per share."},
            "costBasis": {**NUM, "description": "quantity x avgCost."},
            "marketPrice": NUM,
            "marketValue": {**NUM, "description": "Real market value: quantity x market price (not cost)."},
            "unrealizedPnL": NUM,
            "realizedPnL": NUM,
        },
        ["symbol", "ib_symbol", "secType", "exchange", "currency", "quantity", "avgCost", "marketValue",
         "marketPrice", "unrealizedPnL"],
    ),
    "Account": _object(
        {
            "account": {"type": "string"},
            "baseCurrency": STR,
            "netLiquidation": NUM,
            "totalCash": NUM,
            "cashByCurrency": {"type": "object", "additionalProperties": NUM},
            "buyingPower": NUM,
            "availableFunds": NUM,
            "excessLiquidity": NUM,
            "initMargin": NUM,
            "maintMargin": NUM,
            "grossPositionValue": NUM,
            "unrealizedPnL": NUM,
            "realizedPnL": NUM,
            "dailyPnL": NUM,
            "summary": {
                "type": "object",
                "description": "Every account value TWS sent, by tag (base currency when a tag has several).",
                "additionalProperties": _object(
                    {"value": {"type": "string"}, "currency": {"type": "string"}}, ["value", "currency"]
                ),
            },
            "values": {
                "type": "array",
                "items": _object(
                    {"tag": {"type": "string"}, "value": {"type": "string"}, "currency": {"type": "string"}},
                    ["tag", "value", "currency"],
                ),
            },
            "updatedAt": STR,
        },
        ["account", "summary"],
    ),
    "Quote": _object(
        {
            **_INSTRUMENT,
            "bid": NUM,
            "ask": NUM,
            "last": NUM,
            "bidSize": NUM,
            "askSize": NUM,
            "open": NUM,
            "high": NUM,
            "low": NUM,
            "close": {**NUM, "description": "Previous close."},
            "volume": NUM,
            "marketDataType": {"type": "integer", "enum": [1, 2, 3, 4],
                               "description": "1 live, 2 frozen, 3 delayed, 4 delayed-frozen."},
            "marketDataTypeName": {"type": "string"},
            "stale": {"type": "boolean"},
            "time": STR,
        },
        ["symbol", "bid", "ask", "last", "high", "low", "volume", "close", "marketDataType"],
    ),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _success(data: dict[str, Any] | None, *, message: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"success": {"type": "boolean", "const": True}}
    required = ["success"]
    if message:
        props["message"] = {"type": "string"}
        required.append("message")
    if data is not None:
        props["data"] = data
        required.append("data")
    return _object(props, required)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS_ALWAYS = {
    "401": "Missing or wrong bearer token (only when the server has a token).",
    "403": "A cross-origin browser request.",
    "421": "The Host header does not name this server (DNS rebinding guard).",
    "500": "Internal error (logged; the answer never holds a stack trace).",
}
_ERRORS_BODY = {
    "413": f"Body larger than {MAX_BODY_BYTES} bytes.",
    "415": "A body sent without Content-Type: application/json.",
}


def _responses(ok_schema: dict[str, Any], ok_text: str, errors: dict[str, str], *, body: bool = False) -> dict[str, Any]:
    responses = {"200": _json(ok_schema, ok_text)}
    merged = {**errors, **(_ERRORS_BODY if body else {}), **_ERRORS_ALWAYS}
    for code in sorted(merged):
        responses[code] = _json(_ref("Error"), merged[code])
    return responses


_NOT_CONNECTED = "Bad request (named field), or not connected to IBKR (with what to do)."


def _request_body(specs: tuple[FieldSpec, ...], example: dict[str, Any] | None, required: bool) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _body_schema(specs)}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def _paths() -> dict[str, Any]:
    return {
        f"{PREFIX}/status": {
            "get": {
                "operationId": "getStatus",
                "summary": "Connection status",
                "responses": _responses(_success(_ref("Status")), "The connection as it stands.", {}),
            }
        },
        f"{PREFIX}/connect": {
            "post": {
                "operationId": "connect",
                "summary": "Connect to TWS / IB Gateway",
                "description": "Every field is optional (defaults: 127.0.0.1, 7497, clientId 1). While connected, a "
                "request for the same server joins the existing connection (its clientId stays), another server is "
                "409. On a server started with --demo, the paper ports 7497 / 4002 on localhost (or no host / port) "
                "connect to the practice exchange and other ports are refused; its practice accounts start with "
                "1,000 shares of 0700.HK (the practice exchange refuses HK short sales). Orders are checked against "
                "the profile's safety limits (settings.ini [safety]: max_order_value_usd, max_order_value_hkd, "
                "fat_finger_pct), as in the panel. Read-only chosen at start (serve --readonly) or in the panel "
                "cannot be lifted here: while /status says readonlyLocked, a connection is made read-only (the "
                "message says so) and readonly false is refused with 403 readonly_locked. Bodies naming a field "
                "twice are refused (400).",
                "requestBody": _request_body(CONNECT_FIELDS, {"host": "127.0.0.1", "port": 7497, "clientId": 1}, False),
                "responses": _responses(
                    _success(_ref("Status"), message=True),
                    "Connected successfully.",
                    {"400": "Bad field, or the connection failed (plain reason and what to do).",
                     "403": "readonly false while read-only is locked (code readonly_locked; see readonlyLocked).",
                     "409": "Already connected elsewhere, or with trading enabled when readonly true was asked."},
                    body=True,
                ),
            }
        },
        f"{PREFIX}/disconnect": {
            "post": {
                "operationId": "disconnect",
                "summary": "Disconnect",
                "responses": _responses(_success(None, message=True), "Disconnected.",
                                        {"400": "A body with fields (this call takes none)."}, body=True),
            }
        },
        f"{PREFIX}/account": {
            "get": {
                "operationId": "getAccount",
                "summary": "Account values",
                "parameters": _query_parameters(ACCOUNT_QUERY),
                "responses": _responses(_success(_ref("Account")), "Account summary and values.",
                                        {"400": _NOT_CONNECTED, "503": "Account values not received yet."}),
            }
        },
        f"{PREFIX}/positions": {
            "get": {
                "operationId": "getPositions",
                "summary": "Positions",
                "parameters": _query_parameters(ACCOUNT_QUERY),
                "responses": _responses(_success({"type": "array", "items": _ref("Position")}), "Positions.",
                                        {"400": _NOT_CONNECTED}),
            }
        },
        f"{PREFIX}/orders": {
            "get": {
                "operationId": "getOrders",
                "summary": "Orders (open by default)",
                "parameters": _query_parameters(ORDERS_QUERY),
                "responses": _responses(_success({"type": "array", "items": _ref("Order")}), "Orders.",
                                        {"400": _NOT_CONNECTED}),
            }
        },
        f"{PREFIX}/order": {
            "post": {
                "operationId": "placeOrder",
                "summary": "Place an order",
                "description": "Validated by the broker exactly like the panel's ticket (read-only, account, whole "
                "shares and HK board lots, tick size, price sanity against a market price - none to be had refuses "
                "limit and stop orders - and order value). Waits up to 2 s for TWS. 200 only when TWS acknowledged "
                "the order (market orders: once filled, or shortly after); 202 when it is still queued or in flight "
                "(data.journalId, data.fate and the Location header name GET /api/ibkr/orders/{journalId}, which "
                "tells its fate); 503 when nothing was sent: orders are backlogged beyond the allowed wait "
                "(code orders_backlogged, Retry-After header) or the order never left (code not_sent, shown "
                "NotSent everywhere). One field, one meaning: price is the limit price (limit, stop_limit), "
                "stopPrice the trigger (stop, stop_limit).",
                "requestBody": _request_body(
                    ORDER_FIELDS,
                    {"symbol": "AAPL", "side": "buy", "quantity": 10, "marketType": "USStock"},
                    True,
                ),
                "responses": {
                    **_responses(
                        _success(_ref("Order"), message=True),
                        "Sent and acknowledged by TWS: orderId, status, filled, avgPrice, journalId.",
                        {
                            "400": "Bad field, every broken trading rule (issues; no_reference_price when no market "
                                   "price arrived in time, connection_stale while TWS does not answer), or not "
                                   "connected.",
                            "422": "Sent, but the exchange refused it (data holds the order).",
                            "503": "Nothing was sent: orders_backlogged (retry after the Retry-After header's "
                                   "seconds) or not_sent (the order never left; data holds it, status NotSent).",
                        },
                        body=True,
                    ),
                    "202": _json(
                        _success(_object({"fate": {"type": "string", "description": "GET this path for the "
                                                   "order's fate."}}), message=True),
                        "Queued or in flight, not yet acknowledged by TWS: data is the order (status Unconfirmed or "
                        "PendingSubmit) with journalId and fate; the Location header repeats fate."),
                },
            }
        },
        f"{PREFIX}/orders/{{journalId}}": {
            "get": {
                "operationId": "getOrderFate",
                "summary": "What became of an order, by its journal id (works while disconnected)",
                "parameters": [
                    {"name": "journalId", "in": "path", "required": True,
                     "description": "journalId from POST /order (such as 251203-1a2b3c4d).",
                     "schema": {"type": "string", "pattern": "^[0-9]{6}-[0-9a-f]{8}$"}}
                ],
                "responses": _responses(_success(_ref("OrderFate")), "The order's fate.",
                                        {"404": "Not a journal id, or no such order in this journal."}),
            }
        },
        f"{PREFIX}/order/{{orderId}}": {
            "delete": {
                "operationId": "cancelOrder",
                "summary": "Cancel an order; answers once the exchange confirmed the cancel",
                "parameters": [
                    {"name": "orderId", "in": "path", "required": True,
                     "description": "orderId from GET /orders, in ASCII digits 0-9 (anything else is 404).",
                     "schema": {"type": "integer", "minimum": 0, "maximum": 2147483647}}
                ],
                "responses": _responses(
                    _success(_ref("Order"), message=True),
                    "Cancelled (confirmed by the exchange).",
                    {
                        "400": "Not connected.",
                        "404": "No such order, or an id that is not ASCII digits (such as ² or ١٢).",
                        "409": "The order can no longer be cancelled (filled, already cancelled, or never sent: "
                               "NotSent).",
                        "504": "The exchange did not confirm the cancel in time.",
                    },
                ),
            }
        },
        f"{PREFIX}/quote": {
            "get": {
                "operationId": "getQuote",
                "summary": "One quote",
                "parameters": _query_parameters(QUOTE_QUERY),
                "responses": _responses(
                    _success(_ref("Quote")),
                    "A quote, marked with its market data type.",
                    {"400": "Bad or unknown symbol, or not connected.",
                     "503": "IB pacing limit (error 100): too many requests per second; slow down and retry.",
                     "504": "No quote arrived in time."},
                ),
            }
        },
        f"{PREFIX}/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1 document.", "content": {"application/json": {"schema": {"type": "object"}}}},
                    **{code: _json(_ref("Error"), text) for code, text in _ERRORS_ALWAYS.items()},
                },
            }
        },
    }


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IB Panel local API",
            "version": __version__,
            "description": "The trading module's /api/ibkr endpoints, served by IB Panel over its broker service "
            "(same connection, journal and safety rules as the panel). Every answer is JSON with success, and "
            "data / message on success or error (one plain sentence) on failure, also for requests that are not "
            "valid HTTP. A JSON body that names a field twice is refused (400), never read as its last value.",
        },
        "servers": [{"url": "http://127.0.0.1:5000"}],
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "Required when the server was started with a token."}},
        },
        "security": [{}, {"bearerAuth": []}],
        "paths": _paths(),
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may edit theirs, e.g. to set servers)."""
    return copy.deepcopy(_document())
