"""ib_async's unset markers (UNSET_DOUBLE, UNSET_INTEGER, NaN, "") never leak into our models."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from ib_async import Contract, OrderState, PortfolioItem, Ticker
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER
from ibpanel.broker.convert import dec, int_id, num, position_from_portfolio, quote_model, what_if_model
from ibpanel.broker.models import Instrument, Market, MarketDataType


def test_unset_markers_become_none():
    for unset in (UNSET_DOUBLE, float("nan"), float("inf"), "", None, "abc", 1.7976931348623157e308):
        assert num(unset) is None
        assert dec(unset) is None
    assert int_id(UNSET_INTEGER) is None and int_id(0) is None and int_id(42) == 42
    assert num("12.5") == 12.5 and dec(0.1) == Decimal("0.1") and dec(100.0) == Decimal(100)


def test_empty_ticker_and_portfolio_and_what_if():
    instrument = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
    quote = quote_model(Ticker(contract=Contract(conId=265598)), instrument, MarketDataType.DELAYED, stale=False)
    assert all(getattr(quote, f) is None for f in ("bid", "ask", "last", "bid_size", "close", "volume"))
    assert quote.data_type is MarketDataType.DELAYED and quote.change is None

    item = PortfolioItem(Contract(conId=265598), 10.0, 200.0, UNSET_DOUBLE, 150.0, UNSET_DOUBLE, 0.0, "DU111111")
    position = position_from_portfolio(item, instrument)
    assert position.market_value == 2000.0  # never the cost basis (1500)
    assert position.unrealized_pnl is None and position.cost_basis == 1500.0

    state = OrderState(initMarginChange="", commission=UNSET_DOUBLE, equityWithLoanAfter="1000.5")
    what_if = what_if_model(state)
    assert what_if.init_margin_change is None and what_if.commission is None
    assert what_if.equity_with_loan_after == 1000.5 and not math.isnan(what_if.equity_with_loan_after)


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4))
def test_wire_prices_round_trip_exactly(price):
    """A price sent as a float comes back as the same Decimal (no 0.1 -> 0.1000000000000000055)."""
    assert dec(float(price)) == price
    assert num(float(price)) == float(price)


def test_a_quote_carries_the_trades_own_time_from_tick_45():
    aapl = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
    printed = datetime(2025, 3, 14, 13, 30, tzinfo=timezone.utc)
    for kept in (printed, "1741959000"):  # ib_async's datetime, or TWS's own text (epoch seconds)
        ticker = Ticker(contract=Contract(conId=265598), last=200.5, lastTimestamp=kept)
        assert quote_model(ticker, aapl, MarketDataType.LIVE, stale=False).last_time == printed
    delayed = Ticker(contract=Contract(conId=265598), last=200.5, delayedLastTimestamp=printed)
    assert quote_model(delayed, aapl, MarketDataType.DELAYED, stale=False).last_time == printed
    for unreadable in (None, "", "soon"):
        ticker.lastTimestamp = unreadable
        assert quote_model(ticker, aapl, MarketDataType.LIVE, stale=False).last_time is None
