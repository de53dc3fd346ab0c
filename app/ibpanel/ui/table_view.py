"""The table view every tab uses over a ``KeyedTableModel``: row selection, model-side sorting, saved
columns, and column widths fitted to their text as rows arrive (capped, so a long message cannot push
the other columns off screen).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from ibpanel.ui.table_model import KeyedTableModel


def make_table_view(
    model: KeyedTableModel,
    name: str,
    settings: Any = None,
    parent=None,
    sort: tuple[int, Qt.SortOrder] = (-1, Qt.SortOrder.AscendingOrder),
):
    """A QTableView set up the same way everywhere: row selection, model-side sorting, saved columns.

    ``sort``: the initial sort (column, order); column -1 keeps insertion order until a header is clicked.
    """
    from PySide6.QtWidgets import QAbstractItemView, QTableView

    view = QTableView(parent)
    view.setObjectName(f"table_{name}")
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setSortIndicatorShown(True)
    # Qt's default indicator is column 0 descending; start from the order asked for instead.
    view.horizontalHeader().setSortIndicator(sort[0], sort[1])
    view.setSortingEnabled(True)  # calls model.sort(); the model re-sorts on its flush timer, never per tick
    restored = False
    if settings is not None:
        try:
            restored = bool(settings.restore_header(name, view.horizontalHeader()))
        except Exception:  # noqa: BLE001 - a corrupt saved state must not stop the tab
            restored = False
    if not restored:
        # No saved widths: every header readable now, then sized to the data once the first rows arrive.
        fit_columns(view)
        _fit_as_rows_arrive(view, model)
    else:
        _reserve_widest(view, model)  # widths saved before a column said how wide it can get
    return view


MAX_FITTED_COLUMN_WIDTH = 240  # a long message or name must not push the other columns off screen


def fit_columns(view, max_width: int = MAX_FITTED_COLUMN_WIDTH) -> None:
    """Size each column to its header and visible contents (narrow Id / Side / TIF), capped at ``max_width``.

    The last section stretches over the rest of the width.
    """
    header = view.horizontalHeader()
    model = view.model()
    view.ensurePolished()
    header.ensurePolished()
    for section in range(header.count()):
        width = max(_header_width(header, model, section), _content_width(view, model, section))
        header.resizeSection(section, max(min(width, max_width), _widest_width(view, model, section)))
    header.setStretchLastSection(True)
    if not getattr(view, "_fit_sort_hooked", False):
        view._fit_sort_hooked = True  # the newly sorted column gets room for its arrow

        def make_room(section: int, _order: Qt.SortOrder) -> None:
            if 0 <= section < header.count():
                header.resizeSection(section, max(header.sectionSize(section), header.sectionSizeHint(section)))

        header.sortIndicatorChanged.connect(make_room)


def _widest_width(view, model, section: int) -> int:
    """Room for the column's ``widest`` text (0 when it declares none)."""
    columns = getattr(model, "columns", ())
    widest = columns[section].widest if 0 <= section < len(columns) else ""
    return view.fontMetrics().horizontalAdvance(widest) + 14 if widest else 0


def _reserve_widest(view, model) -> None:
    header = view.horizontalHeader()
    for section in range(header.count() - 1):  # the last section stretches anyway
        wanted = _widest_width(view, model, section)
        if wanted > header.sectionSize(section):
            header.resizeSection(section, wanted)


def _header_width(header, model, section: int) -> int:
    """Room for a header title as the style draws it; the sort arrow's room only for the sorted column
    (Qt's hint reserves it in every section, which makes Id / Side / TIF needlessly wide)."""
    if section == header.sortIndicatorSection() or not header.isSortIndicatorShown():
        return header.sectionSizeHint(section)
    header.blockSignals(True)
    header.setSortIndicatorShown(False)
    try:
        return header.sectionSizeHint(section)
    finally:
        header.setSortIndicatorShown(True)
        header.blockSignals(False)


def _content_width(view, model, section: int, rows: range | None = None) -> int:
    """The widest displayed text of a column over ``rows`` (default: the first 200); the view may be hidden."""
    metrics = view.fontMetrics()
    widest = 0
    for position in rows if rows is not None else range(min(model.rowCount(), 200)):
        text = model.data(model.index(position, section), Qt.ItemDataRole.DisplayRole)
        if text:
            widest = max(widest, metrics.horizontalAdvance(str(text)))
    return widest + 14 if widest else 0  # cell margins and the grid line


def _fit_as_rows_arrive(view, model, max_width: int = MAX_FITTED_COLUMN_WIDTH) -> None:
    """Fit the columns to the first rows shown; rows inserted later only widen a column their text overflows.

    Grow-only and per inserted rows (never per tick): widths the user set are not shrunk back.
    """
    from PySide6.QtCore import QTimer as _QTimer

    state = {"fitted": False, "pending": None}
    header = view.horizontalHeader()

    def run() -> None:
        first, last = state["pending"] or (0, -1)
        state["pending"] = None
        if model.rowCount() == 0:
            return
        if not state["fitted"]:
            state["fitted"] = True
            fit_columns(view, max_width)
            return
        rows = range(max(0, first), min(last, first + 199, model.rowCount() - 1) + 1)
        for section in range(header.count() - 1):  # the last section stretches anyway
            wanted = min(_content_width(view, model, section, rows), max_width)
            if wanted > header.sectionSize(section):
                header.resizeSection(section, wanted)

    def on_rows(_parent=None, first: int = 0, last: int | None = None) -> None:
        last = model.rowCount() - 1 if last is None else last
        pending = state["pending"]
        if pending is None:
            state["pending"] = (first, last)
            _QTimer.singleShot(0, view, run)  # after the inserting code filled the rows' values
        else:
            state["pending"] = (min(pending[0], first), max(pending[1], last))

    model.rowsInserted.connect(on_rows)
    model.modelReset.connect(on_rows)
    if model.rowCount() > 0:
        on_rows()


def selected_positions(view) -> list[int]:
    return sorted({index.row() for index in view.selectionModel().selectedRows()})
