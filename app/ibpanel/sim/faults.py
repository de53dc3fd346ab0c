"""Fault injection for the practice exchange, switchable at run time (tests) and at start (CLI flags).

``Faults`` is the handle exposed as ``SimServer.faults`` / ``SimThread.faults``. Every method may be called
from any thread: work that touches sockets runs on the server's loop, and the call returns once it is done
(when called from another thread) or has been done (when called on the loop itself).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibpanel.sim.server import SimServer

CONNECTIVITY_TEXTS = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}


class Stats:
    """Requests received, by message name (e.g. "PLACE_ORDER"); counts only grow."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        # one lock per request is cheap next to decoding it, and keeps reads from other threads exact
        with self._lock:
            self._counts[name] += 1

    def count(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class Faults:
    """The fault switches of one server. Flags are read by the server on its loop."""

    def __init__(self, server: SimServer):
        self._server = server
        self.readonly = server.config.readonly
        self.pacing = server.config.pacing
        self.market_data_live = server.config.market_data_live
        self.reply_delay = float(server.config.delay_replies)
        self.market_data_delay = 0.0  # seconds each market-data request waits before it is served
        self.frozen = False  # requests are held unread and nothing is written; the sockets stay open
        self.reject_reason: str | None = None
        self._lock = threading.Lock()

    # ----- plumbing ---------------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], object]) -> None:
        loop = self._server.loop
        if loop is None or not loop.is_running():
            fn()
            return
        if self._server.loop_thread_id == threading.get_ident():
            fn()
            return
        done = asyncio.run_coroutine_threadsafe(_as_coroutine(fn), loop)
        done.result(timeout=10)

    # ----- faults -----------------------------------------------------------------------------------------
    def drop_all(self) -> None:
        """Close every client socket at once (TWS crashed or the network went away)."""
        self._call(self._server.drop_all_clients)

    def refuse_for(self, seconds: float) -> None:
        """Stop listening for ``seconds``: new connections are refused (a TWS restart); then listen again."""
        self._call(lambda: self._server.refuse_connections(float(seconds)))

    def send_connectivity(self, code: int) -> None:
        """Send 1100 (lost), 1101 (restored, data lost: subscriptions dropped) or 1102 (restored) to all."""
        if code not in CONNECTIVITY_TEXTS:
            raise ValueError(f"connectivity code must be one of 1100, 1101, 1102, not {code}")
        self._call(lambda: self._server.broadcast_connectivity(code))

    def reject_next_order(self, reason: str) -> None:
        """The next PLACE_ORDER (any client) gets ERR 201 "Order rejected - reason:<reason>"."""
        with self._lock:
            self.reject_reason = reason or "Rejected by the practice exchange"

    def take_reject_reason(self) -> str | None:
        with self._lock:
            reason, self.reject_reason = self.reject_reason, None
            return reason

    def delay_replies(self, seconds: float) -> None:
        """Hold every reply for ``seconds`` before it is written (0 = off)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0 seconds")
        self.reply_delay = float(seconds)

    def delay_market_data(self, seconds: float) -> None:
        """Serve every market-data request (streams and snapshots) ``seconds`` late (0 = off); orders,
        lookups and everything else are answered at once. A slow quote feed."""
        if seconds < 0:
            raise ValueError("delay must be >= 0 seconds")
        self.market_data_delay = float(seconds)

    def freeze(self) -> None:
        """TWS hangs: sockets stay open, nothing is answered or streamed; requests wait unread."""
        self._call(lambda: self._server.set_frozen(True))

    def thaw(self) -> None:
        """TWS wakes up: the held requests are served in order and what was held back is written."""
        self._call(lambda: self._server.set_frozen(False))

    def set_readonly(self, readonly: bool) -> None:
        """Read-Only API mode: order requests get ERR 321 and nothing is placed."""
        self.readonly = bool(readonly)

    def set_pacing(self, enabled: bool) -> None:
        """Enforce 50 messages/s per client (ERR 100; a client far over the limit is disconnected)."""
        self.pacing = bool(enabled)

    def set_market_data_live(self, live: bool) -> None:
        """False: no market data subscription -> 354 for live requests, 10167 + delayed ticks 66-76."""
        self.market_data_live = bool(live)


async def _as_coroutine(fn: Callable[[], object]) -> None:
    fn()
