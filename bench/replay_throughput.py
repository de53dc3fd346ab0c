"""Replay throughput: quotes per second the practice exchange replays to one client, beside its live rate.

1. Replay: a recording of N quotes over 10 US stocks, packed so densely that at 60x every quote is due at
   once (the clock is never the limit). A raw socket client subscribes to the 10 and counts the tick
   messages it receives until the last quote has gone out; quotes/s = N / elapsed.
2. Live (baseline, same run): the random walk with a 1 ms quote clock over the same 10 stocks for the
   same client, counting changed quotes for the same number of seconds.
3. ratio = replay quotes/s / live quotes/s.

    .venv/bin/python bench/replay_throughput.py [--quotes 20000] [--seconds 2]
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ibpanel.sim import protocol as P  # noqa: E402
from ibpanel.sim.csv_bars import recorded_from_sim  # noqa: E402
from ibpanel.sim.market import InstrumentBook, MarketRules  # noqa: E402
from ibpanel.sim.recording import RecordedQuote, Recording  # noqa: E402
from ibpanel.sim.replay import ReplaySession  # noqa: E402
from ibpanel.sim.server import SimConfig, SimThread  # noqa: E402
from sim_throughput import count_frames, handshake  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "GOOGL", "META", "JPM", "V", "KO")
_LEN = struct.Struct(">I")


def subscribe(sock: socket.socket, con_ids: list[int]) -> None:
    sock.sendall(b"".join(P.encode(["1", "11", n, con_id, "", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "",
                                    "0", "", "0", "0", ""]) for n, con_id in enumerate(con_ids, 1)))


def drain(sock: socket.socket, buf: bytearray, pos: int, until: float) -> tuple[int, int]:
    frames = 0
    sock.settimeout(0.05)
    while time.perf_counter() < until:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not chunk:
            break
        buf += chunk
        n, pos = count_frames(buf, pos)
        frames += n
    return frames, pos


def recording(quotes: int) -> tuple[Recording, list[int]]:
    book, rules = InstrumentBook.load(), MarketRules.load()
    insts = [book.find(s, exchange="SMART")[0] for s in SYMBOLS]
    start = datetime(2025, 3, 14, 13, 30, tzinfo=timezone.utc)
    rows = []
    for i in range(quotes):
        inst = insts[i % len(insts)]
        step = Decimal(i // len(insts) % 50) / 100
        bid = inst.ref_price.quantize(Decimal("0.01")) + step
        rows.append(RecordedQuote(time=start + timedelta(microseconds=10 * i), con_id=inst.con_id, bid=bid,
                                  ask=bid + Decimal("0.01"), last=bid, bid_size=100 + i % 7 * 100, ask_size=300,
                                  last_size=100, volume=100 * (i // len(insts) + 1)))
    return Recording([recorded_from_sim(i, rules) for i in insts], rows), [i.con_id for i in insts]


def measure_replay(quotes: int) -> tuple[float, int]:
    rec, con_ids = recording(quotes)
    session = ReplaySession(rec, speed=60.0, playing=False)
    with SimThread(SimConfig(quote_interval=0.25, replay=session)) as sim:
        sock = handshake(sim.port, 1)
        subscribe(sock, con_ids)
        buf = bytearray()
        _, pos = drain(sock, buf, 0, time.perf_counter() + 0.5)  # greeting and first snapshots
        feed = sim.server.market.price_source
        started = time.perf_counter()
        session.clock.play()
        frames = 0
        while feed.applied < quotes and time.perf_counter() - started < 120:
            n, pos = drain(sock, buf, pos, time.perf_counter() + 0.05)
            frames += n
        elapsed = time.perf_counter() - started
        n, pos = drain(sock, buf, pos, time.perf_counter() + 0.3)  # the last writes in flight
        sock.close()
        return feed.applied / elapsed, frames + n


def measure_live(seconds: float) -> tuple[float, int]:
    book = InstrumentBook.load()
    con_ids = [book.find(s, exchange="SMART")[0].con_id for s in SYMBOLS]
    with SimThread(SimConfig(quote_interval=0.001)) as sim:
        market = sim.server.market
        changed = [0]
        advance = market.advance

        def counting(ids=None):
            moved = advance(ids)
            changed[0] += sum(1 for c in moved if c in wanted)
            return moved

        wanted = set(con_ids)
        market.advance = counting  # count the quotes that changed for the subscribed stocks
        sock = handshake(sim.port, 1)
        subscribe(sock, con_ids)
        buf = bytearray()
        _, pos = drain(sock, buf, 0, time.perf_counter() + 0.5)
        changed[0] = 0
        started = time.perf_counter()
        frames, pos = drain(sock, buf, pos, started + seconds)
        elapsed = time.perf_counter() - started
        sock.close()
        return changed[0] / elapsed, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    replay_rate, replay_frames = measure_replay(args.quotes)
    live_rate, live_frames = measure_live(args.seconds)
    print(f"replay: {replay_rate:,.0f} quotes/s to one client ({args.quotes:,} quotes, {replay_frames:,} tick "
          f"messages received)")
    print(f"live practice (1 ms quote clock): {live_rate:,.0f} quotes/s to one client ({live_frames:,} tick messages)")
    print(f"ratio replay/live: {replay_rate / live_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
