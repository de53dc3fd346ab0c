"""Positions tab against the practice exchange: fills appear with P&L, totals per currency, close-position
prefill (opposite side, full quantity), show quote, CSV, and stale marking when the connection drops."""

from __future__ import annotations

import csv
from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.positions_tab import PositionsTab


def _buy_marketable(run_async, broker, symbol: str, quantity: int) -> None:
    instrument = run_async(broker.resolve(symbol))
    quote = run_async(broker.snapshot(instrument))
    order = run_async(broker.place(OrderRequest(symbol, Side.BUY, Decimal(quantity), OrderType.MKT)))
    assert order.order_id > 0
    return instrument, quote


def test_fills_show_with_totals_and_close_position_prefills_the_opposite_side(
    qtbot, broker, sim, run_async, ui_settings, tmp_path
):
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    _buy_marketable(run_async, broker, "AAPL", 20)
    _buy_marketable(run_async, broker, "0005.HK", 800)

    def held(symbol, qty):
        return any(p.instrument.symbol == symbol and p.quantity == qty for p in tab.model.rows())

    qtbot.waitUntil(lambda: held("AAPL", 20) and held("5", 800), timeout=15000)
    qtbot.waitUntil(lambda: all(p.market_value is not None for p in tab.model.rows()), timeout=10000)
    qtbot.waitUntil(lambda: "USD" in tab.totals_label.text() and "HKD" in tab.totals_label.text(), timeout=5000)
    totals = tab.totals()
    assert set(totals) >= {"USD", "HKD"}
    usd_value = sum(p.market_value for p in tab.model.rows() if p.currency == "USD")
    assert abs(totals["USD"]["market_value"] - usd_value) < 0.01

    # % of net liquidation, converted to the base currency, for both markets
    qtbot.waitUntil(lambda: all(tab.model.data(tab.model.index(i, 8)).endswith("%") for i in range(len(tab.model))),
                    timeout=10000)
    # display: market column, coloured P&L column exists, currency
    position = next(i for i, p in enumerate(tab.model.rows()) if p.instrument.symbol == "5")
    assert tab.model.data(tab.model.index(position, 0)) == "0005.HK"
    assert tab.model.data(tab.model.index(position, 1)) == "HK"
    assert tab.model.data(tab.model.index(position, 9)) == "HKD"

    with qtbot.waitSignal(tab.ticket_requested, timeout=2000) as blocker:
        tab.close_position(position)
    request = blocker.args[0]
    assert request["symbol"] == "0005.HK" and request["side"] == "SELL" and request["quantity"] == Decimal(800)
    with qtbot.waitSignal(tab.quote_requested, timeout=2000) as blocker:
        tab.show_quote(position)
    assert blocker.args == ["0005.HK"]

    path = tmp_path / "positions.csv"
    assert tab.export_csv(path) == len(tab.model)
    rows = {r["Symbol"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}
    assert rows["AAPL"]["Position"] == "20" and rows["0005.HK"]["Currency"] == "HKD"
    tab.view.selectRow(position)
    assert "0005.HK" in tab.copy_selection()

    # the exchange drops: positions are kept but marked stale
    sim.faults.drop_all()
    qtbot.waitUntil(lambda: tab.model.stale, timeout=10000)
    assert tab.stale_label.isVisible() and "Stale" in tab.stale_label.text()
    assert len(tab.model) >= 2
    tab.shutdown()


def test_close_position_from_main_window_opens_a_filled_ticket(qtbot, main_window, broker, run_async):
    _buy_marketable(run_async, broker, "MSFT", 15)
    positions = main_window.tab("positions")
    ticket = main_window.tab("ticket")
    qtbot.waitUntil(lambda: any(p.instrument.symbol == "MSFT" for p in positions.model.rows()), timeout=15000)
    row = next(i for i, p in enumerate(positions.model.rows()) if p.instrument.symbol == "MSFT")
    positions.close_position(row)
    assert main_window.current_tab_name() == "ticket"
    assert ticket.symbol_edit.text() == "MSFT"
    assert ticket.side() is Side.SELL and ticket.quantity_edit.text() == "15"
    qtbot.waitUntil(lambda: ticket.instrument is not None, timeout=10000)
    assert ticket.last_order is None  # prefilled, nothing sent
    assert all(o.status is not OrderStatus.SUBMITTED or o.side is not Side.SELL for o in broker.open_orders())


def test_reconnect_restores_live_positions_after_the_exchange_drops(
    qtbot, sim, make_broker, connect_params, run_async, ui_settings
):
    broker = make_broker()
    run_async(broker.connect(connect_params(sim, auto_reconnect=True)), timeout=15)
    _buy_marketable(run_async, broker, "NVDA", 12)
    tab = PositionsTab(broker, ui_settings)
    qtbot.addWidget(tab)
    qtbot.waitUntil(lambda: any(p.instrument.symbol == "NVDA" for p in tab.model.rows()), timeout=15000)
    sim.faults.drop_all()
    qtbot.waitUntil(lambda: tab.model.stale, timeout=10000)
    assert any(p.instrument.symbol == "NVDA" for p in tab.model.rows())  # kept, greyed
    qtbot.waitUntil(lambda: broker.status.state.value == "connected" and not tab.model.stale, timeout=20000)
    qtbot.waitUntil(lambda: any(p.instrument.symbol == "NVDA" and p.quantity == 12 for p in tab.model.rows()),
                    timeout=10000)
    assert tab.stale_label.text() == ""
    tab.shutdown()
    run_async(broker.disconnect(), timeout=10)
