"""Exchange sessions of the practice exchange's history: holidays, half days and the HK lunch break.

The dates are data, resources/sim/sessions.json, generated from exchange_calendars (XNYS for US stocks,
XHKG for SEHK), a maintained library, by calendar_table.py; a test keeps the file equal to the library.
The file holds the regular hours and only the exceptions (weekdays without a session, early closes, days
without the lunch break), read here with the stdlib, once: no pandas at run time, in the installers too.
A missing or damaged file raises SessionTableError saying how to restore it (no silent guess of hours).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.paths import resource_path

UTC = timezone.utc
US_EXTENDED_BEFORE = timedelta(hours=5, minutes=30)  # pre-market opens 04:00 ET, 5.5 h before 09:30
US_EXTENDED_AFTER = timedelta(hours=4)  # after-hours run until 20:00 ET (17:00 on a 13:00 half day)
HK_OPENING_AUCTION = timedelta(minutes=10)  # the pre-opening session matches at 09:20, 10 min before 09:30
HK_CLOSING_AUCTION = timedelta(minutes=8)  # the closing auction (CAS) matches between 16:08 and 16:10
_TABLE = ("sim", "sessions.json")
_MARKETS = ("US", "HK")


class SessionTableError(RuntimeError):
    """The session table file is missing or damaged."""


@dataclass(frozen=True)
class SessionDay:
    """One trading day of an exchange; times are aware UTC datetimes of the regular session."""

    day: date
    open: datetime
    close: datetime
    break_start: datetime | None = None  # HK lunch 12:00-13:00; None on half days and in the US
    break_end: datetime | None = None

    @property
    def half_day(self) -> bool:
        """Shorter than a full day (US 13:00 close, HK morning-only)."""
        return self.close - self.open < timedelta(hours=5)


Times = tuple[time | None, time | None, time | None, time | None]  # open, lunch start, lunch end, close


@dataclass(frozen=True)
class MarketSessions:
    """One market's part of the session table: regular hours by era, and the days that differ."""

    tz: ZoneInfo
    first: date
    last: date
    regular: tuple[tuple[date, Times], ...]  # (from date, times), oldest first
    closed: frozenset[date]  # weekdays without a session
    special: dict[date, Times]  # days with other hours (and any weekend session)

    def session_on(self, day: date) -> SessionDay | None:
        if not self.first <= day <= self.last or day in self.closed:
            return None
        times = self.special.get(day)
        if times is None:
            if day.weekday() >= 5:
                return None
            times = self.regular[0][1]
            for since, era in self.regular:
                if since <= day:
                    times = era
        at = [None if t is None else datetime.combine(day, t, self.tz).astimezone(UTC) for t in times]
        return SessionDay(day, at[0], at[3], at[1], at[2])


def load_table(path: Path) -> dict[str, MarketSessions]:
    """Read a session table file; SessionTableError with what to do when it is missing or damaged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        first, last = date.fromisoformat(data["first_day"]), date.fromisoformat(data["last_day"])
        return {market: _market(data["markets"][market], first, last) for market in _MARKETS}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise SessionTableError(
            f"the practice exchange's session table {path} is missing or damaged ({type(exc).__name__}: {exc}); "
            "reinstall IB Panel, or in a checkout regenerate it with "
            "`python -m ibpanel.sim.calendar_table --write`") from exc


def _market(data: dict, first: date, last: date) -> MarketSessions:
    regular = tuple((date.fromisoformat(era[0]), _times(era[1:])) for era in data["regular"])
    if not regular:
        raise ValueError("no regular hours")
    return MarketSessions(
        tz=ZoneInfo(data["time_zone"]), first=first, last=last, regular=regular,
        closed=frozenset(date.fromisoformat(d) for d in data["closed"]),
        special={date.fromisoformat(d): _times(t) for d, t in data["special"].items()})


def _times(values: list) -> Times:
    open_, break_start, break_end, close = (None if v is None else time.fromisoformat(v) for v in values)
    if open_ is None or close is None or (break_start is None) != (break_end is None):
        raise ValueError(f"hours {values} need an open, a close and both or neither lunch times")
    return open_, break_start, break_end, close


_lock = threading.Lock()  # the exchange runs on its own thread; the table is read once
_tables: dict[str, MarketSessions] = {}
_days: dict[str, dict[date, SessionDay]] = {}
_on: dict[tuple[str, date], SessionDay | None] = {}


def _market_sessions(market: str) -> MarketSessions:
    if not _tables:
        with _lock:
            if not _tables:
                _tables.update(load_table(resource_path(*_TABLE)))
    return _tables[market]


def session_on(market: str, day: date) -> SessionDay | None:
    """The session of that local date in "US" or "HK", or None on a weekend, a holiday or outside the table."""
    key = (market, day)
    try:
        return _on[key]
    except KeyError:
        found = _on[key] = _market_sessions(market).session_on(day)
        return found


def session_days(market: str) -> dict[date, SessionDay]:
    """Every session day of the table (2006 to the last year the calendar library knows), by date."""
    cached = _days.get(market)
    if cached is None:
        sessions = _market_sessions(market)
        cached = {}
        day = sessions.first
        while day <= sessions.last:
            if (found := session_on(market, day)) is not None:
                cached[day] = found
            day += timedelta(days=1)
        _days[market] = cached
    return cached


__all__ = ["HK_CLOSING_AUCTION", "HK_OPENING_AUCTION", "MarketSessions", "SessionDay", "SessionTableError",
           "US_EXTENDED_AFTER", "US_EXTENDED_BEFORE", "load_table", "session_days", "session_on"]
