"""The Quotes tab's partial repaints never leave a cell on screen behind its quote.

A flush repaints, of the rows in view, only the cells whose text, sign colour or note changed
(ui/table_model.py). This test keeps its own copy of "the screen": a cell is (re)drawn from the
model only when a dataChanged, a reset or a layout change covers it, as the view does. While the
practice exchange streams fast, after every flush the drawn text of every cell in view must be what
the model now says, which must be the newest quote the broker holds.
"""

from __future__ import annotations

from ibpanel.ui.quotes_tab import QuotesTab
from PySide6.QtCore import Qt

WATCHLIST = ["AAPL", "MSFT", "NVDA", "700", "0005.HK", "2800.HK"]


def test_every_cell_in_view_shows_the_newest_quote_after_each_flush(qtbot, broker, sim, ui_settings):
    sim.set_quote_interval(0.02)
    ui_settings.set_json("quotes/watchlist", WATCHLIST)
    tab = QuotesTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.resize(1000, 700)
    tab.show()
    try:
        _check_repaints(qtbot, broker, tab)
    finally:
        tab.shutdown()


def _check_repaints(qtbot, broker, tab) -> None:
    qtbot.waitUntil(lambda: len(tab.model) == len(WATCHLIST) and tab.populated(), timeout=15000)
    model = tab.model
    columns = range(len(model.columns))
    screen: dict[tuple[int, int], str] = {}

    def draw(top: int, bottom: int, left: int, right: int) -> None:
        for row in range(top, bottom + 1):
            for column in range(left, right + 1):
                screen[row, column] = model.data(model.index(row, column))

    def draw_all(*_args) -> None:
        screen.clear()
        draw(0, len(model) - 1, 0, len(model.columns) - 1)

    model.dataChanged.connect(lambda a, b, _roles=None: draw(a.row(), b.row(), a.column(), b.column()))
    model.layoutChanged.connect(draw_all)
    model.modelReset.connect(draw_all)
    model.rowsInserted.connect(draw_all)
    draw_all()
    first, last = tab._rows_in_view()
    assert (first, last) == (0, len(WATCHLIST) - 1)  # all of them in view: every update is a partial repaint

    mismatches: list[tuple[int, int, str, str]] = []
    behind: list[str] = []
    checked = []

    def check(_count: int) -> None:
        """Right after a flush, before anything else runs: the screen against the model and the broker."""
        for position in range(len(model)):
            for column in columns:
                truth = model.data(model.index(position, column))
                if screen[position, column] != truth:
                    mismatches.append((position, column, screen[position, column], truth))
            quote = model.row(position)
            newest = broker.quote(quote.instrument)
            if newest is not None and (newest.bid, newest.ask, newest.last) != (quote.bid, quote.ask, quote.last):
                behind.append(quote.instrument.display)
        checked.append(True)

    model.flushed.connect(check)
    start_cells, start_ticks = model.cells_emitted, tab.ticks_applied
    qtbot.waitUntil(lambda: len(checked) >= 25, timeout=20000)
    model.flushed.disconnect(check)
    assert mismatches == []
    assert behind == []

    ticks = tab.ticks_applied - start_ticks
    cells = model.cells_emitted - start_cells
    assert ticks > 50
    assert cells < ticks * len(model.columns)  # fewer cells repainted than whole rows would be

    # sorting by a column reorders the rows: the screen is redrawn whole and still matches
    tab.view.sortByColumn(4, Qt.SortOrder.DescendingOrder)
    model.flush()
    for position in range(len(model)):
        for column in columns:
            assert screen[position, column] == model.data(model.index(position, column))
