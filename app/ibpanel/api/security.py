"""What keeps the local API local: bind rules, token, Host / Origin / Content-Type checks, errors.

A trading API on localhost is reachable by every web page the user opens (a browser will
happily POST to http://127.0.0.1:5000) and, through DNS rebinding, by pages that pretend to
*be* localhost. So, in order, each request must:

1. name this server in its Host header (a rebinding page sends its own domain there);
2. not come from another origin (any ``Origin`` other than this server's own, or a
   ``Sec-Fetch-Site`` of cross-site / same-site);
3. carry ``Authorization: Bearer <token>`` when a token is configured (required for any bind
   address other than loopback);
4. send a body only as ``Content-Type: application/json`` (HTML forms cannot), below the size cap.

Every failure, and every unexpected exception, becomes the module's JSON error shape; a stack
trace goes to the log, never to the client.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from ibpanel.api.schemas import ApiError, issue_json
from ibpanel.api.server import MIN_TOKEN_LENGTH
from ibpanel.broker.exceptions import (
    BrokerError,
    BrokerTimeout,
    ConnectError,
    NotCancellable,
    NotConnected,
    OrderNotFound,
    OrderRejected,
    SymbolError,
)
from ibpanel.hosts import LOOPBACK_NAMES, is_loopback

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest legitimate body (an order) is ~300 bytes
NOT_CONNECTED_ADVICE = (
    'Connect first: POST /api/ibkr/connect with {"host": "127.0.0.1", "port": 7497, "clientId": 1} '
    "(TWS or IB Gateway must be running with the API enabled)."
)
_WILDCARDS = ("0.0.0.0", "::", "")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiConfigError(ValueError):
    """The API was asked to start in an unsafe or impossible way; the message says how to fix it."""


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token, and blank, spaced or too short tokens."""
    if token is not None and not token.strip():
        raise ApiConfigError(
            "The API token is blank: give a real token (at least "
            f"{MIN_TOKEN_LENGTH} characters), or leave it out to serve on 127.0.0.1 without one. Make one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(24))"'
        )
    if token is not None and not all(33 <= ord(ch) <= 126 for ch in token):
        # The header carries "Bearer <token>": spaces, control characters or non-ASCII letters
        # would not survive every HTTP client unchanged, and the server would then refuse it.
        raise ApiConfigError(
            "The API token may hold only visible ASCII characters (no spaces, tabs or accented letters); make "
            'one with: python -c "import secrets; print(secrets.token_urlsafe(24))"'
        )
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ApiConfigError(
            f"The API token must be at least {MIN_TOKEN_LENGTH} characters; make one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(24))"'
        )
    if not is_loopback(host) and not token:
        raise ApiConfigError(
            f"Refusing to serve the trading API on {host or 'all addresses'} without a token: anyone who can "
            "reach that address could place orders. Give --api-token (or IBPANEL_API_TOKEN), or bind 127.0.0.1."
        )


@dataclass
class SecurityPolicy:
    """What the checks compare against. ``port`` is filled in once the socket is bound."""

    bind_host: str
    token: str | None = None
    port: int | None = None
    extra_hosts: tuple[str, ...] = ()
    _names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        names = {n.lower() for n in LOOPBACK_NAMES}
        names.update(h.lower().strip("[]") for h in self.extra_hosts if h)
        bind = self.bind_host.lower().strip("[]")
        if bind not in _WILDCARDS:
            names.add(bind)
        else:
            # Any-address binds also answer to this machine's own names.
            names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
        self._names = names

    @property
    def wildcard(self) -> bool:
        return self.bind_host.lower().strip("[]") in _WILDCARDS

    def host_allowed(self, hostname: str) -> bool:
        """Is this Host-header name one this server answers to? IP literals pass on any-address binds."""
        name = hostname.lower().rstrip(".")
        if name in self._names:
            return True
        if self.wildcard:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    def origin_allowed(self, origin: str) -> bool:
        """Only this server's own origin (a page it served itself; it serves none today)."""
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme != "http" or not parts.hostname or self.port is None:
            return False
        return self.host_allowed(parts.hostname) and (port or 80) == self.port

    def token_ok(self, header: str | None) -> bool:
        if self.token is None:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode("utf-8"), self.token.encode("utf-8"))


def error_response(status: int, body: dict, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, allow_nan=False),
        content_type="application/json",
        headers=headers,
    )


def _has_body(request: web.Request) -> bool:
    if request.content_length:
        return True
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def broker_error_to_api(exc: BrokerError) -> ApiError:
    """Map the broker's exceptions to HTTP: the message and advice travel as one plain sentence."""
    text = str(exc)
    if isinstance(exc, NotConnected):
        return ApiError(400, f"Not connected to IBKR. {NOT_CONNECTED_ADVICE}", code="not_connected")
    if isinstance(exc, OrderRejected):
        issues = [issue_json(i) for i in exc.issues]
        first_field = issues[0]["field"] if issues else None
        return ApiError(400, text or "Order refused.", field=first_field, issues=issues, code="order_rejected")
    if isinstance(exc, ConnectError):
        failure = exc.failure
        return ApiError(
            400,
            text,
            code=failure.kind.value,
            advice=failure.advice,
            suggestedClientId=failure.suggested_client_id,
        )
    if isinstance(exc, SymbolError):
        return ApiError(400, text, field="symbol", code="bad_symbol")
    if isinstance(exc, OrderNotFound):
        # The broker's advice speaks of the Orders tab; an API caller lists orders over HTTP.
        return ApiError(404, f"{exc.message} List the known orders with GET /api/ibkr/orders?status=all.",
                        code="order_not_found")
    if isinstance(exc, NotCancellable):
        return ApiError(409, text, code="not_cancellable")
    if isinstance(exc, BrokerTimeout):
        return ApiError(504, text, code="timeout")
    return ApiError(400, text or "The broker refused the request.", code="broker_error")


def _http_exception_message(exc: web.HTTPException, request: web.Request) -> str:
    if isinstance(exc, web.HTTPNotFound):
        return f"No such endpoint: {request.method} {request.path[:100]}. The endpoints are listed at /api/ibkr/openapi.json."
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path[:100]}; use {allowed}."
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return f"The request body is too large (the limit is {MAX_BODY_BYTES} bytes)."
    return exc.reason or "The request was refused."


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: every failure becomes {success: false, error: <sentence>}; never a stack trace."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.body())
    except BrokerError as exc:
        api_error = broker_error_to_api(exc)
        return error_response(api_error.status, api_error.body())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
        return error_response(
            exc.status, {"success": False, "error": _http_exception_message(exc, request)}, headers
        )
    except Exception:  # noqa: BLE001 - the API's one catch-all: log it, answer a plain sentence
        log.exception("API request %s %s failed", request.method, request.path)
        return error_response(
            500,
            {"success": False, "error": "The API hit an internal error; the request may not have completed. "
             "Check GET /api/ibkr/orders before retrying an order; details are in the log."},
        )


def security_middleware(policy: SecurityPolicy) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Host, Origin, token, Content-Type and body-size checks, in that order."""

    @web.middleware
    async def check_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        host_header = request.headers.get("Host")
        if not host_header:
            raise ApiError(400, "The Host header is missing; send the address you connect to.", code="bad_host")
        try:
            hostname = urlsplit("//" + host_header).hostname
        except ValueError:
            hostname = None
        if not hostname or not policy.host_allowed(hostname):
            raise ApiError(
                421,
                f"This API does not answer to the host name {host_header[:80]!r}; use http://127.0.0.1:{policy.port}/ "
                "(a page that renamed this address is refused to stop DNS rebinding).",
                code="bad_host",
            )
        origin = request.headers.get("Origin")
        fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
        if (origin is not None and not policy.origin_allowed(origin)) or fetch_site in ("cross-site", "same-site"):
            raise ApiError(
                403,
                "Cross-origin browser requests are refused: call the API from a script or program, not a web page.",
                code="cross_origin",
            )
        if not policy.token_ok(request.headers.get("Authorization")):
            return error_response(
                401,
                {"success": False, "error": "Missing or wrong API token: send the header 'Authorization: Bearer <token>' "
                 "with the token the server was started with.", "code": "unauthorized"},
                {"WWW-Authenticate": 'Bearer realm="ibpanel"'},
            )
        if _has_body(request):
            if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
                raise ApiError(413, f"The request body is too large (the limit is {MAX_BODY_BYTES} bytes).",
                               code="too_large")
            if request.content_type != "application/json":
                raise ApiError(
                    415,
                    f"Send the body as JSON with the header 'Content-Type: application/json' "
                    f"(got {request.headers.get('Content-Type', 'none')[:60]!r}).",
                    code="bad_content_type",
                )
        return await handler(request)

    return check_request


def allowed_extra_hosts(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (values or ()) if v and v.strip())
