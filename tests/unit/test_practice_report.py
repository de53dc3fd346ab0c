"""The practice report's figures on a hand-checked session, and its CSV / HTML exports."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from ibpanel.practice_report import PracticeFill, build_report, sessions, write_csv, write_html

UTC = timezone.utc
T0 = datetime(2025, 3, 14, 13, 30, tzinfo=UTC)


def _fill(minute, symbol, side, qty, price, commission, currency="USD"):
    return PracticeFill(time=T0 + timedelta(minutes=minute), symbol=symbol, currency=currency, side=side,
                        quantity=D(qty), price=D(price), commission=D(commission), exec_id=f"e{minute:03d}")


SESSION = [
    _fill(0, "AAPL", "BUY", 100, "200.00", "1.00"),   # long 100, cost basis 200.01
    _fill(10, "AAPL", "SELL", 100, "201.00", "1.00"),  # +99.00 - 1.00 = +98.00
    _fill(20, "MSFT", "SELL", 10, "400.00", "1.00"),   # short 10, basis 399.90
    _fill(30, "MSFT", "BUY", 10, "405.00", "1.00"),    # -51.00 - 1.00 = -52.00
    _fill(40, "AAPL", "BUY", 50, "202.00", "1.00"),    # still open at the end
    _fill(50, "700", "BUY", 100, "300.00", "20.00", currency="HKD"),
]


def test_round_trips_pnl_and_figures_match_a_hand_count():
    report = build_report(SESSION, marks=[(T0 + timedelta(minutes=60), "AAPL", D("203.00"))],
                          until=T0 + timedelta(minutes=60))
    usd = report.by_currency["USD"]
    assert [(t.symbol, t.direction, t.realized) for t in usd.round_trips] == [
        ("AAPL", "long", D("98.00")), ("MSFT", "short", D("-52.00"))]
    assert usd.realized == D("46.00")
    assert usd.commissions == D("5.00")
    assert usd.unrealized == D("49.00")  # 50 x (203 - 202.02)
    assert usd.win_rate == 0.5
    assert usd.average_win == D("98.00") and usd.average_loss == D("-52.00") and usd.largest_loss == D("-52.00")
    # equity peaks at 98 (AAPL closed), falls to 46 (MSFT covered) and 45 (new AAPL long pays its commission)
    assert [p.equity for p in usd.equity][:6] == [D("-1.00"), D("98.00"), D("97.00"), D("46.00"), D("45.00"),
                                                  D("95.00")]
    assert usd.max_drawdown == D("53.00")
    # in the market 0-10, 20-30 and 40-60 of 60 minutes
    assert abs(usd.exposure - 40 / 60) < 1e-9
    # benchmark: hold 100 AAPL from 200.00 and short 10 MSFT from 400.00 (the first fills); AAPL marked at 203
    assert usd.equity[-1].benchmark == D("300.00") + D("-50.00")
    assert set(report.by_currency) == {"USD", "HKD"}  # currencies are never added up
    assert report.by_currency["HKD"].realized == 0 and report.by_currency["HKD"].open_positions == {"700": D(100)}


def test_a_fill_that_flips_the_position_closes_one_trip_and_opens_the_next():
    fills = [_fill(0, "AAPL", "BUY", 100, "10", "0"), _fill(1, "AAPL", "SELL", 150, "11", "0"),
             _fill(2, "AAPL", "BUY", 50, "9", "0")]
    usd = build_report(fills).by_currency["USD"]
    assert [(t.direction, t.realized) for t in usd.round_trips] == [("long", D("100.00")), ("short", D("100.00"))]
    assert usd.realized == D("200.00")


def test_sessions_are_the_days_with_fills():
    assert sessions(SESSION) == [T0.date()]


def test_csv_and_html_exports_hold_every_trade_and_no_external_asset(tmp_path):
    report = build_report(SESSION)
    rows = list(csv.reader((tmp_path / "r.csv").open() if write_csv(report, tmp_path / "r.csv") else []))
    assert rows[0][0] == "time" and len([r for r in rows[1:] if r and r[0].startswith("2025")]) == len(SESSION)
    assert ["USD", "Realized P&L", "46.00 USD"] in rows
    page = write_html(report, tmp_path / "r.html").read_text()
    assert page.count("<svg") == 2 and "<polyline" in page
    assert "src=" not in page and "href=" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "e040" in page and "46.00 USD" in page


def test_the_report_imports_without_qt():
    import subprocess
    import sys

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('PySide6', 'qasync', 'pyqtgraph', 'shiboken6', 'ib_async'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import ibpanel.practice_report, ibpanel.sim.replay, ibpanel.sim.csv_bars\n"
            "print('OK')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr
