"""The Volume column has room for any volume the Quotes tab can show (up to 9,999,999, then 12.34M), so a
volume that grows during the session is never cut off while the table has free space - also with column
widths saved by an earlier version."""

from __future__ import annotations

from ibpanel.ui import formatting as fmt
from ibpanel.ui.quotes_tab import QuotesTab
from ibpanel.ui.settings import Settings


def _volume_fits(tab, text: str) -> bool:
    column = next(i for i, c in enumerate(tab.model.columns) if c.key == "volume")
    room = tab.view.horizontalHeader().sectionSize(column) - 12  # cell padding and grid line
    return tab.view.fontMetrics().horizontalAdvance(text) <= room


def test_volume_column_fits_every_volume_the_tab_can_show(qtbot, broker, ui_settings):
    ui_settings.set_json("quotes/watchlist", ["AAPL", "0005.HK"])
    tab = QuotesTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.resize(1200, 700)
    tab.show()
    try:
        qtbot.waitUntil(lambda: len(tab.model) == 2 and tab.populated(), timeout=15000)
        # the first rows' fit runs on the next event-loop turn (a zero-delay timer)
        qtbot.waitUntil(lambda: _volume_fits(tab, fmt.format_volume(9_999_999)), timeout=3000)
        for volume in (99_990_000, 999_990_000_000):
            assert _volume_fits(tab, fmt.format_volume(volume)), fmt.format_volume(volume)
        column = next(i for i, c in enumerate(tab.model.columns) if c.key == "volume")
        tab.view.horizontalHeader().resizeSection(column, 40)  # as an earlier version saved it: fitted to "64,500"
    finally:
        tab.shutdown()

    again = QuotesTab(broker, Settings("default"))
    qtbot.addWidget(again)
    again.resize(1200, 700)
    again.show()
    try:
        assert _volume_fits(again, fmt.format_volume(9_999_999))
    finally:
        again.shutdown()
