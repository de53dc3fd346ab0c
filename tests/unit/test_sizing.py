"""Sizing by money and by risk (exact Decimal arithmetic, rounded down to whole board lots) and presets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibpanel.broker.models import Market, OrderType, Side, TimeInForce
from ibpanel.broker.rules import TickTable
from ibpanel.broker.sizing import (
    SizingError,
    TicketPreset,
    parse_decimal,
    preset_for,
    quantity_for_money,
    quantity_for_risk,
)

CENT = TickTable.single(Decimal("0.01"))


def test_money_sizing_rounds_down_to_whole_shares_and_board_lots():
    assert quantity_for_money(Decimal(10_000), Decimal("221.37")) == 45  # 45.17… shares
    assert quantity_for_money(Decimal(10_000), Decimal("200")) == 50  # exact: not one share less
    assert quantity_for_money(Decimal(100_000), Decimal("380.20"), lot=100) == 200  # 263.0 shares: 2 lots
    assert quantity_for_money(Decimal(1_000), Decimal("380.20"), lot=100) == 0  # not one lot: nothing


def test_risk_sizing_loses_at_most_the_risk_to_the_stop():
    # 0.5% of 1,000,000 = 5,000 at risk; 2.37 per share to the stop -> 2,109.7 shares -> 2,109
    assert quantity_for_risk(Decimal(1_000_000), Decimal("0.5"), Decimal("221.37"), Decimal("219.00")) == 2109
    # a sell's stop is above the entry; HK board lot of 500
    assert quantity_for_risk(Decimal(2_000_000), Decimal(1), Decimal("50.00"), Decimal("52.50"), lot=500) == 8000


def test_sizing_refuses_what_cannot_give_a_quantity():
    with pytest.raises(SizingError, match="stop"):
        quantity_for_risk(Decimal(1000), Decimal(1), Decimal(10), Decimal(10))
    with pytest.raises(SizingError, match="net liquidation"):
        quantity_for_risk(Decimal(0), Decimal(1), Decimal(10), Decimal(9))
    with pytest.raises(SizingError, match="price"):
        quantity_for_money(Decimal(1000), Decimal(0))
    with pytest.raises(SizingError, match="not a number"):
        parse_decimal("ten")
    assert parse_decimal("10,000") == Decimal(10000) and parse_decimal("0.5%") == Decimal("0.5")


@settings(max_examples=200, deadline=None)
@given(amount=st.decimals(min_value=1, max_value=10_000_000, places=2),
       price=st.decimals(min_value=Decimal("0.01"), max_value=10_000, places=2),
       lot=st.sampled_from([1, 100, 200, 500, 1000]))
def test_money_sizing_never_spends_more_and_is_the_largest_such_lot_count(amount, price, lot):
    shares = quantity_for_money(amount, price, lot)
    assert shares % lot == 0
    assert shares * price <= amount < (shares + lot) * price


def test_presets_by_symbol_then_market_and_their_prices():
    presets = {"US": {"quantity": 50, "order_type": "LMT", "tif": "GTC", "limit_offset_pct": "0.1",
                      "take_profit_pct": "2", "stop_loss_pct": "1", "attach": "bracket"},
               "AAPL": {"quantity": 10, "order_type": "MKT"},
               "HK": {"order_type": "NOPE", "tif": "DAY", "quantity": "x"}}
    us = preset_for(presets, Market.US, "MSFT")
    assert (us.quantity, us.order_type, us.tif, us.attach) == (50, OrderType.LMT, TimeInForce.GTC, "bracket")
    assert preset_for(presets, Market.US, "aapl").quantity == 10
    hk = preset_for(presets, Market.HK, "0700.HK")
    assert (hk.quantity, hk.order_type) == (0, OrderType.LMT)  # unreadable values fall back to defaults
    assert us.prices(Side.BUY, Decimal("200.00"), CENT) == {
        "limit_price": Decimal("199.80"), "take_profit": Decimal("203.80"), "stop_loss": Decimal("197.80")}
    assert TicketPreset.from_dict(us.to_dict()) == us
    trail = TicketPreset(order_type=OrderType.MKT, stop_loss_pct=Decimal("1.5"), attach="trailing_stop")
    assert trail.prices(Side.BUY, Decimal("200.00"), CENT) == {"stop_loss_trail": Decimal("3.00")}
