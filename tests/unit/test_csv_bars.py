"""Importing bars from CSV: the documented header and time zones, and bad files named by line."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from ibpanel.sim.csv_bars import load_csv_bars
from ibpanel.sim.recording import RecordingError

UTC = timezone.utc


def _csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hk_bars_in_hong_kong_time_on_the_spread_table(tmp_path):
    path = _csv(tmp_path, "0700.HK.csv", "Date,Time,Open,High,Low,Close,Volume\n"
                "2025-03-14,09:30:00,500.0,503.3,499.0,502.1,20000\n")
    rec = load_csv_bars(path)
    inst = rec.instruments[0]
    assert (inst.symbol, inst.currency, inst.board_lot) == ("700", "HKD", 100)
    assert rec.start == datetime(2025, 3, 14, 1, 30, tzinfo=UTC)  # 09:30 Hong Kong = 01:30 UTC
    # HK prices between 200 and 500 step by 0.20, above 500 by 0.50: rounded onto the table
    assert [q.last for q in rec.quotes] == [Decimal("500.0"), Decimal("499.0"), Decimal("503.5"), Decimal("502.0")]
    assert all(q.last_size % 100 == 0 for q in rec.quotes)
    assert "20250314:0930-20250314:1200" in inst.liquid_hours


def test_symbol_column_and_iso_times_with_offset(tmp_path):
    path = _csv(tmp_path, "mixed.csv", "symbol,time,open,high,low,close,volume\n"
                "AAPL,2025-03-14T09:30:00-04:00,10,11,9,10.5,100\nMSFT,2025-03-14T09:30:00-04:00,20,21,19,20.5,100\n")
    rec = load_csv_bars(path)
    assert {i.symbol for i in rec.instruments} == {"AAPL", "MSFT"}
    assert rec.start == datetime(2025, 3, 14, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("time,open,high,low,close\n2025-03-14 09:30,1,1,1,1\n", r"line 1 \(header\): missing column\(s\) volume"),
    ("open,high,low,close,volume\n1,1,1,1,1\n", r"line 1 \(header\): no time column"),
    ("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10,100\n2025-03-14 09:31,10,x,9,10,5\n",
     r"line 3: high 'x' is not a number"),
    ("time,open,high,low,close,volume\n2025-03-14 09:30,10,9.5,9,10,100\n",
     r"line 2: low 9 / high 9.5 do not contain open 10"),
    ("time,open,high,low,close,volume\n2025-03-14 09:31,10,11,9,10,100\n2025-03-14 09:30,10,11,9,10,100\n",
     r"line 3: time '2025-03-14 09:30' is not after line 2's; sort the file"),
    ("time,open,high,low,close,volume\n\n2025-13-40 25:00,10,11,9,10,100\n", r"line 3: time .* is not a date/time"),
    ("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10\n", r"line 2: 5 cells but the header has 6"),
    ("time,open,high,low,close,volume\n2025-03-14 09:30,10,11,9,10,-5\n", r"line 2: volume '-5' must be a whole"),
    ("time,open,high,low,close,volume\n", r"no bar follows"),
    ("", r"the file is empty"),
])
def test_malformed_csv_names_the_line_and_what_to_fix(tmp_path, text, expected):
    with pytest.raises(RecordingError, match=expected):
        load_csv_bars(_csv(tmp_path, "AAPL.csv", text))


def test_unlisted_hk_stock_is_refused_because_its_lot_is_unknown(tmp_path):
    path = _csv(tmp_path, "9999.HK.csv", "time,open,high,low,close,volume\n2025-03-14 09:30,1,1,1,1,100\n")
    with pytest.raises(RecordingError, match="line 2: HK stock 9999 is not listed .* board lot is unknown"):
        load_csv_bars(path)
