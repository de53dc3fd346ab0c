"""Market-data throughput: what the practice exchange sustains to one client vs what ib_async can decode.

1. Start ``ibpanel-sim`` in its own process with N synthetic symbols and a fast quote clock.
2. A raw socket client subscribes to all N symbols and counts the messages it receives for a few seconds
   (cheap counting, so the client is not the limit): the simulator's sustained rate.
3. The captured byte stream is replayed into ib_async's own receive path (framing, decoder, wrapper,
   Ticker updates) with the same tickers registered: ib_async's decode rate.
4. ratio = simulator rate / ib_async rate. The simulator must not be the bottleneck: ratio >= 2.

    .venv/bin/python bench/sim_throughput.py [--symbols 1000] [--seconds 2] [--rounds 3] [--quote-interval 0.001]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import time

from ib_async import IB, Contract
from ibpanel.sim import protocol as P
from ibpanel.sim.market import SYNTHETIC_CON_ID_BASE

_LEN = struct.Struct(">I")


def start_simulator(symbols: int, quote_interval: float) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibpanel.sim.cli", "--port", "0", "--synthetic", str(symbols),
         "--quote-interval", str(quote_interval)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r":(\d+) accounts", line)
    if not match:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, int(match.group(1))


def handshake(port: int, client_id: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    version = b"v157..178"
    sock.sendall(b"API\0" + _LEN.pack(len(version)) + version)
    sock.recv(4096)
    sock.sendall(P.encode(["71", "2", str(client_id), ""]))
    return sock


def subscribe_request(req_id: int, con_id: int) -> bytes:
    # REQ_MKT_DATA as ib_async sends it for a conId-only contract on SMART
    return P.encode(["1", "11", req_id, con_id, "", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "", "0", "",
                     "0", "0", ""])


def count_frames(data: bytes | bytearray, start: int) -> tuple[int, int]:
    """Frames complete in data[start:] -> (count, offset after the last complete frame)."""
    count, pos, end = 0, start, len(data)
    while end - pos >= 4:
        (size,) = _LEN.unpack_from(data, pos)
        if end - pos - 4 < size:
            break
        pos += 4 + size
        count += 1
    return count, pos


def measure_simulator(port: int, symbols: int, seconds: float) -> tuple[float, bytes, int]:
    sock = handshake(port, 1)
    sock.sendall(b"".join(subscribe_request(n, SYNTHETIC_CON_ID_BASE + n) for n in range(1, symbols + 1)))
    # let the initial snapshots of every line go by, then measure the steady stream
    buf = bytearray()
    settle_end = time.perf_counter() + 0.5
    while time.perf_counter() < settle_end:
        buf += sock.recv(1 << 20)
    _, pos = count_frames(buf, 0)
    tail = bytes(buf[pos:])
    chunks = [tail]
    recv = sock.recv
    append = chunks.append
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:  # only receive here: the client must not be the limit
        chunk = recv(1 << 22)
        if not chunk:
            break
        append(chunk)
    elapsed = time.perf_counter() - start
    sock.close()
    captured = b"".join(chunks)
    frames, parsed_to = count_frames(captured, 0)  # frames completed inside the window
    return frames / elapsed, captured[:parsed_to], frames


def measure_ib_async(stream: bytes, frames: int, symbols: int) -> float:
    """Feed the captured stream through ib_async's receive path, tickers registered as reqMktData would."""
    ib = IB()
    client = ib.client
    client._serverVersion = P.SERVER_VERSION
    client.decoder.serverVersion = P.SERVER_VERSION
    client._apiReady = True
    client.connState = client.CONNECTED
    for n in range(1, symbols + 1):
        contract = Contract(conId=SYNTHETIC_CON_ID_BASE + n, symbol=f"SYM{n:04d}", secType="STK", exchange="SMART",
                            currency="USD")
        ib.wrapper.startTicker(n, contract, "mktData")
    chunk = 64 * 1024  # asyncio hands sockets over in chunks of this order
    start = time.perf_counter()
    for i in range(0, len(stream), chunk):
        client._onSocketHasData(stream[i:i + chunk])
    elapsed = time.perf_counter() - start
    ticked = sum(1 for t in ib.wrapper.reqId2Ticker.values() if t.bid == t.bid and t.bid > 0)
    if ticked < symbols // 2:
        raise SystemExit(f"replay updated only {ticked} of {symbols} tickers: the stream did not decode")
    return frames / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quote-interval", type=float, default=0.001,
                        help="simulator quote clock; small enough that the simulator, not the clock, is the limit")
    args = parser.parse_args(argv)
    # best of several rounds for both sides: the machine is shared, and the best round is the least disturbed
    sim_rates, ib_rates = [], []
    for round_no in range(args.rounds):
        proc, port = start_simulator(args.symbols, args.quote_interval)
        try:
            sim_rate, stream, frames = measure_simulator(port, args.symbols, args.seconds)
        finally:
            proc.terminate()
            proc.wait(10)
        ib_rate = measure_ib_async(stream, frames, args.symbols)
        sim_rates.append(sim_rate)
        ib_rates.append(ib_rate)
        print(f"round {round_no + 1}: simulator {sim_rate:,.0f} msg/s, ib_async {ib_rate:,.0f} msg/s")
    sim_rate, ib_rate = max(sim_rates), max(ib_rates)
    ratio = sim_rate / ib_rate if ib_rate else float("inf")
    print(f"symbols                     {args.symbols}")
    print(f"quote interval              {args.quote_interval * 1000:.1f} ms")
    print(f"messages per round          {frames} ({len(stream) / 1e6:.1f} MB in {args.seconds:.1f} s, last round)")
    print(f"simulator -> one client     {sim_rate:,.0f} msg/s (best of {args.rounds})")
    print(f"ib_async decode (baseline)  {ib_rate:,.0f} msg/s (best of {args.rounds}, same streams)")
    print(f"ratio simulator / ib_async  {ratio:.2f}  ({'OK' if ratio >= 2 else 'BELOW 2: the simulator is a bottleneck'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
