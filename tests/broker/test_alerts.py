"""The alert engine on its own: crossings fire once, percent change, order filled, persistence."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.broker.alerts import AlertBook, AlertKind, parse_threshold
from ibpanel.broker.models import Instrument, Market, OrderStatus, OrderView, Quote, Side

AAPL = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
HSBC = Instrument("5", Market.HK, "SEHK", "HKD", con_id=5)


def q(price, instrument=AAPL, close=None, stale=False):
    return Quote(instrument, last=price, close=close, stale=stale)


def test_above_fires_once_on_the_crossing_and_not_on_a_first_price_already_above():
    book = AlertBook(clock=lambda: 100.0)
    alert = book.add(AlertKind.ABOVE, "AAPL", Decimal("200"))
    assert book.on_quote(q(205.0)) == []  # first price seen: no crossing
    assert book.on_quote(q(199.0)) == []
    hits = book.on_quote(q(200.0))
    assert [h.alert.id for h in hits] == [alert.id] and "crossed above 200" in hits[0].message
    assert book.on_quote(q(199.0)) == [] and book.on_quote(q(201.0)) == []  # spent: never twice
    assert book.alerts()[0].triggered == 100.0
    book.rearm(alert.id)
    assert book.on_quote(q(198.0)) == [] and len(book.on_quote(q(202.0))) == 1


def test_below_uses_the_midpoint_when_there_is_no_last_and_ignores_stale_quotes():
    book = AlertBook()
    book.add(AlertKind.BELOW, "0005.HK", Decimal("60"))
    assert book.on_quote(Quote(HSBC, bid=60.5, ask=60.6)) == []
    assert book.on_quote(q(59.0, HSBC, stale=True)) == []
    hits = book.on_quote(Quote(HSBC, bid=59.9, ask=60.0))
    assert len(hits) == 1 and "0005.HK crossed below 60" in hits[0].message
    assert book.on_quote(q(61.0)) == []  # another symbol's quote


def test_percent_change_alerts_up_and_down():
    book = AlertBook()
    up = book.add(AlertKind.CHANGE_PCT, "AAPL", Decimal("2"))
    down = book.add(AlertKind.CHANGE_PCT, "AAPL", Decimal("-3"))
    assert book.on_quote(q(101.0, close=100.0)) == []
    assert [h.alert.id for h in book.on_quote(q(102.5, close=100.0))] == [up.id]
    assert [h.alert.id for h in book.on_quote(q(96.9, close=100.0))] == [down.id]
    assert book.on_quote(q(90.0, close=100.0)) == []


def _order(order_id, status):
    return OrderView(order_id, None, None, None, "DU1", AAPL, Side.BUY, Decimal(10), "MKT", None, None, "DAY", False,
                     status, filled=Decimal(10), avg_fill_price=230.5)


def test_order_filled_for_one_order_and_for_any_order():
    book = AlertBook()
    one = book.add(AlertKind.FILLED, order_id=7)
    anyone = book.add(AlertKind.FILLED)
    assert book.on_order(_order(7, OrderStatus.SUBMITTED)) == []
    hits = book.on_order(_order(7, OrderStatus.FILLED))
    assert {h.alert.id for h in hits} == {one.id, anyone.id} and "BUY 10 AAPL at 230.5" in hits[0].message
    assert book.on_order(_order(7, OrderStatus.FILLED)) == []  # the same fill reported again
    assert [h.alert.id for h in book.on_order(_order(8, OrderStatus.FILLED))] == [anyone.id]


def test_alerts_survive_a_round_trip_through_json_and_skip_unreadable_rows():
    book = AlertBook(clock=lambda: 5.0)
    book.add(AlertKind.ABOVE, "AAPL", Decimal("230.15"))
    spent = book.add(AlertKind.BELOW, "0005.HK", Decimal("60"))
    book.on_quote(q(61.0, HSBC))
    book.on_quote(q(59.0, HSBC))
    rows = book.to_json() + [{"kind": "nonsense"}, "junk"]
    again = AlertBook.from_json(rows)
    assert again.alerts() == book.alerts()
    assert next(a for a in again.alerts() if a.id == spent.id).triggered == 5.0
    assert int(again.add(AlertKind.FILLED).id) > int(spent.id)  # new ids never reuse saved ones
    assert AlertBook.from_json("not a list").alerts() == ()


@pytest.mark.parametrize("text,kind,message", [
    ("abc", AlertKind.ABOVE, "not a number"),
    ("0", AlertKind.BELOW, "above 0"),
    ("0", AlertKind.CHANGE_PCT, "other than 0"),
])
def test_bad_thresholds_say_what_to_type(text, kind, message):
    with pytest.raises(ValueError, match=message):
        parse_threshold(text, kind)
    assert parse_threshold("-2.5%", AlertKind.CHANGE_PCT) == Decimal("-2.5")
