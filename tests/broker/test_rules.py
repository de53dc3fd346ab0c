"""Market rules: tick bands, Decimal rounding and stepping, board lots and their source, sessions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from ibpanel.broker.models import Market
from ibpanel.broker.rules import (
    HK_TICK_TABLE,
    HK_TICK_TABLE_ETF,
    US_TICK_TABLE,
    BoardLot,
    TickTable,
    TradingSessions,
    board_lot,
    check_quantity,
    fallback_tick_table,
    hk_lot_table,
    is_hk_etf,
    lots_to_quantity,
    quantity_to_lots,
    round_to_lots,
    to_decimal,
    zone,
)
from ibpanel.paths import resource_path

# --- tick bands -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "price, tick",
    [("0.0999", "0.0001"), ("0.9999", "0.0001"), ("1", "0.01"), ("1.00", "0.01"), ("512.37", "0.01")],
)
def test_us_tick_by_band(price, tick):
    assert US_TICK_TABLE.increment(D(price)) == D(tick)


@pytest.mark.parametrize(
    "price, tick",
    [("0.1", "0.001"), ("0.25", "0.005"), ("0.3", "0.005"), ("0.5", "0.01"), ("9.99", "0.01"), ("15", "0.01"),
     ("20", "0.02"), ("49.98", "0.02"), ("50", "0.05"), ("99.95", "0.05"), ("100", "0.1"), ("388.2", "0.2"),
     ("500", "0.5"), ("1000", "1"), ("2000", "2"), ("5000", "5"), ("9995", "5")],
)
def test_hk_tick_by_band_highest_low_edge_at_or_below(price, tick):
    assert HK_TICK_TABLE.increment(D(price)) == D(tick)


def test_hk_etf_table_keeps_wider_bands():
    assert HK_TICK_TABLE_ETF.increment(D("15")) == D("0.02")
    assert HK_TICK_TABLE_ETF.increment(D("25")) == D("0.05")
    assert fallback_tick_table(Market.HK, etf=True) is HK_TICK_TABLE_ETF
    assert fallback_tick_table(Market.HK) is HK_TICK_TABLE
    assert fallback_tick_table(Market.US) is US_TICK_TABLE
    assert is_hk_etf("2800") and not is_hk_etf("700")


def test_table_from_market_rule_rows_of_floats():
    class Increment:  # shaped like ib_async's PriceIncrement
        def __init__(self, low, inc):
            self.lowEdge, self.increment = low, inc

    table = TickTable.from_market_rule([Increment(0.0, 0.0001), Increment(1.0, 0.01)], source="rule 26")
    assert table == US_TICK_TABLE and table.source == "rule 26"
    assert TickTable.from_market_rule([(0.0, 0.005)]).increment(D("3")) == D("0.005")
    assert TickTable.single(0.05).round(D("1.03")) == D("1.05")


def test_bad_tables_are_refused():
    with pytest.raises(ValueError):
        TickTable([])
    with pytest.raises(ValueError):
        TickTable([(D(0), D(0))])
    with pytest.raises(ValueError):
        TickTable([(D(0), D("0.01")), (D(0), D("0.02"))])


@pytest.mark.parametrize(
    "price, nearest, down, up",
    [("49.99", "50.00", "49.98", "50.00"), ("50.01", "50.00", "50.00", "50.05"), ("388.3", "388.4", "388.2", "388.4"),
     ("0.2501", "0.250", "0.250", "0.255"), ("1000.4", "1000", "1000", "1001"), ("19.995", "20.00", "19.99", "20.00")],
)
def test_hk_round(price, nearest, down, up):
    assert HK_TICK_TABLE.round(D(price)) == D(nearest)
    assert HK_TICK_TABLE.round(D(price), "down") == D(down)
    assert HK_TICK_TABLE.round(D(price), "up") == D(up)
    assert str(HK_TICK_TABLE.round(D(price), "down")) == down  # quantized to the band's decimals


def test_round_accepts_floats_and_refuses_bad_input():
    assert US_TICK_TABLE.round(187.123) == D("187.12")
    assert to_decimal(0.1) == D("0.1")
    with pytest.raises(ValueError):
        US_TICK_TABLE.round(D("1.234"), "sideways")
    with pytest.raises(ValueError):
        US_TICK_TABLE.round(D("-1"))
    with pytest.raises(ValueError):
        to_decimal("abc")
    with pytest.raises(ValueError):
        to_decimal(float("nan"))


def test_step_across_band_edges():
    assert HK_TICK_TABLE.step(D("49.98"), 1) == D("50.00")
    assert HK_TICK_TABLE.step(D("50.00"), 1) == D("50.05")
    assert HK_TICK_TABLE.step(D("50.00"), -1) == D("49.98")
    assert HK_TICK_TABLE.step(D("0.25"), -1) == D("0.249")
    assert HK_TICK_TABLE.step(D("99.95"), 3) == D("100.2")
    assert US_TICK_TABLE.step(D("1.00"), -2) == D("0.9998")
    assert US_TICK_TABLE.step(D("187.12"), 0) == D("187.12")


def test_step_off_tick_first_rounds_in_the_direction_of_travel():
    assert US_TICK_TABLE.step(D("187.123"), 1) == D("187.13")
    assert US_TICK_TABLE.step(D("187.123"), -1) == D("187.12")
    assert US_TICK_TABLE.step(D("187.123"), 2) == D("187.14")


def test_step_below_zero_is_refused():
    with pytest.raises(ValueError):
        HK_TICK_TABLE.step(D("0.001"), -1)


def test_step_over_an_edge_that_is_not_on_the_lower_grid():
    odd = TickTable([(D(0), D("0.03")), (D(1), D("0.05"))])
    assert odd.step(D("0.99"), 1) == D("1.00")
    assert odd.step(D("1.00"), -1) == D("0.99")
    assert odd.round(D("0.995"), "up") == D("1.00")


def test_display_decimals():
    assert US_TICK_TABLE.decimals(D("187")) == 2
    assert US_TICK_TABLE.decimals(D("0.5")) == 4
    assert HK_TICK_TABLE.decimals(D("0.3")) == 3
    assert HK_TICK_TABLE.decimals(D("1500")) == 0


# --- tick properties --------------------------------------------------------------------------------

TABLES = [US_TICK_TABLE, HK_TICK_TABLE, HK_TICK_TABLE_ETF, TickTable([(D(0), D("0.03")), (D(1), D("0.05"))])]
prices = st.decimals(min_value=D("0.0001"), max_value=D("9995"), places=4, allow_nan=False, allow_infinity=False)
tables = st.sampled_from(TABLES)


@settings(max_examples=300)
@given(tables, prices)
def test_rounding_lands_on_tick_is_idempotent_and_ordered(table, price):
    down, up, nearest = (table.round(price, m) for m in ("down", "up", "nearest"))
    for rounded in (down, up, nearest):
        assert table.is_on_tick(rounded)
        assert table.round(rounded, "nearest") == rounded
        assert table.round(rounded, "down") == rounded
        assert table.round(rounded, "up") == rounded
    assert down <= price <= up
    assert nearest in (down, up)
    assert abs(nearest - price) <= table.increment(price) / 2
    if table.is_on_tick(price):
        assert down == up == nearest == price


@settings(max_examples=300)
@given(tables, prices, st.integers(min_value=-40, max_value=40))
def test_step_there_and_back(table, price, n):
    on_tick = table.round(price, "up")
    assume(on_tick > 0)
    try:
        moved = table.step(on_tick, n)
    except ValueError:
        assume(False)  # walked below the lowest price
    assert table.is_on_tick(moved)
    assert (moved > on_tick) if n > 0 else (moved < on_tick) if n < 0 else moved == on_tick
    assert table.step(moved, -n) == on_tick


@given(tables, prices)
def test_one_step_is_the_next_valid_price(table, price):
    p = table.round(price, "down")
    assume(p > 0)
    nxt = table.step(p, 1)
    # no valid price strictly between p and the next one: rounding anything inside goes to an end
    mid = (p + nxt) / 2
    assert table.round(mid, "down") == p and table.round(mid, "up") == nxt


# --- board lots -------------------------------------------------------------------------------------


def test_lot_table_is_dated_sourced_and_big_enough():
    data = json.loads(resource_path("markets", "hk_board_lots.json").read_text(encoding="utf-8"))
    assert datetime.strptime(data["as_of"], "%Y-%m-%d")
    assert data["sources"]
    codes = [row["code"] for row in data["lots"]]
    assert len(codes) >= 40 and len(set(codes)) == len(codes)
    assert all(row["lot"] > 0 and row["name"] for row in data["lots"])
    table = hk_lot_table()
    for code, lot in {700: 100, 5: 400, 1299: 200, 941: 500, 2800: 500, 883: 1000, 9618: 50}.items():
        assert table.lots[code] == lot


@pytest.mark.parametrize("symbol", ["700", "0700", "00700", "0700.HK"])
def test_hk_lot_from_table_says_so(symbol):
    lot = board_lot(Market.HK, symbol)
    assert (lot.size, lot.source, lot.symbol) == (100, "fallback table", "700")


def test_contract_details_win_when_set():
    assert board_lot(Market.HK, "700", min_size=D(1), size_increment=D(100)) == BoardLot(
        100, "contract details", "700", Market.HK)
    assert board_lot(Market.HK, "5", min_size=400.0, size_increment=None).source == "contract details"
    # 1, unset (float max / int max), NaN and fractions are ignored -> table
    for unset in (1.0, 1.7976931348623157e308, 2147483647, float("nan"), 0.5, None):
        assert board_lot(Market.HK, "5", min_size=unset, size_increment=unset).source == "fallback table"


def test_unknown_hk_lot_and_us_whole_shares():
    unknown = board_lot(Market.HK, "8888")
    assert (unknown.size, unknown.source, unknown.known) == (0, "unknown", False)
    message = check_quantity(D(100), unknown)
    assert message and "unknown" in message and "8888" in message
    us = board_lot(Market.US, "AAPL")
    assert (us.size, us.source) == (1, "US whole shares")


def test_check_quantity_messages():
    lot = board_lot(Market.HK, "700")
    assert check_quantity(D(200), lot) is None
    odd = check_quantity(D(150), lot)
    assert odd.startswith("HK stock 700 trades in board lots of 100: use 100, 200")
    assert "odd lot" in odd
    assert "whole number" in check_quantity(D("1.5"), board_lot(Market.US, "AAPL"))
    assert "more than zero" in check_quantity(D(0), lot)
    assert "more than zero" in check_quantity(D(-100), lot)
    assert "not a number" in check_quantity("lots", lot)
    assert check_quantity(D(7), board_lot(Market.US, "AAPL")) is None


def test_lot_helpers():
    lot = board_lot(Market.HK, "5")
    assert round_to_lots(D(1000), lot) == D(800)
    assert round_to_lots(D(1000), lot, "up") == D(1200)
    assert round_to_lots(D(1000), lot, "nearest") == D(1200)  # 2.5 lots: ties go up
    assert round_to_lots(D(900), lot, "nearest") == D(800)
    assert quantity_to_lots(D(1200), lot) == 3
    assert lots_to_quantity(3, lot) == D(1200)
    with pytest.raises(ValueError):
        round_to_lots(D(10), BoardLot(0, "unknown"))
    with pytest.raises(ValueError):
        round_to_lots(D(10), lot, "sideways")


@given(st.sampled_from([1, 50, 100, 200, 400, 500, 1000, 2000]), st.integers(min_value=0, max_value=10**7),
       st.sampled_from(["down", "up", "nearest"]))
def test_lot_rounding_gives_multiples(size, qty, mode):
    lot = BoardLot(size, "fallback table", "x", Market.HK)
    rounded = round_to_lots(D(qty), lot, mode)
    assert rounded % size == 0
    assert abs(rounded - qty) < size
    assert (rounded <= qty) if mode == "down" else (rounded >= qty) if mode == "up" else True
    assert round_to_lots(rounded, lot, mode) == rounded
    if rounded > 0:
        assert check_quantity(rounded, lot) is None


# --- sessions ---------------------------------------------------------------------------------------

US_TRADING = "20250102:0400-20250102:2000;20250103:0400-20250103:2000;20250104:CLOSED;20250105:CLOSED"
US_LIQUID = "20250102:0930-20250102:1600;20250103:0930-20250103:1600;20250104:CLOSED;20250105:CLOSED"
HK_HOURS = "20250102:0930-20250102:1200;20250102:1300-20250102:1600;20250103:0930-20250103:1200"


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_us_sessions_in_eastern_time():
    s = TradingSessions.parse(US_TRADING, US_LIQUID, "US/Eastern")
    assert s.state(utc(2025, 1, 2, 14, 30)) == "regular"  # 09:30 EST
    assert s.state(utc(2025, 1, 2, 14, 29)) == "outside_rth"
    assert s.state(utc(2025, 1, 2, 21, 0) - timedelta(seconds=1)) == "regular"
    assert s.state(utc(2025, 1, 2, 21, 0)) == "outside_rth"  # 16:00 EST is the end: exclusive
    assert s.state(utc(2025, 1, 3, 1, 30)) == "closed"  # 20:30 EST
    assert s.is_open(utc(2025, 1, 2, 12, 0), outside_rth=True)
    assert not s.is_open(utc(2025, 1, 2, 12, 0), outside_rth=False)
    assert s.next_open(utc(2025, 1, 2, 22, 0)) == utc(2025, 1, 3, 14, 30)
    assert s.next_open(utc(2025, 1, 2, 22, 0), outside_rth=True) == utc(2025, 1, 3, 9, 0)
    assert s.next_open(utc(2025, 1, 3, 22, 0)) is None
    assert s.state(datetime(2025, 1, 2, 15, 0)) == "regular"  # naive = UTC


def test_us_summer_time_uses_edt():
    s = TradingSessions.parse("", "20250702:0930-20250702:1600", "America/New_York")
    assert s.state(utc(2025, 7, 2, 13, 30)) == "regular"  # 09:30 EDT
    assert s.state(utc(2025, 7, 2, 13, 29)) == "closed"


def test_hk_lunch_break():
    s = TradingSessions.parse(HK_HOURS, HK_HOURS, "Asia/Hong_Kong")
    assert s.state(utc(2025, 1, 2, 1, 30)) == "regular"  # 09:30 HKT
    assert s.state(utc(2025, 1, 2, 4, 30)) == "closed"  # 12:30 lunch
    assert s.next_open(utc(2025, 1, 2, 4, 30)) == utc(2025, 1, 2, 5, 0)
    assert s.session_at(utc(2025, 1, 2, 2, 0)) == (utc(2025, 1, 2, 1, 30), utc(2025, 1, 2, 4, 0))
    assert s.session_at(utc(2025, 1, 2, 4, 30)) is None


def test_old_hours_format_and_overnight():
    tz_name = "Hongkong"  # an IB timeZoneId spelling zoneinfo knows as a link
    s = TradingSessions.parse("20250102:0930-1200,1300-1600;20250103:CLOSED", "", tz_name)
    assert s.state(utc(2025, 1, 2, 6, 0)) == "regular"
    overnight = TradingSessions.parse("20250102:1800-0500", "", "US/Eastern")
    assert overnight.state(utc(2025, 1, 3, 5, 0)) == "regular"  # 00:00 EST


@pytest.mark.parametrize("name", ["US/Eastern", "Asia/Hong_Kong", "Hongkong", "EST", "EST (Eastern Standard Time)", "HKT"])
def test_ib_time_zone_names(name):
    assert zone(name).utcoffset(datetime(2025, 1, 2)) in (timedelta(hours=-5), timedelta(hours=8))


def test_bad_time_zone_and_hours_are_refused():
    with pytest.raises(ValueError):
        zone("Mars/Olympus")
    with pytest.raises(ValueError):
        TradingSessions.parse("2025-01-02:0930-1600", "", "US/Eastern")
    with pytest.raises(ValueError):
        TradingSessions.parse("20250102:9999-1600", "", "US/Eastern")


def test_hours_as_real_tws_sends_them():
    # Recorded from a real TWS (tests/sim/golden/contract_details_eurusd.txt): overnight sessions.
    recorded = ("20231203:1715-20231204:1700;20231204:1715-20231205:1700;20231205:1715-20231206:1700;"
                "20231206:1715-20231207:1700;20231207:1715-20231208:1700")
    s = TradingSessions.parse(recorded, recorded, "US/Eastern")
    assert len(s.liquid) == 5
    assert s.state(utc(2023, 12, 4, 22, 0)) == "closed"  # 17:00-17:15 EST daily break
    assert s.state(utc(2023, 12, 4, 22, 15)) == "regular"
    assert s.next_open(utc(2023, 12, 4, 22, 5)) == utc(2023, 12, 4, 22, 15)
