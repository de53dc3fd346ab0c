"""How much the REST API adds to an order: POST /api/ibkr/order -> PLACE_ORDER at the exchange.

Measured beside the same order sent by calling the broker directly (``broker.place``), in the
same run, against the practice exchange on the same loop; prints p50 / p99 of both and the ratio.
The clock stops when the exchange counts the PLACE_ORDER request (its stats hook is wrapped
for this bench only). Orders are resting limit buys (5 % under the bid), cancelled in bulk.

    .venv/bin/python bench/api_latency.py [--orders 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import aiohttp
from ibpanel.api.server import start_api
from ibpanel.broker.models import ConnectionParams, OrderRequest, OrderStatus, OrderType, Side
from ibpanel.broker.service import Broker
from ibpanel.sim.server import SimConfig, SimServer
from order_arrival import percentile

# ib_async queues requests above ~45 messages/s (TWS allows 50): keep well below it, or the queue is measured.
PACE = 0.05


class PlaceOrderClock:
    """Resolves a future at the moment the exchange counts a PLACE_ORDER request."""

    def __init__(self, sim: SimServer) -> None:
        self.arrived: asyncio.Future[float] | None = None
        original = sim.stats.add

        def add(name: str) -> None:
            original(name)
            if name == "PLACE_ORDER" and self.arrived is not None and not self.arrived.done():
                self.arrived.set_result(time.perf_counter())

        sim.stats.add = add  # type: ignore[method-assign]

    def arm(self) -> asyncio.Future[float]:
        self.arrived = asyncio.get_running_loop().create_future()
        return self.arrived


async def _acknowledged(broker: Broker, order_id: int, timeout: float = 5.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        view = broker.order(order_id)
        if view is not None and view.status not in (OrderStatus.UNCONFIRMED, OrderStatus.PENDING_SUBMIT):
            return
        await asyncio.sleep(0.001)


async def main(orders: int) -> None:
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # 202 "Order Canceled" per bulk cancel is noise here
    sim = SimServer(SimConfig(host="127.0.0.1", port=0, seed=1, quote_interval=1.0))
    await sim.start()
    clock = PlaceOrderClock(sim)
    broker = Broker(Path(tempfile.mkdtemp()) / "journal.sqlite3", max_order_value={"USD": Decimal(10) ** 9})
    await broker.connect(ConnectionParams(port=sim.port, client_id=1, timeout=5.0))
    api = await start_api(broker, port=0)
    session = aiohttp.ClientSession()
    try:
        instrument = await broker.resolve("AAPL")
        quote = await broker.snapshot(instrument)
        price = (Decimal(repr(quote.bid * 0.95)) / Decimal("0.01")).to_integral_value(ROUND_DOWN) * Decimal("0.01")
        request = OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=price, source="bench")
        body = {"symbol": "AAPL", "side": "buy", "quantity": 1, "orderType": "limit", "price": float(price)}
        url = f"{api.url}/api/ibkr/order"

        direct: list[float] = []
        through_api: list[float] = []
        for round_no in range(orders + 20):  # the first 20 of each path warm up caches and are dropped
            arrived = clock.arm()
            start = time.perf_counter()
            view = await broker.place(request)
            direct_ms = (await arrived - start) * 1000
            await _acknowledged(broker, view.order_id)
            await asyncio.sleep(PACE)

            arrived = clock.arm()
            start = time.perf_counter()
            async with session.post(url, json=body) as response:
                api_ms = (await arrived - start) * 1000
                assert response.status == 200, await response.text()
                await response.read()
            await asyncio.sleep(PACE)
            if round_no >= 20:
                direct.append(direct_ms)
                through_api.append(api_ms)
            if round_no % 100 == 99:
                await broker.cancel_all()
                await asyncio.sleep(0.2)

        p50_d, p99_d = statistics.median(direct), percentile(direct, 99)
        p50_a, p99_a = statistics.median(through_api), percentile(through_api, 99)
        print(f"orders per path: {len(direct)} (interleaved; practice exchange on the same loop)")
        print(f"broker.place -> PLACE_ORDER at exchange:   p50 {p50_d:7.3f} ms   p99 {p99_d:7.3f} ms")
        print(f"POST /api/ibkr/order -> PLACE_ORDER:       p50 {p50_a:7.3f} ms   p99 {p99_a:7.3f} ms")
        print(f"ratio API / broker:                        p50 {p50_a / p50_d:7.2f} x   p99 {p99_a / p99_d:7.2f} x")
        print(f"API overhead (p50):                        {p50_a - p50_d:7.3f} ms")
    finally:
        await session.close()
        await api.close()
        await broker.close()
        await sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200, help="orders per path (default 200)")
    asyncio.run(main(parser.parse_args().orders))
