"""The /api/ibkr endpoints over one Broker: the trading module's API, answered by the panel's service.

Over 500 lines because it holds every endpoint of the trading module's API, each a thin translation.

Every handler is a thin translation: parse (schemas), call the broker, shape the answer. Trading
rules live in the broker only, so the API refuses exactly what the panel refuses, and its orders
land in the same journal and the same Orders tab (``OrderRequest.source == "api"``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from ibpanel.api.schemas import (
    ACCOUNT_QUERY,
    ASCII_DIGITS,
    CONNECT_FIELDS,
    ORDERS_QUERY,
    QUOTE_QUERY,
    ApiError,
    account_json,
    api_symbol,
    bad_request,
    order_json,
    order_request_from_body,
    parse_fields,
    parse_json_object,
    parse_query,
    placed_order_json,
    position_json,
    quote_json,
    status_json,
)
from ibpanel.api.security import NOT_CONNECTED_ADVICE, error_response
from ibpanel.broker import journal as journal_mod
from ibpanel.broker.exceptions import PACING_MESSAGE, NotConnected, OrdersBacklogged, PacingLimit
from ibpanel.broker.models import (
    AccountSummary,
    ConnectionParams,
    JournalEntry,
    Market,
    OrderStatus,
    OrderType,
    OrderView,
)
from ibpanel.broker.service import Broker
from ibpanel.hosts import is_loopback

log = logging.getLogger(__name__)

PREFIX = "/api/ibkr"
PAPER_PORTS = (7497, 4002)  # TWS paper, Gateway paper: where a practice server sends "connect"
ORDER_ACK_TIMEOUT = 2.0  # seconds POST /order waits for the exchange to acknowledge
MARKET_FILL_WAIT = 0.5  # after the acknowledgement, how long a market order may take to report its fill
ACCOUNT_WAIT = 3.0  # after connecting, account values arrive a moment later
QUOTE_TIMEOUT = 5.0

PracticeTarget = Callable[[], "tuple[str, int] | None"]
#: Why a connection the API makes must be read-only (one sentence saying who chose it and how to lift
#: it), or None while the API may choose. Read-only chosen at start (``serve --readonly``) or in the
#: panel can never be lifted from the API: not by /connect, not by /disconnect then /connect.
ReadonlyLock = Callable[[], "str | None"]

SERVE_READONLY = ("Read-only was chosen at start (ibpanel serve --readonly); restart ibpanel serve without "
                  "--readonly to trade.")


def readonly_lock_from(value: Any) -> ReadonlyLock | None:
    """Accept None / False (no lock), True (serve --readonly), a sentence, or a callable returning one."""
    if value is None or value is False:
        return None
    if value is True:
        return lambda: SERVE_READONLY
    if isinstance(value, str):
        return lambda: value
    if callable(value):
        return value
    raise TypeError(f"readonly must be a bool, a sentence or a callable, not {type(value).__name__}")


def practice_target_from(practice: Any) -> PracticeTarget | None:
    """Accept (host, port), a port number, an object with ``.port`` (a SimServer), or a callable."""
    if practice is None:
        return None
    if callable(practice) and not hasattr(practice, "port"):
        return practice
    if isinstance(practice, tuple):
        host, port = practice
        return lambda: (str(host), int(port))
    if isinstance(practice, int):
        return lambda: ("127.0.0.1", practice)
    if hasattr(practice, "port"):
        host = getattr(getattr(practice, "config", None), "host", None) or "127.0.0.1"
        return lambda: (host, int(practice.port)) if practice.port else None
    raise TypeError(f"practice must be (host, port), a port, or an object with .port, not {type(practice).__name__}")


@dataclass
class ApiState:
    broker: Broker
    practice: PracticeTarget | None = None
    readonly_lock: ReadonlyLock | None = None
    account: str | None = None  # chosen by /connect's "account" while sharing an existing connection
    connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


STATE_KEY: web.AppKey[ApiState] = web.AppKey("ibpanel_api_state", ApiState)


def _state(request: web.Request) -> ApiState:
    return request.app[STATE_KEY]


def ok(data: Any = None, message: str | None = None, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"success": True}
    if message is not None:
        body["message"] = message
    if data is not None:
        body["data"] = data
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


def _require_connected(broker: Broker) -> None:
    status = broker.status
    if status.connected:
        return
    state = status.state.value
    detail = "" if state == "disconnected" else f" (connection state: {state})"
    raise ApiError(400, f"Not connected to IBKR{detail}. {NOT_CONNECTED_ADVICE}", code="not_connected")


def _account_param(broker: Broker, account: str | None, default: str | None = None) -> str | None:
    if not account:
        return default
    if account not in broker.accounts:
        known = ", ".join(broker.accounts) or "none"
        raise bad_request(f"Unknown account {account!r}; the managed accounts are: {known}.", "account")
    return account


def _is_practice(state: ApiState) -> bool:
    target = state.practice() if state.practice else None
    params = state.broker.status.params
    return bool(target and params and (params.host, params.port) == target)


async def _body(request: web.Request) -> dict[str, Any]:
    return parse_json_object(await request.read())


# --- connection -------------------------------------------------------------------------------


def _readonly_reason(state: ApiState) -> str | None:
    return state.readonly_lock() if state.readonly_lock is not None else None


def _status(state: ApiState) -> dict[str, Any]:
    data = status_json(state.broker.status, practice=_is_practice(state))
    if state.account:
        data["account"] = state.account
    reason = _readonly_reason(state)
    data["readonlyLocked"] = reason is not None
    if reason is not None:
        data["readonlyReason"] = reason
    return data


async def get_status(request: web.Request) -> web.Response:
    return ok(_status(_state(request)))


def _resolve_target(state: ApiState, host: str, port: int, explicit: set[str]) -> tuple[str, int, str]:
    """Where a /connect really goes. On a practice server the paper ports go to the practice exchange."""
    target = state.practice() if state.practice else None
    if target is None:
        return host, port, ""
    loopback = is_loopback(host)
    if (host, port) == target:
        return host, port, ""
    if loopback and port in PAPER_PORTS:
        note = f" (practice exchange on port {target[1]}: this server runs with --demo)"
        return target[0], target[1], note
    if "port" in explicit or "host" in explicit:
        raise bad_request(
            f"This server runs the practice exchange (--demo); connect with the paper port 7497 (or leave out "
            f"host and port) to reach it. Port {port} on {host} would be a real TWS / IB Gateway: restart "
            "`ibpanel serve` without --demo for that.",
            "port",
        )
    return target[0], target[1], ""


def _same_server(a_host: str, a_port: int, b_host: str, b_port: int) -> bool:
    same_host = a_host.lower() == b_host.lower() or (is_loopback(a_host) and is_loopback(b_host))
    return same_host and a_port == b_port


async def post_connect(request: web.Request) -> web.Response:
    """Connect, or join the connection the panel (or ``serve``) already has.

    The API shares the broker's one connection: a request for the server it is already connected
    to succeeds without reconnecting (the clientId stays the connection's own); a request for
    another server while connected is 409, so a script never pulls the panel's session away.
    """
    state = _state(request)
    raw = await _body(request)
    fields = parse_fields(CONNECT_FIELDS, raw)
    host, port, note = _resolve_target(state, fields["host"].strip(), fields["port"], set(raw))
    readonly = fields["readonly"]
    locked = _readonly_reason(state)
    if locked is not None:
        if raw.get("readonly") is False:  # asked outright for trading: say no, never connect quietly otherwise
            raise ApiError(
                403,
                f"This API cannot connect with trading enabled: {locked} Leave out readonly (or send true) to "
                "connect read-only.",
                field="readonly",
                code="readonly_locked",
            )
        readonly = True
    practice_target = state.practice() if state.practice else None
    params = ConnectionParams(
        host=host,
        port=port,
        client_id=fields["clientId"],
        account=fields["account"],
        readonly=readonly,
        timeout=float(fields["timeout"]),
        practice=practice_target is not None and (host, port) == tuple(practice_target),
    )
    broker = state.broker
    async with state.connect_lock:
        current = broker.status
        if current.connected and current.params is not None:
            now = current.params
            where = f"{now.host}:{now.port} as clientId {now.client_id}"
            if not _same_server(now.host, now.port, params.host, params.port):
                raise ApiError(
                    409,
                    f"Already connected to {where}; this API shares that connection. "
                    "POST /api/ibkr/disconnect first to connect elsewhere.",
                    code="already_connected",
                )
            if params.readonly and not current.readonly:
                raise ApiError(
                    409,
                    f"Already connected to {where} with trading enabled; to be read-only, POST /api/ibkr/disconnect "
                    "first, then connect with readonly true.",
                    code="already_connected",
                )
            state.account = _account_param(broker, params.account)
            if now.client_id != params.client_id:
                note += f" (sharing the existing connection, clientId {now.client_id})"
            if current.readonly and not params.readonly:
                note += " (read-only: the existing connection sends no orders)"
            return ok(_status(state), "Connected successfully" + note)
        if current.state.value != "disconnected":
            await broker.disconnect()  # a stalled attempt or a reconnect loop: the caller asked for a fresh one
        state.account = None
        await broker.connect(params)
    if locked is not None:
        note += f" (read-only: {locked})"
    return ok(_status(state), "Connected successfully" + note)


async def post_disconnect(request: web.Request) -> web.Response:
    state = _state(request)
    parse_fields((), await _body(request))
    async with state.connect_lock:
        await state.broker.disconnect()
        state.account = None
    return ok(message="Disconnected")


# --- account ----------------------------------------------------------------------------------


async def _wait_for_summary(broker: Broker, account: str | None) -> AccountSummary | None:
    summary = broker.account_summary(account)
    if summary is not None:
        return summary
    arrived = asyncio.get_running_loop().create_future()

    def on_account(value: AccountSummary) -> None:
        if not arrived.done() and (account is None or value.account == account):
            arrived.set_result(value)

    broker.account_changed.connect(on_account)
    try:
        await asyncio.wait_for(arrived, ACCOUNT_WAIT)
    except asyncio.TimeoutError:
        pass
    finally:
        broker.account_changed.disconnect(on_account)
    return broker.account_summary(account)


async def get_account(request: web.Request) -> web.Response:
    state = _state(request)
    broker = state.broker
    query = parse_query(ACCOUNT_QUERY, request.query, request.query)
    _require_connected(broker)
    account = _account_param(broker, query["account"], state.account)
    summary = await _wait_for_summary(broker, account)
    if summary is None:
        raise ApiError(503, "Account values have not arrived from TWS yet; try again in a few seconds.",
                       code="not_ready")
    pnl = broker.pnl(account)
    return ok(account_json(summary, pnl.daily if pnl else None))


async def get_positions(request: web.Request) -> web.Response:
    state = _state(request)
    broker = state.broker
    query = parse_query(ACCOUNT_QUERY, request.query, request.query)
    _require_connected(broker)
    account = _account_param(broker, query["account"], state.account)
    return ok([position_json(p) for p in broker.positions(account)])


async def get_orders(request: web.Request) -> web.Response:
    broker = _state(request).broker
    query = parse_query(ORDERS_QUERY, request.query, request.query)
    _require_connected(broker)
    account = _account_param(broker, query["account"])
    which = query["status"]
    orders: list[OrderView] = []
    if which in ("open", "all"):
        orders.extend(broker.open_orders())
    if which in ("completed", "all"):
        seen = {o.order_id for o in orders}
        orders.extend(o for o in broker.completed_orders() if o.order_id not in seen)
    if account:
        orders = [o for o in orders if o.account == account]
    return ok([order_json(o) for o in orders])


# --- orders -----------------------------------------------------------------------------------

_UNACKNOWLEDGED = (OrderStatus.UNCONFIRMED, OrderStatus.PENDING_SUBMIT)


def _settled(order: OrderView, acknowledged_at: float | None, now: float) -> bool:
    """Can POST /order answer now? Done orders, acknowledged non-market ones, or market orders that waited."""
    if order.status.is_done:
        return True
    if order.status in _UNACKNOWLEDGED:
        return False
    if order.order_type != OrderType.MKT.value:
        return True
    return acknowledged_at is not None and now - acknowledged_at >= MARKET_FILL_WAIT


async def _await_acknowledgement(broker: Broker, first: OrderView) -> OrderView:
    """Follow the order's events until the exchange acknowledged it (and a market order filled), or time out."""
    loop = asyncio.get_running_loop()
    latest = first
    changed = asyncio.Event()

    def on_order(view: OrderView) -> None:
        nonlocal latest
        if view.journal_id == first.journal_id:
            latest = view
            changed.set()

    broker.order_changed.connect(on_order)
    try:
        current = broker.order_for_journal(first.journal_id) if first.journal_id else None
        if current is not None:
            latest = current
        deadline = loop.time() + ORDER_ACK_TIMEOUT
        acknowledged_at: float | None = None
        while True:
            now = loop.time()
            if acknowledged_at is None and latest.status not in _UNACKNOWLEDGED:
                acknowledged_at = now
            if _settled(latest, acknowledged_at, now) or now >= deadline:
                return latest
            wake = deadline if acknowledged_at is None else min(deadline, acknowledged_at + MARKET_FILL_WAIT)
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), max(0.0, wake - now))
            except asyncio.TimeoutError:
                pass
    finally:
        broker.order_changed.disconnect(on_order)


async def post_order(request: web.Request) -> web.Response:
    state = _state(request)
    broker = state.broker
    order_request = order_request_from_body(await _body(request))
    _require_connected(broker)
    if order_request.account is None and state.account:
        order_request = replace(order_request, account=state.account)
    try:
        first = await broker.place(order_request)
    except NotConnected:
        raise ApiError(400, f"Not connected to IBKR. {NOT_CONNECTED_ADVICE}", code="not_connected") from None
    except OrdersBacklogged as exc:  # back-pressure: nothing was sent or journaled
        return error_response(
            503, {"success": False, "error": f"{exc.message} {exc.advice}", "code": "orders_backlogged",
                  "retryAfter": exc.retry_after},
            headers={"Retry-After": str(exc.retry_after)})
    view = await _await_acknowledgement(broker, first)
    fate = f"{PREFIX}/orders/{view.journal_id}"
    if view.status is OrderStatus.NOT_SENT:
        return error_response(
            503, {"success": False, "code": "not_sent", "data": placed_order_json(view),
                  "error": f"Order {view.order_id} was not sent: {view.message or 'it never left the panel'}. Nothing "
                           "reached the exchange; send it again once connected."})
    if view.status in (OrderStatus.REJECTED, OrderStatus.INACTIVE) or (
        view.status in (OrderStatus.CANCELLED, OrderStatus.API_CANCELLED) and view.filled == 0 and view.message
        and view.tif != "IOC"
    ):
        reason = view.message or f"status {view.status.value}"
        return error_response(
            422,
            {"success": False, "error": f"The exchange refused order {view.order_id}: {reason}", "code": "exchange_rejected",
             "data": placed_order_json(view)},
        )
    if view.status in _UNACKNOWLEDGED:
        # queued or in flight: TWS has not said it has the order, so this is no success yet
        data = {**placed_order_json(view), "fate": fate}
        response = ok(data, f"Order {view.order_id} is queued or in flight, not yet acknowledged by TWS: GET {fate} "
                            "tells what became of it.", status=202)
        response.headers["Location"] = fate
        return response
    return ok(placed_order_json(view), f"Order {view.order_id} {view.status.value}")


_ACKNOWLEDGED = frozenset(s.value for s in OrderStatus) - {s.value for s in (*_UNACKNOWLEDGED, OrderStatus.NOT_SENT)}


def fate_json(entry: JournalEntry, live: OrderView | None) -> dict[str, Any]:
    """What became of one order: the journal's record, with the live view when the broker holds one."""
    status = live.status.value if live is not None else entry.status
    return {
        "journalId": entry.journal_id,
        "status": status,
        "journalStatus": entry.status,
        "acknowledged": status in _ACKNOWLEDGED or status == journal_mod.GONE,
        "final": status in {s.value for s in OrderStatus if s.is_done} or status == journal_mod.GONE,
        "sent": status != OrderStatus.NOT_SENT.value,
        "orderId": live.order_id if live is not None else entry.order_id,
        "permId": (live.perm_id if live is not None else None) or entry.perm_id,
        "filled": float(live.filled) if live is not None else float(entry.filled or 0),
        "message": (live.message if live is not None else "") or entry.message,
        "order": order_json(live) if live is not None else None,
    }


async def get_order_fate(request: web.Request) -> web.Response:
    broker = _state(request).broker
    journal_id = request.match_info["journalId"]
    if not journal_mod.is_journal_id(journal_id):
        raise ApiError(404, f"{journal_id[:20]!r} is not a journal id: use the journalId POST /order answered "
                            "(such as 251203-1a2b3c4d).", code="not_found")
    entry = broker.journal.entry(journal_id)
    if entry is None:
        raise ApiError(404, f"There is no order {journal_id} in this journal (practice and real orders are kept "
                            "apart: connect to where it was placed).", code="not_found")
    return ok(fate_json(entry, broker.order_for_journal(journal_id)))


def _order_id(request: web.Request) -> int:
    """The path's order id: ASCII digits only (never "²", "٣" or "１２", which int() would read), else 404."""
    text = request.match_info["order_id"]
    if len(text) > 10 or not ASCII_DIGITS.fullmatch(text) or int(text) > 2**31 - 1:
        raise ApiError(
            404,
            f"No order {text[:20]!r}: an order id is a number in ASCII digits (0-9); use the orderId from "
            "GET /api/ibkr/orders?status=all.",
            field="orderId",
            code="order_not_found",
        )
    return int(text)


async def delete_order(request: web.Request) -> web.Response:
    broker = _state(request).broker
    order_id = _order_id(request)
    _require_connected(broker)
    view = await broker.cancel(order_id)
    return ok(order_json(view), f"Order {order_id} cancelled")


# --- market data ------------------------------------------------------------------------------


async def get_quote(request: web.Request) -> web.Response:
    broker = _state(request).broker
    query = parse_query(QUOTE_QUERY, request.query, request.query)
    symbol = query["symbol"].strip()
    if not symbol:
        raise bad_request("Query parameter 'symbol' is empty: give a US ticker or a Hong Kong code.", "symbol")
    market = Market.from_market_type(query["marketType"]) if query["marketType"] else None
    symbol, market = api_symbol(symbol, market)
    _require_connected(broker)
    try:
        instrument = await broker.resolve(symbol, market)
        quote = await broker.snapshot(instrument, timeout=QUOTE_TIMEOUT)
    except PacingLimit as exc:  # IB dropped requests (error 100): a retry later works, the market is not closed
        raise ApiError(503, PACING_MESSAGE, code="pacing_limit") from exc
    return ok(quote_json(quote))


async def get_openapi(request: web.Request) -> web.Response:
    from ibpanel.api.openapi import openapi_document

    document = openapi_document()
    # Name the server this copy came from (the Host header was checked by the security middleware).
    document["servers"] = [{"url": f"http://{request.headers['Host']}"}]
    return web.json_response(document, dumps=_dumps)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/status", get_status)
    app.router.add_post(f"{PREFIX}/connect", post_connect)
    app.router.add_post(f"{PREFIX}/disconnect", post_disconnect)
    app.router.add_get(f"{PREFIX}/account", get_account)
    app.router.add_get(f"{PREFIX}/positions", get_positions)
    app.router.add_get(f"{PREFIX}/orders", get_orders)
    app.router.add_get(f"{PREFIX}/orders/{{journalId}}", get_order_fate)
    app.router.add_post(f"{PREFIX}/order", post_order)
    app.router.add_delete(f"{PREFIX}/order/{{order_id}}", delete_order)
    app.router.add_get(f"{PREFIX}/quote", get_quote)
    app.router.add_get(f"{PREFIX}/openapi.json", get_openapi)


__all__ = ["ApiState", "STATE_KEY", "add_routes", "practice_target_from", "readonly_lock_from"]
