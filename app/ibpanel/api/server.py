"""Serving the local REST API on the running event loop: ``start_api`` (asked by ``runtime.rest_api.RestApi``).

aiohttp's AppRunner + TCPSite on the loop that is already running (the panel's qasync loop, or
asyncio.run's under ``ibpanel serve``): no second loop, no threads. ``web.run_app`` is never
used because it makes its own loop.

aiohttp and the broker are imported inside the functions that use them: ``ibpanel serve``
(runtime/serve.py) installs its SIGINT / SIGTERM handlers first, so a stop request during start-up
is still a clean exit 0.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from ibpanel.api.security import SecurityPolicy
    from ibpanel.broker.service import Broker

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
EXTRA_HOSTS_ENV = "IBPANEL_API_ALLOWED_HOSTS"  # comma list of extra Host names (e.g. a Docker service name)
TOKEN_ENV = "IBPANEL_API_TOKEN"
MIN_TOKEN_LENGTH = 16  # a bearer token shorter than this is refused (security.check_bind)


@dataclass
class ApiHandle:
    """A running API. ``port`` is the bound port (useful with port 0); ``close()`` stops serving."""

    host: str
    port: int
    runner: web.AppRunner
    app: web.Application
    _closed: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else ("[::1]" if self.host == "::" else self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop accepting requests and finish the ones in flight (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.runner.cleanup()


def build_app(broker: Broker, policy: SecurityPolicy, practice: Any = None, readonly: Any = None) -> web.Application:
    """The aiohttp application; not yet bound (``start_api`` binds it)."""
    from aiohttp import web

    from ibpanel.api.routes import STATE_KEY, ApiState, add_routes, practice_target_from, readonly_lock_from
    from ibpanel.api.security import MAX_BODY_BYTES, errors_middleware, security_middleware

    app = web.Application(
        middlewares=[errors_middleware, security_middleware(policy)],
        client_max_size=MAX_BODY_BYTES,
    )
    app[STATE_KEY] = ApiState(broker=broker, practice=practice_target_from(practice),
                              readonly_lock=readonly_lock_from(readonly))
    add_routes(app)
    return app


async def start_api(
    broker: Broker,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    practice: Any = None,
    *,
    allowed_hosts: tuple[str, ...] | list[str] | None = None,
    readonly: Any = None,
) -> ApiHandle:
    """Serve /api/ibkr for ``broker`` on the running loop; returns once the socket is bound.

    ``token``: required (and enforced as ``Authorization: Bearer``) for any host but loopback;
    raises ApiConfigError without one. ``practice``: the in-process practice exchange (a
    SimServer/SimThread, ``(host, port)``, a port, or a callable returning one) — /connect to the
    paper port 7497 on localhost then goes there. ``allowed_hosts``: extra Host-header names to
    answer to (also from IBPANEL_API_ALLOWED_HOSTS). ``readonly``: read-only chosen outside the API
    (True for ``serve --readonly``, or a callable giving the reason while the panel's switch is on,
    else None): every connection the API makes is then read-only. Raises OSError (with a plain message) when
    the port is taken.
    """
    from aiohttp import web

    from ibpanel.api.bad_http import JsonErrorAppRunner
    from ibpanel.api.security import SecurityPolicy, allowed_extra_hosts, check_bind
    from ibpanel.hosts import is_loopback

    check_bind(host, token)
    extra = allowed_extra_hosts([*(allowed_hosts or ()), *os.environ.get(EXTRA_HOSTS_ENV, "").split(",")])
    policy = SecurityPolicy(bind_host=host, token=token, extra_hosts=extra)
    app = build_app(broker, policy, practice, readonly)
    runner = JsonErrorAppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            reason = "the port is in use by another program (or another IB Panel); choose another port"
        else:
            reason = " ".join(str(exc.strerror or exc).split())
        # errno stays on the exception for callers; the text is one plain line without Python's "[Errno 98]".
        raise OSError(exc.errno, f"Cannot serve the API on {host}:{port}: {reason}.") from exc
    bound_port = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_port = int(address[1])
            break
    policy.port = bound_port
    if not is_loopback(host):
        log.warning("API bound to %s:%s with a bearer token over plain HTTP; use it on trusted networks only",
                    host, bound_port)
    log.info("API serving on %s:%s", host, bound_port)
    return ApiHandle(host=host, port=bound_port, runner=runner, app=app)
