"""``--replay FILE`` on the command lines: a bad file stops the start with the line to fix, nothing runs."""

from __future__ import annotations

import pytest
from ibpanel import cli
from ibpanel.sim import cli as sim_cli
from ibpanel.sim.csv_bars import load_csv_bars
from ibpanel.sim.recording import write_recording


def test_ibpanel_replay_of_a_malformed_csv_names_the_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "AAPL.csv"
    bad.write_text("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10,100\n2025-03-14 09:31,10,11,9\n")
    assert cli.main(["--replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "ibpanel: --replay:" in err and "line 3: 4 cells but the header has 6" in err


def test_ibpanel_replay_flag_loads_the_file_and_implies_demo(tmp_path):
    good = tmp_path / "AAPL.csv"
    good.write_text("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10,100\n")
    args = cli.parse_args(["--replay", str(good), "--replay-speed", "30"])
    assert cli.load_replay(args) == 0
    assert args.demo and args.replay_session.clock.state().speed == 30


def test_ibpanel_sim_replay_of_a_truncated_recording_is_refused(tmp_path):
    csv = tmp_path / "AAPL.csv"
    csv.write_text("time,open,high,low,close,volume\n" + "".join(
        f"2025-03-14 {9 + m // 60:02d}:{m % 60:02d},10,11,9,10,100\n" for m in range(30, 390)))
    whole = write_recording(tmp_path / "day.ibrec", load_csv_bars(csv), source="test").read_bytes()
    cut = tmp_path / "cut.ibrec"
    cut.write_bytes(whole[:8192])
    args = sim_cli.build_parser().parse_args(["--replay", str(cut)])
    with pytest.raises(ValueError, match=rf"truncated at byte 8192: its header says the file is {len(whole)} bytes"):
        sim_cli.config_from_args(args)


def test_replay_from_starts_the_clock_there_in_the_first_markets_time(tmp_path):
    from datetime import datetime, timedelta, timezone

    day = tmp_path / "AAPL.csv"
    day.write_text("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10,100\n2025-03-14 15:59,10,11,9,10,100\n")
    args = cli.parse_args(["--replay", str(day), "--replay-from", "13:00"])
    assert cli.load_replay(args) == 0
    moved = args.replay_session.clock.now() - datetime(2025, 3, 14, 17, 0, tzinfo=timezone.utc)  # 13:00 New York
    assert timedelta(0) <= moved < timedelta(minutes=1)  # playing at 1x since then
    args = cli.parse_args(["--replay", str(day), "--replay-from", "lunch"])
    assert cli.load_replay(args) == 2
