"""Orders first: request -> PLACE_ORDER at the exchange while 80 market-data requests wait in the pacing.

The broker paces what it sends at 4 messages per 0.1 s (IB allows 50/s). Orders, modifies and cancels
have their own lane ahead of market data and lookups (``broker/pacing.py``). This bench measures
``Broker.place`` -> PLACE_ORDER counted by the practice exchange (same loop) in three runs:

* quiet: nothing else queued;
* burst: before every order the backlog of queued quote requests is topped up to 80 (fresh instruments,
  so none is answered from a stream), as when a watch list of 80 stocks opens;
* one lane (``--fifo-orders N``, default 5): the same burst with the order lane switched off - the old
  first-in-first-out pacing - to show what the lane saves.

Orders are resting 1-share limit buys 5 % under the market, one every ``--gap`` seconds (default 0.1:
ten orders a second, within the one slot of each 0.1 s window kept for orders; a faster stream of
orders queues behind itself, by design, to stay under IB's message rate, and then measures that cap,
not the lane). The figures are printed with the ratio of the burst p99 to the quiet p99.

    .venv/bin/python bench/order_priority.py [--orders 100] [--fifo-orders 5] [--gap 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from ibpanel.broker import pacing
from ibpanel.broker.models import ConnectionParams, Instrument, Market, OrderRequest, OrderType, Side
from ibpanel.broker.service import Broker
from ibpanel.sim.server import SimConfig, SimServer
from order_arrival import ArrivalClock, percentile

BURST = 80


class QuoteBurst:
    """Keeps at least BURST market-data requests queued in the broker's pacer, each for a fresh stock."""

    def __init__(self, broker: Broker, sim: SimServer) -> None:
        self._broker = broker
        self._fresh = iter([Instrument(symbol=i.symbol, market=Market.US, exchange="SMART", currency="USD",
                                       con_id=i.con_id) for i in sim.book.all() if i.symbol.startswith("SYM")])
        self.tasks: list[asyncio.Future] = []

    def top_up(self) -> None:
        queued = self._broker._pacer.queued()  # the bench may look inside: it measures the pacer
        for _ in range(max(0, BURST - queued)):
            self.tasks.append(asyncio.ensure_future(self._broker.snapshot(next(self._fresh), timeout=60)))

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()


async def measure(broker: Broker, clock: ArrivalClock, request: OrderRequest, orders: int,
                  burst: QuoteBurst | None, gap: float = 0.1) -> list[float]:
    samples = []
    for _ in range(orders):
        if burst is not None:
            burst.top_up()
            await asyncio.sleep(0)  # the quote requests are in the pacer before the order
        arrived = clock.arm()
        start = time.perf_counter()
        await broker.place(request)
        samples.append((await arrived - start) * 1000)
        await asyncio.sleep(max(0.0, gap - (time.perf_counter() - start)))  # the next order one gap later
    return samples


def line(name: str, samples: list[float]) -> str:
    return (f"{name:<42} n={len(samples):4d}  p50 {statistics.median(samples):8.2f} ms   "
            f"p99 {percentile(samples, 99):8.2f} ms   max {max(samples):8.2f} ms")


async def main(orders: int, fifo_orders: int, gap: float) -> None:
    total = (orders + fifo_orders) * BURST + 4 * BURST
    sim = SimServer(SimConfig(host="127.0.0.1", port=0, seed=1, quote_interval=0.5, synthetic_symbols=total))
    await sim.start()
    clock = ArrivalClock(sim)
    broker = Broker(Path(tempfile.mkdtemp()) / "journal.sqlite3", max_order_value={"USD": Decimal(10) ** 9},
                    max_order_wait=60.0)  # the bench measures waiting: no back-pressure refusals
    try:
        await broker.connect(ConnectionParams(port=sim.port, client_id=1, timeout=10.0))
        aapl = await broker.resolve("AAPL")
        await broker.tick_table(aapl)
        quote = await broker.subscribe(aapl)  # the fat-finger rule reads the streamed last trade
        while quote is None or quote.bid is None:
            await asyncio.sleep(0.05)
            quote = broker.quote(aapl)
        price = (Decimal(repr(quote.bid)) * Decimal("0.95")).quantize(Decimal("0.01"))
        request = OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=price, source="bench")

        await measure(broker, clock, request, 10, None)  # warm-up
        quiet = await measure(broker, clock, request, orders, None, gap)
        burst = QuoteBurst(broker, sim)
        loaded = await measure(broker, clock, request, orders, burst, gap)
        await burst.settle()
        fifo: list[float] = []
        if fifo_orders:
            lanes = pacing.ORDER_LANE_IDS
            pacing.ORDER_LANE_IDS = frozenset()  # the old single queue
            try:
                fifo = await measure(broker, clock, request, fifo_orders, burst, gap)
            finally:
                pacing.ORDER_LANE_IDS = lanes
            await burst.settle()
        await broker.cancel_all()

        print(f"request -> PLACE_ORDER at the practice exchange (same loop), pacing {4} msgs / 0.1 s, "
              f"burst = {BURST} queued quote requests, one order every {gap * 1000:.0f} ms")
        print(line("quiet (nothing queued)", quiet))
        print(line(f"during an {BURST}-quote burst (order lane)", loaded))
        if fifo:
            print(line(f"during an {BURST}-quote burst (one lane, before)", fifo))
        ratio = percentile(loaded, 99) / percentile(quiet, 99)
        print(f"ratio burst / quiet: p99 {ratio:.2f} x" + (
            f";  one lane / order lane: p50 {statistics.median(fifo) / statistics.median(loaded):.0f} x" if fifo else ""))
    finally:
        await broker.close()
        await sim.stop()


if __name__ == "__main__":
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100, help="orders per run (default 100)")
    parser.add_argument("--fifo-orders", type=int, default=5, help="orders with the lane off (default 5; 0 skips)")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds from one order to the next (default 0.1)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.orders, arguments.fifo_orders, arguments.gap))
