"""The Qt-free order draft: numbers read exactly as typed in the trader's locale, whole drafts from every
entry point, and the one symbol grammar."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.broker.draft import (
    DraftIncomplete,
    NumberError,
    NumberFormat,
    OrderDraft,
    describe_request,
    parse_price,
    parse_quantity,
)
from ibpanel.broker.models import Instrument, Market, OrderType, Side, TimeInForce

GERMAN = NumberFormat(decimal_point=",", group_separator=".")
FRENCH = NumberFormat(decimal_point=",", group_separator="\u202f")
HSBC = Instrument("5", Market.HK, "SEHK", "HKD", con_id=5, board_lot=400)


@pytest.mark.parametrize("text", ["1.5", "300.05", "0.5", "1,5", "12,50"])
def test_a_fractional_or_ambiguous_quantity_is_refused_never_read_as_another_number(text):
    with pytest.raises(NumberError) as refused:
        parse_quantity(text)
    assert text in str(refused.value)


@pytest.mark.parametrize(("text", "shares"), [("100", 100), ("1,000", 1000), ("12,500", 12500), (" 400 ", 400)])
def test_whole_quantities_with_thousands_separators_are_read_as_typed(text, shares):
    assert parse_quantity(text) == Decimal(shares)


def test_a_german_locale_reads_its_own_separators_and_refuses_the_other_meaning():
    assert parse_quantity("1.000", GERMAN) == 1000
    assert parse_price("1.234,5", GERMAN) == Decimal("1234.5")
    assert parse_price("221,37", GERMAN) == Decimal("221.37")
    with pytest.raises(NumberError):
        parse_quantity("1,5", GERMAN)  # a decimal comma here: fractional, refused
    with pytest.raises(NumberError):
        parse_price("1.5", GERMAN)  # "." groups thousands here: 1.5 is neither 1.5 nor 15
    assert parse_price("1\u202f234,50", FRENCH) == Decimal("1234.50")
    assert parse_price("98.5", FRENCH) == Decimal("98.5")  # "." is a decimal point where it groups nothing


def test_prices_keep_every_decimal_typed():
    assert str(parse_price("221.30")) == "221.30"
    assert parse_price("0.0001") == Decimal("0.0001")
    for bad in ("", ".", "-1", "0", "1e5", "12..5", "abc"):
        with pytest.raises(NumberError):
            parse_price(bad)


def test_an_empty_or_unreadable_field_is_a_problem_and_makes_no_request():
    draft = OrderDraft(symbol="AAPL", side=Side.BUY, quantity="", limit_price="221.30")
    assert set(draft.problems()) == {"quantity"}
    with pytest.raises(DraftIncomplete):
        draft.to_request()
    assert draft.estimated_value(last=221.3) is None  # nothing to estimate from a blank quantity
    assert set(OrderDraft(symbol="AAPL", quantity="1.5", limit_price="1").problems()) == {"side", "quantity"}


def test_a_ready_draft_is_exactly_the_request_sent():
    draft = OrderDraft(symbol=" aapl ", side=Side.SELL, quantity="1,200", order_type=OrderType.STP_LMT,
                       limit_price="221.30", stop_price="221.5", tif=TimeInForce.GTC, outside_rth=True,
                       account="DU222222")
    request = draft.to_request()
    assert (request.symbol, request.side, request.quantity) == ("aapl", Side.SELL, Decimal(1200))
    assert (request.limit_price, request.stop_price) == (Decimal("221.30"), Decimal("221.5"))
    assert (request.tif, request.outside_rth, request.account, request.market) == (TimeInForce.GTC, True, "DU222222", None)
    assert describe_request(request, None) == "SELL 1200 aapl STP LMT limit 221.30 stop 221.5 GTC outside RTH"


def test_an_order_type_without_a_price_field_ignores_that_field():
    draft = OrderDraft(symbol="AAPL", side=Side.BUY, quantity="5", order_type=OrderType.MKT, limit_price="junk")
    assert draft.problems() == {}
    assert draft.to_request().limit_price is None


def test_the_ticket_reads_symbols_with_parse_symbol_and_names_markets_in_the_windows_words():
    assert OrderDraft(symbol="SEHK:700").spec().symbol == "700"
    assert OrderDraft(symbol="SEHK:700").symbol_problem() is None
    problem = OrderDraft(symbol="AAPL", market=Market.HK).symbol_problem()
    assert "Hong Kong" in problem and "Auto" in problem
    assert "USStock" not in problem and "HShare" not in problem
    problem = OrderDraft(symbol="700", market=Market.US).symbol_problem()
    assert "USStock" not in problem and "HShare" not in problem and "Auto" in problem


def test_a_quote_double_click_makes_a_whole_draft_with_one_board_lot_and_no_leftovers():
    draft = OrderDraft.from_mapping({"symbol": "0005.HK", "instrument": HSBC, "market": Market.HK, "side": None,
                                     "quantity": None, "limit_price": Decimal("98.5")})
    assert draft.instrument is HSBC and draft.market is None  # Auto: "0005.HK" names Hong Kong by itself
    assert (draft.side, draft.quantity, draft.limit_price, draft.order_type) == (None, "400", "98.50", OrderType.LMT)  # the tick (0.05) shows two decimals
    assert OrderDraft.from_mapping({"instrument": HSBC}, default_side=Side.BUY).side is Side.BUY
    assert draft.with_symbol("AAPL").instrument is None  # another symbol drops the instrument
    assert draft.with_symbol("AAPL").spec().market is Market.US

