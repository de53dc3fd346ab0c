"""Unit and property tests of the practice exchange's instruments, tick tables, price paths and sessions."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibpanel.paths import resource_path
from ibpanel.sim.market import SYNTHETIC_CON_ID_BASE, InstrumentBook, PracticeMarket, parse_bar_size

from tests.helpers import FakeClock

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
HK = ZoneInfo("Asia/Hong_Kong")


def make_market(book, rules, seed=1, mode="always", now=None):
    clock = FakeClock(now or datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # a Tuesday
    return PracticeMarket(book, rules, seed=seed, session_mode=mode, clock=clock), clock


def con(book, symbol):
    return book.find(symbol)[0].con_id


# ----- instrument data ------------------------------------------------------------------------------------

def test_data_files_are_json_with_an_about_text():
    for name in ("instruments.json", "market_rules.json", "commissions.json"):
        data = json.loads(resource_path("sim", name).read_text())
        assert len(data["about"]) > 100, name


def test_book_lists_enough_us_and_hk_stocks_with_the_required_symbols(book):
    us = [i for i in book.all() if i.currency == "USD"]
    hk = [i for i in book.all() if i.currency == "HKD"]
    assert len(us) >= 20 and len(hk) >= 15
    for symbol in ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BRK B", "JPM", "V"):
        (inst,) = book.find(symbol, exchange="SMART", currency="USD")
        assert inst.board_lot == 1 and inst.market_rule_id == 26 and inst.time_zone == "US/Eastern"
    for code in ("700", "5", "1299", "941", "2800", "883", "9618", "9988", "3690", "388", "1810", "2318", "939",
                 "1398", "11", "16", "2388"):
        (inst,) = book.find(code, exchange="SEHK", currency="HKD")
        assert inst.primary_exchange == "SEHK" and inst.time_zone == "Asia/Hong_Kong"


@pytest.mark.parametrize("code,lot", [("700", 100), ("5", 400), ("1299", 200), ("941", 500), ("2800", 500),
                                      ("883", 1000), ("9618", 50)])
def test_hk_board_lots_match_the_published_ones(book, code, lot):
    inst = book.find(code)[0]
    assert inst.board_lot == lot
    assert inst.size_increment == lot and inst.min_size == lot


def test_every_reference_price_is_on_its_tick_and_con_ids_are_unique(book, rules):
    con_ids = [i.con_id for i in book.all()]
    assert len(con_ids) == len(set(con_ids))
    for inst in book.all():
        assert rules.on_tick(inst.market_rule_id, inst.ref_price), inst.symbol
        assert len(inst.market_rule_ids.split(",")) == len(inst.valid_exchanges.split(","))


def test_etf_keeps_the_older_wider_hk_table(book):
    tracker = book.find("2800")[0]
    tencent = book.find("700")[0]
    assert tracker.stock_type == "ETF" and tracker.market_rule_id != tencent.market_rule_id


def test_find_uses_ib_matching_semantics(book):
    aapl = book.find("aapl")
    assert [i.symbol for i in aapl] == ["AAPL"]
    assert book.find("AAPL", exchange="SMART") == aapl
    assert book.find("AAPL", exchange="NASDAQ") == aapl  # a listed exchange, not only SMART
    assert book.find("AAPL", currency="HKD") == []
    assert book.find("AAPL", exchange="SEHK") == []
    assert book.find("AAPL", primary_exchange="NYSE") == []
    assert book.find("", con_id=265598) == aapl
    assert book.find("MSFT", con_id=265598) == []
    assert book.find("NOSUCH") == []
    assert book.find("BRK B")[0].primary_exchange == "NYSE"
    assert book.by_con_id(265598).symbol == "AAPL" and book.by_con_id(1) is None


def test_synthetic_instruments_use_the_reserved_con_id_range(rules):
    book = InstrumentBook.load(synthetic=25)
    synthetic = [i for i in book.all() if i.symbol.startswith("SYM")]
    assert [i.symbol for i in synthetic][:2] == ["SYM0001", "SYM0002"] and len(synthetic) == 25
    assert synthetic[0].con_id == SYNTHETIC_CON_ID_BASE + 1
    assert all(rules.on_tick(26, i.ref_price) and i.currency == "USD" for i in synthetic)


# ----- market rules ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule,price,increment", [
    (26, "0.9999", "0.0001"), (26, "1", "0.01"), (26, "230.15", "0.01"),
    (1723, "0.2", "0.001"), (1723, "0.25", "0.005"), (1723, "9.99", "0.01"), (1723, "19.99", "0.01"),
    (1723, "20", "0.02"), (1723, "49.98", "0.02"), (1723, "50", "0.05"), (1723, "600", "0.5"),
    (1724, "15", "0.02"), (1724, "26", "0.05"),
])
def test_increment_is_the_row_at_or_below_the_price(rules, rule, price, increment):
    assert rules.increment(rule, Decimal(price)) == Decimal(increment)


def test_on_tick(rules):
    assert rules.on_tick(1723, Decimal("600.5")) and not rules.on_tick(1723, Decimal("600.1"))
    assert rules.on_tick(26, Decimal("0.8512")) and not rules.on_tick(26, Decimal("1.001"))
    assert not rules.on_tick(26, Decimal(0)) and not rules.on_tick(26, Decimal("-1"))
    assert rules.round_to_tick(1723, Decimal("600.3")) == Decimal("600.0")
    assert rules.round_to_tick(1723, Decimal("600.3"), up=True) == Decimal("600.5")


# ----- quotes and paths ------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(1, 60))
def test_quotes_stay_on_the_tick_one_or_two_ticks_wide(book, rules, seed, steps):
    market, _ = make_market(book, rules, seed=seed)
    for _ in range(steps):
        market.advance()
    for inst in book.all():
        top = market.top(inst.con_id)
        rule = inst.market_rule_id
        assert top.bid < top.ask, inst.symbol
        assert rules.on_tick(rule, top.bid) and rules.on_tick(rule, top.ask) and rules.on_tick(rule, top.last)
        one_up = top.bid + rules.increment(rule, top.bid)
        two_up = one_up + rules.increment(rule, one_up)
        assert top.ask in (one_up, two_up), inst.symbol
        unit = inst.board_lot if inst.board_lot > 1 else 100
        assert top.bid_size % unit == 0 and top.ask_size % unit == 0 and top.bid_size > 0
        assert top.last_size % inst.board_lot == 0
        assert top.low <= top.last <= top.high and top.volume >= 0


@settings(max_examples=200, deadline=None)
@given(units=st.integers(1, 9_995_000))
def test_integer_tick_grid_agrees_with_the_decimal_rules(book, rules, units):
    market, _ = make_market(book, rules)
    for rule_id in rules.ids():
        grid = market._grids[rule_id]
        price = Decimal(units).scaleb(-grid.exponent)
        floored = grid.to_decimal(grid.floor(units))
        assert rules.on_tick(rule_id, floored) and floored <= price
        assert floored == rules.round_to_tick(rule_id, price)


def test_a_seed_reproduces_the_same_path_and_another_seed_does_not(book, rules):
    def path(seed, advance_others=True):
        market, _ = make_market(book, rules, seed=seed)
        target = con(book, "700")
        seen = []
        for _ in range(50):
            market.advance(None if advance_others else [target])
            top = market.top(target)
            seen.append((top.bid, top.ask, top.last, top.volume))
        return seen

    assert path(7) == path(7)
    assert path(7) != path(8)
    # an instrument's path does not depend on which other instruments were advanced
    assert path(7) == path(7, advance_others=False)


def test_advance_reports_changes_and_updates_the_day_stats(book, rules):
    market, _ = make_market(book, rules)
    aapl = con(book, "AAPL")
    changed = set()
    for _ in range(20):
        changed.update(market.advance([aapl, con(book, "MSFT")]))
    assert changed <= {aapl, con(book, "MSFT")} and aapl in changed
    top = market.top(aapl)
    assert top.volume > 0 and top.close == Decimal("230.00")
    assert market.advance([12345]) == []  # unknown con_ids are skipped


def test_top_returns_a_copy(book, rules):
    market, _ = make_market(book, rules)
    aapl = con(book, "AAPL")
    top = market.top(aapl)
    top.bid = Decimal(1)
    assert market.top(aapl).bid != Decimal(1)
    with pytest.raises(KeyError, match="not listed"):
        market.top(42)


def test_levels_walk_away_from_the_touch_on_the_tick(book, rules):
    market, _ = make_market(book, rules)
    tencent = con(book, "700")
    market.advance()
    top = market.top(tencent)
    asks = market.levels(tencent, "BUY", depth=5)
    bids = market.levels(tencent, "SELL", depth=5)
    assert asks[0] == (top.ask, top.ask_size) and bids[0] == (top.bid, top.bid_size)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks) and len(asks) == 5
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert all(rules.on_tick(1723, p) and s % 100 == 0 for p, s in asks + bids)


def test_record_trade_prints_on_the_tape(book, rules):
    market, _ = make_market(book, rules)
    aapl = con(book, "AAPL")
    before = market.top(aapl).volume
    market.record_trade(aapl, Decimal("231.00"), Decimal(300))
    top = market.top(aapl)
    assert top.last == Decimal("231.00") and top.volume == before + 300 and top.high >= Decimal("231.00")


# ----- bars ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("duration,bar_size,count", [("1 D", "1 hour", 7), ("3600 S", "5 mins", 13),
                                                     ("1800 S", "5 secs", 361), ("1 D", "15 mins", 25)])
def test_intraday_bars_end_at_the_live_last_price(book, rules, duration, bar_size, count):
    # 15:00 UTC is 10:00 in New York: the extended session opened at 04:00
    market, clock = make_market(book, rules)
    aapl = con(book, "AAPL")
    for _ in range(10):
        market.advance()
    bars = market.bars(aapl, None, duration, bar_size)
    assert len(bars) == count
    assert bars[-1][4] == market.top(aapl).last
    step = timedelta(seconds=parse_bar_size(bar_size))
    assert all(b[0] - a[0] == step for a, b in zip(bars, bars[1:], strict=False))
    assert bars[-1][0] <= clock.now < bars[-1][0] + step
    for _t, o, h, low, c, volume, wap, _n in bars:
        assert low <= min(o, c) <= max(o, c) <= h and low <= wap <= h
        assert all(rules.on_tick(26, p) for p in (o, h, low, c))
        assert volume >= 0
    assert market.bars(aapl, None, duration, bar_size) == bars  # deterministic


def aggregate(bars):
    """The one bar that a run of bars makes: first open, highest high, lowest low, last close, summed volume."""
    return (bars[0][1], max(b[2] for b in bars), min(b[3] for b in bars), bars[-1][4], sum(b[5] for b in bars))


def local_day(when, tz):
    return when.astimezone(tz).date()


@pytest.mark.parametrize("symbol,tz", [("TSLA", NY), ("700", HK)])
@pytest.mark.parametrize("use_rth", [True, False])
def test_every_bar_size_is_a_view_of_one_path(book, rules, symbol, tz, use_rth):
    market, _ = make_market(book, rules)
    cid = con(book, symbol)
    for _ in range(20):
        market.advance([cid])
    daily = market.bars(cid, None, "1 M", "1 day", use_rth=use_rth)
    hourly = market.bars(cid, None, "1 M", "1 hour", use_rth=use_rth)
    five = market.bars(cid, None, "5 D", "5 mins", use_rth=use_rth)
    minutes = market.bars(cid, None, "2 D", "1 min", use_rth=use_rth)
    assert len(daily) >= 19
    for bars_small, bars_large in ((hourly, daily), (five, hourly), (minutes, five)):
        groups = {}
        labels = [b[0] for b in bars_large]
        for bar in bars_small:  # each small bar belongs to the latest large bar that starts at or before it
            i = bisect_right(labels, bar[0]) - 1
            if i >= 0 and local_day(labels[i], tz) == local_day(bar[0], tz):
                groups.setdefault(i, []).append(bar)
        assert len(groups) >= min(len(bars_large), 8)
        for i, bars in groups.items():
            if bars[0][0] > bars_small[0][0] or i > 0:  # the oldest large bar may reach before the small ones
                assert aggregate(bars) == tuple(bars_large[i][1:6]), (symbol, bars_large[i][0])
    assert daily[-1][4] == hourly[-1][4] == five[-1][4] == minutes[-1][4]
    if symbol == "TSLA":  # 10:00 in New York: the newest bar is the live market; Hong Kong closed at 16:00
        assert minutes[-1][4] == market.top(cid).last


def test_a_month_ago_daily_and_hourly_bars_agree(book, rules):
    market, _ = make_market(book, rules)
    tsla = con(book, "TSLA")
    daily = market.bars(tsla, None, "1 M", "1 day", use_rth=True)
    hourly = market.bars(tsla, None, "1 M", "1 hour", use_rth=True)
    first_day = local_day(daily[0][0], NY)
    first_hours = [b for b in hourly if local_day(b[0], NY) == first_day]
    assert first_hours and aggregate(first_hours)[:4] == tuple(daily[0][1:5])


@pytest.mark.parametrize("use_rth,count,first,last", [(True, 78, "09:30", "15:55"), (False, 192, "04:00", "19:55")])
def test_a_us_day_of_five_minute_bars_is_the_session(book, rules, use_rth, count, first, last):
    market, _ = make_market(book, rules)
    end = datetime(2026, 11, 21, 0, 0, tzinfo=NY)  # Saturday: "1 D" is Friday's session
    bars = market.bars(con(book, "AAPL"), end, "1 D", "5 mins", use_rth=use_rth)
    times = [b[0].astimezone(NY) for b in bars]
    assert len(bars) == count
    assert times[0].strftime("%H:%M") == first and times[-1].strftime("%H:%M") == last
    assert {t.date() for t in times} == {datetime(2026, 11, 20).date()}


def test_hk_bars_skip_lunch_and_show_each_auction_as_its_own_bar(book, rules):
    market, _ = make_market(book, rules)
    end = datetime(2026, 11, 21, 0, 0, tzinfo=HK)
    tencent = con(book, "700")
    for bar_size, use_rth in (("5 mins", True), ("1 hour", True), ("30 mins", False)):
        bars = market.bars(tencent, end, "1 D", bar_size, use_rth=use_rth)
        labels = [b[0].astimezone(HK).strftime("%H:%M") for b in bars]
        assert labels[0] == "09:20" and labels[1] == "09:30" and labels[-1] == "16:00", labels
        assert not [t for t in labels if "12:00" <= t < "13:00"], labels
        opening, closing = bars[0], bars[-1]
        assert opening[1] == opening[2] == opening[3] == opening[4]  # an auction is one price
        assert closing[1] == closing[2] == closing[3] == closing[4]
    hourly = market.bars(tencent, end, "1 D", "1 hour", use_rth=True)
    assert [b[0].astimezone(HK).strftime("%H:%M") for b in hourly] == [
        "09:20", "09:30", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    daily = market.bars(tencent, end, "1 D", "1 day", use_rth=True)
    assert daily[-1][4] == hourly[-1][4]  # the day closes at the closing auction's price


def test_holidays_have_no_bars_and_half_days_close_early(book, rules):
    market, _ = make_market(book, rules, now=datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    aapl, tencent = con(book, "AAPL"), con(book, "700")
    daily = market.bars(aapl, None, "1 M", "1 day", use_rth=True)
    days = {local_day(b[0], NY) for b in daily}
    assert datetime(2026, 11, 25).date() in days and datetime(2026, 11, 27).date() in days
    assert datetime(2026, 11, 26).date() not in days  # Thanksgiving
    half = market.bars(aapl, datetime(2026, 11, 28, 0, 0, tzinfo=NY), "1 D", "30 mins", use_rth=True)
    assert half[-1][0].astimezone(NY).strftime("%H:%M") == "12:30" and len(half) == 7  # closes 13:00
    assert all(t.astimezone(NY).weekday() < 5 for t, *_ in market.bars(aapl, None, "1 M", "1 hour"))
    # Christmas Eve in Hong Kong: a morning session only, then the closing auction
    hk_end = datetime(2025, 12, 24, 23, 0, tzinfo=HK)
    hk = market.bars(tencent, hk_end, "1 D", "30 mins", use_rth=True)
    assert local_day(hk[0][0], HK) == datetime(2025, 12, 24).date()
    assert hk[-2][0].astimezone(HK).strftime("%H:%M") == "11:30"
    assert hk[-1][0].astimezone(HK).strftime("%H:%M") == "12:00"


def test_what_to_show_views_of_the_same_path(book, rules):
    market, _ = make_market(book, rules)
    aapl = con(book, "AAPL")
    views = {what: market.bars(aapl, None, "2 D", "1 hour", what=what, use_rth=True)
             for what in ("TRADES", "BID", "ASK", "MIDPOINT", "BID_ASK")}
    assert len({len(v) for v in views.values()}) == 1
    for trade, bid, ask, mid, bid_ask in zip(*views.values(), strict=True):
        assert trade[1:5] == bid[1:5]
        for b, a, m in zip(bid[1:5], ask[1:5], mid[1:5], strict=True):
            assert a == b + rules.increment(26, b) and b < m < a
        assert bid_ask[3] == bid[3] and bid_ask[2] == ask[2] and bid_ask[3] <= bid_ask[1] < bid_ask[4] <= bid_ask[2]
        assert bid[5] == -1 and bid[7] == -1 and trade[5] >= 0
    with pytest.raises(ValueError, match="whatToShow"):
        market.bars(aapl, None, "1 D", "1 hour", what="SHOES")


def test_the_live_tape_continues_the_generated_path(book, rules):
    market, clock = make_market(book, rules)
    aapl = con(book, "AAPL")
    start = market.top(aapl).last
    before = market.bars(aapl, None, "1 D", "1 min")
    assert before[-2][4] == start  # the generated past ends where the live market starts
    for _ in range(30):
        clock.now += timedelta(seconds=10)
        market.advance([aapl])
    market.move_to(aapl, start * Decimal("1.1"))
    top = market.top(aapl)
    minutes = market.bars(aapl, None, "1 D", "1 min")
    assert minutes[:len(before) - 1] == before[:-1]  # the past did not change
    assert minutes[-1][4] == top.last and minutes[-1][2] >= top.last
    live = [b for b in minutes if b[0] >= before[-1][0]]
    assert len(live) == 6
    for previous, bar in zip(live, live[1:], strict=False):
        if bar[5] == 0:  # a minute without a print repeats the last price
            assert bar[1] == bar[2] == bar[3] == bar[4] == previous[4]
    assert max(b[2] for b in live) >= top.high and min(b[3] for b in live) <= top.low


def test_daily_bars_differ_per_seed(book, rules):
    market, _ = make_market(book, rules)
    tencent = con(book, "700")
    bars = market.bars(tencent, None, "1 M", "1 day")
    assert 19 <= len(bars) <= 23
    assert all(rules.on_tick(1723, p) for bar in bars for p in bar[1:5])
    other, _ = make_market(book, rules, seed=2)
    assert other.bars(tencent, None, "1 M", "1 day")[:-1] != bars[:-1]


def test_bars_ending_in_the_past_agree_with_the_latest(book, rules):
    market, clock = make_market(book, rules)
    aapl = con(book, "AAPL")
    full = market.bars(aapl, None, "3 D", "1 hour")
    earlier = market.bars(aapl, clock.now - timedelta(hours=5), "3 D", "1 hour")  # 05:00 New York
    assert earlier[-1][0].astimezone(NY).strftime("%H:%M") == "04:00"
    assert earlier == full[:len(earlier)]  # same path: the bars both requests cover agree


@pytest.mark.parametrize("duration,bar_size", [("1 X", "1 min"), ("D 1", "1 min"), ("1 D", "7 fortnights"),
                                               ("10 Y", "1 secs")])
def test_unreadable_or_huge_bar_requests_raise_value_error(book, rules, duration, bar_size):
    market, _ = make_market(book, rules)
    with pytest.raises(ValueError):
        market.bars(con(book, "AAPL"), None, duration, bar_size)


# ----- sessions --------------------------------------------------------------------------------------------

def at(tz, y, mo, d, h, mi):
    return datetime(y, mo, d, h, mi, tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize("local,state", [((10, 0), "open"), ((8, 0), "pre"), ((17, 0), "post"),
                                         ((21, 0), "closed"), ((3, 59), "closed"), ((9, 30), "open")])
def test_us_sessions(book, rules, local, state):
    market, _ = make_market(book, rules, mode="real")
    assert market.session_state(con(book, "AAPL"), at(NY, 2026, 11, 24, *local)) == state


@pytest.mark.parametrize("local,state", [((10, 0), "open"), ((9, 10), "pre"), ((12, 30), "lunch"),
                                         ((13, 0), "open"), ((16, 5), "post"), ((17, 0), "closed")])
def test_hk_sessions_with_lunch(book, rules, local, state):
    market, _ = make_market(book, rules, mode="real")
    assert market.session_state(con(book, "700"), at(HK, 2026, 11, 24, *local)) == state


def test_weekend_is_closed_and_always_mode_is_open(book, rules):
    real, _ = make_market(book, rules, mode="real")
    always, _ = make_market(book, rules)
    saturday = at(NY, 2026, 11, 28, 11, 0)
    assert real.session_state(con(book, "AAPL"), saturday) == "closed"
    assert always.session_state(con(book, "AAPL"), saturday) == "open"
    assert always.accepts_order(con(book, "700"), outside_rth=False, now=saturday)


def test_outside_rth_is_respected(book, rules):
    market, _ = make_market(book, rules, mode="real")
    aapl, tencent = con(book, "AAPL"), con(book, "700")
    pre = at(NY, 2026, 11, 24, 7, 0)
    assert not market.accepts_order(aapl, outside_rth=False, now=pre)
    assert market.accepts_order(aapl, outside_rth=True, now=pre)
    assert market.accepts_order(aapl, outside_rth=False, now=at(NY, 2026, 11, 24, 11, 0))
    lunch = at(HK, 2026, 11, 24, 12, 30)
    assert not market.accepts_order(tencent, outside_rth=True, now=lunch)  # SEHK has no outside-RTH trading


def test_closed_markets_do_not_move_in_real_mode(book, rules):
    market, clock = make_market(book, rules, mode="real", now=at(NY, 2026, 11, 24, 11, 0))  # HK 00:00 closed
    aapl, tencent = con(book, "AAPL"), con(book, "700")
    changed = set()
    for _ in range(10):
        changed.update(market.advance())
    assert aapl in changed and tencent not in changed


def test_trading_hours_in_tws_format(book, rules):
    market, _ = make_market(book, rules, mode="real", now=at(NY, 2026, 11, 24, 11, 0))
    trading, liquid = market.trading_hours(con(book, "AAPL"))
    assert trading.startswith("20261124:0400-20261124:2000;") and "20261128:CLOSED" in trading
    assert liquid.startswith("20261124:0930-20261124:1600")
    hk_trading, hk_liquid = market.trading_hours(con(book, "700"))
    assert "20261125:0930-20261125:1200;20261125:1300-20261125:1600" in hk_liquid
    pattern = re.compile(r"^(\d{8}:(CLOSED|\d{4}-\d{8}:\d{4}))(;\d{8}:(CLOSED|\d{4}-\d{8}:\d{4}))*$")
    assert pattern.match(trading) and pattern.match(hk_trading)
    always, _ = make_market(book, rules)
    assert pattern.match(always.trading_hours(con(book, "AAPL"))[0])


def test_a_new_local_day_rolls_the_close(book, rules):
    market, clock = make_market(book, rules)
    aapl = con(book, "AAPL")
    for _ in range(20):
        market.advance([aapl])
    last = market.top(aapl).last
    clock.now += timedelta(days=1)
    market.advance([aapl])
    top = market.top(aapl)
    assert top.close == last and top.volume == top.last_size


def test_state_round_trip_continues_the_same_path(book, rules):
    market, _ = make_market(book, rules, seed=3)
    for _ in range(10):
        market.advance()
    saved = json.loads(json.dumps(market.to_dict()))
    for _ in range(10):
        market.advance()
    expected = {i.con_id: market.top(i.con_id) for i in book.all()}
    restored, _ = make_market(book, rules, seed=3)
    restored.load_dict(saved)
    for _ in range(10):
        restored.advance()
    assert {i.con_id: restored.top(i.con_id) for i in book.all()} == expected


def test_unknown_session_mode_is_refused(book, rules):
    with pytest.raises(ValueError, match="always"):
        PracticeMarket(book, rules, session_mode="sometimes")


def test_move_to_jumps_the_market_and_it_keeps_trading_there(book, rules):
    market, _clock = make_market(book, rules)
    aapl = con(book, "AAPL")
    target = market.top(aapl).last * Decimal("1.2")
    market.move_to(aapl, target)
    top = market.top(aapl)
    assert abs(top.last - target) < Decimal("0.02") and top.bid <= top.last < top.ask
    for _ in range(50):
        market.advance([aapl])
    assert abs(market.top(aapl).last - target) / target < Decimal("0.05")  # the walk's centre moved too


def test_always_open_history_shows_the_live_tape_at_night_and_real_mode_does_not(book, rules):
    night = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 in Hong Kong
    for mode in ("always", "real"):
        market, clock = make_market(book, rules, mode=mode, now=night)
        tencent = con(book, "700")
        for _ in range(10):
            clock.now += timedelta(seconds=20)
            market.advance([tencent])
        bars = market.bars(tencent, None, "1 D", "1 min", use_rth=True)
        newest = bars[-1][0].astimezone(HK)
        if mode == "always":
            assert newest.strftime("%H:%M") == "23:03" and bars[-1][4] == market.top(tencent).last
        else:
            assert newest.strftime("%H:%M") == "16:00"  # the closing auction ended the day


def test_real_mode_sessions_follow_the_exchange_calendar(book, rules):
    market, _ = make_market(book, rules, mode="real", now=at(NY, 2026, 11, 25, 11, 0))
    aapl, tencent = con(book, "AAPL"), con(book, "700")
    assert market.session_state(aapl, at(NY, 2026, 11, 26, 11, 0)) == "closed"  # Thanksgiving
    assert market.session_state(aapl, at(NY, 2026, 11, 27, 12, 59)) == "open"
    assert market.session_state(aapl, at(NY, 2026, 11, 27, 13, 30)) == "post"  # the half day closed at 13:00
    assert market.session_state(aapl, at(NY, 2026, 11, 27, 17, 30)) == "closed"
    trading, liquid = market.trading_hours(aapl)
    assert "20261126:CLOSED" in trading and "20261127:0400-20261127:1700" in trading
    assert "20261127:0930-20261127:1300" in liquid
    assert market.session_state(tencent, at(HK, 2025, 12, 24, 11, 0)) == "open"
    assert market.session_state(tencent, at(HK, 2025, 12, 24, 12, 5)) == "post"  # closing auction of a half day
    assert market.session_state(tencent, at(HK, 2025, 12, 25, 11, 0)) == "closed"  # Christmas
    hk_trading, hk_liquid = market.trading_hours(tencent, at(HK, 2025, 12, 24, 8, 0))
    assert hk_trading.startswith("20251224:0900-20251224:1210;20251225:CLOSED")
    assert hk_liquid.startswith("20251224:0930-20251224:1200;")


@pytest.mark.parametrize("symbol,tz", [("AAPL", NY), ("TSLA", NY), ("700", HK), ("5", HK)])
def test_the_quote_previous_close_is_the_previous_daily_bar_close(book, rules, symbol, tz):
    market, _ = make_market(book, rules)  # Tuesday 10:00 in New York, 23:00 in Hong Kong
    cid = con(book, symbol)
    close = market.top(cid).close
    daily = market.bars(cid, None, "5 D", "1 day", use_rth=True)
    closed = [b for b in daily if (local_day(b[0], tz), tz) != (datetime(2026, 11, 24).date(), NY)]
    assert closed[-1][4] == close  # Monday's close in New York; Tuesday's closing auction in Hong Kong


def test_a_restored_market_anchors_its_history_at_the_restored_prices(book, rules):
    market, clock = make_market(book, rules, seed=3)
    aapl = con(book, "AAPL")
    market.move_to(aapl, D_PRICE)
    saved = json.loads(json.dumps(market.to_dict()))
    restored, restored_clock = make_market(book, rules, seed=3, now=clock.now + timedelta(hours=2))
    restored.load_dict(saved)
    top = restored.top(aapl)
    assert top.last == D_PRICE and top.close == Decimal("230.00")
    daily = restored.bars(aapl, None, "3 D", "1 day", use_rth=True)
    assert daily[-2][4] == top.close  # Monday's close
    assert restored.bars(aapl, None, "1 D", "1 min")[-1][4] == top.last


D_PRICE = Decimal("240.00")
