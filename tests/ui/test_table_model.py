"""KeyedTableModel: coalesced repaints (few dataChanged, last value wins), ranges, sorting, CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

import pytest
from ibpanel.broker.models import Instrument, Market
from ibpanel.ui.table_model import Column, ColumnKind, KeyedTableModel
from PySide6.QtCore import QPersistentModelIndex, Qt
from PySide6.QtWidgets import QTableView

AAPL = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
TENCENT = Instrument("700", Market.HK, "SEHK", "HKD", con_id=9001, board_lot=100)


@dataclass(frozen=True)
class Row:
    name: str
    price: float | None
    qty: Decimal
    pnl: float | None = None
    instrument: Instrument = AAPL
    note: str = ""  # a row the model greys (its ``row_note``), when set


COLUMNS = (
    Column("name", "Name"),
    Column("price", "Price", ColumnKind.PRICE),
    Column("qty", "Qty", ColumnKind.QTY),
    Column("pnl", "P&L", ColumnKind.PNL, coloured=True),
)


@pytest.fixture
def model(qapp):
    m = KeyedTableModel(COLUMNS, key=lambda r: r.name, interval_ms=100)
    yield m
    m.shutdown()


def _spy(model):
    ranges: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(lambda a, b, roles=None: ranges.append((a.row(), b.row(), a.column(), b.column())))
    return ranges


def test_many_updates_coalesce_into_one_range_and_last_value_wins(model, qtbot):
    for i in range(5):
        model.upsert(Row(f"S{i}", 1.0, Decimal(1)))
    ranges = _spy(model)
    for n in range(1000):
        model.upsert(Row(f"S{n % 5}", 100.0 + n, Decimal(n)))
    assert ranges == []  # nothing repainted per tick
    assert model.pending == 5
    with qtbot.waitSignal(model.flushed, timeout=2000) as blocker:
        pass
    assert blocker.args == [5]
    assert ranges == [(0, 4, 0, 3)]  # one contiguous range, every column
    # last value wins for every row, as the view reads it
    for i in range(5):
        last_n = max(n for n in range(1000) if n % 5 == i)
        assert model.data(model.index(i, 1)) == f"{100.0 + last_n:,.2f}"
        assert model.data(model.index(i, 2)) == f"{last_n:,}"
    assert model.pending == 0


def test_non_contiguous_dirty_rows_give_one_range_each(model):
    for i in range(10):
        model.upsert(Row(f"S{i}", 1.0, Decimal(1)))
    ranges = _spy(model)
    for i in (1, 2, 3, 6, 9, 8):
        model.upsert(Row(f"S{i}", 2.0, Decimal(2)))
    assert model.flush() == 6
    assert [(a, b) for a, b, _, _ in ranges] == [(1, 3), (6, 6), (8, 9)]
    assert model.flush() == 0  # nothing left
    assert len(ranges) == 3


def test_flush_rate_is_bounded_by_the_timer(model, qtbot):
    model.upsert(Row("A", 1.0, Decimal(1)))
    model.flush()
    start = model.flush_count
    # ~400 ms of continuous updates every 5 ms -> about 4 flushes, never one per update
    for n in range(80):
        model.upsert(Row("A", float(n), Decimal(n)))
        qtbot.wait(5)  # the input rate under test (an update every 5 ms), not a wait for something
    qtbot.waitUntil(lambda: model.pending == 0, timeout=2000)
    flushes = model.flush_count - start
    assert 1 <= flushes <= 10, flushes
    assert model.data(model.index(0, 1)) == "79.00"


def test_insert_and_remove_are_immediate_and_keep_positions(model):
    for name in "ABCD":
        model.upsert(Row(name, 1.0, Decimal(1)))
    assert model.rowCount() == 4
    assert model.remove("B")
    assert not model.remove("B")
    assert model.keys() == ["A", "C", "D"]
    assert model.position_of("D") == 2
    model.upsert(Row("D", 9.0, Decimal(9)))
    ranges = _spy(model)
    model.flush()
    assert ranges == [(2, 2, 0, 3)]


def test_replace_all_removes_missing_and_repaints_only_changed(model):
    a, b = Row("A", 1.0, Decimal(1)), Row("B", 2.0, Decimal(2))
    model.replace_all([a, b])
    model.flush()
    ranges = _spy(model)
    model.replace_all([a, Row("C", 3.0, Decimal(3))])
    model.flush()
    assert model.keys() == ["A", "C"]
    assert ranges == []  # A unchanged (same object), C inserted (rowsInserted, not dataChanged)


def test_sort_by_column_and_resort_only_on_flush(model, qtbot):
    for name, price in (("A", 3.0), ("B", 1.0), ("C", 2.0), ("D", None)):
        model.upsert(Row(name, price, Decimal(1)))
    view = QTableView()
    view.setModel(model)
    view.setSortingEnabled(True)
    view.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert model.keys() == ["B", "C", "A", "D"]  # blanks last
    selected = QPersistentModelIndex(model.index(0, 0))  # B
    layouts = []
    model.layoutChanged.connect(lambda *a: layouts.append(1))
    model.upsert(Row("B", 10.0, Decimal(1)))
    assert model.keys() == ["B", "C", "A", "D"]  # not re-sorted per tick
    assert layouts == []
    model.flush()
    assert model.keys() == ["C", "A", "B", "D"]
    assert len(layouts) == 1
    assert selected.row() == 2  # persistent indexes (selection) follow the row
    view.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert model.keys() == ["B", "A", "C", "D"]  # blanks still last
    model.upsert(Row("E", 5.0, Decimal(1)))  # inserted at the end, placed on the next flush
    model.flush()
    assert model.keys() == ["B", "E", "A", "C", "D"]
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert model.keys() == ["A", "B", "C", "D", "E"]
    view.deleteLater()


def test_unchanged_order_emits_no_layout_change(model):
    for name, price in (("A", 1.0), ("B", 2.0)):
        model.upsert(Row(name, price, Decimal(1)))
    model.sort(1)
    layouts = []
    model.layoutChanged.connect(lambda *a: layouts.append(1))
    model.upsert(Row("A", 1.5, Decimal(1)))
    model.flush()
    assert layouts == []


def test_display_alignment_colour_and_stale(model):
    model.upsert(Row("A", 0.5, Decimal("1500"), pnl=-12.5))
    model.upsert(Row("T", 385.2, Decimal("200"), pnl=30.0, instrument=TENCENT))
    assert model.data(model.index(0, 1)) == "0.5000"  # US under $1: 4 decimals
    assert model.data(model.index(1, 1)) == "385.20"
    assert model.data(model.index(0, 2)) == "1,500"
    assert model.data(model.index(0, 3)) == "-12.50"
    assert model.data(model.index(1, 3)) == "+30.00"
    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    assert model.data(model.index(0, 1), Qt.ItemDataRole.TextAlignmentRole) == right
    assert model.data(model.index(0, 0), Qt.ItemDataRole.TextAlignmentRole) != right
    red = model.data(model.index(0, 3), Qt.ItemDataRole.ForegroundRole)
    green = model.data(model.index(1, 3), Qt.ItemDataRole.ForegroundRole)
    assert red.name() == "#cf222e" and green.name() == "#1a7f37"
    ranges = _spy(model)
    model.set_stale(True)
    assert ranges == [(0, 1, 0, 3)]
    assert model.data(model.index(1, 3), Qt.ItemDataRole.ForegroundRole).name() == "#8c959f"
    assert "Stale" in model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)


def test_csv_export_in_display_order_full_precision(model, tmp_path):
    model.upsert(Row("B,1", 1.23456789, Decimal("1000"), pnl=None))
    model.upsert(Row("A", 2.5, Decimal("0.5"), pnl=-1.0))
    model.sort(0)
    path = tmp_path / "out.csv"
    assert model.export_csv(path) == 2
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows == [["Name", "Price", "Qty", "P&L"], ["A", "2.5", "0.5", "-1"], ["B,1", "1.23456789", "1000", ""]]


def test_no_timer_left_running_after_flush_or_shutdown(model):
    model.upsert(Row("A", 1.0, Decimal(1)))
    model.upsert(Row("A", 2.0, Decimal(1)))
    assert model._timer.isActive()
    model.flush()
    assert not model._timer.isActive()
    model.upsert(Row("A", 3.0, Decimal(1)))
    model.shutdown()
    assert not model._timer.isActive()


def test_table_view_keeps_insertion_order_until_a_header_is_clicked(model, qtbot):
    from ibpanel.ui.table_view import make_table_view

    for name in "CAB":
        model.upsert(Row(name, 1.0, Decimal(1)))
    view = make_table_view(model, "test")
    qtbot.addWidget(view)
    assert model.sort_column == -1
    assert model.keys() == ["C", "A", "B"]  # a watchlist stays in the user's order
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert model.keys() == ["A", "B", "C"]
    newest_first = make_table_view(KeyedTableModel(COLUMNS, key=lambda r: r.name), "t2", sort=(1, Qt.SortOrder.DescendingOrder))
    qtbot.addWidget(newest_first)
    assert newest_first.model().sort_column == 1
    newest_first.model().shutdown()


def test_rows_in_view_repaint_only_the_cells_whose_text_colour_or_note_changed(model):
    model.cache_text = True
    model.row_note = lambda r: r.note
    for i in range(6):
        model.upsert(Row(f"S{i}", 10.0, Decimal(1), pnl=1.0))
    model.visible_rows = lambda: (0, 2)  # rows 0-2 on screen, 3-5 scrolled away
    model.flush()
    shown = [[model.data(model.index(r, c)) for c in range(4)] for r in range(6)]  # as a paint reads them
    assert shown[0] == ["S0", "10.00", "1", "+1.00"]
    ranges = _spy(model)

    model.upsert(Row("S0", 10.5, Decimal(1), pnl=1.0))  # price only
    model.upsert(Row("S1", 10.0, Decimal(2), pnl=-1.0))  # qty, and P&L turns red
    model.upsert(Row("S2", 10.0, Decimal(1), pnl=1.0, note="no market data"))  # greyed: every cell
    model.upsert(Row("S4", 11.0, Decimal(1), pnl=1.0))  # out of view: the whole row, as before
    model.flush()
    assert sorted(ranges) == [(0, 0, 1, 1), (1, 1, 2, 2), (1, 1, 3, 3), *((2, 2, c, c) for c in range(4)), (4, 4, 0, 3)]
    assert model.data(model.index(0, 1)) == "10.50" and model.data(model.index(1, 3)) == "-1.00"

    model.upsert(Row("S0", 10.5, Decimal(1), pnl=0.0))
    model.flush()
    ranges.clear()
    model.upsert(Row("S0", 10.5, Decimal(1), pnl=0.001))  # "+0.00" both times, but now green
    model.flush()
    assert ranges == [(0, 0, 3, 3)]
    assert model.data(model.index(0, 3)) == "+0.00"
    assert model.data(model.index(0, 3), Qt.ItemDataRole.ForegroundRole) is not None

    ranges.clear()
    model.touch("S1", [1])  # e.g. a flash behind an unchanged price
    model.touch("S2")  # no columns: the whole row
    model.flush()
    assert sorted(ranges) == [(1, 1, 1, 1), *((2, 2, c, c) for c in range(4))]

    ranges.clear()
    model.upsert(Row("S1", 10.0, Decimal(2), pnl=-1.0))  # a new object with the same texts
    model.flush()
    assert ranges == []  # nothing on screen changed, nothing repaints


def test_between_flushes_every_reader_sees_the_row_as_last_flushed(model):
    """A paint between two flushes (a scroll, a neighbour's repaint) draws what the last flush drew, so a
    price that moves away and back before the next flush can never leave the other value on screen."""
    model.cache_text = True
    model.upsert(Row("S0", 298.00, Decimal(1)))
    model.visible_rows = lambda: (0, 0)
    model.flush()
    drawn = [model.data(model.index(0, column)) for column in range(4)]  # the first paint
    assert drawn[1] == "298.00"
    ranges = _spy(model)

    model.upsert(Row("S0", 298.20, Decimal(1)))
    assert model.data(model.index(0, 1)) == "298.00"  # not flushed yet: the screen still says 298.00
    assert model.row_for_key("S0").price == 298.20  # the store has the newest row
    model.upsert(Row("S0", 298.00, Decimal(1)))
    model.flush()
    assert ranges == []  # what the screen says is what the row says
    model.upsert(Row("S0", 298.20, Decimal(1)))
    model.flush()
    assert ranges == [(0, 0, 1, 1)] and model.data(model.index(0, 1)) == "298.20"
