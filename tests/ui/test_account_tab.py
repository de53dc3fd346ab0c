"""Account tab: the practice account's numbers fill in, P&L is coloured, the chart grows, stale is marked."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from ibpanel.broker.models import AccountSummary, ConnectionState, ConnectionStatus, PnL
from ibpanel.ui.account_tab import AccountTab
from ibpanel.ui.formatting import format_money


def _tab(qtbot, broker, settings) -> AccountTab:
    tab = AccountTab(broker, settings)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def test_account_values_fill_in_from_the_exchange(qtbot, broker, ui_settings):
    tab = _tab(qtbot, broker, ui_settings)
    qtbot.waitUntil(tab.populated, timeout=10000)
    summary = broker.account_summary()
    assert summary is not None and summary.account == broker.status.account
    assert tab.title_label.text() == f"Account {broker.status.account}"
    net_liq = tab.cards["net_liquidation"].value.text()
    assert format_money(summary.net_liquidation) in net_liq
    for currency in ("USD", "HKD"):
        text = tab.cards[f"cash:{currency}"].value.text()
        assert text.endswith(currency) and text != "—"
    for key in ("buying_power", "available_funds", "excess_liquidity"):
        assert tab.cards[key].value.text() != "—", key
    assert not tab.stale_label.isVisible()
    # The chart collects a point per update and draws from its timer, not per event.
    qtbot.waitUntil(lambda: tab.chart_points() >= 1, timeout=5000)
    qtbot.waitUntil(lambda: tab.curve.getData()[0] is not None and len(tab.curve.getData()[0]) >= 1, timeout=3000)
    tab.shutdown()
    assert not tab.redraw_timer.isActive()


def test_a_tab_opened_while_orders_are_still_read_shows_the_values_already_in(
        qtbot, sim, make_broker, connect_params, ui_settings, qasync_loop):
    sim.server.faults.delay_replies(0.3)  # each reply held: the connect spends a while reading orders
    broker = make_broker()
    connecting = asyncio.ensure_future(broker.connect(connect_params(sim)), loop=qasync_loop)
    qtbot.waitUntil(lambda: broker.account_summary() is not None, timeout=10000)
    assert broker.status.state is ConnectionState.CONNECTING
    tab = _tab(qtbot, broker, ui_settings)  # built now, as the panel builds a tab when it is first opened
    assert tab.populated()
    net_liq = tab.cards["net_liquidation"].value
    assert format_money(broker.account_summary().net_liquidation) in net_liq.text()
    assert net_liq.property("stale") == "true"  # shown, but marked until the connect has finished
    qtbot.waitUntil(connecting.done, timeout=15000)
    assert connecting.result().state is ConnectionState.CONNECTED
    qtbot.waitUntil(lambda: net_liq.property("stale") == "false", timeout=5000)
    tab.shutdown()


def test_stale_when_disconnected_keeps_the_last_numbers(qtbot, broker, ui_settings, run_async):
    tab = _tab(qtbot, broker, ui_settings)
    qtbot.waitUntil(tab.populated, timeout=10000)
    before = tab.cards["net_liquidation"].value.text()
    run_async(broker.disconnect())
    qtbot.waitUntil(tab.stale_label.isVisible, timeout=5000)
    assert tab.stale_label.text().startswith("STALE")
    assert tab.cards["net_liquidation"].value.text() == before
    assert tab.cards["net_liquidation"].value.property("stale") == "true"
    tab.shutdown()


def test_pnl_is_coloured_and_other_accounts_ignored(qtbot, make_broker, ui_settings):
    tab = _tab(qtbot, make_broker(), ui_settings)
    status = ConnectionStatus(state=ConnectionState.CONNECTED, accounts=("DU1", "DU2"), account="DU1", is_paper=True)
    tab._on_state_changed(status)
    tab._on_account_changed(
        AccountSummary(
            account="DU1", base_currency="USD", net_liquidation=1_000_000.0,
            cash_by_currency={"USD": 500_000.0, "HKD": 3_900_000.0, "EUR": 10.0},
        )
    )
    tab._on_pnl_changed(PnL(account="DU1", daily=-1234.5, unrealized=250.0, realized=0.0))
    assert tab.cards["daily_pnl"].value.property("tone") == "down"
    assert tab.cards["unrealized_pnl"].value.property("tone") == "up"
    assert tab.cards["realized_pnl"].value.property("tone") == ""
    assert "EUR" in tab.cards["cash:EUR"].value.text()  # currencies beyond USD / HKD get their own card
    tab._on_pnl_changed(PnL(account="DU2", daily=999.0, unrealized=None, realized=None))
    assert tab.cards["daily_pnl"].value.property("tone") == "down"
    # Choosing another account clears the first one's numbers until the new ones arrive.
    tab._on_state_changed(replace(status, account="DU2"))
    assert tab.cards["net_liquidation"].value.text() == "—"
    assert tab.chart_points() == 0
    tab.shutdown()


def test_chart_time_axis_follows_the_data(qtbot, broker, ui_settings):
    """QA F17: no empty minutes into the future; the session's points span the visible range."""
    from ibpanel.ui.account_tab import MIN_CHART_PAD_S, MIN_CHART_SPAN_S, chart_x_range

    tab = _tab(qtbot, broker, ui_settings)
    qtbot.waitUntil(lambda: tab.curve.getData()[0] is not None and len(tab.curve.getData()[0]) >= 1, timeout=10000)
    xs = tab.curve.getData()[0]
    left, right = tab.chart_x_view()
    assert left < xs[0] and right > xs[-1]  # every point visible
    assert right - xs[-1] <= MIN_CHART_PAD_S + 0.5  # the axis ends just after the last point
    assert right - left == pytest.approx(MIN_CHART_SPAN_S, abs=1.0)  # a young session: 30 s, read as clock times
    # A long session: the data plus 3% of its span each side, nothing more.
    assert chart_x_range(1000.0, 4600.0) == (1000.0 - 108.0, 4600.0 + 108.0)
    assert chart_x_range(1000.0, 1000.0) == (1001.0 - MIN_CHART_SPAN_S, 1001.0)
    tab.shutdown()


def test_numbers_that_arrive_while_the_tab_is_hidden_are_shown_when_it_comes_forward(qtbot, make_broker, ui_settings):
    tab = AccountTab(make_broker(), ui_settings)  # not shown: behind another tab
    qtbot.addWidget(tab)
    status = ConnectionStatus(state=ConnectionState.CONNECTED, accounts=("DU1",), account="DU1", is_paper=True)
    tab._on_state_changed(status)
    tab._on_account_changed(AccountSummary(account="DU1", base_currency="USD", net_liquidation=1_234_567.0))
    tab._on_pnl_changed(PnL(account="DU1", daily=-10.0, unrealized=None, realized=None))
    assert tab.populated()
    tab.show()
    assert tab.cards["net_liquidation"].value.text() == f"{format_money(1_234_567.0)} USD"
    assert tab.cards["daily_pnl"].value.property("tone") == "down"
    assert tab.title_label.text() == "Account DU1"
    tab.shutdown()
