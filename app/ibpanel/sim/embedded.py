"""The practice exchange on its own thread and loop, for in-process use: sync tests, the panel's demo
mode and benchmarks (``SimThread``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from ibpanel.sim.config import SimConfig
from ibpanel.sim.faults import Faults, Stats

if TYPE_CHECKING:
    from ibpanel.sim.server import SimServer


class SimThread:
    """A SimServer on its own thread and loop: for sync tests, the panel's demo mode and benchmarks.

    ``port``, ``faults`` and ``stats`` are safe to use from any thread. Use as a context manager or call
    ``start()`` / ``stop()``.
    """

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.server: SimServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> SimThread:
        self._thread = threading.Thread(target=self._run, name="ibpanel-sim", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"practice exchange failed to start: {self._error}") from self._error
        if self.server is None:
            raise RuntimeError("practice exchange did not start within 30 s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            from ibpanel.sim.server import SimServer  # here: server.py re-exports this module's SimThread

            server = SimServer(self.config)
            loop.run_until_complete(server.start())
            self.server = server
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop is None or self.server is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop)
        try:
            future.result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def faults(self) -> Faults:
        return self.server.faults

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def set_quote_interval(self, seconds: float) -> None:
        self._loop.call_soon_threadsafe(self.server.set_quote_interval, seconds)

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop and return its result (for tests that inspect the venue)."""

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)
