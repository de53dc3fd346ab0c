"""The practice exchange's session table: kept equal to exchange_calendars, read without pandas, fails clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest
from ibpanel.paths import resource_path
from ibpanel.sim import calendar_table, calendars

SHIPPED = resource_path("sim", "sessions.json")


def _within(market: dict, first: date, last: date) -> dict:
    """A market's part of the table limited to the days first..last (the regular eras are kept whole)."""
    def inside(day: str) -> bool:
        return first <= date.fromisoformat(day) <= last

    return {**market, "closed": [d for d in market["closed"] if inside(d)],
            "special": {d: t for d, t in market["special"].items() if inside(d)}}


def test_the_shipped_session_table_equals_exchange_calendars_over_the_years_both_know():
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    first = date.fromisoformat(shipped["first_day"])
    last = min(date.fromisoformat(shipped["last_day"]), date(calendar_table.library_last_year(), 12, 31))
    rebuilt = calendar_table.build_table(first, last)
    assert set(rebuilt["markets"]) == set(shipped["markets"]) == {"US", "HK"}
    for market in ("US", "HK"):
        assert _within(shipped["markets"][market], first, last) == rebuilt["markets"][market], (
            f"{market} sessions differ from {rebuilt['source']}: run `python -m ibpanel.sim.calendar_table --write`")
    assert json.loads(calendar_table.dumps(rebuilt)) == rebuilt  # the writer's layout is valid JSON


def test_the_table_holds_only_exceptions_and_gives_every_weekday_its_hours():
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    us = shipped["markets"]["US"]
    assert "2026-11-26" in us["closed"] and "2026-11-27" in us["special"]  # Thanksgiving, then a 13:00 close
    assert "2026-11-30" not in us["special"]  # an ordinary Monday is not listed
    monday = calendars.session_on("US", date(2026, 11, 30))
    assert (monday.open.hour, monday.open.minute, monday.close.hour) == (14, 30, 21)  # 09:30-16:00 New York
    assert calendars.session_on("US", date(2026, 11, 26)) is None
    assert calendars.session_on("US", date(2026, 11, 27)).half_day
    christmas_eve = calendars.session_on("HK", date(2025, 12, 24))
    assert christmas_eve.break_start is None and christmas_eve.half_day  # morning only, no lunch break
    assert calendars.session_on("HK", date(2008, 3, 3)).open.hour == 2  # 10:00 Hong Kong before March 2011
    assert calendars.session_on("US", date(2005, 12, 30)) is None  # before the table: no session, no guess


def test_sessions_are_read_without_importing_pandas_or_the_calendar_library():
    code = ("import sys; from datetime import date; from ibpanel.sim import calendars; "
            "assert calendars.session_on('HK', date(2026, 12, 3)) is not None; "
            "assert len(calendars.session_days('US')) > 10000; "
            "print(sorted(m for m in ('pandas', 'exchange_calendars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("content", [None, "{not json", '{"first_day": "2006-01-01"}',
                                     '{"first_day": "2006-01-01", "last_day": "2049-12-31", "markets": '
                                     '{"US": {"time_zone": "America/New_York", "regular": [["2006-01-01", "09:30"]],'
                                     ' "closed": [], "special": {}}}}'])
def test_a_missing_or_damaged_session_table_says_how_to_restore_it(tmp_path, content):
    path = tmp_path / "sessions.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(calendars.SessionTableError) as raised:
        calendars.load_table(path)
    assert str(path) in str(raised.value) and "calendar_table --write" in str(raised.value)
