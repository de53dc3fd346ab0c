"""The panel's one-shot runs: ``--smoke-test``, ``--screenshot`` (with sample trades under ``--demo``), and
``IBPANEL_EXIT_AFTER_POPULATED=1`` (the Quick start's test).

Each drives a started ``ui.app.PanelApp`` (its window and its ``runtime.session.Session``) the way a
user would: the practice session starts through ``PanelApp.start_practice``, orders go through the broker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibpanel import __version__
from ibpanel.broker.models import ConnectionState, OrderRequest, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from ibpanel.ui.app import PanelApp

log = logging.getLogger("ibpanel.app")

SMOKE_MARKER = "IBPANEL SMOKE OK"
SMOKE_FAILED = "IBPANEL SMOKE FAILED"
POPULATE_TIMEOUT_S = 20.0
#: Environment switch for tests of the Quick start: exit 0 once the window is populated.
EXIT_AFTER_POPULATED = "IBPANEL_EXIT_AFTER_POPULATED"

#: Market buys placed on the practice exchange before a --demo screenshot (symbol, shares: whole HK lots).
SAMPLE_TRADES = (("AAPL", 100), ("MSFT", 60), ("NVDA", 40), ("0700.HK", 300), ("0005.HK", 800), ("1299.HK", 400))
#: Resting limit orders away from the market (symbol, side, shares, price as a fraction of the last trade).
SAMPLE_RESTING = (("AMZN", "BUY", 25, "0.97"), ("0700.HK", "SELL", 100, "1.03"), ("TSLA", "BUY", 10, "0.95"))


async def smoke_test(panel: PanelApp) -> int:
    """``--smoke-test``: every tab built, connected to a private practice exchange, the account tab filled in.

    Prints ``IBPANEL SMOKE OK`` with start timings and exits 0, or one ``IBPANEL SMOKE FAILED`` line and 1.
    """
    try:
        return await _smoke_checks(panel)
    except Exception as exc:  # noqa: BLE001 - CI needs the reason on one line, then exit 1
        log.exception("smoke test failed")
        print(f"{SMOKE_FAILED}: {type(exc).__name__}: {exc}", flush=True)
        return 1


async def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - a tab still filling in may raise; keep waiting
            pass
        await asyncio.sleep(interval)
    return False

async def exit_once_populated(panel: PanelApp) -> int:
    """``IBPANEL_EXIT_AFTER_POPULATED=1``: run normally, exit 0 once the account tab fills in.

    Lets a test run the README's Quick start command (``ibpanel --demo``) exactly as written.
    """
    assert panel.window is not None and panel._quit is not None
    window, broker = panel.window, panel.broker
    assert broker is not None

    def account_tab_populated() -> bool:
        # Asking the tab for itself builds it (tabs off the first screen are built on demand): only once
        # the broker has the account's values, so this check never delays the start it times.
        return broker.account_summary() is not None and window.tabs["account"].populated()

    # checked often: the line's time is what the start benchmark reports
    populated = panel.spawn(wait_until(account_tab_populated, POPULATE_TIMEOUT_S, 0.005))
    quit_wait = asyncio.ensure_future(panel._quit.wait())
    await asyncio.wait({populated, quit_wait}, return_when=asyncio.FIRST_COMPLETED)
    quit_wait.cancel()
    ok = populated.done() and populated.result()
    panel._mark("populated")
    print(f"IBPANEL POPULATED ok={int(bool(ok))} {start_timings(panel)}", flush=True)
    return 0 if ok else 1

async def _smoke_checks(panel: PanelApp) -> int:
    window = panel.window
    assert window is not None and panel.broker is not None
    window.tabs.build_all()  # tabs are built when first needed: the smoke test needs every one
    if window.tab_errors:
        print(f"{SMOKE_FAILED}: tabs not built: {window.tab_errors}", flush=True)
        return 1
    if not await panel.start_practice(from_command_line=True):
        failure = panel.broker.status.failure
        print(f"{SMOKE_FAILED}: could not connect to the practice exchange: {failure}", flush=True)
        return 1
    panel._mark("connected")
    account_tab = window.tabs["account"]
    populated = await wait_until(account_tab.populated, POPULATE_TIMEOUT_S)
    panel._mark("populated")
    if not populated:
        print(f"{SMOKE_FAILED}: the account tab did not fill in within {POPULATE_TIMEOUT_S:.0f} s", flush=True)
        return 1
    status = panel.broker.status
    since_start = seconds_since_process_start()
    fields = {
        "version": __version__,
        "tabs": len(window.tabs),
        "account": status.account,
        "server_version": status.server_version,
        "window_s": f"{panel.timings['window']:.3f}",
        "connected_s": f"{panel.timings['connected']:.3f}",
        "populated_s": f"{panel.timings['populated']:.3f}",
        "process_s": "n/a" if since_start is None else f"{since_start:.3f}",
        "frozen": int(bool(getattr(sys, "frozen", False))),
        "python": sys.version.split()[0],
    }
    print(SMOKE_MARKER + " " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
    return 0

async def screenshot(panel: PanelApp, path: Path) -> int:
    window = panel.window
    assert window is not None
    name = panel.args.tab or window.current_tab_name()
    session_ok = True  # False: a session was asked for and is not there (the picture shows why)
    if panel.args.demo:
        if await panel.start_practice(from_command_line=True):
            await sample_activity(panel)
        else:
            session_ok = False
            print(f"screenshot: could not start the practice session: {panel.broker.status.failure}", file=sys.stderr)
    else:
        session_ok = await _connect_for_screenshot(panel)
    window.show_tab(name)
    tab = window.tabs[name]
    prepare = getattr(tab, "prepare_screenshot", None)  # e.g. the Practice tab closes the sample trades
    if prepare is not None and panel.args.demo and session_ok:
        await prepare()
    populated_fn = getattr(tab, "populated", None)
    # Without a session there is nothing to wait for: the window as it is (first run) is the picture.
    waiting = populated_fn is not None and panel.broker.status.state is not ConnectionState.DISCONNECTED
    populated = await wait_until(populated_fn, POPULATE_TIMEOUT_S) if waiting else session_ok
    if not populated:
        print(f"screenshot: the {name} tab was not populated within {POPULATE_TIMEOUT_S:.0f} s", file=sys.stderr)
    # Let coalesced table flushes and chart redraw timers run once more before grabbing.
    await asyncio.sleep(1.2)
    panel.app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        print(f"screenshot: could not write {path}", file=sys.stderr)
        return 1
    print(f"IBPANEL SCREENSHOT {path} tab={name} populated={int(populated)}", flush=True)
    return 0

async def sample_activity(panel: PanelApp) -> None:
    """Screenshots of a practice session: a few real trades on the practice exchange, so tables show rows.

    Only with ``--demo --screenshot``: market buys (US and HK, whole board lots), one resting
    limit order below the market, and a filled-in ticket. All go through the broker like a click.
    """
    from ibpanel.ui.formatting import snap_price  # screenshots only: not on every start's import path
    from ibpanel.ui.ticket_sizing import sample_bracket

    broker, window = panel.broker, panel.window
    assert broker is not None and window is not None
    account_tab = window.tabs["account"]
    await wait_until(account_tab.populated, POPULATE_TIMEOUT_S)
    for symbol, quantity in SAMPLE_TRADES:
        try:
            await broker.place(OrderRequest(symbol=symbol, side=Side.BUY, quantity=Decimal(quantity), order_type=OrderType.MKT))
        except Exception as exc:  # noqa: BLE001 - a screenshot with fewer rows is still a screenshot
            log.warning("sample trade %s %s not placed: %s", symbol, quantity, exc)
    for symbol, side, quantity, factor in SAMPLE_RESTING:
        try:
            instrument = await broker.resolve(symbol)
            quote = await broker.snapshot(instrument)
            last = quote.last or quote.bid or quote.close
            if not last:
                continue
            price = snap_price(instrument.market, Decimal(str(last)) * Decimal(factor))
            await broker.place(
                OrderRequest(
                    symbol=symbol, side=Side(side), quantity=Decimal(quantity),
                    order_type=OrderType.LMT, limit_price=price, tif=TimeInForce.GTC,
                )
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("sample resting order %s not placed: %s", symbol, exc)
    window.open_ticket(await sample_bracket(broker))  # a bracket: the ticket's attached orders on show
    await wait_until(lambda: len(broker.positions()) >= len(SAMPLE_TRADES), 10.0)


async def _connect_for_screenshot(panel: PanelApp) -> bool:
    """``--screenshot`` with ``--tws-port``: connect and wait for the attempt to end. True when connected.

    Nobody can answer the live-account question in a headless run, so a live port is connected
    only with ``--readonly`` (a picture needs no orders).
    """
    tab = panel.fill_from_command_line()
    if tab is None:
        return True
    if tab.is_live_target() and not tab.readonly_check.isChecked():
        print(f"screenshot: port {tab.port_spin.value()} is a LIVE account port; not connecting without "
              "confirmation. Add --readonly to picture a live session.", file=sys.stderr)
        return False
    if await tab.connect_with():
        return True
    failure = panel.broker.status.failure
    reason = failure.message if failure is not None else "the connection attempt failed"
    print(f"screenshot: could not connect: {reason}", file=sys.stderr)
    return False


def start_timings(panel: PanelApp) -> str:
    """``window_s= practice_s= connected_s= populated_s= process_s=``: seconds from run_gui to each mark, and
    the process's age (interpreter start and imports included); a mark not reached is left out."""
    fields = [f"{name}_s={panel.timings[name]:.3f}" for name in ("window", "practice", "connected", "populated")
              if name in panel.timings]
    since_start = seconds_since_process_start()
    fields.append("process_s=n/a" if since_start is None else f"process_s={since_start:.3f}")
    return " ".join(fields)


def seconds_since_process_start() -> float | None:
    """Seconds since the OS started this process (includes interpreter and import time)."""
    try:  # Linux: 10 ms resolution (psutil's create_time rounds the boot time to whole seconds)
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except Exception:  # noqa: BLE001 - not Linux
        pass
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - psutil is optional (tests, not the bundle)
        return None
