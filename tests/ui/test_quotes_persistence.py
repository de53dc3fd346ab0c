"""The Quotes tab keeps what the trader arranged across restarts: the watchlist's order and the chart's bar size."""

from __future__ import annotations

from ibpanel.ui.quotes_tab import QuotesTab
from ibpanel.ui.settings import Settings

ARRANGED = ["2800.HK", "MSFT", "0005.HK", "BRK.B", "AAPL", "1299.HK", "NVDA", "0700.HK"]


def _open(qtbot, broker, settings) -> QuotesTab:
    tab = QuotesTab(broker, settings)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def test_watchlist_order_and_bar_size_survive_a_restart(qtbot, broker, ui_settings):
    ui_settings.set_json("quotes/watchlist", ARRANGED)
    tab = _open(qtbot, broker, ui_settings)
    qtbot.waitUntil(lambda: len(tab.model) == len(ARRANGED), timeout=15000)
    tab.model.flush()
    assert [q.instrument.display for q in tab.model.rows()] == ARRANGED
    tab.add_symbol("TSLA")
    qtbot.waitUntil(lambda: len(tab.model) == len(ARRANGED) + 1, timeout=10000)
    tab.chart.bar_size_combo.setCurrentText("1 hour")
    tab.shutdown()
    ui_settings.sync()

    again = _open(qtbot, broker, Settings("default"))  # the next start reads what the last one saved
    try:
        qtbot.waitUntil(lambda: len(again.model) == len(ARRANGED) + 1, timeout=15000)
        again.model.flush()
        assert [q.instrument.display for q in again.model.rows()] == [*ARRANGED, "TSLA"]
        assert again.chart.bar_size_combo.currentText() == "1 hour"
    finally:
        again.shutdown()
