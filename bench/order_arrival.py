"""Shared by the order benchmarks: when a PLACE_ORDER reaches the practice exchange, and percentiles."""

from __future__ import annotations

import asyncio
import time

from ibpanel.sim.server import SimServer


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


class ArrivalClock:
    """A future per order that resolves (perf_counter) when the exchange counts PLACE_ORDER."""

    def __init__(self, sim: SimServer) -> None:
        self._pending: asyncio.Future[float] | None = None
        count = sim.stats.add

        def add(name: str) -> None:
            count(name)
            if name == "PLACE_ORDER" and self._pending is not None and not self._pending.done():
                self._pending.set_result(time.perf_counter())

        sim.stats.add = add  # type: ignore[method-assign]

    def arm(self) -> asyncio.Future[float]:
        self._pending = asyncio.get_running_loop().create_future()
        return self._pending
