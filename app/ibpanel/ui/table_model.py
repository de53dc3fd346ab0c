"""One table model for every tab: typed columns over a plain keyed store, with coalesced repaints.

Over 500 lines because the store, its coalesced repaint (rows, or only changed cells of the rows in
view), sorting and the Qt model API are one object the views bind to.

Why: a dataChanged per cell costs ~10x one ranged dataChanged, and a proxy with dynamicSortFilter
re-sorts on every tick (docs/qt-and-asyncio.md). So writers call ``upsert``/``remove`` as often as data
arrives; the store always holds the latest row (final values are never dropped), rows are only
*marked* dirty, and a single-shot QTimer flushes at most ``1000 / interval_ms`` times a second with
one dataChanged per contiguous run of dirty rows (of at most 200 cells: see ``_MAX_RANGE_CELLS``), or, for
the rows in view of a table that knows them, one per changed cell. Sorting is done by the model itself and re-applied
on the same timer, never per tick.

Rows are any objects (our frozen dataclasses, dicts); a ``Column`` says how to read, show, align,
colour and sort one value of a row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor

from ibpanel.ui import formatting as fmt

POSITIVE_COLOUR = QColor("#1a7f37")
NEGATIVE_COLOUR = QColor("#cf222e")
STALE_COLOUR = QColor("#8c959f")
# The item roles ``KeyedTableModel.data`` answers, as plain ints (comparing Qt's enum members costs more,
# and a view asks ~7 roles per cell per paint); any other role is None at once.
_DISPLAY, _ALIGN, _FOREGROUND, _BACKGROUND, _USER, _TOOLTIP = (int(r) for r in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.ForegroundRole,
    Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.UserRole, Qt.ItemDataRole.ToolTipRole,
))
#: QAbstractItemView repaints its whole viewport for a dataChanged covering more than 200 cells (it does not
#: work out where so many cells are), even when none of them is in view. Runs of dirty rows are announced in
#: ranges no larger, so a burst of ticks on rows scrolled away does not repaint every row in view.
_MAX_RANGE_CELLS = 200
_ANSWERED_ROLES = frozenset((_DISPLAY, _ALIGN, _FOREGROUND, _BACKGROUND, _USER, _TOOLTIP))


class ColumnKind(str, Enum):
    TEXT = "text"
    INT = "int"
    PRICE = "price"
    QTY = "qty"
    PNL = "pnl"
    MONEY = "money"
    PERCENT = "percent"
    TIME = "time"


_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


@dataclass(frozen=True)
class Column:
    """How one column reads, shows and sorts a row's value.

    ``value(row)`` returns the raw value (default: attribute or dict item named ``key``);
    ``display(value, row)`` overrides the kind's formatting; ``coloured`` paints positive green and
    negative red (P&L, change); ``colour(row)`` overrides the foreground altogether.
    Numeric kinds align right unless ``alignment`` says otherwise.
    """

    key: str
    title: str
    kind: ColumnKind = ColumnKind.TEXT
    alignment: Qt.AlignmentFlag | None = None
    coloured: bool = False
    value: Callable[[Any], Any] | None = None
    display: Callable[[Any, Any], str] | None = None
    colour: Callable[[Any], QColor | None] | None = None
    tooltip: str = ""
    #: The widest text the column can ever show (e.g. "9,999,999" for a volume): its width never goes below
    #: it, so a value that grows during the session is not cut off while the table has room.
    widest: str = ""

    def read(self, row: Any) -> Any:
        if self.value is not None:
            return self.value(row)
        if isinstance(row, dict):
            return row.get(self.key)
        return getattr(row, self.key, None)

    def text(self, row: Any) -> str:
        value = self.read(row)
        if self.display is not None:
            return self.display(value, row)
        return format_value(self.kind, value, row)

    def align(self) -> Qt.AlignmentFlag:
        if self.alignment is not None:
            return self.alignment
        return _LEFT if self.kind in (ColumnKind.TEXT, ColumnKind.TIME) else _RIGHT


DARK_TEXT = QColor("#1f2328")
LIGHT_TEXT = QColor("#ffffff")


def readable_text_colour(background: QColor) -> QColor:
    """Dark text on a light background, white on a dark one (whatever the palette's own text colour is)."""
    red, green, blue = background.redF(), background.greenF(), background.blueF()
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return DARK_TEXT if luminance > 0.5 else LIGHT_TEXT


def _instrument_of(row: Any):
    return row.get("instrument") if isinstance(row, dict) else getattr(row, "instrument", None)


def format_value(kind: ColumnKind, value: Any, row: Any = None) -> str:
    """The default text for a value of a column kind; prices use the row's instrument tick decimals."""
    if value is None:
        return ""
    if kind is ColumnKind.PRICE:
        return fmt.format_price(value, _instrument_of(row))
    if kind is ColumnKind.QTY:
        return fmt.format_qty(value)
    if kind is ColumnKind.PNL:
        return fmt.format_pnl(value)
    if kind is ColumnKind.MONEY:
        return fmt.format_money(value)
    if kind is ColumnKind.PERCENT:
        return fmt.format_percent(value)
    if kind is ColumnKind.INT:
        return fmt.format_int(value)
    if kind is ColumnKind.TIME:
        return fmt.format_time(value) if isinstance(value, datetime) else str(value)
    return str(value.value if isinstance(value, Enum) else value)


def _sort_key(value: Any) -> tuple:
    """Total order over mixed values: blanks last, numbers numerically, text case-insensitively."""
    if value is None:
        return (2, 0)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float, Decimal)):
        return (0, float(value))
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (1, str(value).lower())


def csv_value(kind: ColumnKind, value: Any) -> str:
    """Full-precision, unformatted text for CSV (no thousands separators, ISO times)."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _runs(ordered: list[int]) -> list[tuple[int, int]]:
    """Sorted ints as (first, last) runs of consecutive values: [1, 2, 3, 7, 9, 10] -> [(1, 3), (7, 7), (9, 10)]."""
    runs: list[tuple[int, int]] = []
    for value in ordered:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _sign_colour(column: Column, row: Any) -> QColor | None:
    """A coloured column's own text colour for ``row`` (before stale / flash rules)."""
    if column.colour is not None:
        return column.colour(row)
    value = column.read(row)
    if isinstance(value, (int, float, Decimal)) and value:
        return POSITIVE_COLOUR if value > 0 else NEGATIVE_COLOUR
    return None


class KeyedTableModel(QAbstractTableModel):
    """A keyed store shown as a table. Thread: the Qt (= asyncio) loop thread only.

    Signals: ``flushed(int)`` after each coalesced flush with the number of rows repainted.
    """

    flushed = Signal(int)

    def __init__(
        self,
        columns: Iterable[Column],
        key: Callable[[Any], Hashable],
        *,
        interval_ms: int = 100,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.columns: tuple[Column, ...] = tuple(columns)
        self._aligns = [int(c.align()) for c in self.columns]
        #: Show each row as it was at the last flush (its snapshot: the row object and its cell texts, formatted
        #: once): only for rows that are never changed in place (frozen dataclasses such as Quote). Whatever
        #: paints between two flushes (a scroll, a neighbour's repaint) then draws exactly what the last flush
        #: drew, so a flush knows what every cell on screen says and can repaint only the cells that differ.
        self.cache_text = False
        #: With ``cache_text``: the (first, last) display positions in view now. A flush then repaints, of
        #: the rows in view, only the cells whose text changed (and touched or coloured ones), instead of
        #: whole rows: a quote tick usually moves 3-6 of 10 cells, and painting is most of a table's cost.
        self.visible_rows: Callable[[], tuple[int, int]] | None = None
        self._forced: dict[Hashable, frozenset[int] | None] = {}  # key -> columns to repaint anyway (None: all)
        self._coloured = tuple(i for i, c in enumerate(self.columns) if c.coloured or c.colour is not None)
        self.cells_emitted = 0
        self._texts: dict[Hashable, tuple[Any, list[str | None]]] = {}
        self._key_of = key
        self._keys: list[Hashable] = []  # display order
        self._rows: dict[Hashable, Any] = {}
        self._pos: dict[Hashable, int] = {}
        self._dirty: set[Hashable] = set()
        self._needs_sort = False
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._stale = False
        self._closed = False
        self.background_hook: Callable[[Hashable, Any, int], QColor | None] | None = None
        # row -> why it has no data ("" = it has): such a row is greyed and the reason is its tooltip
        self.row_note: Callable[[Any], str] | None = None
        self.before_flush: Callable[[], None] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self.flush_count = 0
        self.ranges_emitted = 0

    # --- store --------------------------------------------------------------------------------
    def upsert(self, row: Any) -> None:
        """Insert or replace a row by its key. Inserts show at once; changes repaint on the next flush."""
        key = self._key_of(row)
        if key in self._rows:
            self._rows[key] = row
            self._mark(key)
            return
        position = len(self._keys)
        self.beginInsertRows(QModelIndex(), position, position)
        self._keys.append(key)
        self._rows[key] = row
        self._pos[key] = position
        self.endInsertRows()
        if self._sort_column >= 0:
            self._needs_sort = True
            self._schedule()

    def upsert_many(self, rows: Iterable[Any]) -> None:
        for row in rows:
            self.upsert(row)

    def remove(self, key: Hashable) -> bool:
        position = self._pos.get(key)
        if position is None:
            return False
        self.beginRemoveRows(QModelIndex(), position, position)
        del self._keys[position]
        del self._rows[key]
        del self._pos[key]
        self._texts.pop(key, None)
        self._forced.pop(key, None)
        self._dirty.discard(key)
        self._reindex(position)
        self.endRemoveRows()
        return True

    def replace_all(self, rows: Iterable[Any]) -> None:
        """Make the store exactly ``rows``: changed rows repaint coalesced, gone rows are removed."""
        incoming = {}
        for row in rows:
            incoming[self._key_of(row)] = row
        for key in [k for k in self._keys if k not in incoming]:
            self.remove(key)
        for row in incoming.values():
            if self._rows.get(self._key_of(row)) is not row:
                self.upsert(row)

    def clear(self) -> None:
        self.beginResetModel()
        self._keys.clear()
        self._rows.clear()
        self._pos.clear()
        self._texts.clear()
        self._forced.clear()
        self._dirty.clear()
        self.endResetModel()

    def request_flush(self) -> None:
        """Run the flush (and ``before_flush``) on the next timer tick even if no row changed."""
        self._schedule()

    def touch(self, key: Hashable, columns: Iterable[int] | None = None) -> None:
        """Repaint a row (or only ``columns`` of it) on the next flush without changing it (e.g. a flash)."""
        if key not in self._rows:
            return
        if columns is None or self._forced.get(key, frozenset()) is None:
            self._forced[key] = None
        else:
            self._forced[key] = self._forced.get(key, frozenset()) | frozenset(columns)
        self._mark(key)

    def row(self, position: int) -> Any:
        return self._rows[self._keys[position]]

    def row_for_key(self, key: Hashable) -> Any | None:
        return self._rows.get(key)

    def key_at(self, position: int) -> Hashable:
        return self._keys[position]

    def position_of(self, key: Hashable) -> int | None:
        return self._pos.get(key)

    def keys(self) -> list[Hashable]:
        return list(self._keys)

    def rows(self) -> list[Any]:
        return [self._rows[k] for k in self._keys]

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def pending(self) -> int:
        """Rows changed since the last flush."""
        return len(self._dirty)

    def set_stale(self, stale: bool) -> None:
        """Grey every cell (data not live: disconnected or degraded)."""
        if stale == self._stale:
            return
        self._stale = stale
        if self._keys:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._keys) - 1, len(self.columns) - 1))

    @property
    def stale(self) -> bool:
        return self._stale

    def shutdown(self) -> None:
        """Stop the flush timer for good (late writes still land in the store, nothing repaints)."""
        self._closed = True
        self._timer.stop()

    # --- coalescing ---------------------------------------------------------------------------
    def _mark(self, key: Hashable) -> None:
        self._dirty.add(key)
        if self._sort_column >= 0:
            self._needs_sort = True
        self._schedule()

    def _schedule(self) -> None:
        if not self._closed and not self._timer.isActive():
            self._timer.start()

    def flush(self) -> int:
        """Repaint dirty rows now (changed cells of rows in view, ranges of rows out of view); re-sort if needed."""
        self._timer.stop()
        if self.before_flush is not None:
            self.before_flush()
        if self._needs_sort:
            self._needs_sort = False
            self._apply_sort()
        if not self._dirty:
            return 0
        positions = sorted(self._pos[k] for k in self._dirty if k in self._pos)
        self._dirty.clear()
        count = len(positions)
        first, last = self.visible_rows() if self.cache_text and self.visible_rows is not None else (0, -1)
        if last >= first:
            in_view = [p for p in positions if first <= p <= last]
            for position in in_view:
                self._emit_changed_cells(position)
            positions = [p for p in positions if not first <= p <= last]
        self._forced.clear()
        if positions:
            if self.cache_text:  # out of view: the next paint takes the newest row
                for position in positions:
                    self._texts.pop(self._keys[position], None)
            last_column = len(self.columns) - 1
            rows_per_range = max(1, _MAX_RANGE_CELLS // len(self.columns))
            for start, end in _runs(positions):
                if end == first - 1 and last >= first:
                    # a range's rectangle reaches one pixel into the next row, here the first row in view
                    self._emit_cells(end, range(len(self.columns)))
                    end -= 1
                for top in range(start, end + 1, rows_per_range):
                    self._emit_range(top, min(end, top + rows_per_range - 1), last_column)
        self.flush_count += 1
        self.flushed.emit(count)
        return count

    def _emit_changed_cells(self, position: int) -> None:
        """Repaint the cells of one row in view whose text (or colour, note, touch) changed since shown."""
        key = self._keys[position]
        row = self._rows[key]
        columns = self.columns
        texts = [c.text(row) for c in columns]
        cached = self._texts.get(key)
        self._texts[key] = (row, texts)
        forced = self._forced.get(key, frozenset())
        note = self.row_note
        if (cached is None or forced is None
                or (note is not None and bool(note(cached[0])) != bool(note(row)))):  # a greyed row: all cells
            self._emit_cells(position, range(len(columns)))
            self.cells_emitted += len(columns)
            return
        shown = cached[1]  # what each cell on screen says (None: not drawn since the snapshot was taken)
        changed = [i for i, text in enumerate(texts) if text != shown[i] or i in forced]
        for i in self._coloured:  # green / red by sign: the colour can turn while the text reads the same
            if i not in changed and _sign_colour(columns[i], row) != _sign_colour(columns[i], cached[0]):
                changed.append(i)
        changed.sort()
        self._emit_cells(position, changed)
        self.cells_emitted += len(changed)

    def _emit_cells(self, position: int, columns: Iterable[int]) -> None:
        """One dataChanged per cell, which a view repaints exactly. A ranged dataChanged's rectangle reaches one
        pixel into the next row and column, so the view would repaint those cells too: a tick that changes
        Bid..Volume of one row would repaint 14 cells instead of 6."""
        emit = self.dataChanged.emit
        create = self.createIndex  # positions are known to be in range (index() would ask rowCount / columnCount)
        for column in columns:
            index = create(position, column)
            emit(index, index)
            self.ranges_emitted += 1

    def _emit_range(self, first: int, last: int, last_column: int) -> None:
        self.ranges_emitted += 1
        self.dataChanged.emit(self.createIndex(first, 0), self.createIndex(last, last_column))

    def _reindex(self, start: int = 0) -> None:
        for position in range(start, len(self._keys)):
            self._pos[self._keys[position]] = position

    # --- sorting ------------------------------------------------------------------------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:  # noqa: D401 - Qt API
        self._sort_column = column
        self._sort_order = order
        self._needs_sort = False
        self._apply_sort()

    @property
    def sort_column(self) -> int:
        return self._sort_column

    def _apply_sort(self) -> None:
        if not (0 <= self._sort_column < len(self.columns)) or len(self._keys) < 2:
            return
        column = self.columns[self._sort_column]
        reverse = self._sort_order == Qt.SortOrder.DescendingOrder
        # Ties keep their current order (stable), so equal rows do not jump around on each flush.
        new_keys = sorted(self._keys, key=lambda k: _sort_key(column.read(self._rows[k])), reverse=reverse)
        if reverse:
            # sorted(reverse=True) keeps stability, but blanks must still go last
            blanks = [k for k in new_keys if column.read(self._rows[k]) is None]
            if blanks:
                new_keys = [k for k in new_keys if column.read(self._rows[k]) is not None] + blanks
        if new_keys == self._keys:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        persistent_keys = [(self._keys[i.row()], i.column()) if 0 <= i.row() < len(self._keys) else None for i in persistent]
        self._keys = new_keys
        self._reindex()
        new_indexes = [self.index(self._pos[k[0]], k[1]) if k is not None else QModelIndex() for k in persistent_keys]
        self.changePersistentIndexList(persistent, new_indexes)
        self.layoutChanged.emit()

    # --- Qt model API -------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.columns):
            column = self.columns[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return column.title
            if role == Qt.ItemDataRole.ToolTipRole and column.tooltip:
                return column.tooltip
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(column.align())
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if role not in _ANSWERED_ROLES:
            return None
        if not index.isValid():
            return None
        position, col = index.row(), index.column()
        if position >= len(self._keys) or col >= len(self.columns):
            return None
        return self._value(self._keys[position], col, int(role))

    def _value(self, key: Hashable, col: int, role: int) -> Any:
        if self.cache_text:
            snapshot = self._texts.get(key)
            if snapshot is None:  # first drawn (or scrolled into view): the newest row
                snapshot = self._texts[key] = (self._rows[key], [None] * len(self.columns))
            row = snapshot[0]
            if role == _DISPLAY:
                text = snapshot[1][col]
                if text is None:
                    text = snapshot[1][col] = self.columns[col].text(row)
                return text
        else:
            row = self._rows[key]
            if role == _DISPLAY:
                return self.columns[col].text(row)
        if role == _ALIGN:
            return self._aligns[col]
        column = self.columns[col]
        if role == _FOREGROUND:
            if self._stale or (self.row_note is not None and self.row_note(row)):
                return STALE_COLOUR
            if self.background_hook is not None:
                background = self.background_hook(key, row, col)
                if background is not None:
                    return readable_text_colour(QColor(background))  # a flash must not hide the number
            if column.colour is not None or column.coloured:
                return _sign_colour(column, row)
            return None
        if role == _BACKGROUND:
            if self.background_hook is not None and not self._stale:
                return self.background_hook(key, row, col)
            return None
        if role == _USER:
            return column.read(row)
        note = self.row_note(row) if self.row_note is not None else ""  # the tooltip role is all that is left
        if note:
            return note
        if self._stale:
            return "Stale: the connection is down or degraded; this is the last value received."
        return None

    # --- export -------------------------------------------------------------------------------
    def to_csv(self, out: io.TextIOBase | None = None) -> str:
        """The table in display order as CSV (titles, then full-precision values). Returns the text."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.title for c in self.columns])
        for key in self._keys:
            row = self._rows[key]
            writer.writerow([csv_value(c.kind, c.read(row)) for c in self.columns])
        text = buffer.getvalue()
        if out is not None:
            out.write(text)
        return text

    def export_csv(self, path: str | Path) -> int:
        """Write the table to ``path``; returns the number of data rows."""
        with open(path, "w", encoding="utf-8", newline="") as handle:
            self.to_csv(handle)
        return len(self._keys)

    def selection_text(self, positions: Iterable[int]) -> str:
        """Tab-separated displayed text of rows (for Copy)."""
        lines = []
        for position in sorted(set(positions)):
            row = self.row(position)
            lines.append("\t".join(c.text(row) for c in self.columns))
        return "\n".join(lines)


# TaskSet moved to ui/tasks.py; kept importable here for the ticket tab until its next change.
from ibpanel.ui.tasks import TaskSet  # noqa: E402, F401
