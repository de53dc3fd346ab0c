"""Serving the local REST API on the running event loop: ``start_api`` (panel) and ``run_headless`` (serve).

aiohttp's AppRunner + TCPSite on the loop that is already running (the panel's qasync loop, or
asyncio.run's under ``ibpanel serve``): no second loop, no threads. ``web.run_app`` is never
used because it makes its own loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from ibpanel.api.routes import STATE_KEY, ApiState, add_routes, practice_target_from
from ibpanel.api.security import (
    MAX_BODY_BYTES,
    ApiConfigError,
    SecurityPolicy,
    allowed_extra_hosts,
    check_bind,
    errors_middleware,
    is_loopback,
    security_middleware,
)
from ibpanel.broker.models import ConnectionParams
from ibpanel.broker.service import Broker

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
EXTRA_HOSTS_ENV = "IBPANEL_API_ALLOWED_HOSTS"  # comma list of extra Host names (e.g. a Docker service name)
TOKEN_ENV = "IBPANEL_API_TOKEN"


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


def build_app(broker: Broker, policy: SecurityPolicy, practice: Any = None) -> web.Application:
    """The aiohttp application; not yet bound (``start_api`` binds it)."""
    app = web.Application(
        middlewares=[errors_middleware, security_middleware(policy)],
        client_max_size=MAX_BODY_BYTES,
    )
    app[STATE_KEY] = ApiState(broker=broker, practice=practice_target_from(practice))
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
) -> ApiHandle:
    """Serve /api/ibkr for ``broker`` on the running loop; returns once the socket is bound.

    ``token``: required (and enforced as ``Authorization: Bearer``) for any host but loopback;
    raises ApiConfigError without one. ``practice``: the in-process practice exchange (a
    SimServer/SimThread, ``(host, port)``, a port, or a callable returning one) — /connect to the
    paper port 7497 on localhost then goes there. ``allowed_hosts``: extra Host-header names to
    answer to (also from IBPANEL_API_ALLOWED_HOSTS). Raises OSError (with a plain message) when
    the port is taken.
    """
    check_bind(host, token)
    extra = allowed_extra_hosts([*(allowed_hosts or ()), *os.environ.get(EXTRA_HOSTS_ENV, "").split(",")])
    policy = SecurityPolicy(bind_host=host, token=token, extra_hosts=extra)
    app = build_app(broker, policy, practice)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(
            exc.errno,
            f"Cannot serve the API on {host}:{port} ({exc.strerror or exc}): another program may use that port; "
            "choose another with --api-port.",
        ) from exc
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


# --- ibpanel serve ----------------------------------------------------------------------------

# `serve --demo` is a sandbox for scripts written against the trading module. Two of its settings
# exist so the module's README examples run unchanged (see the report / openapi description):
# practice prices are 2025 levels (Tencent ~HKD 600) while the example sells Tencent at 300, and the
# practice exchange (like SEHK) refuses naked HK short sales. A --demo server can only connect to
# its own practice exchange (routes._resolve_target), so neither setting ever meets real money.
DEMO_FAT_FINGER_PCT = Decimal(80)
DEMO_STARTER_HOLDINGS: tuple[tuple[str, str, int], ...] = (("700", "SEHK", 1000),)  # IB symbol, exchange, shares


def seed_practice_holdings(sim: Any, holdings: tuple[tuple[str, str, int], ...] = DEMO_STARTER_HOLDINGS) -> None:
    """Give every practice account a starter holding, bought at the practice price without commission.

    Call before any client connects (the positions then arrive with the connection like any other).
    """
    for symbol, exchange, shares in holdings:
        found = sim.book.find(symbol, exchange=exchange)
        if not found:
            log.warning("practice starter holding %s not in the instrument data; skipped", symbol)
            continue
        instrument = found[0]
        price = sim.market.top(instrument.con_id).last
        for account in sim.config.accounts:
            sim.accounts.apply_fill(account, instrument, "BUY", Decimal(shares), price, Decimal(0))


def default_journal_path(profile: str) -> Path:
    """The order journal of a profile: the broker's own default when it has one, so panel and serve share it."""
    try:
        from ibpanel.broker import journal as journal_module  # B2's module; optional at import time

        finder = getattr(journal_module, "default_journal_path", None)
        if finder is not None:
            return Path(finder(profile))
    except ImportError:
        pass
    from ibpanel.paths import data_dir

    return data_dir(profile) / "journal.sqlite3"


def _connect_params_from_args(args: Any) -> ConnectionParams | None:
    host, port = getattr(args, "tws_host", None), getattr(args, "tws_port", None)
    if host is None and port is None:
        return None
    return ConnectionParams(
        host=host or "127.0.0.1",
        port=port or 7497,
        client_id=args.client_id if getattr(args, "client_id", None) is not None else 1,
        account=getattr(args, "account", None) or "",
        readonly=bool(getattr(args, "readonly", False)),
    )


async def serve(args: Any, *, ready: asyncio.Future | None = None, stop: asyncio.Event | None = None) -> int:
    """The body of ``ibpanel serve``: broker (+ practice exchange with --demo), API, until stopped."""
    token = getattr(args, "api_token", None) or os.environ.get(TOKEN_ENV) or None
    api_host = getattr(args, "api_host", None) or "127.0.0.1"
    api_port = getattr(args, "api_port", None)
    api_port = DEFAULT_PORT if api_port is None else api_port
    profile = getattr(args, "profile", None) or "default"
    try:
        check_bind(api_host, token)
    except ApiConfigError as exc:
        print(f"ibpanel serve: {exc}", file=sys.stderr, flush=True)
        return 2

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt instead
            pass

    demo = bool(getattr(args, "demo", False))
    broker_options: dict[str, Any] = {"fat_finger_pct": DEMO_FAT_FINGER_PCT} if demo else {}
    broker = Broker(default_journal_path(profile), **broker_options)
    sim = None
    api: ApiHandle | None = None
    try:
        params = _connect_params_from_args(args)
        if demo:
            from ibpanel.sim.server import SimConfig, SimServer

            sim_kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": 0}
            if getattr(args, "seed", None) is not None:
                sim_kwargs["seed"] = args.seed
            sim = SimServer(SimConfig(**sim_kwargs))
            seed_practice_holdings(sim)
            await sim.start()
            params = ConnectionParams(
                host="127.0.0.1",
                port=sim.port,
                client_id=args.client_id if getattr(args, "client_id", None) is not None else 1,
                account=getattr(args, "account", None) or "",
                readonly=bool(getattr(args, "readonly", False)),
            )
        try:
            api = await start_api(broker, api_host, api_port, token, practice=sim)
        except (OSError, ApiConfigError) as exc:
            print(f"ibpanel serve: {exc}", file=sys.stderr, flush=True)
            return 1
        connected_note = "waiting for POST /api/ibkr/connect"
        if params is not None:
            try:
                await broker.connect(params)
                connected_note = f"connected to {params.host}:{params.port} as clientId {params.client_id}"
            except Exception as exc:  # noqa: BLE001 - keep serving; /connect can retry later
                reason = " ".join(str(exc).split())  # the ready message stays one line
                connected_note = f"not connected ({reason}); use POST /api/ibkr/connect"
        practice_note = f", practice exchange on port {sim.port}" if sim is not None else ""
        print(f"IB Panel API ready at {api.url}/api/ibkr ({connected_note}{practice_note})", flush=True)
        if ready is not None and not ready.done():
            ready.set_result(api)
        await stop.wait()
        return 0
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        if api is not None:
            await api.close()
        try:
            await broker.close()
        finally:
            if sim is not None:
                await sim.stop()


def run_headless(args: Any) -> int:
    """``ibpanel serve``: run the API without a window until SIGINT / SIGTERM; returns the exit code."""
    logging.basicConfig(level=logging.INFO if os.environ.get("IBPANEL_DEBUG") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
