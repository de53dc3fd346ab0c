"""Which cells a shown table view actually repaints after a flush of ``KeyedTableModel``.

Painting is most of a watchlist's cost under a tick storm, so a flush must make the view repaint the
cells that changed and nothing else. The view here is a real shown QTableView; a delegate records every
cell it paints (the view paints a cell only through its delegate), which is what the screen redraws.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from ibpanel.ui.table_model import Column, ColumnKind, KeyedTableModel
from ibpanel.ui.table_view import make_table_view
from PySide6.QtWidgets import QStyledItemDelegate

ROWS = 150  # a long run of rows below the fold: more than the 200 cells a view works out on its own


@dataclass(frozen=True)
class Tick:
    name: str
    bid: float
    ask: float
    size: Decimal


COLUMNS = (
    Column("name", "Name"),
    Column("bid", "Bid", ColumnKind.PRICE),
    Column("ask", "Ask", ColumnKind.PRICE),
    Column("size", "Size", ColumnKind.QTY),
)


class RecordingDelegate(QStyledItemDelegate):
    """Paints as the default delegate does, and remembers which cells it painted."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.painted: list[tuple[int, int]] = []

    def paint(self, painter, option, index) -> None:
        self.painted.append((index.row(), index.column()))
        super().paint(painter, option, index)


@pytest.fixture
def table(qtbot):
    model = KeyedTableModel(COLUMNS, key=lambda t: t.name, interval_ms=10_000)  # flushed by hand
    model.cache_text = True
    for i in range(ROWS):
        model.upsert(Tick(f"S{i:03d}", 10.0, 10.5, Decimal(100)))
    view = make_table_view(model, "painted")
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.show()
    qtbot.waitExposed(view)

    def rows_in_view() -> tuple[int, int]:
        return view.rowAt(0), view.rowAt(view.viewport().height() - 1)

    model.visible_rows = rows_in_view
    delegate = RecordingDelegate(view)
    view.setItemDelegate(delegate)
    model.flush()
    qtbot.waitUntil(lambda: (0, 0) in delegate.painted)  # the first paint is done
    yield model, view, delegate
    model.shutdown()


def _paint_after_flush(qtbot, model, delegate, marker: tuple[int, int]) -> set[tuple[int, int]]:
    """Flush, then wait until the view has painted ``marker`` (a cell that changed in view): the cells painted."""
    delegate.painted.clear()
    model.flush()
    qtbot.waitUntil(lambda: marker in delegate.painted)
    return set(delegate.painted)


def test_changed_cells_in_view_repaint_alone_and_rows_out_of_view_repaint_nothing(table, qtbot):
    model, view, delegate = table
    first, last = model.visible_rows()
    assert first == 0 and 5 < last < 40
    # a storm on every row below the fold (one long run), and two ticks in view
    for i in range(last + 1, ROWS):
        model.upsert(Tick(f"S{i:03d}", 11.0, 11.5, Decimal(200)))
    model.upsert(Tick("S002", 10.25, 10.5, Decimal(100)))  # bid only
    model.upsert(Tick("S004", 10.0, 10.75, Decimal(300)))  # ask and size
    painted = _paint_after_flush(qtbot, model, delegate, (2, 1))
    assert painted == {(2, 1), (4, 2), (4, 3)}
    # and the screen says what the rows now say
    assert [model.data(model.index(4, c)) for c in range(4)] == ["S004", "10.00", "10.75", "300"]
    view.scrollToBottom()
    qtbot.waitUntil(lambda: (ROWS - 1, 1) in delegate.painted)
    assert model.data(model.index(ROWS - 1, 1)) == "11.00"  # scrolled into view: the newest row


def test_the_row_just_above_the_view_does_not_repaint_the_first_row_in_view(table, qtbot):
    model, view, delegate = table
    delegate.painted.clear()
    view.scrollTo(model.index(60, 0), view.ScrollHint.PositionAtTop)
    assert model.visible_rows()[0] == 60
    qtbot.waitUntil(lambda: (model.visible_rows()[1], 0) in delegate.painted)  # the scrolled view is drawn
    for i in range(40, 60):  # the rows just above the view
        model.upsert(Tick(f"S{i:03d}", 12.0, 12.5, Decimal(100)))
    model.upsert(Tick("S062", 10.0, 10.5, Decimal(7)))
    painted = _paint_after_flush(qtbot, model, delegate, (62, 3))
    assert painted == {(62, 3)}
