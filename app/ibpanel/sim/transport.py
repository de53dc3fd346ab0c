"""One client socket of the practice exchange: greeting, version negotiation, START_API, framed
requests in, queued replies out (one ``write`` per loop turn).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim import side_requests
from ibpanel.sim.calendars import UTC
from ibpanel.sim.dispatch import QUEUED_CANCELS, QUEUED_REQUESTS, _message_id

if TYPE_CHECKING:
    from ibpanel.sim.handlers.history import _LiveBar
    from ibpanel.sim.handlers.market_data import _Subscription
    from ibpanel.sim.server import SimServer

log = logging.getLogger("ibpanel.sim")


class ClientSession(asyncio.Protocol):
    """One client socket: greeting, version check, START_API, then framed requests."""

    def __init__(self, server: SimServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.phase = "greeting"
        self._greeting = b""
        self._frames = P.FrameBuffer()
        self._out: list[str] = []
        self._flush_scheduled = False
        self.client_id: int | None = None
        self.peer = "?"
        self.closed = False
        self.paused = False
        self.missed: set[int] = set()  # conIds that moved while streaming to this client was paused
        self.market_data_type = 1
        self.subs: dict[int, _Subscription] = {}
        self.account_updates: str | None = None  # account of reqAccountUpdates(True, acct)
        self.multi_subs: dict[int, str] = {}  # reqId -> account ("" = all)
        self.positions_subscribed = False
        self.pnl_subs: dict[int, str] = {}
        self.pnl_single_subs: dict[int, tuple[str, int]] = {}
        self.summary_subs: dict[int, tuple[str, ...]] = {}
        self.message_times: deque[float] = deque()
        self.hist_requests: deque[tuple[float, tuple]] = deque()
        self.live_bars: dict[int, _LiveBar] = {}
        self.display_groups: dict[int, str] = {}
        self.real_time_bars: dict[int, side_requests.RealTimeBar] = {}
        self.tick_by_tick: dict[int, side_requests.TickByTickLine] = {}
        self.queue: deque[bytes] = deque()  # requests waiting for their turn (see SimServer.enqueue)
        self.reading_paused = False
        self.version = P.SERVER_VERSION  # negotiated in the handshake; older clients get older layouts

    # ----- asyncio.Protocol -------------------------------------------------------------------------------
    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.server.sessions.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except Exception:  # a bug on one connection must not take the server down
            log.exception("client %s: unexpected error; closing this connection", self.describe())
            self.close()

    def pause_writing(self) -> None:
        # the client reads slower than quotes arrive: stop streaming to it (TWS conflates the same way)
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.server.refresh_quotes(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.queue.clear()
        self.server.forget(self)

    # ----- output -----------------------------------------------------------------------------------------
    def send(self, message: bytes) -> None:
        """Queue one framed message; the queue is written once per loop turn (or after the reply delay)."""
        if self.closed:
            return
        if self.version < P.SERVER_VERSION:
            message = P.for_version(message, self.version)
        # queued as latin-1 text so the streaming hot path can build messages with plain str concatenation
        self._out.append(message.decode("latin-1"))
        self.schedule_flush()

    def pending(self) -> list[str]:
        """Framed messages not yet written, as latin-1 text (append, then call ``schedule_flush``)."""
        return self._out

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and self._out and not self.closed:
            self._flush_scheduled = True
            delay = self.server.faults.reply_delay
            if delay > 0:
                self.server.loop.call_later(delay, self.flush)
            else:
                self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self.server.faults.frozen:
            return  # a frozen TWS writes nothing; the queue goes out when it thaws
        if self._out and not self.closed and self.transport is not None:
            self.server.sync_state()  # what a reply acknowledges is on disk before the reply leaves
            data = "".join(self._out).encode("latin-1")
            self._out.clear()
            self.transport.write(data)

    def close(self, flush: bool = True) -> None:
        """Close after writing what is queued (``flush``) or at once."""
        if self.closed:
            return
        if flush:
            self.flush()
        self.closed = True
        if self.transport is not None:
            if flush:
                self.transport.close()
            else:
                self.transport.abort()
        self.server.forget(self)

    def describe(self) -> str:
        return f"{self.peer} clientId={self.client_id}" if self.client_id is not None else self.peer

    # ----- input ------------------------------------------------------------------------------------------
    def _receive(self, data: bytes) -> None:
        if self.closed:
            return
        if self.phase == "greeting":
            self._greeting += data
            if len(self._greeting) < len(P.GREETING):
                if not P.GREETING.startswith(self._greeting):
                    self._reject_greeting()
                return
            if not self._greeting.startswith(P.GREETING):
                self._reject_greeting()
                return
            data = self._greeting[len(P.GREETING):]
            self._greeting = b""
            self.phase = "version"
        try:
            payloads = self._frames.feed(data)
        except P.ProtocolError as exc:
            log.warning("client %s: %s; closing", self.describe(), exc)
            self.close()
            return
        for payload in payloads:
            if self.closed:
                return
            if self.phase == "version":
                self._on_version(payload)
            elif (msg_id := _message_id(payload)) in QUEUED_REQUESTS or (self.queue and msg_id in QUEUED_CANCELS):
                # expensive requests keep their order among themselves; orders and quotes do not wait for them
                self.server.enqueue(self, payload)
            else:
                self.server.handle_message(self, payload)

    def _reject_greeting(self) -> None:
        log.warning("client %s did not start with the TWS API greeting 'API\\0'; closing", self.peer)
        self.close()

    def _on_version(self, payload: bytes) -> None:
        text = payload.decode("ascii", "replace").rstrip("\0")
        try:
            low, high, _options = P.parse_version_range(text)
        except P.ProtocolError as exc:
            log.warning("client %s: %s; closing", self.peer, exc)
            self.close()
            return
        version = P.negotiate_version(low, high)
        if version is None:
            log.warning("client %s asks for API versions %d..%d; the practice exchange speaks %d..%d; closing "
                        "(use a client that supports one of those)", self.peer, low, high, P.MIN_SERVER_VERSION,
                        P.SERVER_VERSION)
            self.close()
            return
        if version < P.SERVER_VERSION:
            log.info("client %s speaks API versions up to %d: answering at version %d", self.peer, high, version)
        self.version = version
        self.phase = "started"
        now = datetime.now(UTC)
        # ibapi reads only the first message of this buffer, so the hello goes out alone
        self.send(P.server_hello(now.strftime("%Y%m%d %H:%M:%S") + " UTC", version))
