"""Lifecycles of the order types beyond MKT/LMT/STP on the practice exchange (no sockets, a fake clock):
TRAIL and TRAIL LIMIT, REL, MOC/LOC, OPG, GTD, HK at-auction orders and HK odd lots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from tests.sim.test_exchange import Venue, errors, execs, statuses

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
HK = ZoneInfo("Asia/Hong_Kong")


@pytest.fixture
def venue(book, rules):
    # Tuesday 24 Nov 2026, 10:00 in New York (23:00 in Hong Kong)
    return Venue(book, rules, cash={"USD": D(100_000_000), "HKD": D(100_000_000)})


def updates(events, order_id):
    return [e.order for e in events if type(e).__name__ == "OrderUpdated" and e.order.order_id == order_id]


def at(venue, tz, y, mo, d, h, mi):
    venue.clock.now = datetime(y, mo, d, h, mi, tzinfo=tz).astimezone(UTC)
    venue.exchange.on_clock()


# ----- trailing stops --------------------------------------------------------------------------------------

def test_trailing_sell_stop_follows_the_bid_up_never_down_and_fires_on_the_touch(venue):
    aapl = venue.con("AAPL")
    venue.market.move_to(aapl, D("200.00"))
    order = venue.place("AAPL", action="SELL", qty=100, order_type="TRAIL", aux=D("1.00"))
    events = venue.take()
    assert statuses(events, order.order_id) == ["PreSubmitted"]
    assert updates(events, order.order_id)[-1].extra["trailStopPrice"] == "199.00"  # bid 200.00 less 1.00
    venue.market.move_to(aapl, D("205.00"))
    venue.exchange.on_market([aapl])
    assert updates(venue.take(), order.order_id)[-1].extra["trailStopPrice"] == "204.00"
    venue.market.move_to(aapl, D("204.50"))  # down, but not to the stop: the stop stays
    venue.exchange.on_market([aapl])
    events = venue.take()
    assert not updates(events, order.order_id) and not execs(events)
    venue.market.move_to(aapl, D("203.90"))
    venue.exchange.on_market([aapl])
    events = venue.take()
    assert statuses(events, order.order_id)[-2:] == ["Submitted", "Filled"]
    assert execs(events)[0].price == D("203.90") and execs(events)[0].side == "SLD"


def test_trailing_buy_by_percent_follows_the_ask_down(venue):
    aapl = venue.con("AAPL")
    venue.market.move_to(aapl, D("100.00"))
    ask = venue.market.top(aapl).ask
    order = venue.place("AAPL", action="BUY", qty=10, order_type="TRAIL",
                        extra={"trailingPercent": "2"})
    first = D(updates(venue.take(), order.order_id)[-1].extra["trailStopPrice"])
    assert first == (ask * D("1.02")).quantize(D("0.01"), rounding="ROUND_CEILING")
    venue.market.move_to(aapl, D("90.00"))
    venue.exchange.on_market([aapl])
    lower = D(updates(venue.take(), order.order_id)[-1].extra["trailStopPrice"])
    assert lower < first and lower == D("91.82")  # ask 90.01 plus 2 %, rounded up onto the cent
    venue.market.move_to(aapl, D("92.00"))
    venue.exchange.on_market([aapl])
    (fill,) = execs(venue.take())  # the touch reached the stop: a market order takes the ask
    assert fill.price == venue.market.top(aapl).ask and fill.side == "BOT"
    assert venue.exchange.order(1, order.order_id).status == "Filled"


def test_trail_limit_becomes_a_limit_at_the_stop_less_the_offset(venue):
    aapl = venue.con("AAPL")
    venue.market.move_to(aapl, D("50.00"))
    order = venue.place("AAPL", action="SELL", qty=10, order_type="TRAIL LIMIT", aux=D("1.00"),
                        extra={"lmtPriceOffset": "0.10", "trailStopPrice": "49.00"})
    events = venue.take()
    assert updates(events, order.order_id)[0].extra["trailStopPrice"] == "49.00"  # the given initial stop
    venue.market.move_to(aapl, D("49.00"))
    venue.exchange.on_market([aapl])
    triggered = venue.exchange.order(1, order.order_id)
    assert triggered.lmt_price == D("48.90") and triggered.status == "Filled"


@pytest.mark.parametrize("aux,extra,code", [(None, {}, 321), (D("1.00"), {"trailingPercent": "1"}, 321),
                                            (D("0.003"), {}, 110), (None, {"trailingPercent": "150"}, 321)])
def test_trailing_orders_need_one_amount_or_percent(venue, aux, extra, code):
    order = venue.place("AAPL", action="SELL", qty=10, order_type="TRAIL", aux=aux, extra=dict(extra))
    events = venue.take()
    assert errors(events)[0][0] == code and statuses(events, order.order_id) == ["Inactive"]


# ----- relative (pegged) -----------------------------------------------------------------------------------

def test_relative_order_pegs_to_the_bid_and_is_capped_by_its_limit(venue):
    aapl = venue.con("AAPL")
    venue.market.move_to(aapl, D("80.00"))  # bid 80.00, ask 80.01
    capped = venue.place("AAPL", qty=10, order_type="REL", aux=D("0.05"), lmt=D("79.90"))
    events = venue.take()
    assert statuses(events, capped.order_id) == ["PreSubmitted", "Submitted"] and not execs(events)
    pegged = venue.place("AAPL", qty=10, order_type="REL", aux=D("0.05"))  # bid + 0.05 reaches the ask
    events = venue.take()
    assert execs(events)[0].price == D("80.01") and statuses(events, pegged.order_id)[-1] == "Filled"
    venue.market.move_to(aapl, D("79.85"))  # the ask comes down to the cap
    venue.exchange.on_market([aapl])
    assert venue.exchange.order(1, capped.order_id).status == "Filled"


def test_relative_order_without_offset_is_refused(venue):
    venue.place("AAPL", qty=10, order_type="REL")
    assert errors(venue.take())[0][0] == 321


# ----- auctions: MOC / LOC / OPG ----------------------------------------------------------------------------

def test_market_on_close_waits_for_the_close_and_fills_at_the_last_price(venue):
    aapl = venue.con("AAPL")
    order = venue.place("AAPL", qty=100, order_type="MOC")
    events = venue.take()
    assert statuses(events, order.order_id) == ["PreSubmitted", "Submitted"] and not execs(events)
    at(venue, NY, 2026, 11, 24, 15, 59)
    assert venue.exchange.order(1, order.order_id).status == "Submitted"
    venue.market.move_to(aapl, D("231.50"))
    at(venue, NY, 2026, 11, 24, 16, 0)
    (fill,) = execs(venue.take())
    assert fill.price == D("231.50") and fill.shares == 100
    assert venue.exchange.order(1, order.order_id).status == "Filled"


def test_limit_on_close_that_the_close_does_not_reach_is_cancelled(venue):
    aapl = venue.con("AAPL")
    venue.market.move_to(aapl, D("230.00"))
    order = venue.place("AAPL", qty=100, order_type="LOC", lmt=D("200.00"))
    venue.take()
    at(venue, NY, 2026, 11, 24, 16, 0)
    events = venue.take()
    assert not execs(events) and statuses(events, order.order_id)[-1] == "Cancelled"


def test_half_day_close_is_at_one_and_holidays_are_skipped(venue):
    at(venue, NY, 2026, 11, 25, 17, 0)  # Wednesday after the close: the next close is Friday's half day
    order = venue.place("AAPL", qty=10, order_type="MOC")
    venue.take()
    at(venue, NY, 2026, 11, 26, 16, 0)  # Thanksgiving: no close
    at(venue, NY, 2026, 11, 27, 12, 59)
    assert venue.exchange.order(1, order.order_id).status == "Submitted"
    at(venue, NY, 2026, 11, 27, 13, 0)
    assert venue.exchange.order(1, order.order_id).status == "Filled"


def test_at_the_open_orders_fill_at_the_next_open(venue):
    aapl = venue.con("AAPL")
    at(venue, NY, 2026, 11, 24, 18, 0)
    moo = venue.place("AAPL", qty=10, order_type="MKT", tif="OPG")
    loo = venue.place("AAPL", qty=10, order_type="LMT", lmt=D("1.00"), tif="OPG")
    venue.take()
    at(venue, NY, 2026, 11, 25, 9, 29)
    assert venue.exchange.order(1, moo.order_id).status == "Submitted"
    venue.market.move_to(aapl, D("229.00"))
    at(venue, NY, 2026, 11, 25, 9, 30)
    assert execs(venue.take())[0].price == D("229.00")
    assert venue.exchange.order(1, moo.order_id).status == "Filled"
    assert venue.exchange.order(1, loo.order_id).status == "Cancelled"


@pytest.mark.parametrize("symbol,order_type,tif", [("700", "MOC", "DAY"), ("700", "LOC", "DAY"), ("700", "MKT", "OPG"),
                                                   ("AAPL", "STP", "OPG"), ("AAPL", "MTL", "AUC"),
                                                   ("700", "REL", "DAY")])
def test_auction_orders_only_where_ib_offers_them(venue, symbol, order_type, tif):
    venue.place(symbol, qty=100, order_type=order_type, tif=tif, lmt=D("300") if order_type == "LOC" else None,
                aux=D("1.00") if order_type in ("STP", "REL") else None)
    assert errors(venue.take())[0][0] == 387


# ----- good till date --------------------------------------------------------------------------------------

def test_good_till_date_expires_with_a_cancel_at_its_time(venue):
    until = (venue.clock.now + timedelta(minutes=30)).strftime("%Y%m%d-%H:%M:%S")
    order = venue.place("AAPL", qty=10, lmt=D("1.00"), tif="GTD", extra={"goodTillDate": until})
    venue.take()
    venue.clock.now += timedelta(minutes=29)
    venue.exchange.on_clock()
    assert venue.exchange.order(1, order.order_id).status == "Submitted"
    venue.clock.now += timedelta(minutes=1)
    venue.exchange.on_clock()
    events = venue.take()
    assert statuses(events, order.order_id) == ["Cancelled"]


@pytest.mark.parametrize("good_till,code", [("20261124 09:00:00 US/Eastern", 201), ("", 321), ("soon", 321)])
def test_good_till_date_in_the_past_or_unreadable_is_refused(venue, good_till, code):
    order = venue.place("AAPL", qty=10, lmt=D("1.00"), tif="GTD", extra={"goodTillDate": good_till})
    events = venue.take()
    assert errors(events)[0][0] == code and statuses(events, order.order_id) == ["Inactive"]


# ----- Hong Kong auctions and odd lots ---------------------------------------------------------------------

def test_hk_at_auction_order_fills_in_the_closing_auction(venue):
    tencent = venue.con("700")
    at(venue, HK, 2026, 11, 25, 10, 0)
    order = venue.place("700", qty=100, order_type="MTL", tif="AUC")
    venue.take()
    at(venue, HK, 2026, 11, 25, 16, 7)
    assert venue.exchange.order(1, order.order_id).status == "Submitted"
    venue.market.move_to(tencent, D("301.00"))
    at(venue, HK, 2026, 11, 25, 16, 8)
    assert execs(venue.take())[0].price == D("301.0")
    assert venue.exchange.order(1, order.order_id).status == "Filled"


def test_hk_at_auction_limit_unfilled_at_the_open_carries_on_as_a_limit_order(venue):
    tencent = venue.con("700")
    at(venue, HK, 2026, 11, 25, 9, 5)
    venue.market.move_to(tencent, D("300.00"))
    order = venue.place("700", qty=100, order_type="LMT", lmt=D("250.0"), tif="AUC")
    venue.take()
    at(venue, HK, 2026, 11, 25, 9, 20)
    carried = venue.exchange.order(1, order.order_id)
    assert carried.status == "Submitted" and carried.tif == "DAY" and not execs(venue.take())
    venue.market.move_to(tencent, D("249.80"))
    venue.exchange.on_market([tencent])
    assert venue.exchange.order(1, order.order_id).status == "Filled"


def test_hk_sub_lot_order_fills_in_the_odd_lot_book_and_odd_lots_above_a_lot_are_refused(venue):
    tencent = venue.con("700")  # board lot 100
    ask = venue.market.top(tencent).ask
    odd = venue.place("700", qty=30, order_type="LMT", lmt=ask)
    events = venue.take()
    (fill,) = execs(events)
    assert fill.shares == 30 and fill.price == ask and statuses(events, odd.order_id)[-1] == "Filled"
    venue.place("700", qty=150, order_type="LMT", lmt=ask)
    assert errors(venue.take())[0][0] == 321
    venue.place("700", qty=30, order_type="MTL", tif="AUC")
    assert errors(venue.take())[0][0] == 321  # odd lots cannot join an auction


def test_day_orders_in_real_mode_live_to_the_next_session_close_skipping_holidays(book, rules):
    venue = Venue(book, rules, mode="real", now=datetime(2026, 11, 25, 17, 0, tzinfo=NY).astimezone(UTC))
    aapl = venue.con("AAPL")
    order = venue.place("AAPL", qty=10, lmt=D("1.00"))  # after Wednesday's close: it is Friday's order
    for moment, alive in ((datetime(2026, 11, 26, 12, 0, tzinfo=NY), True),  # Thanksgiving
                          (datetime(2026, 11, 27, 12, 59, tzinfo=NY), True),
                          (datetime(2026, 11, 27, 13, 1, tzinfo=NY), False)):  # Friday's half day closed at 13:00
        venue.clock.now = moment.astimezone(UTC)
        venue.exchange.on_market([aapl])
        assert venue.exchange.order(1, order.order_id).is_working == alive, moment
