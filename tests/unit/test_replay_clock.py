"""The replay clock: speed, pause, seek and the end of the recorded day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from ibpanel.sim.replay import ReplayClock

START = datetime(2025, 3, 14, 13, 30, tzinfo=timezone.utc)
END = START + timedelta(hours=1)


class Wall:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_clock_moves_at_its_speed_while_playing():
    wall = Wall()
    clock = ReplayClock(START, END, speed=1.0, monotonic=wall)
    wall.t += 10
    assert clock.now() == START + timedelta(seconds=10)
    clock.set_speed(60)
    wall.t += 10
    assert clock.now() == START + timedelta(seconds=10 + 600)


def test_pause_stops_the_clock_and_play_resumes_from_there():
    wall = Wall()
    clock = ReplayClock(START, END, speed=30.0, monotonic=wall)
    wall.t += 2
    clock.pause()
    held = clock.now()
    wall.t += 100
    assert clock.now() == held == START + timedelta(seconds=60)
    assert not clock.state().playing
    clock.play()
    wall.t += 1
    assert clock.now() == held + timedelta(seconds=30)


def test_seek_jumps_within_the_recording_and_counts_the_jump():
    wall = Wall()
    clock = ReplayClock(START, END, playing=False, monotonic=wall)
    assert clock.seek(START + timedelta(minutes=20)) == START + timedelta(minutes=20)
    assert clock.seek(START - timedelta(days=1)) == START
    assert clock.seek(END + timedelta(days=1)) == END
    assert clock.seeks == 3


def test_the_clock_stops_at_the_end_of_the_day():
    wall = Wall()
    clock = ReplayClock(START, END, speed=60.0, monotonic=wall)
    wall.t += 3600
    assert clock.now() == END
    state = clock.state()
    assert state.finished and not state.playing


@pytest.mark.parametrize("speed", [0.5, 61, 0])
def test_speed_outside_1x_to_60x_is_refused(speed):
    clock = ReplayClock(START, END, monotonic=Wall())
    with pytest.raises(ValueError, match="1x to 60x"):
        clock.set_speed(speed)


def test_sessions_are_the_recorded_ones(tmp_path):
    from ibpanel.sim.replay import open_replay

    path = tmp_path / "mixed.csv"
    path.write_text("symbol,time,open,high,low,close,volume\nAAPL,2025-03-14 09:30,10,11,9,10,100\n"
                    "0700.HK,2025-03-14 09:30,500,501,499,500,100\n")
    feed = open_replay(path).feed
    aapl, tencent = (i.con_id for i in sorted(feed.recording.instruments, key=lambda i: i.symbol != "AAPL"))

    def at(hour, minute, day=14):  # UTC
        return datetime(2025, 3, day, hour, minute, tzinfo=timezone.utc)

    assert feed.session_state(aapl, at(12, 0)) == "closed"  # 08:00 New York, but no quote of AAPL before 09:30
    assert feed.session_state(aapl, at(13, 31)) == "open"
    assert feed.session_state(aapl, at(21, 0)) == "post"  # 17:00
    assert feed.session_state(aapl, at(1, 30)) == "closed"  # 21:30 the day before: not a recorded day
    assert feed.session_state(tencent, at(1, 31)) == "open"  # 09:31 Hong Kong
    assert feed.session_state(tencent, at(1, 10)) == "closed"  # 09:10: pre-open, but before the first quote
    assert feed.session_state(tencent, at(4, 30)) == "closed"  # 12:30: the lunch break
    assert feed.session_state(tencent, at(8, 5)) == "post"  # 16:05: the closing auction


def test_a_recorded_tick_rule_never_replaces_another_rule_of_the_same_id(tmp_path):
    from dataclasses import replace
    from decimal import Decimal

    from ibpanel.sim.csv_bars import load_csv_bars
    from ibpanel.sim.market import MarketRules
    from ibpanel.sim.replay import ReplaySession

    path = tmp_path / "AAPL.csv"
    path.write_text("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10,100\n")
    recording = load_csv_bars(path)
    odd = ((Decimal(0), Decimal("0.05")),)  # a recording that says rule 26 is 5-cent steps
    recording.instruments = [replace(recording.instruments[0], tick_rows=odd)]
    base = MarketRules.load()
    book, rules = ReplaySession(recording).book_and_rules(base)
    inst = book.all()[0]
    assert rules.rows(26) == base.rows(26)
    assert inst.market_rule_id != 26 and rules.rows(inst.market_rule_id) == list(odd)
