"""Reading TWS's message stream for one ib_async client: linear framing, a time budget per loop turn.

ib_async's own reader (``Client._onSocketHasData``) handles one socket read in one go, and cuts each
message off the front of its buffer with a slice, so a read of n bytes costs O(n²) in copies. Under a
quote storm a read that arrives while the loop was busy holds thousands of messages, and the whole
window (the GUI shares the loop) freezes while they are decoded: the tick-storm benchmark measured
p99 loop lag in the hundreds of milliseconds for that reason (bench/ui_tick_storm.py).

``StreamReader`` takes over once the handshake is done (the client is "API ready"; before that the
original reader runs, so the handshake logic stays ib_async's):

* framing walks the buffer with an offset and trims it once per turn (linear in the bytes read);
* a turn decodes messages, then hands them on (``tcpDataProcessed``: ib_async's one
  ``pendingTickersEvent`` per slice, which the quote book and the views handle in the same turn); the
  whole turn is held to about ``budget_s``: the share of it decoding may take follows what the hand-off
  cost in recent turns. Then it yields to the loop and carries on in the next turn, so paint events and
  timers run between slices;
* while more than ``max_backlog`` bytes wait, the socket is not read (``pause_reading``), so TCP holds
  the exchange back instead of this process buffering a growing past;
* messages are handled strictly in arrival order; when the socket closes, or the panel hangs up
  itself, every complete message already received is handled first (a fill in the last read is
  never dropped).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Any

log = logging.getLogger(__name__)

#: Time one turn (decoding and handing on) may take before it yields to the loop (a GUI frame is ~16 ms).
DEFAULT_BUDGET_S = 0.002
#: Unhandled bytes at which the socket stops being read until the backlog is handled.
DEFAULT_MAX_BACKLOG = 512 * 1024
_HEADER = struct.Struct(">I")
_CHECK_EVERY = 16  # messages between two looks at the clock


class StreamReader:
    """The message reader of one ``ib_async.Client`` (installed once; follows its reconnects)."""

    def __init__(self, client: Any, *, budget_s: float = DEFAULT_BUDGET_S,
                 max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self.client = client
        self.budget_s = budget_s
        self.max_backlog = max_backlog
        self._buffer = bytearray()
        self._active = False  # True from API-ready until the socket closes
        self._scheduled = False
        self._paused = False
        self._handling = False  # inside _handle: a handler that hangs up must not start a second pass
        self._decode_share = 0.5  # of a turn's time, decoding (the rest: listeners of the hand-off)
        #: Loop turns that handled messages, and turns cut short by the budget (for tests and benches).
        self.turns = 0
        self.yields = 0
        conn = client.conn
        conn.hasData -= client._onSocketHasData
        conn.hasData += self._on_data
        conn.disconnected -= client._onSocketDisconnected
        conn.disconnected += self._on_disconnected
        hang_up = client.disconnect

        def disconnect() -> None:  # our own hang-up: what already arrived is handled before the reset
            self.drain()
            hang_up()

        client.disconnect = disconnect

    # --- input ---------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        client = self.client
        if not self._active:
            client._onSocketHasData(data)  # the handshake: ib_async's own reader
            if client._apiReady and client._serverVersion:
                # Ready: whatever followed the handshake in that read (a partial message) is ours now.
                self._active = True
                self._buffer = bytearray(client._data)
                client._data = b""
                if self._buffer:
                    self._schedule()
            return
        self._buffer += data
        client._numBytesRecv += len(data)
        if len(self._buffer) > self.max_backlog and not self._paused:
            self._pause(True)
        if not self._scheduled:
            self._handle(budget=True)

    def _on_disconnected(self, msg: str) -> None:
        self.drain()  # everything already received, before ib_async resets its state
        self._reset()
        self.client._onSocketDisconnected(msg)

    def drain(self) -> None:
        """Handle every complete message received so far, now (from inside a handler: the pass under way
        stops after that handler, as ib_async's own reader does once its client is reset)."""
        if self._active and self.client._serverVersion and not self._handling:
            self._handle(budget=False)

    # --- the work ------------------------------------------------------------------------
    def _handle(self, *, budget: bool) -> None:
        """Handle complete messages in order, for one turn (``budget``) or all of them."""
        self._scheduled = False
        client = self.client
        buffer = self._buffer
        size = len(buffer)
        if size < 4 or size < 4 + _HEADER.unpack_from(buffer, 0)[0]:
            self._resume_if_drained()
            return
        wrapper = client.wrapper
        interpret = client.decoder.interpret
        debug = client._logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter()
        deadline = started + self.budget_s * self._decode_share if budget else None
        offset = handled = 0
        arrived = getattr(wrapper, "tcpDataArrived", None)
        if arrived is not None:
            arrived()
        cut_short = False
        self._handling = True
        try:
            while size - offset > 4:
                end = offset + 4 + _HEADER.unpack_from(buffer, offset)[0]
                if end > size:
                    break
                fields = buffer[offset + 4:end].decode(errors="backslashreplace").split("\0")
                fields.pop()  # the message ends with a separator
                offset = end
                handled += 1
                if debug:
                    client._logger.debug("<<< %s", ",".join(fields))
                interpret(fields)
                if not client._serverVersion:  # a handler hung up: the client is reset, the rest is moot
                    break
                if deadline is not None and handled % _CHECK_EVERY == 0 and time.perf_counter() >= deadline:
                    cut_short = True
                    break
        finally:
            self._handling = False
            del buffer[:offset]
            client._numMsgRecv += handled
            self.turns += 1
            decoded = time.perf_counter()
            processed = getattr(wrapper, "tcpDataProcessed", None)
            if processed is not None:
                processed()
        if cut_short:
            total = time.perf_counter() - started
            if total > 0:
                share = 0.8 * self._decode_share + 0.2 * (decoded - started) / total
                self._decode_share = min(1.0, max(0.1, share))
        if cut_short and self._active:
            self.yields += 1
            self._schedule()
        else:
            self._resume_if_drained()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._continue)

    def _continue(self) -> None:
        if self._scheduled and self._active:
            self._handle(budget=True)

    def _resume_if_drained(self) -> None:
        if self._paused and len(self._buffer) <= self.max_backlog // 2:
            self._pause(False)

    def _pause(self, paused: bool) -> None:
        transport = self.client.conn.transport
        if transport is None:
            return
        try:
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()
        except (RuntimeError, AttributeError):  # closing already
            return
        self._paused = paused

    def _reset(self) -> None:
        self._active = False
        self._scheduled = False
        self._paused = False
        self._buffer = bytearray()

    @property
    def backlog(self) -> int:
        """Bytes received and not yet handled."""
        return len(self._buffer)
