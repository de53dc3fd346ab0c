"""Writes resources/sim/sessions.json, the practice exchange's session table, from exchange_calendars.

exchange_calendars (XNYS for US stocks, XHKG for SEHK) stays the maintained source of the holidays, half days
and lunch breaks, but it pulls in pandas, which is slow to import and left out of the installers. So the
dates are taken from it here, once, and shipped as data; calendars.py reads the data with the stdlib only.

The table keeps only what differs from the regular schedule: per market the regular hours (with the date
each took effect, from the library's own open/close times), the weekdays without a session, and the days
with other hours (early closes, no lunch break, a late open). Regenerate after upgrading the library:

    python -m ibpanel.sim.calendar_table --write

tests/sim/test_calendar_table.py rebuilds the table from the installed library and compares it with the
shipped file, so a library update that changes a date fails there until the file is regenerated.
This module is not imported by the app (exchange_calendars is a test/maintenance dependency only).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from datetime import date, datetime, timezone
from pathlib import Path

CALENDAR_CODES = {"US": "XNYS", "HK": "XHKG"}
FIRST_DAY = date(2006, 1, 1)  # history reaches about 20 years back (history.py)
_WEEKDAY_MASK = "1111100"  # Monday to Friday: what calendars.py assumes is a regular trading week


def build_table(first: date = FIRST_DAY, last: date | None = None) -> dict:
    """The session table from the installed exchange_calendars, from ``first`` to ``last`` inclusive.

    ``last`` defaults to the end of the last year every calendar has data for (XHKG's lunar holidays are
    precomputed to a fixed year; XNYS follows rules and has no end).
    """
    classes = _calendar_classes()
    import exchange_calendars

    if last is None:
        last = date(library_last_year(), 12, 31)
    with warnings.catch_warnings():  # the library's pandas deprecation notices are not ours to act on
        warnings.simplefilter("ignore")
        markets = {market: _market_table(classes[market](start=first.isoformat(), end=last.isoformat()),
                                         CALENDAR_CODES[market], first, last)
                   for market in CALENDAR_CODES}
    return {
        "about": "Exchange sessions of the practice exchange, generated from exchange_calendars by "
                 "`python -m ibpanel.sim.calendar_table --write`; do not edit by hand. Per market: the regular "
                 "hours ([from date, open, lunch start, lunch end, close], local time), the weekdays without a "
                 "session, and the days with other hours.",
        "source": f"exchange_calendars {exchange_calendars.__version__}",
        "generated": datetime.now(timezone.utc).date().isoformat(),
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "markets": markets,
    }


def library_last_year() -> int:
    """The last full year every calendar has data for (XHKG's precomputed lunar holidays end in 2049 in 4.x)."""
    years = []
    for cls in _calendar_classes().values():
        bound_max = cls.bound_max()  # a class method: no calendar is built
        if bound_max is not None:
            years.append(bound_max.year if (bound_max.month, bound_max.day) == (12, 31) else bound_max.year - 1)
    return min(years) if years else datetime.now(timezone.utc).year + 20


def _calendar_classes() -> dict:
    """The library's calendar classes by market (CALENDAR_CODES names the same calendars)."""
    try:
        from exchange_calendars.exchange_calendar_xhkg import XHKGExchangeCalendar
        from exchange_calendars.exchange_calendar_xnys import XNYSExchangeCalendar
    except ImportError as exc:  # a maintenance tool: say how to get the library
        raise SystemExit(f"exchange_calendars is needed to build the session table ({exc}); "
                         "install the test extra: pip install -e '.[test]'") from exc
    return {"US": XNYSExchangeCalendar, "HK": XHKGExchangeCalendar}


def _market_table(calendar, code: str, first: date, last: date) -> dict:
    if calendar.weekmask != _WEEKDAY_MASK or calendar.open_offset or calendar.close_offset:
        raise SystemExit(f"{code}: a week other than Monday-Friday or sessions across midnight are not supported")
    tz = str(calendar.tz)
    regular = _regular_eras(calendar, first)
    schedule = calendar.schedule
    local = [schedule[col].dt.tz_convert(tz).dt.strftime("%H:%M").tolist()  # NaT (no lunch break) -> NaN
             for col in ("open", "break_start", "break_end", "close")]
    sessions = {label.date(): [t if isinstance(t, str) else None for t in times]
                for label, *times in zip(schedule.index, *local, strict=True)}
    closed, special = [], {}
    day = first
    while day <= last:
        times = sessions.get(day)
        if times is None:
            if day.weekday() < 5:
                closed.append(day.isoformat())
        elif day.weekday() >= 5 or times != _regular_on(regular, day):
            special[day.isoformat()] = times
        day = date.fromordinal(day.toordinal() + 1)
    return {"calendar": code, "time_zone": tz, "regular": regular, "closed": closed, "special": special}


def _regular_eras(calendar, first: date) -> list[list]:
    """[[from date, open, break start, break end, close], ...] from the library's regular-times tables."""
    tables = [calendar.open_times, calendar.break_start_times, calendar.break_end_times, calendar.close_times]
    starts = sorted({first} | {ts.date() for table in tables if table for ts, _ in table
                               if ts is not None and ts.date() > first})
    eras = []
    for start in starts:
        times = [_in_effect(table, start) for table in tables]
        if not eras or eras[-1][1:] != times:
            eras.append([start.isoformat(), *times])
    return eras


def _in_effect(table, day: date) -> str | None:
    found = None
    for since, at in table or ():
        if since is None or since.date() <= day:
            found = at.strftime("%H:%M")
    return found


def _regular_on(regular: list[list], day: date) -> list:
    times = regular[0][1:]
    for era in regular:
        if date.fromisoformat(era[0]) <= day:
            times = era[1:]
    return times


def dumps(table: dict) -> str:
    """The file's text: a year of closed days per line and a special day per line, so a regeneration diffs
    by the dates that changed."""
    def j(value) -> str:
        return json.dumps(value, separators=(", ", ": "))

    lines = ["{"] + [f" {j(key)}: {j(value)}," for key, value in table.items() if key != "markets"]
    lines.append(' "markets": {')
    for m, (market, data) in enumerate(table["markets"].items()):
        lines.append(f"  {j(market)}: {{")
        lines += [f"   {j(key)}: {j(data[key])}," for key in ("calendar", "time_zone", "regular")]
        years: dict[str, list[str]] = {}
        for day in data["closed"]:
            years.setdefault(day[:4], []).append(day)
        lines.append('   "closed": [')
        lines += [f"    {', '.join(j(d) for d in days)}," for days in years.values()]
        lines[-1] = lines[-1].rstrip(",")
        lines.append("   ],")
        lines.append('   "special": {')
        lines += [f"    {j(day)}: {j(times)}," for day, times in data["special"].items()]
        lines[-1] = lines[-1].rstrip(",")
        lines.append("   }")
        lines.append("  }" + ("," if m < len(table["markets"]) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from ibpanel.paths import resource_path

    parser = argparse.ArgumentParser(prog="python -m ibpanel.sim.calendar_table", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the shipped table (default: only compare)")
    parser.add_argument("--path", type=Path, default=None, help="the table file (default: resources/sim/sessions.json)")
    args = parser.parse_args(argv)
    path = args.path or resource_path("sim", "sessions.json")
    table = build_table()
    if args.write:
        path.write_text(dumps(table), encoding="utf-8")
        print(f"wrote {path} ({path.stat().st_size} bytes, {table['source']}, "
              f"{table['first_day']}..{table['last_day']})")
        return 0
    shipped = json.loads(path.read_text(encoding="utf-8"))
    same = shipped["markets"] == table["markets"] and shipped["last_day"] == table["last_day"]
    print(f"{path}: {'matches' if same else 'DIFFERS from'} {table['source']}"
          + ("" if same else "; run with --write to regenerate"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
