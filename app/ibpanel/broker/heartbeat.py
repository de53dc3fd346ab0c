"""Heartbeat: notice a TWS that keeps its socket open but no longer answers (frozen, or stuck on a dialog).

While TWS is silent for ``interval`` seconds, ask for its current time (REQ_CURRENT_TIME, sent in the
order lane of the pacing so a backlog of quotes never delays it); no answer within ``timeout`` seconds
marks the connection stale. From TWS's last word to "stale" takes at most two intervals plus the
timeout (defaults: 2 + 2 + 3 = 7 s). A stale connection keeps probing; the first answer clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ib_async import IB

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TIMEOUT = 3.0
STALE_MESSAGE = "TWS has stopped answering (no reply to a heartbeat within {timeout:g} s)"
STALE_ADVICE = ("Orders are refused until TWS answers again: check that TWS / IB Gateway is not frozen or "
                "showing a dialog, or reconnect.")


class Heartbeat:
    """``on_stale(reason)`` when a probe goes unanswered, ``on_fresh()`` when TWS answers again."""

    def __init__(self, ib: IB, interval: float, timeout: float, *, is_stale: Callable[[], bool],
                 on_stale: Callable[[str], None], on_fresh: Callable[[], None]) -> None:
        self.ib = ib
        self.interval = interval
        self.timeout = timeout
        self._is_stale = is_stale
        self._on_stale = on_stale
        self._on_fresh = on_fresh
        self._task: asyncio.Task | None = None
        self._last_heard = 0.0  # loop time of the last bytes TWS sent
        ib.client.conn.hasData += self._heard

    def _heard(self, data: bytes = b"") -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to time
            self._last_heard = asyncio.get_running_loop().time()

    def start(self) -> None:
        self.stop()
        self._last_heard = asyncio.get_running_loop().time()
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.ib.isConnected():
            await asyncio.sleep(self.interval)
            if not self._is_stale() and loop.time() - self._last_heard < self.interval:
                continue  # TWS spoke within the interval: it is alive, no probe needed
            try:
                await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), self.timeout)
            except asyncio.TimeoutError:
                if not self._is_stale():
                    log.warning("TWS did not answer a heartbeat within %g s: connection marked stale", self.timeout)
                self._on_stale(STALE_MESSAGE.format(timeout=self.timeout))
                continue
            except Exception:  # noqa: BLE001 - a socket gone is the disconnect handler's business
                log.debug("heartbeat request failed", exc_info=True)
                return
            if self._is_stale():
                log.warning("TWS answers again: connection no longer stale")
                self._on_fresh()
