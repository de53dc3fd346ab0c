"""Outgoing pacing with an order lane: orders, modifies and cancels go ahead of market data and lookups.

IB allows about 50 client messages per second. ib_async paces with one first-in-first-out queue, so an
order sent behind a burst of quote and contract requests waits for all of them (80 quotes at 40/s: two
seconds). :class:`OrderFirstPacer` takes over the client's ``sendMsg`` and keeps two lanes within the
same budget (``client.MaxRequests`` per ``client.RequestsInterval`` seconds; 0 switches pacing off):

* the order lane: PLACE_ORDER (new orders and modifies), CANCEL_ORDER, REQ_GLOBAL_CANCEL, the
  connection heartbeat (REQ_CURRENT_TIME: a backlog of quotes must not pass for a frozen TWS) and the
  handshake's START_API (setting up the link is not a data request: the first request after it, the
  account stream, goes at once instead of a data spacing later);
* every other request, sent only when the order lane is empty, within ``MaxRequests - ORDER_RESERVE``
  per window and spread evenly over it: a burst of quotes never fills the window, so an order finds a
  free slot at once (at 4 per 0.1 s: data and lookups get 30 messages/s, orders up to 40).

Within a lane the order of messages is kept. Messages still queued when the socket closes were never
sent: :meth:`drop_queued` hands them back so their orders can be settled as not sent.
"""

from __future__ import annotations

import math
from collections import deque

from ib_async import util
from ib_async.client import Client

#: Message ids that jump the queue (TWS API outgoing ids: 3 place / modify, 4 cancel, 58 global cancel,
#: 49 current time for the heartbeat, 71 start API in the handshake).
ORDER_LANE_IDS = frozenset({"3", "4", "58", "49", "71"})
PLACE_ORDER_ID = "3"
#: Slots of each window only the order lane may use: an order never waits behind data for a slot.
ORDER_RESERVE = 1
# Loop timers may fire a hair early: a slot this close to free counts as free.
_EPSILON = 1e-4


def message_id(msg: str) -> str:
    return msg[:msg.find("\0")] if "\0" in msg else msg


class OrderFirstPacer:
    """Installs itself as ``client.sendMsg``; reads the budget from the client on every send."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._orders: deque[str] = deque()
        self._others: deque[str] = deque()
        self._sent_at: deque[float] = deque()  # loop times of the messages sent in the current window
        self._timer: object | None = None
        self._last_other = float("-inf")  # loop time of the last data / lookup message written
        client.sendMsg = self.send  # type: ignore[method-assign] - the instance attribute shadows the method
        # after the client's own handler (and so after the broker settled the orders): nothing queued for
        # one socket is ever written to the next
        client.conn.disconnected += self._on_socket_closed

    # --- sending --------------------------------------------------------------------------------
    def send(self, msg: str | None) -> None:
        if msg:
            (self._orders if message_id(msg) in ORDER_LANE_IDS else self._others).append(msg)
        self._drain()

    def _drain(self) -> None:
        self._timer = None
        client = self._client
        budget, window = int(client.MaxRequests or 0), float(client.RequestsInterval or 0)
        loop = util.getLoop()
        now = loop.time()
        times = self._sent_at
        while times and now - times[0] >= window - _EPSILON:
            times.popleft()
        while self._orders and (not budget or len(times) < budget):
            self._write(self._orders.popleft(), now, budget)
        data_budget = budget - ORDER_RESERVE if budget > ORDER_RESERVE else budget
        spacing = window / data_budget if budget else 0.0
        while self._others and (not budget or (
                len(times) < data_budget and now - self._last_other >= spacing - _EPSILON)):
            self._write(self._others.popleft(), now, budget)
            self._last_other = now
        if not (self._orders or self._others) or self._timer is not None:
            return
        if self._orders:
            wake = times[0] + window if budget and len(times) >= budget else now
        else:
            wake = max(times[-data_budget] + window if budget and len(times) >= data_budget else now,
                       self._last_other + spacing)
        self._timer = loop.call_at(wake, self._drain)

    def _write(self, msg: str, now: float, budget: int) -> None:
        self._client.conn.sendMsg(self._client._prefix(msg.encode()))
        if budget:
            self._sent_at.append(now)

    # --- state ----------------------------------------------------------------------------------
    def order_wait(self) -> float:
        """Seconds a message entering the order lane now would wait before it is written (an estimate)."""
        budget, window = int(self._client.MaxRequests or 0), float(self._client.RequestsInterval or 0)
        if not budget:
            return 0.0
        now = util.getLoop().time()
        free_now = budget - sum(1 for t in self._sent_at if now - t < window)
        ahead = len(self._orders)
        if ahead < free_now:
            return 0.0
        return math.ceil((ahead - free_now + 1) / budget) * window

    def queued(self) -> int:
        return len(self._orders) + len(self._others)

    def _on_socket_closed(self, msg: str = "") -> None:
        self.drop_queued()

    def drop_queued(self) -> list[str]:
        """Forget every message not yet written (the socket closed, or shutdown) and return the order lane's."""
        dropped = list(self._orders)
        self._orders.clear()
        self._others.clear()
        self._sent_at.clear()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # type: ignore[attr-defined]
        return dropped


def placed_order_id(msg: str) -> int | None:
    """The orderId of a PLACE_ORDER message (its second field), else None."""
    fields = msg.split("\0", 2)
    if len(fields) < 2 or fields[0] != PLACE_ORDER_ID:
        return None
    try:
        return int(fields[1])
    except ValueError:
        return None
