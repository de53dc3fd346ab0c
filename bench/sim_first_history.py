"""The practice exchange's first history request: the cost of loading the exchange sessions.

Each round runs in a fresh Python process (nothing imported yet), the way a client's first request meets it:
1. start the practice exchange on a thread, connect ib_async, and time the first reqHistoricalData of a
   US and an HK stock, then a second (warm) request;
2. baseline, same process kind: the time to import exchange_calendars, which the exchange imported on the
   first history request before the sessions shipped as data (resources/sim/sessions.json).
ratio = baseline / first US request: how much the first request would have waited for the library alone.

    .venv/bin/python bench/sim_first_history.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_FIRST_REQUEST = r"""
import asyncio, json, time
from ib_async import IB, Stock
from ibpanel.sim.server import SimConfig, SimThread

async def main(port):
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=9, timeout=10)
    us, hk = Stock("SPY", "SMART", "USD"), Stock("700", "SEHK", "HKD")
    await ib.qualifyContractsAsync(us, hk)
    times = {}
    for label, contract in (("first_us", us), ("first_hk", hk), ("warm_us", us)):
        started = time.perf_counter()
        bars = await ib.reqHistoricalDataAsync(contract, "", "1 D", "1 hour", "TRADES", False)
        times[label] = time.perf_counter() - started
        assert bars, label
    ib.disconnect()
    return times

config = SimConfig(host="127.0.0.1", port=0, accounts=("DU111111",), seed=1, session_mode="always")
with SimThread(config) as sim:
    print(json.dumps(asyncio.run(main(sim.port))))
"""

_LIBRARY_IMPORT = r"""
import time
started = time.perf_counter()
import exchange_calendars
print(time.perf_counter() - started)
"""


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [json.loads(_run(_FIRST_REQUEST)) for _ in range(args.rounds)]
    baseline = statistics.median(float(_run(_LIBRARY_IMPORT)) for _ in range(args.rounds))
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(f"first US history request: {median['first_us'] * 1000:.0f} ms (median of {args.rounds} fresh processes)")
    print(f"first HK history request: {median['first_hk'] * 1000:.0f} ms")
    print(f"warm US history request:  {median['warm_us'] * 1000:.0f} ms")
    print(f"baseline, importing exchange_calendars (the old first-request path): {baseline * 1000:.0f} ms")
    print(f"ratio baseline / first US request: {baseline / median['first_us']:.1f}")


if __name__ == "__main__":
    main()
