"""The flatten plan on its own: sides, whole board lots, limit offsets on the tick grid, what is not closed."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.flatten import plan_flatten
from ibpanel.broker.models import Instrument, Market, OrderType, Position, Quote, Side
from ibpanel.broker.rules import TickTable

AAPL = Instrument("AAPL", Market.US, "SMART", "USD", con_id=1, board_lot=1, lot_source="US whole shares")
HSBC = Instrument("5", Market.HK, "SEHK", "HKD", con_id=5, board_lot=400, lot_source="contract details")
NOLOT = Instrument("9999", Market.HK, "SEHK", "HKD", con_id=9, board_lot=0)
CENT = TickTable.single("0.01")
HK_TICKS = TickTable.single("0.05")


def test_long_and_short_positions_close_on_the_opposite_side_in_whole_lots():
    plan = plan_flatten("DU1", [Position("DU1", AAPL, Decimal(-30), 200.0), Position("DU1", HSBC, Decimal(1250), 60.0),
                                Position("DU2", AAPL, Decimal(5), 200.0), Position("DU1", NOLOT, Decimal(100), 1.0)])
    sent = {(r.symbol, r.side, r.quantity, r.order_type, r.account) for r in plan.requests}
    assert sent == {("AAPL", Side.BUY, Decimal(30), OrderType.MKT, "DU1"),
                    ("0005.HK", Side.SELL, Decimal(1200), OrderType.MKT, "DU1")}  # the other account's stays
    text = plan.describe()
    assert "50 odd-lot share(s) stay" in text and "board lot of HK stock 9999 is unknown" in text


def test_limit_goes_the_offset_through_the_touch_and_needs_a_price():
    quotes = {AAPL.key: Quote(AAPL, bid=200.00, ask=200.02), HSBC.key: Quote(HSBC)}
    ticks = {AAPL.key: CENT, HSBC.key: HK_TICKS}
    plan = plan_flatten("DU1", [Position("DU1", AAPL, Decimal(10), 1.0), Position("DU1", HSBC, Decimal(-400), 1.0)],
                        order_type=OrderType.LMT, offset_ticks=3, quotes=quotes, ticks=ticks)
    (sell,) = plan.requests
    assert sell.side is Side.SELL and sell.limit_price == Decimal("199.97")
    assert "0005.HK: not closed: no bid, ask or last price" in plan.describe()
    buy = plan_flatten("DU1", [Position("DU1", AAPL, Decimal(-10), 1.0)], order_type=OrderType.LMT, offset_ticks=2,
                       quotes=quotes, ticks=ticks).requests[0]
    assert buy.side is Side.BUY and buy.limit_price == Decimal("200.04")
