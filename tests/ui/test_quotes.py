"""Quotes tab against the practice exchange: a mixed US / HK watchlist that streams, saves and removes,
flashes on moves, a chart with bars and live points, and double-click to the ticket."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import Market
from ibpanel.ui.quotes_tab import QuotesTab
from ibpanel.ui.settings import Settings
from PySide6.QtCore import Qt


def _last_of(tab, symbol):
    row = next((q for q in tab.model.rows() if q.instrument.display == symbol), None)
    return None if row is None else row.last


def test_watchlist_streams_saves_flashes_charts_and_fills_the_ticket(qtbot, broker, sim, ui_settings):
    sim.set_quote_interval(0.05)
    ui_settings.set_json("quotes/watchlist", ["AAPL", "700"])
    tab = QuotesTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.resize(1000, 700)
    tab.show()
    qtbot.waitUntil(lambda: len(tab.model) == 2 and tab.populated(), timeout=15000)
    assert {q.instrument.market for q in tab.model.rows()} == {Market.US, Market.HK}

    tab.symbol_edit.setText("0005.hk")
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(tab.model) == 3, timeout=10000)
    assert Settings("default").get_json("quotes/watchlist", []) == ["AAPL", "700", "0005.hk"]

    # streaming: ticks are applied and the table shows the newest values after a flush
    start = tab.ticks_applied
    qtbot.waitUntil(lambda: tab.ticks_applied > start + 10, timeout=10000)
    tab.model.flush()
    position = tab.model.position_of(next(q.instrument.key for q in tab.model.rows() if q.instrument.symbol == "AAPL"))
    shown_last = tab.model.data(tab.model.index(position, 4))
    assert shown_last == f"{tab.model.row(position).last:,.2f}"
    assert tab.model.data(tab.model.index(position, 8)) in ("live", "delayed")
    change = tab.model.data(tab.model.index(position, 5))
    assert change == "" or (change[0] in "+-" and len(change.split(".")[1]) == 2)  # cents at the price level
    qtbot.waitUntil(lambda: bool(tab._flash), timeout=10000)  # a price move flashes its row

    # chart of the selected symbol: bars then live points, redrawn from the timer
    tab.view.selectRow(position)
    qtbot.waitUntil(lambda: tab.chart.point_count()[0] > 10, timeout=10000)
    qtbot.waitUntil(lambda: tab.chart.point_count()[1] >= 2, timeout=10000)
    redraws = tab.chart.redraws
    assert redraws >= 2
    tab.chart.bar_size_combo.setCurrentText("1 min")
    qtbot.waitUntil(lambda: tab.chart.redraws > redraws, timeout=10000)

    # double-click -> ticket request with the last price snapped to the tick
    with qtbot.waitSignal(tab.ticket_requested, timeout=2000) as blocker:
        tab.request_ticket(position)
    request = blocker.args[0]
    assert request["symbol"] == "AAPL" and request["side"] is None
    assert isinstance(request["limit_price"], Decimal) and request["limit_price"] == request["limit_price"].quantize(Decimal("0.01"))

    # a symbol IB does not know: a message, nothing saved
    tab.add_symbol("ZZZZNOPE")
    qtbot.waitUntil(lambda: "ZZZZNOPE" in tab.message.text(), timeout=10000)
    assert "ZZZZNOPE" not in Settings("default").get_json("quotes/watchlist", [])

    # remove
    hk = tab.model.position_of(next(q.instrument.key for q in tab.model.rows() if q.instrument.symbol == "700"))
    tab.view.selectRow(hk)
    tab.remove_button.click()
    assert len(tab.model) == 2
    assert Settings("default").get_json("quotes/watchlist", []) == ["AAPL", "0005.hk"]
    tab.shutdown()


def test_disconnect_marks_quotes_stale(qtbot, broker, sim, ui_settings):
    ui_settings.set_json("quotes/watchlist", ["MSFT"])
    tab = QuotesTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitUntil(tab.populated, timeout=15000)
    sim.faults.send_connectivity(1100)  # TWS lost its IB servers: connected, but data is not live
    qtbot.waitUntil(lambda: tab.model.stale, timeout=10000)
    assert "lost its connection" in tab.stale_label.text()
    sim.faults.send_connectivity(1102)
    qtbot.waitUntil(lambda: not tab.model.stale, timeout=10000)
    assert not tab.stale_label.isVisible()
    sim.faults.drop_all()
    qtbot.waitUntil(lambda: tab.model.stale, timeout=10000)
    assert tab.stale_label.isVisible()
    assert tab.model.data(tab.model.index(0, 4), Qt.ItemDataRole.ForegroundRole).name() == "#8c959f"
    tab.shutdown()
