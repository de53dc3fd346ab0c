"""Tick storm: how much of the practice exchange's quote stream the Quotes tab absorbs, and at what cost.

For each watchlist size (default 100, 500, 1,000 synthetic symbols) and each update rate per symbol
(default 1, 2, 4 per second) it starts the practice exchange in its own process, then runs two
clients against the same stream, one after the other, each in its own process:

- headless: a bare ib_async client on plain asyncio that only counts ticker updates (the ceiling);
- broker:   the real Broker on a qasync (Qt) loop, no widgets (what the broker layer itself costs);
- ui:       the real Broker on a qasync (Qt) loop feeding a shown QuotesTab (table + chart).

Each prints ticks applied per second, event-loop lag (lateness of a 10 ms timer: p50 / p99 / max)
and CPU (% of one core); the table gives the UI / headless tick ratio. The UI run also checks that no
final value was dropped: after the last flush, every row shows the latest quote the broker received.
Finally it times a cold start of ``ibpanel --demo`` to a populated window (``--screenshot``).

Usage: .venv/bin/python bench/ui_tick_storm.py [--sizes 100,500,1000] [--rates 1,2,4] [--seconds 6]
       [--no-cold-start]
Target: 1,000 symbols x 4 updates/s, UI p99 lag < 50 ms, 0 dropped final values.
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
import time
from dataclasses import fields
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))


def _symbols(n: int) -> list[str]:
    return [f"SYM{i:04d}" for i in range(1, n + 1)]


# --- the practice exchange, in its own process -----------------------------------------------------


def run_sim(n: int, interval: float) -> None:
    from ibpanel.sim.server import SimConfig, SimThread

    options = {"host": "127.0.0.1", "port": 0, "seed": 7, "quote_interval": interval, "synthetic_symbols": n}
    names = {f.name for f in fields(SimConfig)}
    # IB allows 100 market-data lines; the storm needs N. Raise the simulator's limit if it has one.
    raised = ""
    for name in ("market_data_lines", "max_market_data_lines", "market_data_line_limit", "max_tickers"):
        if name in names:
            options[name] = n + 100
            raised = name
    if "pacing" in names:
        options["pacing"] = False
    cfg = SimConfig(**options)
    with SimThread(cfg) as sim:
        print(json.dumps({"port": sim.port, "line_limit_field": raised}), flush=True)
        sys.stdin.readline()  # the parent closes stdin to stop us


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
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": ordered[-1],
    }


# --- headless ib_async client (the ceiling) --------------------------------------------------------


async def headless(port: int, n: int, seconds: float) -> dict:
    from ib_async import IB, Stock  # bench only: the ceiling is a bare ib_async client

    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=901, timeout=20)
    contracts = [Stock(s, "SMART", "USD") for s in _symbols(n)]
    qualified = []
    for start in range(0, len(contracts), 50):
        qualified += [c for c in await ib.qualifyContractsAsync(*contracts[start:start + 50]) if c is not None]
    counter = {"ticks": 0}

    def on_pending(tickers) -> None:
        counter["ticks"] += len(tickers)

    ib.pendingTickersEvent += on_pending
    tickers = [ib.reqMktData(contract, "", False, False) for contract in qualified]
    # ib_async paces requests (~45/s): wait until every line streams before measuring, as the UI run does.
    for _ in range(450):  # at most 90 s
        if all(t.last == t.last or t.bid == t.bid for t in tickers):  # NaN != NaN: no data yet
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # warm up
    samples: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.ensure_future(lag_probe(samples, stop))
    ticks0, cpu0, wall0 = counter["ticks"], time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    ticks1, cpu1, wall1 = counter["ticks"], time.process_time(), time.perf_counter()
    stop.set()
    await probe
    ib.disconnect()
    wall = wall1 - wall0
    return {"subscribed": len(qualified), "con_ids": {c.symbol: c.conId for c in qualified},
            "ticks_per_s": (ticks1 - ticks0) / wall,
            "cpu_pct": 100.0 * (cpu1 - cpu0) / wall, **lag_stats(samples)}


# --- the panel: Broker + QuotesTab on qasync ------------------------------------------------------------


def ui(port: int, n: int, seconds: float, con_ids_file: str = "", with_tab: bool = True) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["IBPANEL_HOME"] = tempfile.mkdtemp(prefix="ibpanel-bench-")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        con_ids = json.loads(Path(con_ids_file).read_text(encoding="utf-8")) if con_ids_file else {}
        main = _ui_main if with_tab else _broker_main
        return loop.run_until_complete(main(port, n, seconds, con_ids))


async def _broker_main(port: int, n: int, seconds: float, con_ids: dict[str, int]) -> dict:
    """The Broker on the same qasync loop, no widgets: separates the broker's cost from the tab's."""
    from ibpanel.broker.models import ConnectionParams, Instrument, Market
    from ibpanel.broker.service import Broker

    broker = Broker(journal_path=None)
    await broker.connect(ConnectionParams(host="127.0.0.1", port=port, client_id=903, timeout=20, auto_reconnect=False))
    counter = {"ticks": 0}
    broker.quotes_updated.connect(lambda quotes: counter.__setitem__("ticks", counter["ticks"] + len(quotes)))
    instruments = [Instrument(s, Market.US, "SMART", "USD", con_id=int(c)) for s, c in con_ids.items()]
    for start in range(0, len(instruments), 50):
        await asyncio.gather(*(broker.subscribe(i) for i in instruments[start:start + 50]))
    await asyncio.sleep(1.5)
    samples: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.ensure_future(lag_probe(samples, stop))
    ticks0, cpu0, wall0 = counter["ticks"], time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    ticks1, cpu1, wall1 = counter["ticks"], time.process_time(), time.perf_counter()
    stop.set()
    await probe
    await broker.close()
    wall = wall1 - wall0
    return {"subscribed": len(instruments), "ticks_per_s": (ticks1 - ticks0) / wall,
            "cpu_pct": 100.0 * (cpu1 - cpu0) / wall, **lag_stats(samples)}


async def _ui_main(port: int, n: int, seconds: float, con_ids: dict[str, int]) -> dict:
    from ibpanel.broker.models import ConnectionParams
    from ibpanel.broker.service import Broker
    from ibpanel.ui.quotes_tab import QuotesTab
    from ibpanel.ui.settings import Settings

    broker = Broker(journal_path=None)
    await broker.connect(ConnectionParams(host="127.0.0.1", port=port, client_id=902, timeout=20, auto_reconnect=False))
    settings = Settings("bench")
    settings.set_json("quotes/watchlist", [])
    tab = QuotesTab(broker, settings)
    tab.resize(1280, 900)
    tab.show()
    if con_ids:
        # The broker's symbol parser accepts real ticker shapes only (letters), not the synthetic SYM0001:
        # watch them as already-qualified instruments, with the conIds the headless client looked up.
        from ibpanel.broker.models import Instrument, Market

        await tab.add_instruments([Instrument(s, Market.US, "SMART", "USD", con_id=int(c)) for s, c in con_ids.items()])
    else:
        await tab.set_watchlist(_symbols(n))
    subscribed = len(tab.model)
    await asyncio.sleep(1.5)
    samples: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.ensure_future(lag_probe(samples, stop))
    ticks0, flushes0 = tab.ticks_applied, tab.model.flush_count
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    ticks1, flushes1 = tab.ticks_applied, tab.model.flush_count
    cpu1, wall1 = time.process_time(), time.perf_counter()
    stop.set()
    await probe
    # Final values: after a flush, every row must show the latest quote the broker holds.
    tab.model.flush()
    last_column = next(i for i, c in enumerate(tab.model.columns) if c.key == "last")
    dropped = 0
    for position, key in enumerate(tab.model.keys()):
        row = tab.model.row_for_key(key)
        latest = broker.quote(row.instrument)
        shown = tab.model.data(tab.model.index(position, last_column))
        expected = tab.model.columns[last_column].text(latest) if latest is not None else shown
        if latest is not None and (row.last != latest.last or shown != expected):
            dropped += 1
    tab.shutdown()
    await broker.close()
    wall = wall1 - wall0
    return {"subscribed": subscribed, "ticks_per_s": (ticks1 - ticks0) / wall,
            "cpu_pct": 100.0 * (cpu1 - cpu0) / wall, "flushes_per_s": (flushes1 - flushes0) / wall,
            "dropped_final": dropped, "message": tab.message.text(), **lag_stats(samples)}


# --- orchestration ---------------------------------------------------------------------------------


def _child(role: str, *args: str, timeout: float = 600) -> dict:
    out = subprocess.run([sys.executable, __file__, "--role", role, *args], capture_output=True, text=True, timeout=timeout)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{role} run failed:\n{out.stderr[-2000:]}")


def cold_start() -> float | None:
    """Seconds from launching ``ibpanel --demo`` to a populated window saved as a screenshot."""
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IBPANEL_HOME=home)
        shot = os.path.join(home, "shot.png")
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "ibpanel", "--demo", "--screenshot", shot, "--tab", "quotes"],
                             capture_output=True, text=True, env=env, timeout=120)
        elapsed = time.perf_counter() - start
        if out.returncode != 0 or not os.path.exists(shot):
            print(f"cold start failed (exit {out.returncode}): {out.stderr[-500:]}")
            return None
        return elapsed


def _fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", default="bench", choices=("bench", "sim", "headless", "broker", "ui"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--rates", default="1,2,4", help="updates per second per symbol")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--con-ids", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role == "sim":
        run_sim(args.n, args.interval)
        return 0
    if args.role == "headless":
        print(json.dumps(asyncio.run(headless(args.port, args.n, args.seconds))))
        return 0
    if args.role in ("ui", "broker"):
        print(json.dumps(ui(args.port, args.n, args.seconds, args.con_ids, with_tab=args.role == "ui")))
        return 0

    print(f"{'symbols':>7} {'rate':>4} | {'client':<8} {'subs':>5} {'ticks/s':>9} {'lag p50':>8} {'p99':>7} {'max':>7}"
          f" {'CPU%':>6} {'flush/s':>7} {'dropped':>7} | {'ratio':>5} {'ui/broker':>9}")
    target_ok = None
    for n in (int(s) for s in args.sizes.split(",")):
        for rate in (float(r) for r in args.rates.split(",")):
            sim = subprocess.Popen([sys.executable, __file__, "--role", "sim", "--n", str(n), "--interval", str(1.0 / rate)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                hello = json.loads(sim.stdout.readline())
                port = str(hello["port"])
                common = ["--port", port, "--n", str(n), "--seconds", str(args.seconds)]
                results = {}
                con_ids_file = os.path.join(tempfile.gettempdir(), f"ibpanel-bench-conids-{os.getpid()}.json")
                for role in ("headless", "broker", "ui"):
                    try:
                        extra = ["--con-ids", con_ids_file] if role != "headless" else []
                        results[role] = _child(role, *common, *extra)
                        if role == "headless":
                            with open(con_ids_file, "w", encoding="utf-8") as handle:
                                json.dump(results[role].pop("con_ids"), handle)
                    except Exception as exc:  # noqa: BLE001 - report and carry on with the next size
                        results[role] = {"error": str(exc).splitlines()[-1] if str(exc) else repr(exc)}
            finally:
                sim.stdin.close()
                sim.wait(timeout=30)
            base = results["headless"].get("ticks_per_s")
            for role in ("headless", "broker", "ui"):
                r = results[role]
                if "error" in r:
                    print(f"{n:>7} {rate:>4g} | {role:<8} failed: {r['error']}")
                    continue
                ratio = r["ticks_per_s"] / base if base and role != "headless" else None
                via_broker = results["broker"].get("ticks_per_s")
                if role == "ui" and via_broker:
                    r["vs_broker"] = r["ticks_per_s"] / via_broker
                print(f"{n:>7} {rate:>4g} | {role:<8} {r['subscribed']:>5} {r['ticks_per_s']:>9.0f} {_fmt(r['p50']):>8}"
                      f" {_fmt(r['p99']):>7} {_fmt(r['max']):>7} {r['cpu_pct']:>6.0f} {_fmt(r.get('flushes_per_s')):>7}"
                      f" {r.get('dropped_final', '-')!s:>7} | {_fmt(ratio, '.2f'):>5} {_fmt(r.get('vs_broker'), '.2f'):>9}")
                if r.get("message"):
                    print(f"        ui message: {r['message']}")
            if n == 1000 and rate == 4 and "error" not in results["ui"]:
                r = results["ui"]
                target_ok = r["p99"] is not None and r["p99"] < 50 and r["dropped_final"] == 0
            if not hello.get("line_limit_field") and n > 100:
                print(f"        note: SimConfig has no market-data line limit field; {n} lines were not capped")
    if target_ok is not None:
        print(f"target 1,000 symbols x 4/s: p99 < 50 ms and no dropped final values: {'MET' if target_ok else 'NOT MET'}")
    if not args.no_cold_start:
        seconds = cold_start()
        print(f"cold start, `ibpanel --demo` to a populated window (screenshot written): {_fmt(seconds, '.2f')} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "app"))
    sys.exit(main())
