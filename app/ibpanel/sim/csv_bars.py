"""Import bars from a CSV file into a recording the practice exchange can replay (US and HK stocks).

The CSV format (docs/recording-format.md shows an example):

* a header line naming the columns, in any order, case-insensitive: ``time`` (or ``date``, ``datetime``,
  ``date/time``; or separate ``date`` and ``time`` columns), ``open``, ``high``, ``low``, ``close``,
  ``volume`` and optionally ``symbol`` (else the symbol is given by the caller or is the file's name:
  ``AAPL.csv``, ``0700.HK.csv``);
* times ``YYYY-MM-DD HH:MM[:SS]`` (or ``YYYYMMDD HH:MM:SS``) in the exchange's local time (New York
  for US stocks, Hong Kong for HK stocks) unless they carry an offset (``2025-03-14T09:30:00-04:00``);
  a date alone (``2025-03-14``) is a daily bar;
* one row per bar, oldest first; prices are rounded to the instrument's tick.

Each bar becomes four quotes spread evenly over the bar (daily bars: over the regular session):
open, then low then high for a rising bar (high then low for a falling one), then close. At each
the bid and the last are that price and the ask is one tick above, so a market buy fills one tick
above the path and a market sell on it.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.sim.market import InstrumentBook, MarketRules, SimInstrument
from ibpanel.sim.recording import RecordedBar, RecordedInstrument, RecordedQuote, Recording, RecordingError

UTC = timezone.utc
_TIME_NAMES = ("time", "datetime", "date/time", "date_time", "timestamp")
_REQUIRED = ("open", "high", "low", "close", "volume")
HEADER_HELP = "time,open,high,low,close,volume (optionally symbol)"
_HK_RE = re.compile(r"^(?:HK:)?0*(\d{1,5})(?:\.HK)?$", re.IGNORECASE)
_ZONE = {"US": "US/Eastern", "HK": "Asia/Hong_Kong"}


def session_hours(market: str, day: date) -> tuple[str, str]:
    """(tradingHours, liquidHours) of one weekday in TWS's format; weekends are CLOSED."""
    ds = day.strftime("%Y%m%d")
    if day.weekday() >= 5:
        return f"{ds}:CLOSED", f"{ds}:CLOSED"
    if market == "HK":
        return f"{ds}:0900-{ds}:1200;{ds}:1300-{ds}:1610", f"{ds}:0930-{ds}:1200;{ds}:1300-{ds}:1600"
    return f"{ds}:0400-{ds}:2000", f"{ds}:0930-{ds}:1600"


def _parse_symbol(text: str) -> tuple[str, str]:
    """User text -> (IB symbol, market): bare digits or .HK/HK: forms are Hong Kong, the rest US."""
    text = text.strip().upper()
    hk = _HK_RE.match(text)
    if hk:
        return str(int(hk.group(1))), "HK"
    return text.replace(".", " "), "US"


def instrument_for(symbol: str, book: InstrumentBook, rules: MarketRules) -> RecordedInstrument:
    """The recording's instrument for ``symbol``: the practice exchange's listing when it has one.

    A US stock it does not list gets board lot 1 and the US tick rule; an unlisted HK stock is refused
    (its board lot is not known) with a message that says so.
    """
    ib_symbol, market = _parse_symbol(symbol)
    exchange = "SEHK" if market == "HK" else "SMART"
    found = [i for i in book.find(ib_symbol, exchange=exchange)]
    if found:
        return recorded_from_sim(found[0], rules)
    if market == "HK":
        raise RecordingError(
            f"HK stock {ib_symbol} is not listed on the practice exchange, so its board lot is unknown; "
            "use one of its HK stocks (700, 5, 9988, 1299, ...) or a US stock")
    rule_id = 26
    return RecordedInstrument(
        con_id=900_000_000 + sum(ord(c) * 31 ** i for i, c in enumerate(ib_symbol)) % 9_000_000,
        symbol=ib_symbol, exchange="SMART", primary_exchange="NASDAQ", currency="USD", time_zone="US/Eastern",
        board_lot=1, market_rule_id=rule_id, tick_rows=tuple(rules.rows(rule_id)), long_name=ib_symbol)


def recorded_from_sim(inst: SimInstrument, rules: MarketRules) -> RecordedInstrument:
    return RecordedInstrument(
        con_id=inst.con_id, symbol=inst.symbol, exchange=inst.exchange, primary_exchange=inst.primary_exchange,
        currency=inst.currency, time_zone=inst.time_zone, board_lot=inst.board_lot,
        market_rule_id=inst.market_rule_id, tick_rows=tuple(rules.rows(inst.market_rule_id)),
        long_name=inst.long_name)


def _increment(rows: tuple[tuple[Decimal, Decimal], ...], price: Decimal) -> Decimal:
    inc = rows[0][1]
    for low, row_inc in rows:
        if price >= low:
            inc = row_inc
    return inc


def on_tick(rows: tuple[tuple[Decimal, Decimal], ...], price: Decimal) -> Decimal:
    inc = _increment(rows, price)
    return max((price / inc).to_integral_value(rounding=ROUND_HALF_EVEN) * inc, inc)


def tick_above(rows: tuple[tuple[Decimal, Decimal], ...], price: Decimal) -> Decimal:
    return price + _increment(rows, price)


def _parse_time(text: str, zone: ZoneInfo, where: str) -> tuple[datetime, bool]:
    """(aware UTC time, is_daily)."""
    raw = text.strip()
    for fmt, daily in (("%Y-%m-%d", True), ("%Y%m%d", True), ("%Y/%m/%d", True)):
        try:
            day = datetime.strptime(raw, fmt).date()
            return datetime.combine(day, time(0), zone).astimezone(UTC), daily
        except ValueError:
            pass
    candidates = [raw.replace("Z", "+00:00"), raw.replace("/", "-")]
    for fmt in ("%Y%m%d %H:%M:%S", "%Y%m%d  %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=zone).astimezone(UTC), False
        except ValueError:
            pass
    for candidate in candidates:
        try:
            moment = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC), False
    raise RecordingError(f"{where}: time {text!r} is not a date/time; write 'YYYY-MM-DD HH:MM:SS' in the "
                         f"exchange's local time ({zone.key}), an ISO time with an offset, or 'YYYY-MM-DD'")


def _number(text: str, where: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise RecordingError(f"{where}: {column} {text!r} is not a number; fix that cell") from None
    if not value.is_finite():
        raise RecordingError(f"{where}: {column} {text!r} is not a number; fix that cell")
    return value


def load_csv_bars(path: Path, symbol: str | None = None, book: InstrumentBook | None = None,
                  rules: MarketRules | None = None) -> Recording:
    """Read a CSV of bars into a Recording (quotes along each bar's path, the bars themselves, sessions).

    Raises RecordingError naming the line and what to fix; nothing is returned half-read.
    """
    path = Path(path)
    book = book or InstrumentBook.load()
    rules = rules or MarketRules.load()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot be read as UTF-8 text ({exc}); save it as a UTF-8 CSV") from None
    lines = text.splitlines()
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise RecordingError(f"{path}: the file is empty; the first line must be the header {HEADER_HELP}")
    reader = csv.reader(lines[header_index:])
    header = [h.strip().lower() for h in next(reader)]
    where_header = f"{path}: line {header_index + 1} (header)"
    time_col = next((header.index(n) for n in _TIME_NAMES if n in header), None)
    date_col = header.index("date") if "date" in header else None
    if time_col is None and date_col is None:
        raise RecordingError(f"{where_header}: no time column; the header must be {HEADER_HELP}")
    missing = [n for n in _REQUIRED if n not in header]
    if missing:
        raise RecordingError(f"{where_header}: missing column(s) {', '.join(missing)}; the header must be "
                             f"{HEADER_HELP}")
    symbol_col = header.index("symbol") if "symbol" in header else None
    if symbol_col is None and not symbol:
        symbol = path.name[: -len(".csv")] if path.name.lower().endswith(".csv") else path.stem
    cols = {n: header.index(n) for n in _REQUIRED}
    by_symbol: dict[str, list[tuple[int, datetime, bool, Decimal, Decimal, Decimal, Decimal, int]]] = {}
    instruments: dict[str, RecordedInstrument] = {}
    for offset, row in enumerate(reader):
        line_no = header_index + 2 + offset
        where = f"{path}: line {line_no}"
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise RecordingError(f"{where}: {len(row)} cells but the header has {len(header)}; every row needs "
                                 f"{', '.join(header)}")
        name = row[symbol_col].strip() if symbol_col is not None else symbol
        if not name:
            raise RecordingError(f"{where}: the symbol cell is empty")
        inst = instruments.get(name)
        if inst is None:
            try:
                inst = instruments[name] = instrument_for(name, book, rules)
            except RecordingError as exc:
                raise RecordingError(f"{where}: {exc}") from None
        zone = ZoneInfo(inst.time_zone)
        if date_col is not None and time_col is not None and date_col != time_col:
            stamp = f"{row[date_col].strip()} {row[time_col].strip()}"
        else:
            stamp = row[time_col if time_col is not None else date_col]  # type: ignore[index]
        when, daily = _parse_time(stamp, zone, where)
        o, h, low, c = (_number(row[cols[n]], where, n) for n in ("open", "high", "low", "close"))
        volume_text = row[cols["volume"]].strip() or "0"
        volume = _number(volume_text, where, "volume")
        if volume < 0 or volume != volume.to_integral_value():
            raise RecordingError(f"{where}: volume {volume_text!r} must be a whole number of shares >= 0")
        if min(o, h, low, c) <= 0:
            raise RecordingError(f"{where}: prices must be positive (open {o}, high {h}, low {low}, close {c})")
        if not (low <= min(o, c) and h >= max(o, c)):
            raise RecordingError(f"{where}: low {low} / high {h} do not contain open {o} and close {c}; each row "
                                 "needs low <= open, close <= high")
        rows = by_symbol.setdefault(inst.symbol, [])
        if rows and when <= rows[-1][1]:
            raise RecordingError(f"{where}: time {stamp.strip()!r} is not after line {rows[-1][0]}'s; sort the file "
                                 "oldest first and remove duplicate rows")
        if rows and daily != rows[-1][2]:
            raise RecordingError(f"{where}: mixes daily rows (a date alone) with intraday rows (a date and time)")
        t = inst.tick_rows
        rows.append((line_no, when, daily, on_tick(t, o), on_tick(t, h), on_tick(t, low), on_tick(t, c), int(volume)))
    if not by_symbol:
        raise RecordingError(f"{path}: the header is there but no bar follows it; add rows of {HEADER_HELP}")
    return _to_recording(path, by_symbol, {i.symbol: i for i in instruments.values()})


def _bar_seconds(rows: list) -> int:
    if rows[0][2]:
        return 86400
    gaps = [int((b[1] - a[1]).total_seconds()) for a, b in zip(rows, rows[1:], strict=False)]
    return max(1, min(gaps)) if gaps else 60


def _to_recording(path: Path, by_symbol: dict[str, list], instruments: dict[str, RecordedInstrument]) -> Recording:
    quotes: list[RecordedQuote] = []
    bars: list[RecordedBar] = []
    days: dict[str, set[date]] = {}
    for symbol, rows in by_symbol.items():
        inst = instruments[symbol]
        zone = ZoneInfo(inst.time_zone)
        seconds = _bar_seconds(rows)
        volume_day: date | None = None
        day_volume = 0
        previous_close: Decimal | None = None
        day_open = day_high = day_low = None
        for _line, when, daily, o, h, low, c, volume in rows:
            local_day = when.astimezone(zone).date()
            days.setdefault(symbol, set()).add(local_day)
            if daily:
                session_start = datetime.combine(local_day, time(9, 30), zone).astimezone(UTC)
                span = timedelta(hours=6) if inst.market == "HK" else timedelta(hours=6, minutes=30)
                start, step = session_start, span / 4
            else:
                start, step = when, timedelta(seconds=seconds) / 4
            bars.append(RecordedBar(inst.con_id, seconds, when, o, h, low, c, volume))
            if local_day != volume_day:
                previous_close = quotes[-1].last if quotes and quotes[-1].con_id == inst.con_id else previous_close
                volume_day, day_volume, day_open, day_high, day_low = local_day, 0, o, o, o
            path_prices = (o, low, h, c) if c >= o else (o, h, low, c)
            lot = inst.board_lot
            sizes = [volume // 4 // lot * lot] * 3
            sizes.append(volume - sum(sizes))
            for k, (price, size) in enumerate(zip(path_prices, sizes, strict=False)):
                day_volume += size
                day_high = max(day_high, price)  # type: ignore[type-var]
                day_low = min(day_low, price)  # type: ignore[type-var]
                quotes.append(RecordedQuote(
                    time=start + step * k, con_id=inst.con_id, bid=price, ask=tick_above(inst.tick_rows, price),
                    last=price, bid_size=max(lot, 100 if lot == 1 else lot) * 10,
                    ask_size=max(lot, 100 if lot == 1 else lot) * 10, last_size=size, volume=day_volume,
                    open=day_open, high=day_high, low=day_low, close=previous_close or o))
    with_hours = []
    for symbol, inst in instruments.items():
        hours = [session_hours(inst.market, d) for d in sorted(days.get(symbol, ()))]
        with_hours.append(RecordedInstrument(**{**inst.__dict__, "trading_hours": ";".join(h[0] for h in hours),
                                                "liquid_hours": ";".join(h[1] for h in hours)}))
    quotes.sort(key=lambda q: q.time)
    return Recording(instruments=with_hours, quotes=quotes, bars=bars, meta={"imported_from": path.name})


__all__ = ["HEADER_HELP", "instrument_for", "load_csv_bars", "recorded_from_sim", "session_hours"]
