"""The practice report: what a practice session (or several) did, from its fills. Qt-free.

Input: ``PracticeFill`` rows, read from the practice order journal (``fills_from_journal``) or made from the
broker's ``Fill`` models (``fills_from_executions``; these also carry bracket children, which the journal
keeps as leg totals only). Output: a ``PracticeReport`` per currency (USD and HKD are never added up):

* every trade, and round trips: a position opened from flat and closed back to flat;
* realized P&L by average cost, commissions included, booked exactly as the practice exchange books it
  (an opening fill's commission raises the cost basis, a closing fill's is subtracted from its P&L);
* win rate, average win and loss, largest loss over closed round trips;
* an equity curve (realized + unrealized P&L at each known price) beside a benchmark: holding, from its
  first fill, the first fill's quantity of every traded stock; max drawdown of the equity curve;
* exposure: the share of the session's time (first fill to last price) with a position open.

Exports: ``write_csv`` (one row per trade, then the figures) and ``write_html`` (one self-contained file:
inline SVG chart, no external assets).
"""

from __future__ import annotations

import csv
import html
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

UTC = timezone.utc
ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PracticeFill:
    time: datetime
    symbol: str
    currency: str
    side: str  # "BUY" or "SELL"
    quantity: Decimal
    price: Decimal
    commission: Decimal
    exec_id: str = ""
    account: str = ""


@dataclass(frozen=True)
class RoundTrip:
    symbol: str
    currency: str
    direction: str  # "long" or "short"
    opened: datetime
    closed: datetime
    quantity: Decimal  # the largest position held
    entry_price: Decimal  # average price of the opening fills
    exit_price: Decimal  # average price of the closing fills
    realized: Decimal  # after all commissions of the trip
    commissions: Decimal
    fills: int


@dataclass(frozen=True)
class EquityPoint:
    time: datetime
    equity: Decimal  # realized + unrealized P&L since the start, commissions included
    benchmark: Decimal  # P&L of holding the traded stocks from their first fill


@dataclass
class CurrencyReport:
    currency: str
    fills: list[PracticeFill]
    round_trips: list[RoundTrip]
    realized: Decimal
    commissions: Decimal
    unrealized: Decimal
    open_positions: dict[str, Decimal]
    equity: list[EquityPoint]
    exposure: float  # 0..1

    @property
    def wins(self) -> list[RoundTrip]:
        return [t for t in self.round_trips if t.realized > 0]

    @property
    def losses(self) -> list[RoundTrip]:
        return [t for t in self.round_trips if t.realized <= 0]

    @property
    def win_rate(self) -> float | None:
        return len(self.wins) / len(self.round_trips) if self.round_trips else None

    @property
    def average_win(self) -> Decimal | None:
        return _money(sum((t.realized for t in self.wins), ZERO) / len(self.wins)) if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return _money(sum((t.realized for t in self.losses), ZERO) / len(self.losses)) if self.losses else None

    @property
    def largest_loss(self) -> Decimal | None:
        return min((t.realized for t in self.losses), default=None)

    @property
    def max_drawdown(self) -> Decimal:
        """The largest fall of the equity curve from a previous high (a positive number, 0 if none)."""
        peak, worst = ZERO, ZERO
        for point in self.equity:
            peak = max(peak, point.equity)
            worst = max(worst, peak - point.equity)
        return _money(worst)

    def figures(self) -> list[tuple[str, str]]:
        """(label, value) rows for tables and exports."""
        def money(value: Decimal | None) -> str:
            return "-" if value is None else f"{_money(value):,.2f} {self.currency}"

        rate = self.win_rate
        return [
            ("Trades (fills)", str(len(self.fills))),
            ("Round trips", str(len(self.round_trips))),
            ("Realized P&L", money(self.realized)),
            ("Commissions", money(self.commissions)),
            ("Unrealized P&L", money(self.unrealized)),
            ("Win rate", "-" if rate is None else f"{rate:.0%}"),
            ("Average win", money(self.average_win)),
            ("Average loss", money(self.average_loss)),
            ("Largest loss", money(self.largest_loss)),
            ("Max drawdown", money(self.max_drawdown)),
            ("Exposure (time in market)", f"{self.exposure:.0%}"),
            ("Benchmark (hold the traded stocks)", money(self.equity[-1].benchmark if self.equity else None)),
        ]


@dataclass
class PracticeReport:
    title: str
    by_currency: dict[str, CurrencyReport] = field(default_factory=dict)

    @property
    def fills(self) -> list[PracticeFill]:
        return sorted((f for r in self.by_currency.values() for f in r.fills), key=lambda f: (f.time, f.exec_id))


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class _Book:
    """One symbol's position by average cost, exactly as the practice exchange's accounts book it."""

    def __init__(self) -> None:
        self.quantity = ZERO
        self.avg_cost = ZERO

    def apply(self, side: str, qty: Decimal, price: Decimal, commission: Decimal) -> Decimal:
        sign = Decimal(1) if side == "BUY" else Decimal(-1)
        realized = ZERO
        old = self.quantity
        closing = min(abs(old), qty) if old != 0 and (old > 0) != (sign > 0) else ZERO
        opening = qty - closing
        if closing:
            direction = Decimal(1) if old > 0 else Decimal(-1)
            realized = direction * closing * (price - self.avg_cost) - commission * closing / qty
            self.quantity = old - direction * closing
            if self.quantity == 0:
                self.avg_cost = ZERO
        if opening:
            cost = abs(self.quantity) * self.avg_cost + opening * price + sign * commission * opening / qty
            self.quantity += sign * opening
            self.avg_cost = cost / abs(self.quantity)
        return realized


def build_report(fills: Iterable[PracticeFill], marks: Sequence[tuple[datetime, str, Decimal]] = (),
                 title: str = "Practice report", until: datetime | None = None) -> PracticeReport:
    """The report over ``fills``. ``marks`` are (time, symbol, price) observations (e.g. quotes) that price
    open positions between fills; without them the last fill price of each symbol is the mark."""
    ordered = sorted(fills, key=lambda f: (f.time, f.exec_id))
    report = PracticeReport(title=title)
    for currency in sorted({f.currency for f in ordered}):
        mine = [f for f in ordered if f.currency == currency]
        symbols = {f.symbol for f in mine}
        my_marks = sorted((m for m in marks if m[1] in symbols), key=lambda m: m[0])
        report.by_currency[currency] = _currency_report(currency, mine, my_marks, until)
    return report


def _currency_report(currency: str, fills: list[PracticeFill], marks: list[tuple[datetime, str, Decimal]],
                     until: datetime | None) -> CurrencyReport:
    books: dict[str, _Book] = {}
    prices: dict[str, Decimal] = {}
    bench_qty: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (signed quantity, entry price)
    trips: list[RoundTrip] = []
    open_trip: dict[str, dict] = {}
    realized_total = commissions = ZERO
    equity: list[EquityPoint] = []
    in_market_since: datetime | None = None
    in_market = 0.0

    def point(moment: datetime) -> EquityPoint:
        unrealized = sum((b.quantity * (prices[s] - b.avg_cost) for s, b in books.items() if b.quantity), ZERO)
        bench = sum((q * (prices[s] - p) for s, (q, p) in bench_qty.items()), ZERO)
        return EquityPoint(moment, _money(realized_total + unrealized), _money(bench))

    events: list[tuple[datetime, int, object]] = [(f.time, 1, f) for f in fills]
    events += [(m[0], 0, m) for m in marks]
    events.sort(key=lambda e: (e[0], e[1]))
    for moment, kind, item in events:
        if kind == 0:
            _t, symbol, price = item  # type: ignore[misc]
            if symbol in bench_qty or symbol in books:
                prices[symbol] = Decimal(price)
                equity.append(point(moment))
            continue
        fill: PracticeFill = item  # type: ignore[assignment]
        book = books.setdefault(fill.symbol, _Book())
        prices[fill.symbol] = fill.price
        bench_qty.setdefault(fill.symbol, (fill.quantity if fill.side == "BUY" else -fill.quantity, fill.price))
        was_flat_everywhere = all(b.quantity == 0 for b in books.values())
        before = book.quantity
        realized = book.apply(fill.side, fill.quantity, fill.price, fill.commission)
        realized_total += realized
        commissions += fill.commission
        trip = open_trip.get(fill.symbol)
        if trip is None:
            trip = open_trip[fill.symbol] = {"opened": fill.time, "direction": "long" if fill.side == "BUY" else
                                             "short", "max": ZERO, "in": [ZERO, ZERO], "out": [ZERO, ZERO],
                                             "realized": ZERO, "commissions": ZERO, "fills": 0}
        adds = (fill.side == "BUY") == (trip["direction"] == "long")
        side_key = "in" if adds else "out"
        trip[side_key][0] += fill.quantity
        trip[side_key][1] += fill.quantity * fill.price
        trip["realized"] += realized
        trip["commissions"] += fill.commission
        trip["fills"] += 1
        trip["max"] = max(trip["max"], abs(book.quantity), abs(before))
        if book.quantity == 0 or (before != 0 and (before > 0) != (book.quantity > 0)):
            trips.append(RoundTrip(
                symbol=fill.symbol, currency=currency, direction=trip["direction"], opened=trip["opened"],
                closed=fill.time, quantity=trip["max"],
                entry_price=_avg(trip["in"]), exit_price=_avg(trip["out"]), realized=_money(trip["realized"]),
                commissions=_money(trip["commissions"]), fills=trip["fills"]))
            del open_trip[fill.symbol]
            if book.quantity != 0:  # flipped: the rest opens a new trip at this fill
                open_trip[fill.symbol] = {"opened": fill.time, "direction": "long" if book.quantity > 0 else "short",
                                          "max": abs(book.quantity), "in": [abs(book.quantity),
                                                                           abs(book.quantity) * fill.price],
                                          "out": [ZERO, ZERO], "realized": ZERO, "commissions": ZERO, "fills": 1}
        flat_now = all(b.quantity == 0 for b in books.values())
        if was_flat_everywhere and not flat_now:
            in_market_since = fill.time
        elif not was_flat_everywhere and flat_now and in_market_since is not None:
            in_market += (fill.time - in_market_since).total_seconds()
            in_market_since = None
        equity.append(point(fill.time))
    end = until or (events[-1][0] if events else None)
    if in_market_since is not None and end is not None:
        in_market += (end - in_market_since).total_seconds()
    span = (end - fills[0].time).total_seconds() if fills and end else 0.0
    exposure = in_market / span if span > 0 else (1.0 if any(b.quantity for b in books.values()) else 0.0)
    unrealized = sum((b.quantity * (prices[s] - b.avg_cost) for s, b in books.items() if b.quantity), ZERO)
    return CurrencyReport(
        currency=currency, fills=fills, round_trips=trips, realized=_money(realized_total),
        commissions=_money(commissions), unrealized=_money(unrealized),
        open_positions={s: b.quantity for s, b in books.items() if b.quantity}, equity=equity,
        exposure=min(max(exposure, 0.0), 1.0))


def _avg(pair: list[Decimal]) -> Decimal:
    qty, value = pair
    return (value / qty).quantize(Decimal("0.0001")) if qty else ZERO


def sessions(fills: Iterable[PracticeFill]) -> list[date]:
    """The days (UTC) that have fills, oldest first: the report can be made per session or across them."""
    return sorted({f.time.astimezone(UTC).date() for f in fills})


# ----- inputs ---------------------------------------------------------------------------------------------
def fills_from_journal(path: Path) -> list[PracticeFill]:
    """Every fill of the (practice) order journal with its order's symbol, side and commission."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT f.exec_id, f.time, f.quantity, f.price, o.symbol, o.currency, o.side, o.account,"
            " COALESCE(c.commission, 0) FROM fills f JOIN orders o ON o.journal_id = f.journal_id"
            " LEFT JOIN commissions c ON c.exec_id = f.exec_id ORDER BY f.time, f.exec_id").fetchall()
    finally:
        conn.close()
    out = []
    for exec_id, when, qty, price, symbol, currency, side, account, commission in rows:
        moment = datetime.fromisoformat(when)
        out.append(PracticeFill(
            time=moment if moment.tzinfo else moment.replace(tzinfo=UTC), symbol=symbol, currency=currency,
            side="BUY" if side.upper() in ("BUY", "BOT") else "SELL", quantity=Decimal(qty),
            price=Decimal(repr(float(price))), commission=Decimal(repr(float(commission))), exec_id=exec_id,
            account=account or ""))
    return out


def fills_from_executions(fills: Iterable[object]) -> list[PracticeFill]:
    """From the broker's ``Fill`` models (broker/models.py): every execution, bracket children included."""
    out = []
    for f in fills:
        inst = f.instrument  # type: ignore[attr-defined]
        side = getattr(f.side, "value", f.side)  # type: ignore[attr-defined]
        out.append(PracticeFill(
            time=f.time, symbol=inst.display if hasattr(inst, "display") else inst.symbol,  # type: ignore[attr-defined]
            currency=inst.currency, side="BUY" if str(side).upper() in ("BUY", "BOT") else "SELL",
            quantity=Decimal(f.quantity), price=Decimal(repr(float(f.price))),  # type: ignore[attr-defined]
            commission=Decimal(repr(float(f.commission or 0))), exec_id=f.exec_id,  # type: ignore[attr-defined]
            account=f.account))  # type: ignore[attr-defined]
    return out


# ----- exports --------------------------------------------------------------------------------------------
TRADE_COLUMNS = ("time", "account", "symbol", "currency", "side", "quantity", "price", "commission", "exec_id")
TRIP_COLUMNS = ("symbol", "currency", "direction", "opened", "closed", "quantity", "entry_price", "exit_price",
                "realized", "commissions", "fills")


def write_csv(report: PracticeReport, path: Path) -> Path:
    """Trades, round trips and figures in one CSV (sections separated by a blank row)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRADE_COLUMNS)
        for f in report.fills:
            writer.writerow([f.time.isoformat(), f.account, f.symbol, f.currency, f.side, f.quantity, f.price,
                             f.commission, f.exec_id])
        writer.writerow([])
        writer.writerow(TRIP_COLUMNS)
        for rep in report.by_currency.values():
            for t in rep.round_trips:
                writer.writerow([t.symbol, t.currency, t.direction, t.opened.isoformat(), t.closed.isoformat(),
                                 t.quantity, t.entry_price, t.exit_price, t.realized, t.commissions, t.fills])
        writer.writerow([])
        writer.writerow(("currency", "figure", "value"))
        for rep in report.by_currency.values():
            for label, value in rep.figures():
                writer.writerow([rep.currency, label, value])
    return path


def equity_svg(rep: CurrencyReport, width: int = 640, height: int = 220) -> str:
    """The equity curve (blue) and the benchmark (grey) as an inline SVG."""
    points = rep.equity
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    t0 = points[0].time.timestamp()
    span = max(points[-1].time.timestamp() - t0, 1.0)
    values = [float(p.equity) for p in points] + [float(p.benchmark) for p in points] + [0.0]
    low, high = min(values), max(values)
    high = high if high > low else low + 1.0
    pad = 30

    def xy(p: EquityPoint, value: Decimal) -> str:
        x = pad + (p.time.timestamp() - t0) / span * (width - 2 * pad)
        y = height - pad - (float(value) - low) / (high - low) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    zero_y = height - pad - (0.0 - low) / (high - low) * (height - 2 * pad)
    equity = " ".join(xy(p, p.equity) for p in points)
    bench = " ".join(xy(p, p.benchmark) for p in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="equity curve {html.escape(rep.currency)}">'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<line x1="{pad}" y1="{zero_y:.1f}" x2="{width - pad}" y2="{zero_y:.1f}" stroke="#ccc"/>'
        f'<polyline fill="none" stroke="#999" stroke-dasharray="4 3" stroke-width="1.5" points="{bench}"/>'
        f'<polyline fill="none" stroke="#1f6fd1" stroke-width="2" points="{equity}"/>'
        f'<text x="{pad}" y="16" font-size="12" fill="#1f6fd1">equity ({html.escape(rep.currency)})</text>'
        f'<text x="{pad + 140}" y="16" font-size="12" fill="#777">benchmark: hold the traded stocks</text>'
        f'<text x="2" y="{pad}" font-size="10" fill="#555">{high:,.0f}</text>'
        f'<text x="2" y="{height - pad}" font-size="10" fill="#555">{low:,.0f}</text></svg>')


def write_html(report: PracticeReport, path: Path) -> Path:
    """One self-contained HTML file (inline CSS and SVG; nothing loaded from elsewhere)."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(report.title)}</title><style>"
             "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
             ".loss{color:#b00}.win{color:#070}</style></head><body>", f"<h1>{esc(report.title)}</h1>"]
    if not report.by_currency:
        parts.append("<p>No fills yet: trade on the practice exchange, then make the report again.</p>")
    for rep in report.by_currency.values():
        parts.append(f"<h2>{esc(rep.currency)}</h2><table>")
        parts += [f"<tr><th>{esc(label)}</th><td>{esc(value)}</td></tr>" for label, value in rep.figures()]
        parts.append("</table>" + equity_svg(rep))
        parts.append("<h3>Round trips</h3><table><tr>" + "".join(f"<th>{c}</th>" for c in TRIP_COLUMNS) + "</tr>")
        for t in rep.round_trips:
            css = "win" if t.realized > 0 else "loss"
            cells = [t.symbol, t.currency, t.direction, f"{t.opened:%Y-%m-%d %H:%M:%S}", f"{t.closed:%Y-%m-%d %H:%M:%S}",
                     t.quantity, t.entry_price, t.exit_price, t.realized, t.commissions, t.fills]
            parts.append(f"<tr class='{css}'>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
        parts.append("</table><h3>Trades</h3><table><tr>" + "".join(f"<th>{c}</th>" for c in TRADE_COLUMNS) + "</tr>")
        for f in rep.fills:
            cells = [f"{f.time:%Y-%m-%d %H:%M:%S}", f.account, f.symbol, f.currency, f.side, f.quantity, f.price,
                     f.commission, f.exec_id]
            parts.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    Path(path).write_text("".join(parts), encoding="utf-8")
    return Path(path)


__all__ = [
    "CurrencyReport", "EquityPoint", "PracticeFill", "PracticeReport", "RoundTrip", "build_report", "equity_svg",
    "fills_from_executions", "fills_from_journal", "sessions", "write_csv", "write_html",
]
