"""The recording file: what is written loads back the same; a truncated or foreign file is refused whole."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from ibpanel.sim.recording import (
    RecordedBar,
    RecordedInstrument,
    RecordedQuote,
    RecordingError,
    RecordingWriter,
    load_recording,
)

UTC = timezone.utc
T0 = datetime(2025, 3, 14, 13, 30, tzinfo=UTC)
AAPL = RecordedInstrument(con_id=265598, symbol="AAPL", exchange="SMART", primary_exchange="NASDAQ",
                          currency="USD", time_zone="US/Eastern", board_lot=1, market_rule_id=26,
                          tick_rows=((Decimal(0), Decimal("0.0001")), (Decimal(1), Decimal("0.01"))),
                          trading_hours="20250314:0400-20250314:2000", liquid_hours="20250314:0930-20250314:1600")


def _quotes(n):
    return [RecordedQuote(time=T0 + timedelta(milliseconds=250 * i), con_id=265598, bid=Decimal("200.00") + i // 3,
                          ask=Decimal("200.02") + i // 3, last=Decimal("200.01"), bid_size=100 + i, ask_size=300,
                          last_size=100, volume=1000 + i * 100, open=Decimal(199), high=Decimal(201),
                          low=Decimal(198), close=Decimal("198.5")) for i in range(n)]


def _write(path, quotes):
    writer = RecordingWriter(path)
    writer.add_instrument(AAPL)
    for q in quotes:
        writer.add_quote(q)
    writer.add_bars([RecordedBar(265598, 60, T0 - timedelta(minutes=1), Decimal(199), Decimal(200), Decimal(198),
                                 Decimal("199.5"), 5000)])
    writer.close()
    return writer


def test_quotes_bars_and_contract_details_load_back_unchanged(tmp_path):
    quotes = _quotes(50)
    writer = _write(tmp_path / "day.ibrec", quotes)
    assert writer.quote_count == 50 and writer.size_bytes > 0
    rec = load_recording(tmp_path / "day.ibrec")
    assert rec.quotes == quotes
    assert rec.instruments == [AAPL]
    assert rec.bars[0].close == Decimal("199.5") and rec.bars[0].bar_seconds == 60


def test_unchanged_fields_are_stored_as_null(tmp_path):
    _write(tmp_path / "day.ibrec", _quotes(3))
    conn = sqlite3.connect(tmp_path / "day.ibrec")
    rows = conn.execute("SELECT bid, ask, last, bid_size, open FROM quotes ORDER BY seq").fetchall()
    conn.close()
    assert rows[0] == ("200", "200.02", "200.01", 100, "199")
    assert rows[1] == (None, None, None, 101, None)  # only the bid size moved


def test_truncated_recording_names_the_offset_and_loads_nothing(tmp_path):
    path = tmp_path / "day.ibrec"
    _write(path, _quotes(3000))
    data = path.read_bytes()
    cut = tmp_path / "cut.ibrec"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match=rf"truncated at byte {len(data) // 2}: its header says the file is "
                                             rf"{len(data)} bytes; .*copy the whole file again"):
        load_recording(cut)


def test_a_file_that_is_not_a_recording_is_refused_at_byte_0(tmp_path):
    path = tmp_path / "notes.ibrec"
    path.write_text("time,open,high\n" * 20)
    with pytest.raises(RecordingError, match="byte 0: not an IB Panel recording"):
        load_recording(path)


def test_a_bad_row_is_named_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "day.ibrec"
    _write(path, _quotes(5))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE quotes SET bid = 'abc' WHERE seq = 4")
    conn.commit()
    conn.close()
    with pytest.raises(RecordingError, match=r"quotes row seq=4: bid 'abc' is not a number"):
        load_recording(path)
