"""Quotes tab: a saved watchlist (US and HK mixed) with an up / down flash, and a chart of the selected symbol.

Every quote packet only updates the store; the table repaints on its ~10 Hz flush and the chart on
its own few-per-second timer, so a tick storm costs dictionary writes, not repaints.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.exceptions import BrokerError
from ibpanel.broker.models import ConnectionState, ConnectionStatus, Instrument, Quote
from ibpanel.ui import formatting as fmt
from ibpanel.ui.chart import BAR_SIZES, PriceChart
from ibpanel.ui.table_model import (
    NEGATIVE_COLOUR,
    POSITIVE_COLOUR,
    Column,
    ColumnKind,
    KeyedTableModel,
)
from ibpanel.ui.table_view import make_table_view, selected_positions
from ibpanel.ui.tasks import TaskSet

WATCHLIST_KEY = "quotes/watchlist"
BAR_SIZE_KEY = "quotes/bar_size"
DEFAULT_WATCHLIST = ["AAPL", "MSFT", "NVDA", "BRK.B", "0700.HK", "0005.HK", "1299.HK", "2800.HK"]
FLASH_SECONDS = 0.6
UP_FLASH = QColor("#dafbe1")
DOWN_FLASH = QColor("#ffebe9")
# On a dark theme a pale flash glares; deep tones instead (the model picks a readable text colour for both).
UP_FLASH_DARK = QColor("#1f5f30")
DOWN_FLASH_DARK = QColor("#7d2229")
RESOLVE_BATCH = 50


def _shown_sign_colour(value: float | None, decimals: int) -> QColor | None:
    """Green / red by the sign of the value as shown: a change that rounds to 0.00 stays uncoloured."""
    if value is None or round(value, decimals) == 0:
        return None
    return POSITIVE_COLOUR if value > 0 else NEGATIVE_COLOUR


def _data_label(quote: Quote) -> str:
    if quote.unavailable:
        return "no data"  # no line: nothing will come, so never "live" (QA F36)
    return "stale" if quote.stale else quote.data_type.label


QUOTE_COLUMNS = (
    Column("symbol", "Symbol", value=lambda q: q.instrument.display),
    Column("market", "Market", value=lambda q: q.instrument.market.value),
    Column("bid", "Bid", ColumnKind.PRICE),
    Column("ask", "Ask", ColumnKind.PRICE),
    Column("last", "Last", ColumnKind.PRICE),
    Column("change", "Change", ColumnKind.PRICE, coloured=True, value=lambda q: q.change,
           display=lambda v, q: fmt.format_change(v, q.instrument, q.last if q.last is not None else q.close)),
    Column("change_pct", "Change %", ColumnKind.PERCENT, coloured=True, value=lambda q: q.change_pct,
           colour=lambda q: _shown_sign_colour(q.change_pct, 2),
           display=lambda v, q: fmt.format_percent(v, signed=True)),
    # format_volume's widest: below 10 million it shows every digit, above it 999.99M / 999.99B
    Column("volume", "Volume", ColumnKind.INT, display=lambda v, q: fmt.format_volume(v), widest="8,888,888"),
    Column("data_type", "Data", value=_data_label,
           tooltip="live, delayed (no market-data subscription: about 15 minutes late), stale (connection down)"
                   " or no data (IB gives no market-data line: see the row's tooltip)"),
    Column("currency", "Currency", value=lambda q: q.instrument.currency),
)
#: The cell that flashes when the last trade moves up or down (the trade price, as in TWS's own quote rows).
_FLASH_COLUMNS = frozenset(i for i, column in enumerate(QUOTE_COLUMNS) if column.key == "last")


class QuotesTab(QWidget):
    """Watchlist + chart. Signal ``ticket_requested(dict)`` on double-click (symbol, last price)."""

    TAB_NAME = "quotes"

    ticket_requested = Signal(object)

    def __init__(self, broker, settings, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.tasks = TaskSet(on_error=lambda exc: self._say(f"Failed: {exc}"))
        saved = settings.get_json(WATCHLIST_KEY, None)
        self.watchlist: list[str] = [str(s) for s in saved] if isinstance(saved, list) else list(DEFAULT_WATCHLIST)
        self.instruments: dict[str, Instrument] = {}  # watchlist text -> resolved instrument
        self._subscribed: dict[str, Instrument] = {}  # instrument key -> instrument
        self._flash: dict[str, tuple[int, float]] = {}  # instrument key -> (direction, expires at)
        self._flash_colours: tuple[QColor, QColor] | None = None  # (up, down) for the current theme
        self.ticks_applied = 0

        self.model = KeyedTableModel(QUOTE_COLUMNS, key=lambda q: q.instrument.key, parent=self)
        self.model.background_hook = self._background
        self.model.cache_text = True  # Quote is frozen: a row changes only by being replaced
        self.model.row_note = lambda q: q.unavailable
        self._unavailable: dict[str, str] = {}  # instrument key -> why IB sends no data for it
        self._not_connected_said = False  # the message line holds a "not connected" text to drop on connect
        self.view = make_table_view(self.model, self.TAB_NAME, settings, self)
        self.model.visible_rows = self._rows_in_view  # a flush repaints only the changed cells of rows in view
        self.view.setSelectionMode(self.view.SelectionMode.SingleSelection)
        self.view.installEventFilter(self)  # palette changes reset the cached flash tones
        self.view.doubleClicked.connect(lambda index: self.request_ticket(index.row()))
        self.view.selectionModel().currentRowChanged.connect(lambda current, _prev: self._row_selected(current.row()))
        self.chart = PriceChart(broker, self)
        if settings.get(BAR_SIZE_KEY, "") in BAR_SIZES:  # the bar size the trader chose last time
            self.chart.bar_size_combo.setCurrentText(settings.get(BAR_SIZE_KEY, ""))
        self.chart.bar_size_combo.currentTextChanged.connect(lambda text: settings.set(BAR_SIZE_KEY, text))

        self.symbol_edit = QLineEdit()
        self.symbol_edit.setObjectName("watchSymbol")
        self.symbol_edit.setPlaceholderText("Add symbol: AAPL, BRK.B, 700, 0700.HK …")
        self.symbol_edit.returnPressed.connect(self._add_clicked)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected symbol (Delete)")
        self.remove_button.clicked.connect(self.remove_selected)
        for widget, name in ((self.symbol_edit, "Symbol to add to the watchlist"), (self.add_button, "Add symbol"),
                             (self.remove_button, "Remove symbol"), (self.view, "Watchlist"),
                             (self.chart.bar_size_combo, "Chart bar size")):
            widget.setAccessibleName(name)
        self._delete_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Delete), self.view)
        self._delete_shortcut.activated.connect(self.remove_selected)
        self.message = QLabel("")
        self.message.setObjectName("quotesMessage")
        self.message.setWordWrap(True)
        self.stale_label = QLabel("")
        self.stale_label.setStyleSheet("color: #9a6700; font-weight: bold;")

        controls = QHBoxLayout()
        controls.addWidget(self.symbol_edit, 1)
        controls.addWidget(self.add_button)
        controls.addWidget(self.remove_button)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(controls)
        top_layout.addWidget(self.view, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.chart)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stale_label)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message)

        self._flash_timer = QTimer(self)
        self._flash_timer.setObjectName("quotesFlash")
        self._flash_timer.setInterval(200)
        self._flash_timer.timeout.connect(self._expire_flashes)

        broker.quotes_updated.connect(self._on_quotes_updated)
        broker.state_changed.connect(self._on_state_changed)
        self._on_state_changed(broker.status)

    # --- watchlist ----------------------------------------------------------------------------
    def _save(self) -> None:
        self.settings.set_json(WATCHLIST_KEY, self.watchlist)

    def _add_clicked(self) -> None:
        text = self.symbol_edit.text().strip()
        if text:
            self.add_symbol(text)

    def add_symbol(self, text: str, select: bool = True):
        """Resolve, subscribe and show ``text``; saved to the watchlist once IB knows it. Returns the task."""
        return self.tasks.spawn(self._add(text.strip(), select))

    def show_symbol(self, text: str):
        """Add (if needed) and select a symbol (PositionsTab.quote_requested)."""
        return self.add_symbol(text, select=True)

    async def _add(self, text: str, select: bool) -> Instrument | None:
        if not self.broker.status.connected:
            self._say("Not connected: the symbol is kept and resolved once connected.")
            if text not in self.watchlist:
                self.watchlist.append(text)
                self._save()
            return None
        instrument = await self._subscribe_text(text)
        if instrument is None:
            return None
        if text not in self.watchlist and not any(
            self.instruments.get(s) and self.instruments[s].key == instrument.key for s in self.watchlist if s != text
        ):
            self.watchlist.append(text)
            self._save()
        if text == self.symbol_edit.text().strip():
            self.symbol_edit.clear()
        if select:
            position = self.model.position_of(instrument.key)
            if position is not None:
                self.view.selectRow(position)
        if self._unavailable:
            self._say_unavailable()  # rows without a line keep saying so
        else:
            self._say("")
        return instrument

    async def _subscribe_text(self, text: str) -> Instrument | None:
        try:
            instrument = self.instruments.get(text) or await self.broker.resolve(text)
        except BrokerError as exc:
            self._say(f"{text}: {exc}")
            return None
        self.instruments[text] = instrument
        if instrument.key not in self._subscribed:
            try:
                quote = await self.broker.subscribe(instrument)
            except BrokerError as exc:
                self._say(f"{instrument.display}: {exc}")
                return None
            self._subscribed[instrument.key] = instrument
            self.model.upsert(quote if quote is not None else Quote(instrument))
            if quote is not None and quote.unavailable:
                self._note_unavailable(quote)
        return instrument

    async def add_instruments(self, instruments: list[Instrument]) -> int:
        """Watch already-qualified instruments (conId known: positions, orders, scripts); saved by display name."""
        for start in range(0, len(instruments), RESOLVE_BATCH):
            batch = instruments[start:start + RESOLVE_BATCH]
            for instrument in batch:
                self.instruments.setdefault(instrument.display, instrument)
                if instrument.display not in self.watchlist:
                    self.watchlist.append(instrument.display)
            await asyncio.gather(*(self._subscribe_text(i.display) for i in batch))
        self._save()
        return len(self.model)

    async def load_watchlist(self) -> int:
        """Resolve and subscribe every saved symbol (in batches); returns how many are shown."""
        pending = [s for s in self.watchlist if s not in self.instruments or self.instruments[s].key not in self._subscribed]
        for start in range(0, len(pending), RESOLVE_BATCH):
            await asyncio.gather(*(self._subscribe_text(s) for s in pending[start:start + RESOLVE_BATCH]))
        self._show_in_watchlist_order()
        if len(self.model) and self.view.currentIndex().row() < 0:
            self.view.selectRow(0)
        return len(self.model)

    def _show_in_watchlist_order(self) -> None:
        """Rows in the saved watchlist's order (lookups finish in any order), unless a column sorts them."""
        if self.model.sort_column >= 0:
            return
        place: dict[str, int] = {}
        for position, text in enumerate(self.watchlist):
            instrument = self.instruments.get(text)
            if instrument is not None:
                place.setdefault(instrument.key, position)
        keys = self.model.keys()
        wanted = sorted(keys, key=lambda k: place.get(k, len(self.watchlist)))
        if wanted == keys:
            return
        rows = [self.model.row_for_key(k) for k in wanted]
        for key in keys:
            self.model.remove(key)
        self.model.upsert_many(rows)

    def _unsubscribe_key(self, key: str) -> None:
        instrument = self._subscribed.pop(key, None)
        if instrument is not None:
            try:
                self.broker.unsubscribe(instrument)
            except BrokerError:
                pass
        self.model.remove(key)
        self._flash.pop(key, None)
        if self._unavailable.pop(key, None) is not None:
            self._say_unavailable()

    def remove_selected(self) -> None:
        for position in reversed(selected_positions(self.view)):
            self.remove_key(self.model.key_at(position))

    def remove_key(self, key: str) -> None:
        self._unsubscribe_key(key)
        gone = [s for s, inst in self.instruments.items() if inst.key == key]
        for text in gone:
            self.instruments.pop(text, None)
        self.watchlist = [s for s in self.watchlist if s not in gone]
        self._save()
        if self.chart.instrument is not None and self.chart.instrument.key == key:
            self.chart.set_instrument(None)

    # --- broker events ------------------------------------------------------------------------
    def _on_quotes_updated(self, quotes: tuple[Quote, ...]) -> None:
        model = self.model
        chart_key = self.chart.instrument.key if self.chart.instrument is not None else None
        now = time.monotonic()
        applied = 0
        for quote in quotes:
            key = quote.instrument.key
            previous = model.row_for_key(key)
            if previous is None:
                continue
            if previous.last is not None and quote.last is not None and quote.last != previous.last:
                direction = 1 if quote.last > previous.last else -1
                flash = self._flash.get(key)
                if flash is None or flash[0] != direction:
                    model.touch(key, _FLASH_COLUMNS)  # a flash starts or turns: its cell repaints whatever its text
                self._flash[key] = (direction, now + FLASH_SECONDS)
            model.upsert(quote)
            applied += 1
            if quote.unavailable or key in self._unavailable:
                self._note_unavailable(quote)
            if key == chart_key:
                self.chart.add_quote(quote)
        self.ticks_applied += applied
        if self._flash and not self._flash_timer.isActive():
            self._flash_timer.start()

    def _on_state_changed(self, status: ConnectionStatus) -> None:
        stale = status.state is not ConnectionState.CONNECTED
        self.model.set_stale(stale)
        if status.state is ConnectionState.DEGRADED:
            self.stale_label.setText("Stale: TWS has lost its connection to IB; quotes are not live.")
        elif stale and len(self.model):
            self.stale_label.setText("Stale: not connected; these are the last quotes received.")
        else:
            self.stale_label.setText("")
        self.stale_label.setVisible(bool(self.stale_label.text()))
        if status.connected and self._not_connected_said:
            self._say("")  # a "not connected" message must not outlive the connection (QA F36)
        if status.connected and any(
            s not in self.instruments or self.instruments[s].key not in self._subscribed for s in self.watchlist
        ):
            self.tasks.spawn(self.load_watchlist())

    def _rows_in_view(self) -> tuple[int, int]:
        """(first, last) display positions the watchlist shows now; (0, -1) when it is not on screen."""
        view = self.view
        if not view.isVisible():
            return 0, -1
        first = view.rowAt(0)
        if first < 0:
            return 0, -1
        last = view.rowAt(view.viewport().height() - 1)
        return first, last if last >= 0 else len(self.model) - 1

    # --- flash --------------------------------------------------------------------------------
    def _background(self, key, _row, column: int):
        if column not in _FLASH_COLUMNS:
            return None
        flash = self._flash.get(key)
        if flash is None or flash[1] < time.monotonic():
            return None
        colours = self._flash_colours
        if colours is None:  # asked per cell per paint: the palette is read once per theme, not per cell
            dark = self.view.palette().color(QPalette.ColorRole.Base).lightness() < 128
            colours = self._flash_colours = (UP_FLASH_DARK, DOWN_FLASH_DARK) if dark else (UP_FLASH, DOWN_FLASH)
        return colours[0] if flash[0] > 0 else colours[1]

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if watched is self.view and event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._flash_colours = None  # the table's theme changed: pick the flash tones again
        return super().eventFilter(watched, event)

    def _expire_flashes(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_d, until) in self._flash.items() if until < now]:
            del self._flash[key]
            self.model.touch(key, _FLASH_COLUMNS)
        if not self._flash:
            self._flash_timer.stop()

    # --- selection, ticket --------------------------------------------------------------------
    def _row_selected(self, position: int) -> None:
        if 0 <= position < len(self.model):
            quote = self.model.row(position)
            self.chart.set_instrument(quote.instrument)
            self.chart.add_quote(quote)

    def request_ticket(self, position: int) -> dict | None:
        if not 0 <= position < len(self.model):
            return None
        quote: Quote = self.model.row(position)
        price = quote.last or quote.close
        request = {
            "symbol": quote.instrument.display,
            "instrument": quote.instrument,  # the ticket's draft takes its market and board lot from it
            "market": quote.instrument.market,
            "side": None,
            "quantity": None,
            "limit_price": fmt.snap_price(quote.instrument.market, Decimal(str(price))) if price else None,
        }
        self.ticket_requested.emit(request)
        return request

    def _note_unavailable(self, quote: Quote) -> None:
        key = quote.instrument.key
        if quote.unavailable:
            if self._unavailable.get(key) == quote.unavailable:
                return
            self._unavailable[key] = quote.unavailable
        elif self._unavailable.pop(key, None) is None:
            return
        self._say_unavailable()

    def _say_unavailable(self) -> None:
        """The message line says which rows IB sends nothing for, and why (one reason shown)."""
        if not self._unavailable:
            if self.message.property("unavailable"):
                self._say("")
            return
        names = sorted(self.model.row_for_key(k).instrument.display for k in self._unavailable
                       if self.model.row_for_key(k) is not None)
        reason = next(iter(self._unavailable.values()))
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        self._say(f"{shown}: {reason}")
        self.message.setProperty("unavailable", True)

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setProperty("unavailable", False)
        self._not_connected_said = text.startswith("Not connected") or "Not connected" in text

    # --- tab protocol -------------------------------------------------------------------------
    def populated(self) -> bool:
        return len(self.model) > 0 and any(q.last is not None or q.bid is not None for q in self.model.rows())

    def shutdown(self) -> None:
        self.broker.quotes_updated.disconnect(self._on_quotes_updated)
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.tasks.cancel()
        self._flash_timer.stop()
        self.model.shutdown()
        self.chart.shutdown()
        for key in list(self._subscribed):
            instrument = self._subscribed.pop(key)
            try:
                self.broker.unsubscribe(instrument)
            except BrokerError:
                pass
        self.settings.save_header(self.TAB_NAME, self.view.horizontalHeader())
