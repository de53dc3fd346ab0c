"""Per-position P&L from IB's single-position P&L against the practice exchange, and the "All accounts"
view totalling every managed account by currency."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderType, Side
from ibpanel.ui.positions_tab import PositionsTab


def test_daily_and_unrealized_pnl_per_position_equal_the_exchanges(qtbot, broker, sim, run_async, ui_settings):
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    account = broker.status.account
    sim.set_quote_interval(3600.0)  # prices hold still: every P&L the exchange sends from now on is current
    for symbol, qty in (("AAPL", 20), ("0005.HK", 800)):
        run_async(broker.place(OrderRequest(symbol, Side.BUY, Decimal(qty), OrderType.MKT)))
    qtbot.waitUntil(lambda: len(tab.model) == 2 and all(p.daily_pnl is not None for p in tab.model.rows()),
                    timeout=15000)
    accounts = sim.server.accounts

    def matches() -> bool:
        for position in tab.model.rows():
            _qty, daily, unrealized, _real, _value = sim.call(accounts.pnl_single, account, position.instrument.con_id)
            if position.daily_pnl is None or abs(position.daily_pnl - float(daily)) > 0.005:
                return False
            if abs(position.single_unrealized_pnl - float(unrealized)) > 0.005:
                return False
        return True

    qtbot.waitUntil(matches, timeout=15000)
    row = next(i for i, p in enumerate(tab.model.rows()) if p.instrument.symbol == "AAPL")
    column = next(i for i, c in enumerate(tab.model.columns) if c.key == "daily_pnl")
    assert tab.model.data(tab.model.index(row, column)) != ""
    tab.shutdown()


def test_all_accounts_view_totals_every_managed_account_by_currency(qtbot, broker, run_async, ui_settings):
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    first, second = broker.status.accounts[:2]
    run_async(broker.place(OrderRequest("AAPL", Side.BUY, Decimal(10), OrderType.MKT, account=first)))
    run_async(broker.place(OrderRequest("AAPL", Side.BUY, Decimal(5), OrderType.MKT, account=second)))
    run_async(broker.place(OrderRequest("0005.HK", Side.BUY, Decimal(400), OrderType.MKT, account=second)))
    qtbot.waitUntil(lambda: len(broker.positions(second)) == 2 and len(broker.positions(first)) == 1, timeout=15000)
    qtbot.waitUntil(lambda: len(tab.model) == 1, timeout=10000)  # this account only
    assert tab.scope_combo.isVisibleTo(tab)
    tab.scope_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: len(tab.model) == 3 and all(p.market_value is not None for p in tab.model.rows()),
                    timeout=15000)
    assert {p.account for p in tab.model.rows()} == {first, second}
    totals = tab.totals()
    assert set(totals) == {"USD", "HKD"}
    usd = sum(p.market_value for p in tab.model.rows() if p.currency == "USD")
    assert abs(totals["USD"]["market_value"] - usd) < 0.01
    assert sum(p.quantity for p in tab.model.rows() if p.currency == "USD") == 15
    tab.shutdown()
