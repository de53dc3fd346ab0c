"""Tick storm: the Quotes tab against a plain per-tick QTableWidget and a headless client, on one exchange.

For each watchlist size it starts the practice exchange (synthetic SYM0001.. stocks, no line limit:
IB's default of 100 lines would cap the storm) in its own process, then runs three clients against
it, one after the other, each in its own process:

- headless: a bare ib_async client on plain asyncio that only counts ticker updates (the ceiling);
- peer:     ib_async on a qasync (Qt) loop writing every ticker's fields into a shown QTableWidget
            on every packet (the shape of ib_async's own Qt ticker-table example; written here);
- panel:    the real Broker on a qasync loop feeding a shown QuotesTab (table + chart of the first row).

Ticks are ticker updates applied (one per symbol per packet that changed it: ib_async's pendingTickers
for the headless and peer clients, quotes written to the Quotes tab's store for the panel); msg/s is the
TICK_PRICE / TICK_SIZE messages decoded. Each client subscribes every symbol, then waits until every line has streamed (it reports how many do)
before anything is measured. The exchange's update rate is then switched (4 / 10 / 25 updates per
second per symbol by default) and each rate is measured for ``--seconds``: ticks applied per second,
event-loop lag (lateness of a 10 ms timer: p50 / p99 / max) and CPU (% of one core, the client process
only). Ratios compare the panel with the peer and the headless client measured in the same run; CPU/tick/peer
compares CPU per ticker update applied, which is the fair figure where the peer falls behind (the exchange
then conflates what it sends the peer, so the peer does less work than the exchange asked of it). The panel
run also checks that no final value was dropped: after the last flush every row shows the broker's latest quote.

Usage: .venv/bin/python bench/ui_tick_storm.py --quick     # 100 and 1,000 symbols x 4 and 25 /s (~3 min)
       .venv/bin/python bench/ui_tick_storm.py --full      # 100, 500, 1,000, 2,000 x 4, 10, 25 /s
       [--sizes 100,1000] [--rates 4,25] [--seconds 5] [--clients headless,peer,panel]
Targets (issue 13): panel CPU <= 1.0x peer at every size; p99 lag <= peer and <= 16 ms at 1,000 x 4/s;
ticks/s >= 1.0x peer at 100 symbols (as printed, to 2 places: when both keep up with the exchange
they differ only by timing noise) and >= 0.95x headless at 1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = ("headless", "peer", "panel")
PEER_FIELDS = ("bidSize", "bid", "ask", "askSize", "last", "lastSize", "close", "volume")


def _con_ids(n: int) -> dict[str, int]:
    from ibpanel.sim.market import SYNTHETIC_CON_ID_BASE

    return {f"SYM{i:04d}": SYNTHETIC_CON_ID_BASE + i for i in range(1, n + 1)}


# --- the practice exchange, in its own process -----------------------------------------------------


def run_sim(n: int) -> None:
    """Serve until stdin closes; ``rate R`` on stdin sets R updates per second per symbol."""
    from ibpanel.sim.server import SimConfig, SimThread

    cfg = SimConfig(host="127.0.0.1", port=0, seed=7, quote_interval=0.25, synthetic_symbols=n,
                    max_market_data_lines=0, pacing=False)  # 0: no line limit (TWS's default is 100)
    with SimThread(cfg) as sim:
        print(json.dumps({"port": sim.port}), flush=True)
        for line in sys.stdin:
            parts = line.split()
            if parts and parts[0] == "rate":
                sim.set_quote_interval(1.0 / float(parts[1]))
                print(json.dumps({"rate": float(parts[1])}), flush=True)


# --- measuring helpers -----------------------------------------------------------------------------


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    """Lateness of a 10 ms timer on this loop, in ms."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(0.010)
        samples.append(max(0.0, (loop.time() - start - 0.010) * 1000.0))


def lag_stats(samples: list[float]) -> dict:
    if not samples:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max": ordered[-1]}


def _stdin_queue() -> asyncio.Queue:
    """Lines from the orchestrator, read on a thread and handed to this loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
        loop.call_soon_threadsafe(queue.put_nowait, "quit")

    threading.Thread(target=read, daemon=True).start()
    return queue


async def _wait_streaming(streaming, n: int, timeout: float) -> tuple[int, float]:
    """Wait until ``streaming()`` (lines that have sent a price) reaches n; returns (count, seconds)."""
    started = time.perf_counter()
    count = streaming()
    while count < n and time.perf_counter() - started < timeout:
        await asyncio.sleep(0.2)
        count = streaming()
    return count, time.perf_counter() - started


async def serve(n: int, count_ticks, streaming, finish=None) -> None:
    """The client side of the protocol: report readiness, then measure whenever asked.

    ``count_ticks()`` -> (tick messages decoded, ticker updates the client applied) so far.
    """
    queue = _stdin_queue()
    count, waited = await _wait_streaming(streaming, n, timeout=60 + n / 20)
    print(json.dumps({"ready": True, "streaming": count, "wait_s": waited, "pid": os.getpid()}), flush=True)
    while True:
        command = (await queue.get()).split()
        if not command or command[0] == "quit":
            break
        seconds = float(command[1])
        await asyncio.sleep(1.0)  # settle at the new rate
        samples: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.ensure_future(lag_probe(samples, stop))
        (ticks0, updates0), cpu0, wall0 = count_ticks(), time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        (ticks1, updates1), cpu1, wall1 = count_ticks(), time.process_time(), time.perf_counter()
        stop.set()
        await probe
        wall = wall1 - wall0
        result = {"ticks_per_s": (updates1 - updates0) / wall, "messages_per_s": (ticks1 - ticks0) / wall, "cpu_pct": 100.0 * (cpu1 - cpu0) / wall,
                  "streaming": streaming(), **lag_stats(samples)}
        if finish is not None:
            result.update(finish())
        print(json.dumps(result), flush=True)


# --- headless ib_async client (the ceiling) --------------------------------------------------------


def count_tick_messages(ib) -> list[int]:
    """Count TICK_PRICE / TICK_SIZE messages as ib_async decodes them: [count], the same hook in every client.

    A client that falls behind gets fewer of them: the exchange then pauses its stream and sends a full quote
    per line when it catches up, so read this beside the ticker updates, not alone.
    """
    counter = [0]
    handlers = ib.client.decoder.handlers
    for msg_id in (1, 2):
        decode = handlers[msg_id]

        def counted(fields, decode=decode) -> None:
            counter[0] += 1
            decode(fields)

        handlers[msg_id] = counted
    return counter


def _ib_client(client_id: int):
    from ib_async import IB  # bench only: the headless ceiling and the peer table are bare ib_async clients

    ib = IB()
    ib.client.MaxRequests = 0  # subscribing is not measured: no client-side throttle (the exchange paces nothing)
    return ib


def _ib_subscribe(ib, n: int) -> list:
    from ib_async import Stock

    return [ib.reqMktData(Stock(symbol, "SMART", "USD", conId=con_id), "", False, False)
            for symbol, con_id in _con_ids(n).items()]


def _has_price(ticker) -> bool:
    return ticker.last == ticker.last or ticker.bid == ticker.bid  # NaN != NaN: nothing yet


async def headless(port: int, n: int) -> None:
    ib = _ib_client(901)
    await ib.connectAsync("127.0.0.1", port, clientId=901, timeout=20)
    ticks = count_tick_messages(ib)
    updates = [0]

    def on_pending(tickers) -> None:
        updates[0] += len(tickers)

    ib.pendingTickersEvent += on_pending
    tickers = _ib_subscribe(ib, n)
    await serve(n, lambda: (ticks[0], updates[0]), lambda: sum(1 for t in tickers if _has_price(t)))
    ib.disconnect()


# --- the peer: ib_async writing a QTableWidget per tick ---------------------------------------------


def _qt_loop():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    return loop


async def peer(port: int, n: int) -> None:
    from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

    ib = _ib_client(904)
    await ib.connectAsync("127.0.0.1", port, clientId=904, timeout=20)
    table = QTableWidget(n, 1 + len(PEER_FIELDS))
    table.setHorizontalHeaderLabels(["symbol", *PEER_FIELDS])
    table.resize(1280, 900)
    table.show()
    ticks = count_tick_messages(ib)
    row_of: dict[int, int] = {}
    for row, (symbol, con_id) in enumerate(_con_ids(n).items()):
        row_of[con_id] = row
        table.setItem(row, 0, QTableWidgetItem(symbol))
    counter = [0]

    def on_pending(tickers) -> None:
        # Per packet, every field of every ticker that changed is written as a new item (then Qt repaints).
        for ticker in tickers:
            row = row_of[ticker.contract.conId]
            for column, name in enumerate(PEER_FIELDS, start=1):
                table.setItem(row, column, QTableWidgetItem(f"{getattr(ticker, name):,}"))
        counter[0] += len(tickers)

    ib.pendingTickersEvent += on_pending
    tickers = _ib_subscribe(ib, n)
    await serve(n, lambda: (ticks[0], counter[0]), lambda: sum(1 for t in tickers if _has_price(t)))
    ib.disconnect()


# --- the panel: Broker + QuotesTab on qasync -------------------------------------------------------


async def panel(port: int, n: int) -> None:
    os.environ["IBPANEL_HOME"] = tempfile.mkdtemp(prefix="ibpanel-bench-")
    from ibpanel.broker.models import ConnectionParams, Instrument, Market
    from ibpanel.broker.service import Broker
    from ibpanel.ui.quotes_tab import QuotesTab
    from ibpanel.ui.settings import Settings

    broker = Broker(journal_path=None)
    await broker.connect(ConnectionParams(host="127.0.0.1", port=port, client_id=902, timeout=20, auto_reconnect=False))
    settings = Settings("bench")
    settings.set_json("quotes/watchlist", [])
    ticks = count_tick_messages(broker._ib)  # bench only: the same decoder hook as the other clients
    tab = QuotesTab(broker, settings)
    tab.resize(1280, 900)
    tab.show()
    # The broker's symbol parser accepts real ticker shapes only (letters), not the synthetic SYM0001:
    # watch them as already-qualified instruments.
    await tab.add_instruments([Instrument(s, Market.US, "SMART", "USD", con_id=c) for s, c in _con_ids(n).items()])
    tab.view.selectRow(0)  # the chart follows the first row, as after loading a watchlist

    def streaming() -> int:
        return sum(1 for q in tab.model.rows() if q.last is not None or q.bid is not None)

    def finish() -> dict:
        """Final values: after a flush, every row must show the latest quote the broker holds."""
        tab.model.flush()
        last_column = next(i for i, c in enumerate(tab.model.columns) if c.key == "last")
        dropped = 0
        for position, key in enumerate(tab.model.keys()):
            row = tab.model.row_for_key(key)
            latest = broker.quote(row.instrument)
            shown = tab.model.data(tab.model.index(position, last_column))
            if latest is not None and (row.last != latest.last or shown != tab.model.columns[last_column].text(latest)):
                dropped += 1
        return {"dropped_final": dropped, "chart_redraws": tab.chart.redraws, "flushes": tab.model.flush_count}

    await serve(n, lambda: (ticks[0], tab.ticks_applied), streaming, finish)
    tab.shutdown()
    await broker.close()


def run_client(role: str, port: int, n: int) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "app"))
    if role == "headless":
        asyncio.run(headless(port, n))
        return
    loop = _qt_loop()
    with loop:
        loop.run_until_complete((peer if role == "peer" else panel)(port, n))


# --- orchestration ---------------------------------------------------------------------------------


class Child:
    """A child process spoken to in lines of JSON."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"child {self.proc.args[2:]} exited ({self.proc.wait()}) without an answer")

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a, b):
    return a / b if a is not None and b else None


def _py_spy(pid: int, seconds: float, out: str) -> subprocess.Popen:
    """Sample one client while it is measured (py-spy must be installed: pip install py-spy)."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return subprocess.Popen([beside if os.path.exists(beside) else "py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds) + 1), "--rate", "200", "--nonblocking",
                             "--format", "raw", "--output", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_size(n: int, rates: list[float], seconds: float, clients: list[str], profile_dir: str = "") -> dict:
    """results[rate][client] for one watchlist size, plus the streaming counts."""
    results: dict = {rate: {} for rate in rates}
    ready: dict = {}
    sim = Child("--role", "sim", "--n", str(n))
    try:
        port = sim.read()["port"]
        for client in clients:
            # Each client subscribes at the first rate measured, not at the rate the previous client ended
            # with: a client that starts under a 25/s storm carries seconds of it in its socket buffers
            # into the next measurement (the exchange conflates only once the kernel's buffers are full).
            sim.send(f"rate {rates[0]:g}")
            sim.read()
            child = Child("--role", client, "--port", str(port), "--n", str(n))
            try:
                ready[client] = child.read()
                for rate in rates:
                    sim.send(f"rate {rate:g}")
                    sim.read()
                    child.send(f"measure {seconds}")
                    spy = (_py_spy(ready[client]["pid"], seconds, os.path.join(profile_dir, f"{client}-{n}x{rate:g}.txt"))
                           if profile_dir else None)
                    results[rate][client] = child.read()
                    if spy is not None:
                        spy.wait()
                child.send("quit")
            except Exception as exc:  # noqa: BLE001 - report and carry on with the next client
                ready.setdefault(client, {"error": str(exc)})
            finally:
                child.close()
    finally:
        sim.close()
    return {"ready": ready, "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", default="bench", choices=("bench", "sim", *CLIENTS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 symbols at 4 and 25 updates/s, 4 s each")
    parser.add_argument("--full", action="store_true", help="100, 500, 1,000, 2,000 symbols at 4, 10, 25 updates/s")
    parser.add_argument("--sizes", default=None)
    parser.add_argument("--rates", default=None, help="updates per second per symbol")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--profile-dir", default="", help="write a py-spy profile (raw) of each measured client here")
    args = parser.parse_args()

    if args.role == "sim":
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "app"))
        run_sim(args.n)
        return 0
    if args.role in CLIENTS:
        run_client(args.role, args.port, args.n)
        return 0

    sizes = args.sizes or ("100,500,1000,2000" if args.full else "100,1000")
    rates = args.rates or ("4,10,25" if args.full else "4,25")
    seconds = args.seconds or (6.0 if args.full else 4.0)
    clients = [c for c in args.clients.split(",") if c in CLIENTS]
    print("absolute figures depend on the machine's load; the ratios compare clients measured in this run")
    print(f"{'symbols':>7} {'rate':>4} | {'client':<8} {'streams':>7} {'ticks/s':>8} {'lag p50':>7} {'p99':>6}"
          f" {'max':>6} {'CPU%':>5} {'msg/s':>6} | {'ticks/peer':>10} {'ticks/hl':>8} {'CPU/peer':>8} {'p99/peer':>8}"
          f" {'CPU/tick/peer':>13}")
    verdicts: list[tuple[str, bool | None]] = []
    for n in (int(s) for s in sizes.split(",")):
        measured = measure_size(n, [float(r) for r in rates.split(",")], seconds, clients, args.profile_dir)
        for client, ready in measured["ready"].items():
            if "error" in ready:
                print(f"{n:>7}      | {client:<8} failed: {ready['error']}")
            elif ready["streaming"] < n:
                print(f"{n:>7}      | {client:<8} only {ready['streaming']} of {n} lines streamed "
                      f"within {ready['wait_s']:.0f} s")
        for rate, by_client in measured["results"].items():
            peer_r, head_r = by_client.get("peer", {}), by_client.get("headless", {})
            for client in clients:
                r = by_client.get(client)
                if r is None:
                    continue
                compare = client == "panel"
                ticks_peer = _ratio(r["ticks_per_s"], peer_r.get("ticks_per_s")) if compare else None
                ticks_head = _ratio(r["ticks_per_s"], head_r.get("ticks_per_s")) if client != "headless" else None
                cpu_peer = _ratio(r["cpu_pct"], peer_r.get("cpu_pct")) if compare else None
                p99_peer = _ratio(r["p99"], peer_r.get("p99")) if compare else None
                # CPU per tick applied: where the peer falls behind, the exchange conflates what it sends
                # the peer, so the peer's CPU alone flatters it
                per_tick = (_ratio(_ratio(r["cpu_pct"], r["ticks_per_s"]), _ratio(peer_r.get("cpu_pct"), peer_r.get("ticks_per_s")))
                            if compare and peer_r else None)
                print(f"{n:>7} {rate:>4g} | {client:<8} {r['streaming']:>7} {r['ticks_per_s']:>8.0f} {_fmt(r['p50']):>7}"
                      f" {_fmt(r['p99']):>6} {_fmt(r['max']):>6} {r['cpu_pct']:>5.0f} {r['messages_per_s']:>6.0f} |"
                      f" {_fmt(ticks_peer, '.2f'):>10}"
                      f" {_fmt(ticks_head, '.2f'):>8} {_fmt(cpu_peer, '.2f'):>8} {_fmt(p99_peer, '.2f'):>8}"
                      f" {_fmt(per_tick, '.2f'):>13}")
                if client == "panel":
                    print(f"{'':>15}   panel: dropped final values {r.get('dropped_final')}, chart redraws"
                          f" {r.get('chart_redraws')}, table flushes {r.get('flushes')} (totals so far)")
            p = by_client.get("panel")
            if p is None:
                continue
            if peer_r:
                verdicts.append((f"{n} x {rate:g}/s: panel CPU <= 1.0x peer ({_fmt(_ratio(p['cpu_pct'], peer_r['cpu_pct']), '.2f')}x)",
                                 p["cpu_pct"] <= peer_r["cpu_pct"]))
            if n == 100 and peer_r:
                verdicts.append((f"{n} x {rate:g}/s: panel ticks/s >= 1.0x peer "
                                 f"({_fmt(_ratio(p['ticks_per_s'], peer_r['ticks_per_s']), '.2f')}x)",
                                 round(_ratio(p["ticks_per_s"], peer_r["ticks_per_s"]) or 0, 2) >= 1.0))
            if n == 1000 and head_r:
                verdicts.append((f"{n} x {rate:g}/s: panel ticks/s >= 0.95x headless "
                                 f"({_fmt(_ratio(p['ticks_per_s'], head_r['ticks_per_s']), '.2f')}x)",
                                 p["ticks_per_s"] >= 0.95 * head_r["ticks_per_s"]))
            if n == 1000 and rate == 4 and peer_r:
                verdicts.append((f"{n} x 4/s: panel p99 lag <= peer and <= 16 ms ({_fmt(p['p99'])} vs {_fmt(peer_r['p99'])} ms)",
                                 p["p99"] <= 16 and p["p99"] <= peer_r["p99"]))
            verdicts.append((f"{n} x {rate:g}/s: no dropped final value", p.get("dropped_final") == 0))
    if verdicts:
        print("targets:")
        for text, ok in verdicts:
            print(f"  {'MET    ' if ok else 'NOT MET'} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
