"""Per-client fairness: how long one client waits for contract details while another client floods.

1. Start ``ibpanel-sim`` in its own process.
2. Client B (ib_async) asks for contract details N times on a quiet exchange: the baseline latency.
3. Client A (a raw socket, no client-side throttle) sends a flood of contract-detail and 1-minute-bar
   requests in one write and reads the answers; meanwhile B asks N times again.
4. Prints B's p50 / max with and without the flood and the ratio, plus how long A's flood took to serve.

    .venv/bin/python bench/sim_fairness.py [--details 600] [--history 150] [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import struct
import subprocess
import sys
import time

from ib_async import IB, Stock
from ibpanel.sim import protocol as P


def start_simulator() -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ibpanel.sim.cli", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    match = re.search(r":(\d+) accounts", proc.stdout.readline())
    if not match:
        proc.kill()
        raise SystemExit("the practice exchange did not start")
    return proc, int(match.group(1))


def _contract(symbol: str) -> list[object]:
    return [0, symbol, "STK", "", "", "", "", "SMART", "", "USD", "", ""]


def flood_bytes(details: int, history: int) -> bytes:
    out = []
    for i in range(details):
        out.append(P.encode([9, 8, 100_000 + i, *_contract("AAPL"), 0, "", "", ""]))
    for i in range(history):
        out.append(P.encode([20, 200_000 + i, *_contract("SPY"), 0, "", "1 min", "2 D", 0, "TRADES", 1, 0, ""]))
    return b"".join(out)


async def flood(port: int, details: int, history: int) -> float:
    """Connect a raw client, send the flood in one write, return the seconds until every answer arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    version = b"v176..176"
    writer.write(b"API\0" + struct.pack(">I", len(version)) + version)
    writer.write(P.encode([71, 2, 55, ""]))
    started = time.perf_counter()
    writer.write(flood_bytes(details, history))
    await writer.drain()
    pending = details + history
    buffer = P.FrameBuffer()
    while pending:
        data = await reader.read(1 << 16)
        if not data:
            break
        for payload in buffer.feed(data):
            msg_id = payload[:payload.index(b"\0")]
            if msg_id in (b"52", b"17"):  # CONTRACT_DATA_END, HISTORICAL_DATA
                pending -= 1
    writer.close()
    return time.perf_counter() - started


async def latencies(ib: IB, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        await ib.reqContractDetailsAsync(Stock("MSFT", "SMART", "USD"))
        out.append(time.perf_counter() - started)
    return out


async def main(args) -> None:
    proc, port = start_simulator()
    try:
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=10)
        quiet = await latencies(ib, args.samples)
        flood_task = asyncio.create_task(flood(port, args.details, args.history))
        await asyncio.sleep(0.2)  # the flood is in the exchange's hands
        loaded = await latencies(ib, args.samples)
        flood_seconds = await flood_task
        ib.disconnect()
    finally:
        proc.kill()
        proc.wait(10)
    ms = 1000.0
    print(f"quiet exchange:   p50 {statistics.median(quiet) * ms:7.1f} ms   max {max(quiet) * ms:7.1f} ms")
    print(f"during the flood: p50 {statistics.median(loaded) * ms:7.1f} ms   max {max(loaded) * ms:7.1f} ms")
    print(f"flood of {args.details} details + {args.history} bar requests served in {flood_seconds:.1f} s")
    print(f"ratio (max during flood / max quiet): {max(loaded) / max(quiet):.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", type=int, default=600)
    parser.add_argument("--history", type=int, default=150)
    parser.add_argument("--samples", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
