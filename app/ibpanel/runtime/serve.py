"""``ibpanel serve``: a session with the REST API and no window, until SIGINT / SIGTERM.

The session (broker, journal, practice exchange with ``--demo``, the API, the safety limits of the
profile's settings.ini) is the same ``runtime.session.Session`` the window uses. The session and
aiohttp are imported inside ``serve``: the SIGINT / SIGTERM handlers are installed first, so a stop
request during start-up is still a clean exit 0.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ibpanel.runtime.rest_api import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, ApiRefused

if TYPE_CHECKING:
    from ibpanel.broker.models import ConnectionParams
    from ibpanel.broker.service import Broker

log = logging.getLogger(__name__)

# --- ibpanel serve ----------------------------------------------------------------------------

# `serve --demo` is a sandbox for scripts written against the trading module: the profile's practice
# exchange (ibpanel.runtime.practice: one owner per profile, so the panel and serve share one practice
# account). Safety limits are the profile's own (ibpanel.safety), as in the panel.
STOP_SIGNALS = ("SIGINT", "SIGTERM")

_T = TypeVar("_T")


class StopRequest:
    """SIGINT / SIGTERM turned into a request to stop, from process start to the end of shutdown.

    ``install()`` uses plain ``signal.signal`` (before any loop exists); ``attach(loop)`` moves the
    handlers onto the loop, where they set an asyncio.Event. A signal that came before the loop is
    kept (``signal_name``) and sets the event at once. Handlers stay until ``uninstall()``, after
    shutdown: a second signal during shutdown does not kill the process half-way.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}
        self._on_loop: list[int] = []

    def _signals(self) -> list[int]:
        return [sig for name in STOP_SIGNALS if (sig := getattr(signal, name, None)) is not None]

    def install(self) -> StopRequest:
        for sig in self._signals():
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):  # not the main thread (tests): the loop handlers below still work
                pass
        return self

    def _on_signal(self, signum: int, _frame: Any = None) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
            log.info("%s: stopping", self.signal_name)
        if self.event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.event.set)

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop, self.event = loop, event
        for sig in self._signals():
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._on_loop.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
                pass
        if self.signal_name is not None:
            event.set()

    def uninstall(self) -> None:
        loop, self._loop = self._loop, None
        for sig in self._on_loop:
            if loop is not None and not loop.is_closed():
                loop.remove_signal_handler(sig)
        self._on_loop.clear()
        for sig, previous in self._previous.items():
            try:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        self._previous.clear()


async def _unless_stopped(work: Awaitable[_T], stop: asyncio.Event) -> tuple[bool, _T | None]:
    """Run ``work`` unless ``stop`` is set first (then cancel it): (finished, result)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - we are stopping; its outcome no longer matters
        pass
    return False, None


def _connect_params_from_args(args: Any, params_type: type[ConnectionParams]) -> ConnectionParams | None:
    host, port = getattr(args, "tws_host", None), getattr(args, "tws_port", None)
    if host is None and port is None:
        return None
    return params_type(
        host=host or "127.0.0.1",
        port=port or 7497,
        client_id=args.client_id if getattr(args, "client_id", None) is not None else 1,
        account=getattr(args, "account", None) or "",
        readonly=bool(getattr(args, "readonly", False)),
    )


async def serve(
    args: Any,
    *,
    ready: asyncio.Future | None = None,
    stop: asyncio.Event | None = None,
    stop_request: StopRequest | None = None,
) -> int:
    """The body of ``ibpanel serve``: broker (+ practice exchange with --demo), API, until stopped.

    Stops on ``stop`` (tests) or SIGINT / SIGTERM (also one that arrives while starting): the API
    closes, ``broker.close()`` disconnects politely and closes the journal, exit code 0.
    """
    from ibpanel.api.security import ApiConfigError, check_bind
    from ibpanel.broker.models import ConnectionParams
    from ibpanel.runtime.session import PracticeUnavailable, Session
    from ibpanel.safety import describe, load_safety_limits

    token = getattr(args, "api_token", None) or os.environ.get(TOKEN_ENV) or None
    api_host = getattr(args, "api_host", None) or DEFAULT_HOST
    api_port = getattr(args, "api_port", None)
    api_port = DEFAULT_PORT if api_port is None else api_port
    profile = getattr(args, "profile", None) or "default"
    try:
        check_bind(api_host, token)
    except ApiConfigError as exc:
        print(f"ibpanel serve: {exc}", file=sys.stderr, flush=True)
        return 2

    stop = stop or asyncio.Event()
    own_request = stop_request is None
    stop_request = stop_request or StopRequest()
    stop_request.attach(asyncio.get_running_loop(), stop)

    demo = bool(getattr(args, "demo", False))
    # The same [safety] limits as the panel, from the profile's settings.ini (--demo included).
    limits = load_safety_limits(profile)
    log.info("safety limits from %s: %s", limits.source, describe(limits))
    session = Session(profile, broker_options=limits.broker_options())
    broker = session.broker
    try:
        if stop.is_set():
            return 0
        params = _connect_params_from_args(args, ConnectionParams)
        practice = None
        if demo:
            try:
                # --replay FILE (cli.py, sim/replay.py): a private exchange on the recorded day
                practice = await session.start_practice(seed=getattr(args, "seed", None),
                                                        replay=getattr(args, "replay_session", None))
            except PracticeUnavailable as exc:
                print(f"ibpanel serve: {exc}", file=sys.stderr, flush=True)
                return 1
            params = ConnectionParams(
                host=practice.host,
                port=practice.port,
                client_id=args.client_id if getattr(args, "client_id", None) is not None else 1,
                account=getattr(args, "account", None) or "",
                readonly=bool(getattr(args, "readonly", False)),
                practice=True,  # practice orders go to the practice journal, never the real one
            )
        try:
            api = await session.api.start(api_host, api_port, token, readonly=bool(getattr(args, "readonly", False)))
        except OSError as exc:
            in_use = exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1))
            hint = "with --port." if in_use else "(check --host and --port)."
            print(f"ibpanel serve: {str(exc.strerror or exc).rstrip('.')} {hint}", file=sys.stderr, flush=True)
            return 1
        except ApiRefused as exc:
            print(f"ibpanel serve: {exc}", file=sys.stderr, flush=True)
            return 1
        connected_note = "waiting for POST /api/ibkr/connect"
        if params is not None and not stop.is_set():
            try:
                # Joining the panel's practice exchange without --client-id: the panel may hold clientId 1.
                pick_free_id = practice is not None and practice.joined and getattr(args, "client_id", None) is None
                finished, params = await _unless_stopped(_connect(broker, params, pick_free_id), stop)
                if finished and params is not None:
                    connected_note = f"connected to {params.host}:{params.port} as clientId {params.client_id}"
            except Exception as exc:  # noqa: BLE001 - keep serving; /connect can retry later
                reason = " ".join(str(exc).split())  # the ready message stays one line
                connected_note = f"not connected ({reason}); use POST /api/ibkr/connect"
        if stop.is_set():
            return 0
        practice_note = f", {practice.describe()}" if practice is not None else ""
        print(f"IB Panel API ready at {api.url}/api/ibkr ({connected_note}{practice_note})", flush=True)
        if ready is not None and not ready.done():
            ready.set_result(api)
        await stop.wait()
        return 0
    finally:
        await session.close()  # the API, the broker (polite disconnect, journal), the practice exchange
        why = f" on {stop_request.signal_name}" if stop_request.signal_name else ""
        unsent = broker.not_sent_at_shutdown
        unsent_note = f"; {unsent} queued order(s) not sent (NotSent in the journal)" if unsent else ""
        print(f"IB Panel API stopped{why}: connection closed, journal flushed{unsent_note}", flush=True)
        if own_request:
            stop_request.uninstall()


async def _connect(broker: Broker, params: ConnectionParams, pick_free_id: bool) -> ConnectionParams:
    """Connect; with ``pick_free_id``, a clientId in use (error 326) is retried once with the free one TWS suggests."""
    from ibpanel.broker.exceptions import ConnectError
    from ibpanel.broker.models import FailureKind

    try:
        await broker.connect(params)
        return params
    except ConnectError as exc:
        suggested = exc.failure.suggested_client_id
        if not pick_free_id or exc.failure.kind is not FailureKind.CLIENT_ID_IN_USE or suggested is None:
            raise
    params = replace(params, client_id=suggested)
    await broker.connect(params)
    return params


def run_headless(args: Any) -> int:
    """``ibpanel serve``: run the API without a window until SIGINT / SIGTERM; returns the exit code (0 when stopped)."""
    stop_request = StopRequest().install()  # first: a SIGTERM while starting is a clean stop too
    try:
        logging.basicConfig(level=logging.INFO if os.environ.get("IBPANEL_DEBUG") else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return asyncio.run(serve(args, stop_request=stop_request))
        except KeyboardInterrupt:
            return 0
    finally:
        stop_request.uninstall()
