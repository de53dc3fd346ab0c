"""Exchange sessions of the practice exchange's history: holidays, half days and the HK lunch break.

The dates come from exchange_calendars (XNYS for US stocks, XHKG for SEHK), a maintained library, not a
hand-kept list. It pulls in pandas (about a second to import), so it is imported on the first call only:
the live practice session ("always open") never needs it. Where the library cannot be imported (a
frozen build that leaves pandas out), every weekday is a full session and a warning says holidays are
missing: history keeps its session shape rather than failing.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
log = logging.getLogger(__name__)
_CALENDAR_CODES = {"US": "XNYS", "HK": "XHKG"}
US_EXTENDED_BEFORE = timedelta(hours=5, minutes=30)  # pre-market opens 04:00 ET, 5.5 h before 09:30
US_EXTENDED_AFTER = timedelta(hours=4)  # after-hours run until 20:00 ET (17:00 on a 13:00 half day)
HK_OPENING_AUCTION = timedelta(minutes=10)  # the pre-opening session matches at 09:20, 10 min before 09:30
HK_CLOSING_AUCTION = timedelta(minutes=8)  # the closing auction (CAS) matches between 16:08 and 16:10


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


_SCHEDULES: dict[str, dict[date, SessionDay]] = {}
_WEEKDAYS_ONLY: set[str] = set()  # markets whose calendar could not be loaded


def session_days(market: str) -> dict[date, SessionDay]:
    """Every session day the calendar knows for "US" or "HK" (about 20 years back, 1 year ahead), by date."""
    cached = _SCHEDULES.get(market)
    if cached is not None:
        return cached
    try:
        import exchange_calendars  # lazy: pandas is slow to import and only history needs it
    except ImportError as exc:
        log.warning("exchange_calendars cannot be imported (%s): practice history treats every weekday as a "
                    "full session, without holidays or half days", exc)
        _WEEKDAYS_ONLY.add(market)
        _SCHEDULES[market] = {}
        return _SCHEDULES[market]

    with warnings.catch_warnings():  # the library's own pandas deprecation notices are not ours to act on
        warnings.simplefilter("ignore")
        schedule = exchange_calendars.get_calendar(_CALENDAR_CODES[market]).schedule
        rows = list(zip(schedule.index, schedule["open"], schedule["break_start"], schedule["break_end"],
                        schedule["close"], strict=True))
    days: dict[date, SessionDay] = {}
    for label, open_, break_start, break_end, close in rows:
        days[label.date()] = SessionDay(
            day=label.date(), open=open_.to_pydatetime(), close=close.to_pydatetime(),
            break_start=None if _missing(break_start) else break_start.to_pydatetime(),
            break_end=None if _missing(break_end) else break_end.to_pydatetime())
    _SCHEDULES[market] = days
    return days


def _missing(value: object) -> bool:
    return value is None or value != value  # NaT compares unequal to itself


def session_on(market: str, day: date) -> SessionDay | None:
    """The session of that local date, or None on a weekend or holiday."""
    found = session_days(market).get(day)
    if found is None and market in _WEEKDAYS_ONLY and day.weekday() < 5:
        return _standard_day(market, day)
    return found


def _standard_day(market: str, day: date) -> SessionDay:
    """A full weekday session with the exchange's usual hours (the fallback without a calendar)."""
    if market == "HK":
        tz = ZoneInfo("Asia/Hong_Kong")
        at = [datetime.combine(day, time(h, m), tz).astimezone(UTC) for h, m in ((9, 30), (12, 0), (13, 0), (16, 0))]
        return SessionDay(day, at[0], at[3], at[1], at[2])
    tz = ZoneInfo("America/New_York")
    return SessionDay(day, datetime.combine(day, time(9, 30), tz).astimezone(UTC),
                      datetime.combine(day, time(16, 0), tz).astimezone(UTC))


__all__ = ["HK_CLOSING_AUCTION", "HK_OPENING_AUCTION", "SessionDay", "US_EXTENDED_AFTER", "US_EXTENDED_BEFORE",
           "session_days", "session_on"]
