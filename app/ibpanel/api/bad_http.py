"""JSON answers to requests that never reach the application: malformed HTTP, oversize headers.

aiohttp answers what its HTTP parser cannot read (a broken request line, a bad header, a header
longer than its limit) itself, before any middleware runs, as ``text/plain`` that repeats the
offending bytes. The API promises JSON for every error, so the runner here makes aiohttp's
connection handler (``RequestHandler``) answer with the module's error shape instead, and never
echoes what was sent. aiohttp has no public option for this (its issue #3287 asks for one): the
override is the documented ``RequestHandler.handle_error`` method, wired in through the runner's
server factory; tests/api/test_bad_http.py keeps it honest against aiohttp upgrades.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

MALFORMED_ADVICE = "send a well-formed HTTP/1.1 request (a script's HTTP library does this for you)."


def describe_bad_http(status: int, exc: BaseException | None) -> tuple[str, str]:
    """(sentence, code) for a request aiohttp could not handle; never quotes the request itself."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return f"The request line or a header is too long; {MALFORMED_ADVICE}", "too_large"
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return f"The request does not start with an HTTP method; {MALFORMED_ADVICE}", "bad_http"
    if isinstance(exc, http_exceptions.InvalidHeader):
        return f"A request header is malformed; {MALFORMED_ADVICE}", "bad_http"
    if isinstance(exc, http_exceptions.BadStatusLine):
        return f"The request line is malformed; {MALFORMED_ADVICE}", "bad_http"
    if status >= 500:
        return (
            "The API hit an internal error; the request may not have completed. Check GET /api/ibkr/orders "
            "before retrying an order; details are in the log.",
            "internal_error",
        )
    return f"The request is not valid HTTP; {MALFORMED_ADVICE}", "bad_http"


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as ``{"success": false, "error": ...}``."""

    __slots__ = ()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # The base logs the traceback and refuses when part of an answer already went out.
            super().handle_error(request, status, exc, message)
        else:
            # Malformed input is the sender's mistake (or a port scan): one line, no traceback.
            self.logger.info("refused a malformed HTTP request from %s: %s", request.remote, type(exc).__name__)
            if request.writer.output_size > 0:
                raise ConnectionError("an answer was already sent; cannot send the error")
        sentence, code = describe_bad_http(status, exc)
        response = web.Response(
            status=status,
            text=json.dumps({"success": False, "error": sentence, "code": code}),
            content_type="application/json",
        )
        response.force_close()  # as aiohttp does: after a parser error the connection's framing is unknown
        return response


class JsonErrorServer(Server):
    """aiohttp's low-level server, making a :class:`JsonErrorRequestHandler` per connection."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer parser errors in JSON (see the module docstring)."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = JsonErrorServer  # same object and state; only the per-connection factory differs
        return server
