"""What the broker's safety costs per order: OrderRequest -> PLACE_ORDER received at the exchange.

Path A is ``Broker.place``: parse/resolve (cached), every validation rule (lots, market-rule tick,
fat finger against the streamed last trade, order value, account, read-only), the journal intent
written durably (SQLite WAL, synchronous=FULL) before sending, then ``ib.placeOrder``.
Path B is ib_async called directly on its own connection: build a LimitOrder, ``ib.placeOrder``.
Both talk to the same practice exchange on the same loop, interleaved order by order; the clock
stops when the exchange counts the PLACE_ORDER request (its stats hook is wrapped for this bench).
Orders are resting limit buys 5 % under the bid, cancelled in bulk every 100.

ib_async holds back requests above 45 per second (TWS paces clients at 50/s); this bench sends
hundreds per second, so that throttle is switched off for BOTH connections: the figures are the
cost of our code, not of pacing. ``--paced`` keeps the throttle and sends 40 orders/s per path.

    .venv/bin/python bench/order_latency.py [--orders 1000]
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

from ib_async import IB, LimitOrder, Stock
from ib_async.client import Client
from ib_async.connection import Connection
from ibpanel.broker.models import ConnectionParams, OrderRequest, OrderType, Side
from ibpanel.broker.service import Broker
from ibpanel.sim.server import SimConfig, SimServer
from order_arrival import ArrivalClock, percentile

WARMUP = 20


class WireClock:
    """perf_counter of the last PLACE_ORDER written to a TWS socket (ib_async's Connection.sendMsg).

    With TWS in another process, that is when the order has left us; the exchange-side clock above
    also counts the loop turn until the practice exchange (same loop) reads it.
    """

    def __init__(self) -> None:
        self.written: float | None = None
        send = Connection.sendMsg
        clock = self

        def send_msg(conn: Connection, msg: bytes) -> None:
            send(conn, msg)
            if msg[4:6] == b"3\0":  # length prefix, then message id 3 = PLACE_ORDER
                clock.written = time.perf_counter()

        Connection.sendMsg = send_msg  # type: ignore[method-assign]


async def main(orders: int, paced: bool = False) -> None:
    if not paced:
        Client.MaxRequests = 0  # both connections: no 45/s queueing inside ib_async (see the docstring)
    sim = SimServer(SimConfig(host="127.0.0.1", port=0, seed=1, quote_interval=0.5))
    await sim.start()
    clock = ArrivalClock(sim)
    wire = WireClock()
    broker = Broker(Path(tempfile.mkdtemp()) / "journal.sqlite3", max_order_value={"USD": Decimal(10) ** 9})
    direct = IB()
    try:
        await broker.connect(ConnectionParams(port=sim.port, client_id=1, timeout=5.0))
        await direct.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=5)
        instrument = await broker.resolve("AAPL")
        quote = await broker.subscribe(instrument)  # the fat-finger rule reads the streamed last trade
        for _ in range(100):
            if quote.bid is not None:
                break
            await asyncio.sleep(0.05)
            quote = broker.quote(instrument)
        price = (Decimal(repr(quote.bid * 0.95)) / Decimal("0.01")).to_integral_value(ROUND_DOWN) * Decimal("0.01")
        request = OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=price, source="bench")
        [contract] = await direct.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))

        through_broker: list[float] = []
        through_ib: list[float] = []
        wire_broker: list[float] = []
        wire_ib: list[float] = []
        for round_no in range(orders + WARMUP):
            arrived = clock.arm()
            start = time.perf_counter()
            await broker.place(request)
            broker_wire_ms = (wire.written - start) * 1000
            broker_ms = (await arrived - start) * 1000

            arrived = clock.arm()
            start = time.perf_counter()
            direct.placeOrder(contract, LimitOrder("BUY", 1, float(price), account="DU111111"))
            ib_wire_ms = (wire.written - start) * 1000
            ib_ms = (await arrived - start) * 1000
            if paced:
                await asyncio.sleep(0.025)  # 40 orders/s per connection stays under ib_async's 45/s
            if round_no >= WARMUP:
                through_broker.append(broker_ms)
                through_ib.append(ib_ms)
                wire_broker.append(broker_wire_ms)
                wire_ib.append(ib_wire_ms)
            if round_no % 100 == 99:  # keep the book small; let the cancel burst settle outside the clock
                await broker.cancel_all()
                for _ in range(500):
                    if not broker.open_orders():
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)

        # the durable intent write alone (SQLite WAL, synchronous=FULL), on the same disk
        journal_ms: list[float] = []
        for _ in range(min(orders, 300)):
            start = time.perf_counter()
            broker.journal.record_intent(request, instrument, "DU111111")
            journal_ms.append((time.perf_counter() - start) * 1000)

        p50_b, p99_b = statistics.median(through_broker), percentile(through_broker, 99)
        p50_i, p99_i = statistics.median(through_ib), percentile(through_ib, 99)
        print(f"orders per path: {len(through_broker)} (interleaved, after {WARMUP} warm-up rounds; "
              f"practice exchange on the same loop; {'paced 40/s' if paced else 'ib_async throttle off'})")
        print(f"Broker.place (validate + journal + send) -> PLACE_ORDER:  p50 {p50_b:7.3f} ms   p99 {p99_b:7.3f} ms")
        print(f"ib_async placeOrder directly             -> PLACE_ORDER:  p50 {p50_i:7.3f} ms   p99 {p99_i:7.3f} ms")
        print(f"ratio broker / direct:                                   p50 {p50_b / p50_i:7.2f} x   "
              f"p99 {p99_b / p99_i:7.2f} x")
        print(f"broker overhead (p50):                                   {p50_b - p50_i:7.3f} ms")
        print(f"  of which the durable journal intent alone:              p50 {statistics.median(journal_ms):7.3f} ms   "
              f"p99 {percentile(journal_ms, 99):7.3f} ms")
        w50_b, w99_b = statistics.median(wire_broker), percentile(wire_broker, 99)
        w50_i, w99_i = statistics.median(wire_ib), percentile(wire_ib, 99)
        print(f"Broker.place -> PLACE_ORDER bytes written to the socket:  p50 {w50_b:7.3f} ms   p99 {w99_b:7.3f} ms")
        print(f"ib_async placeOrder -> bytes written to the socket:       p50 {w50_i:7.3f} ms   p99 {w99_i:7.3f} ms")
        print(f"ratio broker / direct (to the socket):                   p50 {w50_b / w50_i:7.2f} x   "
              f"p99 {w99_b / w99_i:7.2f} x")
    finally:
        direct.disconnect()
        await broker.close()
        await sim.stop()


if __name__ == "__main__":
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # 202 "Order Canceled" x 1000 is not news here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders per path (default 1000)")
    parser.add_argument("--paced", action="store_true", help="keep ib_async's 45/s throttle; send 40 orders/s")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.orders, arguments.paced))
