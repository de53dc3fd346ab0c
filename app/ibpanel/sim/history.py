"""One price path per instrument, from which every historical bar of the practice exchange is a view.

Over 500 lines because generation, session shaping, aggregation and the whatToShow views of one
path belong together.

The path has a 1-minute base resolution. Before the market's anchor (the moment the practice exchange
started, at the instrument's reference price) it is generated: each local calendar day's minutes come from
a seeded random stream of their own (seed, con_id, day), so any day is made without walking the days
between, and the days are chained backwards from the anchor with a weak pull toward the reference price.
From the anchor on, the path is the live tape: the minutes the exchange actually printed (a minute without
a print repeats the last price). The path runs round the clock (prices move overnight and gap at the open),
but bars exist only where the exchange's session is open (calendars.py: holidays, half days, HK lunch).

Every bar size aggregates the same minutes (seconds bars split a minute by a seeded bridge through its
open, high, low and close), so a daily bar is exactly the aggregate of that day's hourly bars, to the tick.
Prices are floored onto the tick once, after aggregation; flooring is monotone, so aggregating floored
bars gives the same figures. whatToShow views: TRADES and BID are the path, ASK one tick above it, MIDPOINT
halfway between, BID_ASK (time-average bid, highest ask, lowest bid, time-average ask).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ibpanel.sim import calendars
from ibpanel.sim.calendars import SessionDay

if TYPE_CHECKING:
    import numpy as np

    from ibpanel.sim.market import SimInstrument, TickGrid

UTC = timezone.utc
MAX_BARS = 100_000  # one request makes at most this many bars (TWS answers 162 for huge requests)
_MAX_DAYS = 366 * 20  # the calendars reach about 20 years back
_PULL_PER_DAY = 0.03  # mean reversion toward the reference price, per day walked back
_OFF_SESSION_FACTOR = 0.25  # the path moves slower overnight and on closed days (a modest gap at the open)
_EXTENDED_FACTOR = 0.5  # US pre-market and after-hours
_WHATS = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST")
_DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}

Bar = tuple[datetime, Decimal, Decimal, Decimal, Decimal, int, Decimal, int]


@dataclass
class _Minutes:
    """Session minutes of one or more days, in time order: epoch minute, session segment, OHLC in float
    price units, volume. Segments keep auctions and the HK lunch halves out of each other's bars."""

    minute: np.ndarray
    segment: np.ndarray
    day: np.ndarray  # local date ordinal
    wall_offset: np.ndarray  # local UTC offset in minutes, to bucket by local clock time
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray

    @classmethod
    def join(cls, parts: list[_Minutes]) -> _Minutes:
        import numpy as np  # imported by the methods that need it: the exchange starts without numpy (~15 MB)
        if not parts:
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
            return cls(empty_i, empty_i, empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, empty_f)
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                     ("minute", "segment", "day", "wall_offset", "o", "h", "low", "c", "v")))

    def __len__(self) -> int:
        return len(self.minute)


class PriceHistory:
    """The price path of one instrument; ``tape`` is the live exchange's minute bars (epoch minute ->
    [open, high, low, close, volume] in integer price units), written by ``PracticeMarket`` and read here."""

    def __init__(self, inst: SimInstrument, grid: TickGrid, seed: int, anchor: datetime, anchor_units: int,
                 tape: dict[int, list[int]], always_open: bool = False):
        self.inst = inst
        self.grid = grid
        self.seed = seed
        self.tz = ZoneInfo(inst.time_zone)
        self.tape = tape
        # "always open" practice: every minute since the start is a trading minute (the live market traded
        # then), so the newest bar is the live market at any hour; the generated past keeps real sessions
        self.always_open = always_open
        self.reset(anchor, anchor_units)
        session_minutes = 330 if inst.market == "HK" else 390
        self.sigma = inst.volatility / math.sqrt(252 * session_minutes)
        self.minute_volume = inst.avg_daily_volume / session_minutes
        self.trade_unit = inst.board_lot

    def reset(self, anchor: datetime, anchor_units: int, close_units: int | None = None) -> None:
        """Anchor the generated past at (anchor, price), passing ``close_units`` (default: the same price)
        at the previous regular close: used at start and after a --state restore."""
        self.anchor_minute = int(anchor.timestamp()) // 60
        self.anchor_units = float(anchor_units)
        self.anchor_level = math.log(max(anchor_units, 1))
        self.pin_level = math.log(max(close_units or anchor_units, 1))
        self._chain: dict[date, tuple[float, float]] = {}  # day -> (level at local midnight, drift)
        self._totals: dict[date, float] = {}  # a day's summed log moves (floats: cheap to keep for 20 years)
        self._raw: OrderedDict[date, tuple] = OrderedDict()
        self._day_cache: OrderedDict[tuple[date, bool], _Minutes] = OrderedDict()
        self._summaries: dict[tuple[date, bool], tuple | None] = {}  # complete days, for daily and longer bars
        self._pin: tuple[int, float] | None = None  # (previous close minute, bridge shift), found on first use

    # ----- the generated days -----------------------------------------------------------------------------
    def _day_span(self, day: date) -> tuple[int, int]:
        """(first epoch minute, number of minutes) of a local calendar day (1380 or 1500 on DST days)."""
        start = datetime.combine(day, time(0), self.tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), self.tz).astimezone(UTC)
        first = int(start.timestamp()) // 60
        return first, int(end.timestamp()) // 60 - first

    def _session(self, day: date) -> SessionDay | None:
        return calendars.session_on(self.inst.market, day)

    def _raw_day(self, day: date) -> tuple:
        """(first minute, n, cumulative log moves, high wicks, low wicks, volume shares) of one day."""
        import numpy as np
        cached = self._raw.get(day)
        if cached is not None:
            self._raw.move_to_end(day)
            return cached
        first, n = self._day_span(day)
        factor = np.full(n, _OFF_SESSION_FACTOR)
        sd = self._session(day)
        if sd is not None:
            open_i, close_i = _index(sd.open, first), _index(sd.close, first)
            if self.inst.market == "US":
                ext_lo = max(open_i - int(calendars.US_EXTENDED_BEFORE.total_seconds() // 60), 0)
                ext_hi = min(close_i + int(calendars.US_EXTENDED_AFTER.total_seconds() // 60), n)
                factor[ext_lo:ext_hi] = _EXTENDED_FACTOR
            factor[open_i:close_i] = 1.0
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.inst.con_id, day.toordinal()])
        scale = factor * self.sigma
        moves = rng.standard_normal(n) * scale
        wicks = np.abs(rng.standard_normal((2, n))) * scale * 0.6
        volume = (0.5 + rng.random(n)) * self.minute_volume * np.where(factor >= 1.0, 1.0, factor * 0.2)
        out = (first, n, np.cumsum(moves), wicks[0], wicks[1], volume)
        self._totals[day] = float(out[2][-1])
        self._raw[day] = out
        if len(self._raw) > 64:
            self._raw.popitem(last=False)
        return out

    def _pin_minute(self) -> int:
        """The moment of the last regular close before the anchor: the path passes the anchor price there
        too, so the previous close a quote shows is the close of the previous daily bar."""
        anchor = datetime.fromtimestamp(self.anchor_minute * 60, UTC)
        day = anchor.astimezone(self.tz).date()
        for back in range(15):
            sd = self._session(day - timedelta(days=back))
            if sd is None:
                continue
            # the day's last price: the regular close (US) or the closing auction's match (HK, 9 minutes on)
            close = sd.close + (calendars.HK_CLOSING_AUCTION + timedelta(minutes=1) if self.inst.market == "HK"
                                else timedelta(0))
            if close <= anchor:
                return int(close.timestamp()) // 60
        return self.anchor_minute

    def _pin_day(self) -> date:
        return datetime.fromtimestamp(self._bridge_pin()[0] * 60, UTC).astimezone(self.tz).date()

    def _bridge_pin(self) -> tuple[int, float]:
        """(pin minute, shift): between the previous close and the anchor the path is bent by a growing
        shift so that it leaves the anchor price at the close and comes back to it at the anchor."""
        if self._pin is None:
            pin = self._pin_minute()
            self._pin = (pin, 0.0)
            if pin < self.anchor_minute:
                anchor_day = datetime.fromtimestamp(self.anchor_minute * 60, UTC).astimezone(self.tz).date()
                first, _n, cum, *_ = self._raw_day(anchor_day)
                k = self.anchor_minute - first
                unbent = self._chain_of(anchor_day)[0] + (float(cum[k - 1]) if k > 0 else 0.0)
                self._pin = (pin, unbent - self.anchor_level)
        return self._pin

    def _bend(self, minutes: np.ndarray) -> np.ndarray:
        """The bridge shift at the ends of these epoch minutes (0 before the pin, all of it at the anchor)."""
        import numpy as np
        pin, shift = self._bridge_pin()
        if not shift or self.anchor_minute <= pin:
            return np.zeros(len(minutes))
        return -shift * np.clip((minutes - pin) / (self.anchor_minute - pin), 0.0, 1.0)

    def _chain_of(self, day: date) -> tuple[float, float]:
        """(log level at the day's local midnight, drift added over the day) for a day up to the anchor's.

        The chain is pinned at the previous close (the anchor price there); days after it up to the anchor's
        follow their own moves, days before it walk back with a weak pull toward the reference price."""
        found = self._chain.get(day)
        if found is not None:
            return found
        pin = self._pin[0] if self._pin is not None else self._pin_minute()
        pin_day = datetime.fromtimestamp(pin * 60 - 1, UTC).astimezone(self.tz).date()
        if pin_day not in self._chain:
            first, _n, cum, *_ = self._raw_day(pin_day)
            k = pin - first
            self._chain[pin_day] = (self.pin_level - (float(cum[k - 1]) if k > 0 else 0.0), 0.0)
        if day > pin_day:  # forward to the anchor's day: each day starts where the one before ended
            d = max(x for x in self._chain if x <= day)
            while d < day:
                total = self._totals.get(d)
                if total is None:
                    total = self._totals[d] = float(self._raw_day(d)[2][-1])
                level = self._chain[d][0] + total
                d += timedelta(days=1)
                self._chain[d] = (level, 0.0)
            return self._chain[day]
        anchor_day = datetime.fromtimestamp(self.anchor_minute * 60, UTC).astimezone(self.tz).date()
        if (anchor_day - day).days > _MAX_DAYS:
            raise ValueError("history reaches back 20 years at most; ask for a later period")
        # walk back from the earliest day already chained at or before the pin
        known = min(d for d in self._chain if d <= pin_day)
        d = known
        level_next = self._chain[known][0]
        while d > day:
            d -= timedelta(days=1)
            total = self._totals.get(d)
            if total is None:
                total = self._totals[d] = float(self._raw_day(d)[2][-1])
            drift = _PULL_PER_DAY * (level_next - self.anchor_level)
            level = level_next - total - drift
            self._chain[d] = (level, drift)
            level_next = level
        return self._chain[day]

    def _generated(self, day: date) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(first minute, open, high, low, close, volume) of every minute of a day, in float price units."""
        import numpy as np
        first, n, cum, wick_hi, wick_lo, volume = self._raw_day(day)
        level, drift = self._chain_of(day)
        close = level + cum + drift * (np.arange(1, n + 1) / n)
        start = level
        pin, _shift = self._bridge_pin()
        if first + n > pin and first < self.anchor_minute:  # between the previous close and the anchor
            close = close + self._bend(np.arange(first + 1, first + n + 1))
            start = level + float(self._bend(np.array([first]))[0])
        open_ = np.concatenate(([start], close[:-1]))
        top = np.maximum(open_, close) + wick_hi
        bottom = np.minimum(open_, close) - wick_lo
        lot = self.trade_unit
        volume = np.floor(volume / lot) * lot
        return first, np.exp(open_), np.exp(top), np.exp(bottom), np.exp(close), volume

    # ----- one day's session minutes -----------------------------------------------------------------------
    def _day_minutes(self, day: date, use_rth: bool, now_minute: int) -> _Minutes:
        """The session minutes of one local day up to (excluding) ``now_minute``, generated or taped."""
        import numpy as np
        sd = self._session(day)
        first, n = self._day_span(day)
        live_from = max(first, self.anchor_minute) if self.always_open else None
        if live_from is not None and (live_from >= now_minute or live_from >= first + n):
            live_from = None
        if sd is None and live_from is None:
            return _Minutes.join([])
        complete = first + n + 15 <= min(now_minute, self.anchor_minute)  # the closing auction is in too
        key = (day, use_rth)
        if complete and key in self._day_cache:
            self._day_cache.move_to_end(key)
            return self._day_cache[key]
        o, h, low, c, v = self._path_of_day(day, first, n, now_minute)
        if sd is None:
            sd = SessionDay(day, datetime.fromtimestamp(live_from * 60, UTC), datetime.fromtimestamp(live_from * 60, UTC))
        open_i, close_i = _index(sd.open, first), _index(sd.close, first)
        # (first index, last index excluded, segment, point value index or -1 for continuous trading)
        pieces: list[tuple[int, int, int, int]] = []
        if self.inst.market == "US":
            if use_rth:
                pieces.append((open_i, close_i, 0, -1))
            else:
                pieces.append((max(open_i - int(calendars.US_EXTENDED_BEFORE.total_seconds() // 60), 0),
                               min(close_i + int(calendars.US_EXTENDED_AFTER.total_seconds() // 60), n), 0, -1))
        else:
            auction = open_i - int(calendars.HK_OPENING_AUCTION.total_seconds() // 60)
            pieces.append((auction, auction + 1, 0, auction))  # pre-opening auction: one price, its own bar
            if sd.break_start is not None and sd.break_end is not None:
                pieces.append((open_i, _index(sd.break_start, first), 1, -1))
                pieces.append((_index(sd.break_end, first), close_i, 2, -1))
            else:
                pieces.append((open_i, close_i, 1, -1))
            matched = close_i + int(calendars.HK_CLOSING_AUCTION.total_seconds() // 60)
            pieces.append((close_i, close_i + 1, 3, matched))  # closing auction, shown at the close time
        if live_from is not None:  # the generated sessions end at the start; the live tape is all in
            pieces = [piece for piece in pieces if first + piece[0] < live_from]
            pieces = [(lo, min(hi, live_from - first), seg, point) for lo, hi, seg, point in pieces]
            pieces.append((live_from - first, n, 1 if self.inst.market == "HK" else 0, -1))
        parts = []
        offset = int(sd.open.astimezone(self.tz).utcoffset().total_seconds() // 60)
        for lo, hi, segment, point in pieces:
            if point >= 0:
                if first + point >= min(now_minute, live_from or now_minute):
                    continue
                price = c[point]
                size = np.sum(v[max(point - 10, 0):point + 1])
                arrays = [np.array([price])] * 4 + [np.array([size])]
            else:
                hi = min(hi, now_minute - first)
                if hi <= lo:
                    continue
                arrays = [o[lo:hi], h[lo:hi], low[lo:hi], c[lo:hi], v[lo:hi]]
            count = len(arrays[0])
            start = lo
            parts.append(_Minutes(
                minute=np.arange(first + start, first + start + count, dtype=np.int64),
                segment=np.full(count, segment, np.int64), day=np.full(count, day.toordinal(), np.int64),
                wall_offset=np.full(count, offset, np.int64), o=arrays[0], h=arrays[1], low=arrays[2],
                c=arrays[3], v=arrays[4]))
        result = _Minutes.join(parts)
        if complete:
            self._day_cache[key] = result
            if len(self._day_cache) > 64:
                self._day_cache.popitem(last=False)
        return result

    def _path_of_day(self, day: date, first: int, n: int, now_minute: int):
        """Every minute of a day: generated before the anchor, the live tape from it on."""
        import numpy as np
        if first + n <= self.anchor_minute:
            _first, o, h, low, c, v = self._generated(day)
            return o, h, low, c, v
        if first < self.anchor_minute:
            _first, o, h, low, c, v = self._generated(day)
            o, h, low, c, v = o.copy(), h.copy(), low.copy(), c.copy(), v.copy()
            start = self.anchor_minute - first
        else:
            o, h, low, c, v = (np.zeros(n) for _ in range(5))
            start = 0
        last = self._last_taped_close(first + start)
        tape = self.tape
        for i in range(start, min(n, now_minute - first + 1)):
            bar = tape.get(first + i)
            if bar is None:
                o[i] = h[i] = low[i] = c[i] = last
                v[i] = 0.0
            else:
                o[i], h[i], low[i], c[i], v[i] = bar
                last = float(bar[3])
        return o, h, low, c, v

    def _last_taped_close(self, minute: int) -> float:
        """The live close before ``minute`` (the anchor price before the first print)."""
        best = -1
        for key in self.tape:  # minutes are taped in time order; the tape holds one entry per active minute
            if key >= minute:
                break
            best = key
        return float(self.tape[best][3]) if best >= 0 else self.anchor_units

    # ----- requests ---------------------------------------------------------------------------------------
    def day_minutes(self, start: datetime | None, end: datetime, now: datetime, use_rth: bool,
                    sessions: int = 0, summarise: bool = False) -> list:
        """Per session day, the minutes in [start, end) (never past ``now``), or of the last ``sessions``.

        With ``summarise`` each day is one summary row for daily and longer bars (finished days cached)."""
        now_minute = int(now.timestamp()) // 60 + 1  # the running minute is in, up to the live last
        until = now_minute if end >= now else min(-(-int(end.timestamp()) // 60), now_minute)
        last_day = datetime.fromtimestamp(until * 60 - 1, UTC).astimezone(self.tz).date()
        parts: list[_Minutes] = []
        if sessions:
            day, found = last_day, 0
            while found < sessions and (last_day - day).days <= _MAX_DAYS:
                m = self._day_or_summary(day, use_rth, until, summarise)
                if m is not None and len(m):
                    parts.append(m)
                    found += 1
                day -= timedelta(days=1)
            parts.reverse()
            return parts
        assert start is not None
        start_minute = int(start.timestamp()) // 60
        day = start.astimezone(self.tz).date()
        if (last_day - day).days > _MAX_DAYS:
            raise ValueError("history reaches back 20 years at most; ask for a shorter duration")
        while day <= last_day:
            if summarise:
                row = self._day_or_summary(day, use_rth, until, True)
                if row is not None:
                    parts.append(row)
            elif calendars.session_on(self.inst.market, day) is not None or self.always_open:
                m = self._day_minutes(day, use_rth, until)
                if len(m) and m.minute[-1] >= start_minute:
                    if m.minute[0] < start_minute:
                        keep = m.minute >= start_minute
                        m = _Minutes(*(getattr(m, f)[keep] for f in ("minute", "segment", "day", "wall_offset",
                                                                       "o", "h", "low", "c", "v")))
                    parts.append(m)
            day += timedelta(days=1)
        return parts

    def _day_or_summary(self, day: date, use_rth: bool, until: int, summarise: bool):
        if not summarise:
            return self._day_minutes(day, use_rth, until)
        if calendars.session_on(self.inst.market, day) is None and not self.always_open:
            return None
        key = (day, use_rth)
        first, n = self._day_span(day)
        complete = first + n + 15 <= min(until, self.anchor_minute)
        if complete and key in self._summaries:
            return self._summaries[key]
        m = self._day_minutes(day, use_rth, until)
        if not len(m):
            return None
        typical = (m.h + m.low + m.c) / 3
        row = (day.toordinal(), float(m.o[0]), float(m.h.max()), float(m.low.min()), float(m.c[-1]),
               float(m.v.sum()), float((typical * m.v).sum()), float(m.c.sum()), len(m))
        if complete:
            self._summaries[key] = row
        return row

    def bars(self, end: datetime, now: datetime, duration: str, bar_seconds: int, what: str,
             use_rth: bool) -> list[Bar]:
        what = (what or "TRADES").strip().upper()
        if what not in _WHATS:
            raise ValueError(f"whatToShow {what!r} is not one of {', '.join(_WHATS)} for a stock")
        count, unit = parse_duration(duration)
        if end > now:
            end = now
        if unit == "D" and bar_seconds < 7 * 86400:
            if bar_seconds < 60 and count * 57600 // bar_seconds > MAX_BARS:
                raise ValueError(f"{count} days of {bar_seconds}-second bars is more than {MAX_BARS} bars; ask for "
                                 "a shorter duration or a larger bar size")
            days = self.day_minutes(None, end, now, use_rth, sessions=count, summarise=bar_seconds >= 86400)
        else:
            span = count * _DURATION_UNITS[unit]
            if bar_seconds < 86400 and min(span, 20 * 366 * 86400) // bar_seconds > MAX_BARS * 3:
                raise ValueError(f"{span // bar_seconds} bars of {bar_seconds} s is more than {MAX_BARS}; ask for a "
                                 "shorter duration or a larger bar size")
            days = self.day_minutes(end - timedelta(seconds=span), end, now, use_rth, summarise=bar_seconds >= 86400)
        if not days:
            return []
        if bar_seconds >= 86400:
            return self._period_bars(days, bar_seconds, what)
        minutes = _Minutes.join(days)
        if bar_seconds < 60:
            if 60 % bar_seconds:
                raise ValueError(f"a bar of {bar_seconds} seconds does not divide a minute; use 1, 5, 10, 15 or 30 secs")
            return self._second_bars(minutes, bar_seconds, what, int(now.timestamp()))
        step = bar_seconds // 60
        keys = minutes.segment * 10_000_000_000 + (minutes.minute + minutes.wall_offset) // step
        return self._aggregate(minutes, keys, what,
                               lambda first: datetime.fromtimestamp(int(minutes.minute[first]) * 60, UTC))

    def _period_bars(self, rows: list[tuple], bar_seconds: int, what: str) -> list[Bar]:
        """Daily, weekly and monthly bars from the day summaries (ordinal, o, h, l, c, v, v*typical, sum c, n)."""
        groups: list[list[tuple]] = []
        last_key = None
        for row in rows:
            d = date.fromordinal(row[0])
            if bar_seconds >= 28 * 86400:
                key = (d.year, d.month)
            elif bar_seconds >= 7 * 86400:
                key = d.isocalendar()[:2]
            else:
                key = d
            if key != last_key:
                groups.append([])
                last_key = key
            groups[-1].append(row)
        out = []
        for g in groups:
            when = datetime.combine(date.fromordinal(g[0][0]), time(0), self.tz).astimezone(UTC)
            out.append(self._bar(when, g[0][1], max(r[2] for r in g), min(r[3] for r in g), g[-1][4],
                                 sum(r[5] for r in g), sum(r[6] for r in g), sum(r[7] for r in g) / sum(r[8] for r in g),
                                 what))
        return out

    def _second_bars(self, minutes: _Minutes, bar_seconds: int, what: str, now_second: int) -> list[Bar]:
        """Split each minute into seconds along a seeded bridge through its open, high, low and close."""
        import numpy as np
        seconds = []
        for i in range(len(minutes)):
            minute = int(minutes.minute[i])
            length = min(60, now_second - minute * 60 + 1)  # the running minute: its seconds so far
            seconds.append(self._bridge(minute, length, minutes.o[i], minutes.h[i], minutes.low[i],
                                        minutes.c[i], minutes.v[i], point=minutes.segment[i] in (0, 3)
                                        and self.inst.market == "HK"))
        sec_index = np.concatenate([s[0] for s in seconds])
        values = np.concatenate([s[1] for s in seconds])
        volume = np.concatenate([s[2] for s in seconds])
        n = len(values)
        per = _Minutes(minute=sec_index, segment=np.repeat(minutes.segment, [len(s[0]) for s in seconds]),
                       day=np.zeros(n, np.int64), wall_offset=np.zeros(n, np.int64), o=values, h=values,
                       low=values, c=values, v=volume)
        keys = per.segment * 10_000_000_000_000 + per.minute // bar_seconds
        return self._aggregate(per, keys, what, lambda first: datetime.fromtimestamp(int(per.minute[first]), UTC))

    def _bridge(self, minute: int, length: int, o: float, h: float, low: float, c: float, v: float, point: bool):
        """(epoch seconds, price, volume) of the first ``length`` seconds of a minute; an auction is one print."""
        import numpy as np
        if point or length < 4:
            # an auction, or the first seconds of the running minute: straight from open to the live last
            values = np.linspace(o, c, length) if not point and length > 1 else np.array([c])
            count = len(values)
            return (np.arange(minute * 60, minute * 60 + count, dtype=np.int64), values,
                    np.concatenate(([v], np.zeros(count - 1))))
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.inst.con_id, minute, length])
        t_a, t_b = sorted(int(t) for t in rng.choice(np.arange(1, length - 1), size=2, replace=False))
        knots_t = [0, t_a, t_b, length - 1]
        knots_v = [o, h, low, c] if rng.random() < 0.5 else [o, low, h, c]
        path = np.interp(np.arange(length), knots_t, knots_v)
        path += rng.standard_normal(length) * (h - low) * 0.15
        path = np.clip(path, low, h)
        path[knots_t] = knots_v
        weights = rng.random(length)
        volume = np.floor(v * weights / weights.sum() / self.trade_unit) * self.trade_unit
        return np.arange(minute * 60, minute * 60 + length, dtype=np.int64), path, volume

    def _aggregate(self, m: _Minutes, keys: np.ndarray, what: str, label) -> list[Bar]:
        """One bar per run of equal keys: first open, highest high, lowest low, last close, summed volume."""
        import numpy as np
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        if len(starts) > MAX_BARS:
            raise ValueError(f"{len(starts)} bars is more than {MAX_BARS}; ask for a shorter duration or a larger "
                             "bar size")
        ends = np.concatenate((starts[1:], [len(keys)]))
        highs = np.maximum.reduceat(m.h, starts)
        lows = np.minimum.reduceat(m.low, starts)
        volumes = np.add.reduceat(m.v, starts)
        typical = (m.h + m.low + m.c) / 3
        weighted = np.add.reduceat(typical * m.v, starts)
        means = np.add.reduceat(m.c, starts) / (ends - starts)
        return [self._bar(label(int(s)), m.o[s], highs[i], lows[i], m.c[e - 1], volumes[i], weighted[i], means[i],
                          what)
                for i, (s, e) in enumerate(zip(starts, ends, strict=True))]

    def _units(self, value: float) -> int:
        return self.grid.floor(max(int(math.floor(value + 1e-6)), self.grid.incs[0]))

    def _bar(self, when: datetime, o: float, h: float, low: float, c: float, volume: float, weighted: float,
             mean: float, what: str) -> Bar:
        grid = self.grid
        dec = grid.to_decimal
        ou, hu, lu, cu = self._units(o), self._units(h), self._units(low), self._units(c)
        if what in ("TRADES", "ADJUSTED_LAST"):
            vol = int(volume)
            wap_units = weighted / volume if volume > 0 else (hu + lu + cu) / 3
            wap = Decimal(repr(round(float(wap_units), 6))).scaleb(-grid.exponent).quantize(Decimal("0.0001"))
            wap = min(max(wap, dec(lu)), dec(hu))
            count = max(1, vol // (100 * self.trade_unit)) if vol else 0
            return when, dec(ou), dec(hu), dec(lu), dec(cu), vol, wap, count
        if what == "BID":
            return when, dec(ou), dec(hu), dec(lu), dec(cu), -1, Decimal(-1), -1
        if what == "ASK":
            return when, dec(grid.up(ou)), dec(grid.up(hu)), dec(grid.up(lu)), dec(grid.up(cu)), -1, Decimal(-1), -1
        if what == "MIDPOINT":
            mid = self._mid
            return when, mid(ou), mid(hu), mid(lu), mid(cu), -1, Decimal(-1), -1
        # BID_ASK: time-average bid, highest ask, lowest bid, time-average ask
        mean_units = self._units(mean)
        return (when, dec(mean_units), dec(grid.up(hu)), dec(lu), dec(grid.up(mean_units)), -1, Decimal(-1), -1)

    def _mid(self, units: int) -> Decimal:
        """Halfway between the bid and the one-tick-higher ask: on the tick or half a tick."""
        grid = self.grid
        value = (Decimal(units + grid.up(units)) / 2).scaleb(-grid.exponent).normalize()
        return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value


def _index(moment: datetime, first_minute: int) -> int:
    return int(moment.timestamp()) // 60 - first_minute


def parse_duration(text: str) -> tuple[int, str]:
    """"N S|D|W|M|Y" -> (N, unit). ValueError with a hint for anything else."""
    parts = text.strip().split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1].upper() not in _DURATION_UNITS or int(parts[0]) <= 0:
        raise ValueError(f"duration {text!r} is not 'N S|D|W|M|Y' (e.g. '1 D', '3600 S')")
    return int(parts[0]), parts[1].upper()


def session_dates(market: str, first: date, last: date) -> Iterator[date]:
    """The session days of a market between two dates, inclusive (for tests and the chart)."""
    days = calendars.session_days(market)
    d = first
    while d <= last:
        if d in days:
            yield d
        d += timedelta(days=1)


__all__ = ["MAX_BARS", "PriceHistory", "parse_duration", "session_dates"]
