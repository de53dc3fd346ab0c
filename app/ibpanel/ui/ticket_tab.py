"""Order ticket: symbol (US / HK auto-detected), live quote strip, side, lot-stepped quantity, tick-stepped
prices, TIF, outside RTH, account, estimated value, Preview (what-if) and Submit.

Safety: every issue ``Broker.check`` reports is shown under the field it is about and nothing is sent;
Submit is disabled while a submission is in flight (no double submit), on read-only connections (with
the reason shown) and when disconnected; live accounts (and paper, if "ticket/confirm_paper") get a
confirmation that shows exactly what will be sent. Dialogs use ``open()`` and a Future, never a
nested event loop inside an asyncio task.
"""

from __future__ import annotations

import asyncio
import logging
import re
from decimal import Decimal

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.exceptions import BrokerError, OrderRejected
from ibpanel.broker.models import (
    ConnectionState,
    ConnectionStatus,
    Instrument,
    Market,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderView,
    Quote,
    Side,
    TimeInForce,
    ValidationIssue,
    WhatIf,
)
from ibpanel.broker.rules import fallback_tick_table, is_hk_etf
from ibpanel.ui import formatting as fmt
from ibpanel.ui.table_model import TaskSet

log = logging.getLogger(__name__)

BUY_COLOUR = "#1a7f37"
SELL_COLOUR = "#cf222e"
_HK_PATTERN = re.compile(r"^\s*(hk:)?\s*\d{1,5}(\.hk)?\s*$|\.hk\s*$", re.IGNORECASE)
_PRICE_TEXT = re.compile(r"^\d*(?:\.\d*)?$")
DEGRADED_QUESTION = ("TWS is cut off from IB's servers: the order will wait in TWS and prices shown are stale"
                     " — send anyway?")
CHECK_DEBOUNCE_MS = 300  # validate while typing: this long after the last edit, as TWS does

# Field names a ValidationIssue may carry, mapped to the ticket's field rows; others show by Submit.
FIELD_ALIASES = {"market": "symbol", "instrument": "symbol", "contract": "symbol", "price": "limit_price",
                 "lmt_price": "limit_price", "aux_price": "stop_price", "size": "quantity", "qty": "quantity"}


def detect_market(text: str) -> Market | None:
    """What the typed text looks like: a number or .HK / HK: is Hong Kong, letters are US; None if empty."""
    if not text.strip():
        return None
    return Market.HK if _HK_PATTERN.search(text) else Market.US


class PriceSpinBox(QDoubleSpinBox):
    """A price box that steps by the instrument's tick at the current price (Decimal arithmetic).

    Shows at least the tick's decimals and never hides a typed digit (an off-tick price stays visible,
    so the broker's "off tick" message matches what is on screen).
    """

    MAX_DECIMALS = 4

    def __init__(self, market: Market | None = None, parent=None) -> None:
        super().__init__(parent)
        self.market = market
        self.tick_table = fallback_tick_table(market or Market.US)
        self.setDecimals(self.MAX_DECIMALS)
        self.setRange(0.0, 10_000_000.0)
        self.setKeyboardTracking(True)  # value (and so the estimate) follows every keystroke
        self.setAccelerated(True)
        self.setGroupSeparatorShown(False)

    def _plain(self, text: str) -> str:
        """The text with "." as the decimal point. A "," is a decimal point only where the locale says so:
        elsewhere it is refused, never read as one ("5,012" must not become 5.012)."""
        text = text.strip()
        return text.replace(",", ".") if self.locale().decimalPoint() == "," else text

    def validate(self, text: str, pos: int):  # noqa: D102 - Qt API: "." (or the locale's ",") as the decimal point
        plain = self._plain(text)
        if not _PRICE_TEXT.match(plain):
            return QValidator.State.Invalid, text, pos
        if plain in ("", "."):
            return QValidator.State.Intermediate, text, pos
        if "." in plain and len(plain.split(".", 1)[1]) > self.MAX_DECIMALS:
            return QValidator.State.Invalid, text, pos
        if Decimal(plain) > Decimal(str(self.maximum())):
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt API
        shown = self.shown_decimal(text)
        return float(shown) if shown is not None else self.value()

    def shown_decimal(self, text: str | None = None) -> Decimal | None:
        """The price the box shows, exactly as typed; None when the text is not a price (empty, "1.2.3")."""
        plain = self._plain(self.cleanText() if text is None else text)
        if not plain or plain == "." or not _PRICE_TEXT.match(plain):
            return None
        value = Decimal(plain)
        if value > Decimal(str(self.maximum())):
            return None
        return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()

    def set_market(self, market: Market | None, symbol: str = "") -> None:
        """Use the market's tick table (HK ETFs keep the older, wider bands)."""
        self.market = market
        self.tick_table = fallback_tick_table(market or Market.US, etf=bool(symbol) and is_hk_etf(symbol))
        self.setValue(self.value())  # re-render with the market's decimals

    def decimal_value(self) -> Decimal:
        """What the box shows (typed, not yet committed, included); the last value if the text is not a price."""
        shown = self.shown_decimal()
        if shown is not None:
            return shown
        value = Decimal(f"{self.value():.{self.MAX_DECIMALS}f}")
        return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()

    def set_decimal(self, value: Decimal | float | None) -> None:
        self.setValue(0.0 if value is None else float(value))

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt API
        current = self.decimal_value()
        if current <= 0:
            if steps <= 0:
                return
            current = Decimal(0)  # from empty, the first step lands on one tick
        try:
            self.set_decimal(self.tick_table.step(current, steps))
        except ValueError:
            return  # already the lowest valid price
        self.editingFinished.emit()

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt API
        if value == 0:
            return "0"
        dec = Decimal(f"{value:.{self.MAX_DECIMALS}f}")
        shown = max(2, self.tick_table.decimals(dec))
        exponent = dec.normalize().as_tuple().exponent
        needed = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return f"{dec:.{min(self.MAX_DECIMALS, max(shown, needed))}f}"


def shown_quantity(spin: QSpinBox) -> int | None:
    """The whole number the quantity box shows (typed included); None when its text is not one."""
    text = spin.cleanText().strip()
    state = spin.validate(text, 0)[0]
    if not text or state != QValidator.State.Acceptable:
        return None
    value, ok = spin.locale().toLongLong(text)
    if not ok:
        digits = text.replace(spin.locale().groupSeparator(), "").replace(",", "")
        if not digits.isdigit():
            return None
        value = int(digits)
    return int(value)


WORKING_COLOUR = "#0969da"


def order_result_text(order: OrderView) -> tuple[str, str]:
    """The ticket's line for an order's latest status, and its colour ("" = normal text).

    Rejected / Inactive carry IB's reason (``OrderView.message``) in red, as TWS's order-rejected box does.
    """
    head = f"Order {order.order_id} {order.side.value} {fmt.format_qty(order.quantity)} {order.instrument.display}"
    status = order.status
    reason = order.message.strip()
    price = fmt.format_price(order.avg_fill_price, order.instrument) if order.avg_fill_price else ""
    if status is OrderStatus.FILLED:
        return f"{head}: Filled {fmt.format_qty(order.filled or order.quantity)} @ {price}.", BUY_COLOUR
    if status in (OrderStatus.REJECTED, OrderStatus.INACTIVE, OrderStatus.NOT_SENT):
        return f"{head}: {status.value}. {reason or 'IB gave no reason.'}", SELL_COLOUR
    if status in (OrderStatus.CANCELLED, OrderStatus.API_CANCELLED):
        filled = f" after {fmt.format_qty(order.filled)} filled @ {price}" if order.filled else ""
        return f"{head}: Cancelled{filled}." + (f" {reason}" if reason else ""), "#57606a"
    if order.filled and order.filled > 0:
        return (f"{head}: partially filled {fmt.format_qty(order.filled)} of {fmt.format_qty(order.quantity)}"
                f" @ {price}, {fmt.format_qty(order.remaining)} working ({status.value})."), WORKING_COLOUR
    if status in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED):
        note = f" {reason}" if reason else ""
        return f"{head}: {status.value} — working.{note}", WORKING_COLOUR
    return f"{head} sent: {status.value}.", ""


_PREFILLED = object()  # marker: the prices came with a prefill request, keep them for its instrument


class TicketTab(QWidget):
    """The order ticket. Signals: ``order_placed(OrderView)`` after a successful submit."""

    TAB_NAME = "ticket"
    TITLE = "Order ticket"

    order_placed = Signal(object)
    instrument_changed = Signal(object)

    SHORTCUTS = {
        "buy": ("F1", "Ctrl+B"),
        "sell": ("F2", "Ctrl+S"),
        "submit": ("Ctrl+Return", "Ctrl+Enter"),
        "clear": ("Escape",),
        "preview": ("Ctrl+P",),
    }

    def __init__(self, broker, settings, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.tasks = TaskSet(on_error=lambda exc: self._show_general(f"Unexpected error: {exc}"))
        self.instrument: Instrument | None = None
        self.quote: Quote | None = None
        self.in_flight = False
        self.last_order: OrderView | None = None
        self.last_preview: WhatIf | None = None
        self.confirm_box: QMessageBox | None = None
        self._resolve_seq = 0
        self._subscribed: Instrument | None = None
        self._user_chose_type = False
        # Which instrument the limit / stop prices were entered for: a price never carries over to another
        # instrument (QA F25). PREFILLED: a caller (close position, double-click) gave the price itself.
        self._prices_for: object = None
        self.issue_labels: dict[str, QLabel] = {}
        self._build()
        self._install_shortcuts()
        broker.state_changed.connect(self._on_state_changed)
        broker.quotes_updated.connect(self._on_quotes_updated)
        broker.order_changed.connect(self._on_order_changed)
        self._on_state_changed(broker.status)
        self._update_estimate()

    # --- layout -------------------------------------------------------------------------------
    def _issue_label(self, field: str) -> QLabel:
        label = QLabel("")
        label.setObjectName(f"issue_{field}")
        label.setWordWrap(True)
        label.setStyleSheet(f"color: {SELL_COLOUR};")
        label.setVisible(False)
        self.issue_labels[field] = label
        return label

    def _build(self) -> None:
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        row = 0

        def add(field: str, title: str, widget: QWidget) -> None:
            nonlocal row
            grid.addWidget(QLabel(title), row, 0)
            grid.addWidget(widget, row, 1)
            grid.addWidget(self._issue_label(field), row + 1, 1)
            row += 2

        self.symbol_edit = QLineEdit()
        self.symbol_edit.setObjectName("symbol")
        self.symbol_edit.setPlaceholderText("AAPL, BRK.B, 700, 0700.HK …")
        self.symbol_edit.textEdited.connect(self._symbol_edited)
        self.symbol_edit.editingFinished.connect(self._resolve_now)
        self.market_combo = QComboBox()
        self.market_combo.addItem("Auto", None)
        self.market_combo.addItem("US", Market.US.value)
        self.market_combo.addItem("HK", Market.HK.value)
        self.market_combo.setToolTip("Auto: a number or .HK is Hong Kong (SEHK, HKD); letters are US (SMART, USD)")
        self.market_combo.currentIndexChanged.connect(lambda _i: self._resolve_now())
        self.detected_label = QLabel("")
        self.detected_label.setObjectName("detectedMarket")
        symbol_row = QWidget()
        symbol_layout = QHBoxLayout(symbol_row)
        symbol_layout.setContentsMargins(0, 0, 0, 0)
        symbol_layout.addWidget(self.symbol_edit, 1)
        symbol_layout.addWidget(self.market_combo)
        symbol_layout.addWidget(self.detected_label)
        add("symbol", "Symbol", symbol_row)

        self.instrument_label = QLabel("")
        self.instrument_label.setObjectName("instrumentLabel")
        grid.addWidget(self.instrument_label, row, 1)
        row += 1

        self.quote_strip = QLabel("Bid –   Ask –   Last –")
        self.quote_strip.setObjectName("quoteStrip")
        self.quote_strip.setStyleSheet("font-family: monospace; font-size: 13px;")
        grid.addWidget(QLabel("Quote"), row, 0)
        grid.addWidget(self.quote_strip, row, 1)
        row += 1

        self.buy_button = QPushButton("BUY")
        self.sell_button = QPushButton("SELL")
        for button, colour, keys in ((self.buy_button, BUY_COLOUR, self.SHORTCUTS["buy"]),
                                     (self.sell_button, SELL_COLOUR, self.SHORTCUTS["sell"])):
            button.setCheckable(True)
            button.setObjectName(button.text().lower() + "Button")
            button.setMinimumHeight(30)
            button.setToolTip(f"{button.text()} ({' / '.join(keys)})")
            button.setStyleSheet(
                f"QPushButton {{ color: {colour}; font-weight: bold; border: 2px solid {colour}; border-radius: 4px; }}"
                f"QPushButton:checked {{ background: {colour}; color: white; }}"
            )
        self.side_group = QButtonGroup(self)
        self.side_group.setExclusive(True)
        self.side_group.addButton(self.buy_button)
        self.side_group.addButton(self.sell_button)
        self.buy_button.setChecked(True)
        self.side_group.buttonToggled.connect(lambda *_: self._side_changed())
        side_row = QWidget()
        side_layout = QHBoxLayout(side_row)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.buy_button)
        side_layout.addWidget(self.sell_button)
        add("side", "Side", side_row)

        self.quantity_spin = QSpinBox()
        self.quantity_spin.setObjectName("quantity")
        self.quantity_spin.setRange(0, 2_000_000_000)
        self.quantity_spin.setGroupSeparatorShown(True)
        self.quantity_spin.setKeyboardTracking(True)  # the estimate follows every keystroke
        self.quantity_spin.valueChanged.connect(lambda _v: self._field_changed("quantity"))
        self.lot_label = QLabel("")
        quantity_row = QWidget()
        quantity_layout = QHBoxLayout(quantity_row)
        quantity_layout.setContentsMargins(0, 0, 0, 0)
        quantity_layout.addWidget(self.quantity_spin, 1)
        quantity_layout.addWidget(self.lot_label)
        add("quantity", "Quantity", quantity_row)

        self.type_combo = QComboBox()
        self.type_combo.setObjectName("orderType")
        for order_type in OrderType:
            self.type_combo.addItem(order_type.value, order_type.value)
        self.type_combo.setCurrentIndex(self.type_combo.findData(OrderType.LMT.value))
        self.type_combo.activated.connect(lambda _i: setattr(self, "_user_chose_type", True))
        self.type_combo.currentIndexChanged.connect(lambda _i: self._type_changed())
        add("order_type", "Order type", self.type_combo)

        self.limit_spin = PriceSpinBox()
        self.limit_spin.setObjectName("limitPrice")
        self.limit_spin.valueChanged.connect(lambda _v: self._field_changed("limit_price"))
        add("limit_price", "Limit price", self.limit_spin)
        self.stop_spin = PriceSpinBox()
        self.stop_spin.setObjectName("stopPrice")
        self.stop_spin.valueChanged.connect(lambda _v: self._field_changed("stop_price"))
        add("stop_price", "Stop price", self.stop_spin)

        self.tif_combo = QComboBox()
        for tif in TimeInForce:
            self.tif_combo.addItem(tif.value, tif.value)
        add("tif", "Time in force", self.tif_combo)
        self.outside_rth_check = QCheckBox("Allow outside regular trading hours")
        add("outside_rth", "", self.outside_rth_check)
        self.account_combo = QComboBox()
        self.account_combo.setObjectName("account")
        add("account", "Account", self.account_combo)

        self.estimate_label = QLabel("")
        self.estimate_label.setObjectName("estimatedValue")
        grid.addWidget(QLabel("Estimated value"), row, 0)
        grid.addWidget(self.estimate_label, row, 1)
        row += 1
        self.preview_label = QLabel("")
        self.preview_label.setObjectName("previewLabel")
        self.preview_label.setWordWrap(True)
        grid.addWidget(self.preview_label, row, 1)
        row += 1

        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("What-if: commission and margin change; nothing is sent (Ctrl+P)")
        self.preview_button.clicked.connect(self.preview_clicked)
        self.submit_button = QPushButton("Submit")
        self.submit_button.setObjectName("submitButton")
        self.submit_button.setMinimumHeight(32)
        self.submit_button.setToolTip("Check and send the order (Ctrl+Enter)")
        self.submit_button.clicked.connect(self.submit_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Clear the ticket (Escape)")
        self.clear_button.clicked.connect(self.clear)
        self.submit_reason = QLabel("")
        self.submit_reason.setObjectName("submitReason")
        self.submit_reason.setWordWrap(True)
        self.submit_reason.setStyleSheet("color: #9a6700;")
        general = self._issue_label("general")
        self.result_label = QLabel("")
        self.result_label.setObjectName("resultLabel")
        self.result_label.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.submit_button)

        box = QGroupBox("New order")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(grid)
        box_layout.addLayout(buttons)
        box_layout.addWidget(self.submit_reason)
        box_layout.addWidget(general)
        box_layout.addWidget(self.result_label)
        outer = QVBoxLayout(self)
        outer.addWidget(box)
        outer.addStretch(1)

        self._resolve_timer = QTimer(self)
        self._resolve_timer.setSingleShot(True)
        self._resolve_timer.setInterval(500)
        self._resolve_timer.timeout.connect(self._resolve_now)
        self._check_timer = QTimer(self)
        self._check_timer.setObjectName("ticketCheckDebounce")
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DEBOUNCE_MS)
        self._check_timer.timeout.connect(self._check_now)
        self._check_seq = 0
        self._shut_down = False
        self.tif_combo.currentIndexChanged.connect(lambda _i: self._schedule_check())
        self.outside_rth_check.toggled.connect(lambda _on: self._schedule_check())
        self.account_combo.currentIndexChanged.connect(lambda _i: self._schedule_check())
        self._type_changed()
        self._side_changed()

    def _install_shortcuts(self) -> None:
        actions = {"buy": lambda: self.set_side(Side.BUY), "sell": lambda: self.set_side(Side.SELL),
                   "submit": self.submit_clicked, "clear": self.clear, "preview": self.preview_clicked}
        self.shortcuts: list[QShortcut] = []
        for name, keys in self.SHORTCUTS.items():
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(actions[name])
                self.shortcuts.append(shortcut)

    # --- field state --------------------------------------------------------------------------
    def side(self) -> Side:
        return Side.SELL if self.sell_button.isChecked() else Side.BUY

    def set_side(self, side: Side | str) -> None:
        (self.sell_button if Side(side) is Side.SELL else self.buy_button).setChecked(True)

    def order_type(self) -> OrderType:
        return OrderType(self.type_combo.currentData())

    def set_order_type(self, order_type: OrderType | str) -> None:
        self.type_combo.setCurrentIndex(self.type_combo.findData(OrderType(order_type).value))

    def market_hint(self) -> Market | None:
        """The US / HK selector if set, else what the typed text looks like."""
        chosen = self.market_combo.currentData()
        return Market(chosen) if chosen else detect_market(self.symbol_edit.text())

    def _side_changed(self) -> None:
        colour = SELL_COLOUR if self.side() is Side.SELL else BUY_COLOUR
        self.submit_button.setText(f"Submit {self.side().value}")
        self.submit_button.setStyleSheet(
            f"QPushButton {{ background: {colour}; color: white; font-weight: bold; }}"
            "QPushButton:disabled { background: #d0d7de; color: #57606a; }"
        )
        self._clear_issue("side")
        self._update_estimate()
        self._schedule_check()

    def _type_changed(self) -> None:
        order_type = self.order_type()
        self.limit_spin.setEnabled(order_type in (OrderType.LMT, OrderType.STP_LMT))
        self.stop_spin.setEnabled(order_type in (OrderType.STP, OrderType.STP_LMT))
        self._clear_issue("order_type")
        self._update_estimate()
        self._schedule_check()

    def _field_changed(self, field: str) -> None:
        self._clear_issue(field)
        self._update_estimate()
        self._schedule_check()

    # --- validation while typing ----------------------------------------------------------------
    def _schedule_check(self) -> None:
        """(Re)start the debounce: ``broker.check`` runs once the user pauses, never per keystroke."""
        if not hasattr(self, "_check_timer") or self._shut_down:
            return  # still building the widgets, or already closed
        self._check_seq += 1  # an answer for older field contents is dropped
        if self.broker.status.connected and self.instrument is not None:
            self._check_timer.start()
        else:
            self._check_timer.stop()

    def _cancel_pending_check(self) -> None:
        """Submit / Preview check for themselves: a typing-time answer must not wipe their messages."""
        self._check_timer.stop()
        self._check_seq += 1

    def _check_now(self) -> None:
        if self.in_flight or self.instrument is None or not self.broker.status.connected:
            return
        if not self.commit_fields(show=False):
            return  # half-typed text: Submit says what is wrong with it
        self.tasks.spawn(self._check(self.build_request(), self._check_seq))

    async def _check(self, request: OrderRequest, seq: int) -> None:
        try:
            issues = await self.broker.check(request)
        except BrokerError as exc:
            log.debug("check while typing failed: %s", exc)
            return
        if seq != self._check_seq or self.in_flight:
            return  # the fields changed meanwhile (or Submit took over): this answer is stale
        self.show_issues(issues)

    def _symbol_edited(self, text: str) -> None:
        market = detect_market(text)
        self.detected_label.setText(f"→ {market.value}" if market and self.market_combo.currentData() is None else "")
        self._clear_issue("symbol")
        self._follow_market_hint()
        self._resolve_timer.start()

    def _follow_market_hint(self) -> None:
        """Until IB answers, step prices with the tick table of the market the text looks like."""
        if self.instrument is None:
            symbol = self.symbol_edit.text().strip()
            for spin in (self.limit_spin, self.stop_spin):
                spin.set_market(self.market_hint(), symbol)

    # --- symbol resolution and quotes ---------------------------------------------------------
    def _resolve_now(self) -> None:
        self._resolve_timer.stop()
        text = self.symbol_edit.text().strip()
        if not text:
            self._set_instrument(None)
            return
        if self.instrument is not None and self._resolved_text == (text, self.market_hint()):
            return
        if not self.broker.status.connected:
            return
        self._resolve_seq += 1
        self.tasks.spawn(self._resolve(text, self.market_hint(), self._resolve_seq))

    _resolved_text: tuple = ("", None)

    async def _resolve(self, text: str, market: Market | None, seq: int) -> Instrument | None:
        try:
            instrument = await self.broker.resolve(text, market)
        except BrokerError as exc:
            if seq == self._resolve_seq:
                self._set_instrument(None)
                self._show_issue("symbol", str(exc))
            return None
        if seq != self._resolve_seq:
            return None  # the user typed something else meanwhile
        self._resolved_text = (text, market)
        self._set_instrument(instrument)
        if self._prices_for is not None and self._prices_for not in (_PREFILLED, instrument.key):
            # prices typed for another instrument never carry over (an HKD price on a USD stock): re-seed
            self.limit_spin.set_decimal(None)
            self.stop_spin.set_decimal(None)
        self._prices_for = instrument.key
        try:
            quote = await self.broker.subscribe(instrument)
        except BrokerError as exc:
            self.quote_strip.setText(f"No quote: {exc}")
            return instrument
        if self.instrument is instrument:
            self._subscribed = instrument
            self._show_quote(quote)
            if self.limit_spin.value() == 0 and quote is not None:
                price = quote.last or (quote.ask if self.side() is Side.BUY else quote.bid) or quote.close
                if price:
                    self.limit_spin.set_decimal(fmt.snap_price(instrument.market, Decimal(str(price))))
        else:
            self.broker.unsubscribe(instrument)
        return instrument

    def _set_instrument(self, instrument: Instrument | None) -> None:
        if self._subscribed is not None and (instrument is None or instrument.key != self._subscribed.key):
            try:
                self.broker.unsubscribe(self._subscribed)
            except BrokerError:
                pass
            self._subscribed = None
        self.instrument = instrument
        self.quote = None
        if instrument is None:
            self.instrument_label.setText("")
            self.lot_label.setText("")
            self.quantity_spin.setSingleStep(1)
            self.quote_strip.setText("Bid –   Ask –   Last –")
            self._update_estimate()
            self.instrument_changed.emit(None)
            return
        lot = max(1, instrument.board_lot)
        self.quantity_spin.setSingleStep(lot)
        if self.quantity_spin.value() == 0:
            self.quantity_spin.setValue(lot if instrument.market is Market.HK else 100)
        self.lot_label.setText(
            f"board lot {lot:,} ({instrument.lot_source or 'lot table'})" if instrument.market is Market.HK else "whole shares"
        )
        self.limit_spin.set_market(instrument.market, instrument.symbol)
        self.stop_spin.set_market(instrument.market, instrument.symbol)
        if instrument.market is Market.HK and not self._user_chose_type:
            self.set_order_type(OrderType.LMT)  # SEHK has no native continuous market order
        name = f" · {instrument.long_name}" if instrument.long_name else ""
        self.instrument_label.setText(
            f"{instrument.display}{name} · {instrument.exchange} · {instrument.currency}"
        )
        self.detected_label.setText(instrument.market.value)
        self._update_estimate()
        self._schedule_check()
        self.instrument_changed.emit(instrument)

    def _on_quotes_updated(self, quotes: tuple[Quote, ...]) -> None:
        if self.instrument is None:
            return
        key = self.instrument.key
        for quote in quotes:
            if quote.instrument.key == key:
                self._show_quote(quote)

    def _show_quote(self, quote: Quote | None) -> None:
        self.quote = quote
        if quote is None:
            return
        inst = self.instrument

        def price(value):
            return fmt.format_price(value, inst) if value is not None else "–"

        tag = quote.data_type.label
        if quote.stale or not self.broker.status.connected:
            tag = "STALE"
        if quote.unavailable:
            tag = "NO DATA"  # IB gives no market-data line for it: nothing will stream (QA F36)
        self.quote_strip.setText(
            f"Bid {price(quote.bid)}   Ask {price(quote.ask)}   Last {price(quote.last)}   [{tag}]"
        )
        self.quote_strip.setToolTip(quote.unavailable)
        self.quote_strip.setStyleSheet(
            "font-family: monospace; font-size: 13px;" + (" color: #8c959f;" if tag in ("STALE", "NO DATA") else "")
        )
        self._update_estimate()

    # --- request building ---------------------------------------------------------------------
    def _price_fields(self) -> list[tuple[str, PriceSpinBox]]:
        order_type = self.order_type()
        fields = []
        if order_type in (OrderType.LMT, OrderType.STP_LMT):
            fields.append(("limit_price", self.limit_spin))
        if order_type in (OrderType.STP, OrderType.STP_LMT):
            fields.append(("stop_price", self.stop_spin))
        return fields

    def commit_fields(self, *, show: bool = True) -> bool:
        """Commit what every box shows (typed, maybe without Enter) before anything is built from it.

        A box whose text is not a number gets a message beside it (when ``show``) and the answer is
        False: the order is refused rather than built from the box's previous value.
        """
        # Read the text first: Qt's interpretText() puts the previous value back over unreadable text.
        ok = True
        if shown_quantity(self.quantity_spin) is not None:
            self.quantity_spin.interpretText()
        else:
            ok = False
            if show:
                text = self.quantity_spin.cleanText().strip()
                self._show_issue("quantity", f"“{text}” is not a whole number of shares: type a quantity, e.g. 100."
                                 if text else "Type a quantity, e.g. 100.")
        for field, spin in self._price_fields():
            if spin.shown_decimal() is not None:
                spin.interpretText()
            else:
                ok = False
                if show:
                    name = "limit" if field == "limit_price" else "stop"
                    text = spin.cleanText().strip()
                    self._show_issue(field, f"“{text}” is not a price: type the {name} price, e.g. 221.37."
                                     if text else f"Type a {name} price.")
        return ok

    def shown_quantity(self) -> int:
        shown = shown_quantity(self.quantity_spin)
        return self.quantity_spin.value() if shown is None else shown

    def build_request(self) -> OrderRequest:
        """The order as the fields show it (call ``commit_fields`` first to refuse unreadable text)."""
        order_type = self.order_type()
        return OrderRequest(
            symbol=self.symbol_edit.text().strip(),
            side=self.side(),
            quantity=Decimal(self.shown_quantity()),
            order_type=order_type,
            limit_price=self.limit_spin.decimal_value() if order_type in (OrderType.LMT, OrderType.STP_LMT) else None,
            stop_price=self.stop_spin.decimal_value() if order_type in (OrderType.STP, OrderType.STP_LMT) else None,
            tif=TimeInForce(self.tif_combo.currentData()),
            outside_rth=self.outside_rth_check.isChecked(),
            account=self.account_combo.currentText() or None,
            market=self.market_hint(),
            source="panel",
        )

    def _reference_price(self) -> Decimal | None:
        order_type = self.order_type()
        if order_type in (OrderType.LMT, OrderType.STP_LMT) and self.limit_spin.decimal_value() > 0:
            return self.limit_spin.decimal_value()
        if order_type is OrderType.STP and self.stop_spin.decimal_value() > 0:
            return self.stop_spin.decimal_value()
        quote = self.quote
        if quote is None:
            return None
        value = (quote.ask if self.side() is Side.BUY else quote.bid) or quote.last
        return Decimal(str(value)) if value else None

    def estimated_value(self) -> Decimal | None:
        price = self._reference_price()
        quantity = self.shown_quantity()
        if price is None or quantity <= 0:
            return None
        return price * Decimal(quantity)

    def _update_estimate(self) -> None:
        value = self.estimated_value()
        currency = self.instrument.currency if self.instrument else ""
        self.estimate_label.setText("–" if value is None else f"≈ {value:,.2f} {currency}".rstrip())

    # --- issues -------------------------------------------------------------------------------
    def _field_for(self, field: str) -> str:
        field = FIELD_ALIASES.get(field, field)
        return field if field in self.issue_labels else "general"

    def show_issues(self, issues: tuple[ValidationIssue, ...] | list[ValidationIssue]) -> None:
        self.clear_issues()
        grouped: dict[str, list[str]] = {}
        for issue in issues:
            grouped.setdefault(self._field_for(issue.field), []).append(issue.message)
        for field, messages in grouped.items():
            self._show_issue(field, "\n".join(messages))

    def _show_issue(self, field: str, message: str) -> None:
        label = self.issue_labels[self._field_for(field)]
        label.setText(message)
        label.setVisible(True)

    def _show_general(self, message: str) -> None:
        self._show_issue("general", message)

    def _clear_issue(self, field: str) -> None:
        label = self.issue_labels.get(field)
        if label is not None and label.text():
            label.setText("")
            label.setVisible(False)

    def clear_issues(self) -> None:
        for field in self.issue_labels:
            self._clear_issue(field)

    def issues_shown(self) -> dict[str, str]:
        """Field -> message currently displayed (what the user sees)."""
        return {field: label.text() for field, label in self.issue_labels.items() if label.text()}

    # --- submit / preview ---------------------------------------------------------------------
    def _submit_block_reason(self) -> str:
        status = self.broker.status
        if not status.connected:
            return "Not connected: connect to TWS / IB Gateway or start a practice session to send orders."
        if status.readonly:
            return "Read-only connection: orders cannot be sent. Reconnect with Read-only unticked to trade."
        return ""

    def _update_submit(self) -> None:
        reason = self._submit_block_reason()
        self.submit_button.setEnabled(not reason and not self.in_flight)
        self.preview_button.setEnabled(self.broker.status.connected and not self.in_flight)
        self.submit_reason.setText(reason or ("Sending…" if self.in_flight else ""))
        self.submit_reason.setVisible(bool(self.submit_reason.text()))
        self.submit_button.setToolTip(reason or "Check and send the order (Ctrl+Enter)")

    def submit_clicked(self) -> None:
        """Button, Ctrl+Enter: build the order from what the fields show right now, check it, confirm, send."""
        if self.in_flight or not self.submit_button.isEnabled():
            return  # one submission at a time; a second click or shortcut does nothing
        self._cancel_pending_check()
        self.clear_issues()
        self._set_result("")
        self.last_order = None  # the line now belongs to the new order
        if not self.commit_fields():
            return  # an unreadable field: its message is shown, nothing is sent
        request = self.build_request()
        self.in_flight = True
        self._update_submit()
        self.tasks.spawn(self._submit(request))

    def confirmation_needed(self) -> bool:
        if self.broker.status.is_paper is not True:
            return True  # live, or unknown (treated as live): always confirm
        return bool(self.settings.get("ticket/confirm_paper", False))

    def describe(self, request: OrderRequest) -> str:
        """Exactly what will be sent, in words."""
        inst = self.instrument
        symbol = inst.display if inst else request.symbol
        parts = [f"{request.side.value} {fmt.format_qty(request.quantity)} {symbol}", request.order_type.value]
        for name, price in (("limit", request.limit_price), ("stop", request.stop_price)):
            if price is not None:
                parts.append(f"{name} {price:.{fmt.price_decimals(inst, price)}f}")  # exact, no separators
        parts.append(request.tif.value)
        if request.outside_rth:
            parts.append("outside RTH")
        line = " ".join(parts)
        where = f"{inst.exchange} {inst.currency}" if inst else ""
        value = self.estimated_value()
        estimate = f"\nEstimated value ≈ {value:,.2f} {inst.currency if inst else ''}" if value is not None else ""
        account = request.account or self.broker.status.account or "?"
        kind = "PAPER" if self.broker.status.is_paper else "LIVE"
        return f"{line} ({where})\nAccount {account} [{kind}]{estimate}"

    def connection_cut_off(self) -> bool:
        """TWS has lost IB's servers (1100) or the panel is reconnecting: orders wait, prices are stale."""
        return self.broker.status.state in (ConnectionState.DEGRADED, ConnectionState.RECONNECTING)

    async def _ask_confirmation(self, request: OrderRequest, *, degraded: bool = False) -> bool:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        if degraded:
            title, text, icon = "Send while cut off?", f"{DEGRADED_QUESTION}\n\n{self.describe(request)}", \
                QMessageBox.Icon.Warning
        else:
            title, text = "Send this order?", self.describe(request)
            icon = QMessageBox.Icon.Question if self.broker.status.is_paper else QMessageBox.Icon.Warning
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("degradedConfirm" if degraded else "submitConfirm")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).setText("Send")

        def finished(_result: int) -> None:
            clicked = box.clickedButton()
            if not answer.done():
                answer.set_result(clicked is not None and box.standardButton(clicked) == QMessageBox.StandardButton.Yes)

        box.finished.connect(finished)
        self.confirm_box = box
        box.open()
        try:
            return await answer
        finally:
            self.confirm_box = None
            box.deleteLater()

    async def _submit(self, request: OrderRequest) -> OrderView | None:
        try:
            if not request.symbol:
                self._show_issue("symbol", "Type a symbol, e.g. AAPL or 0700.HK.")
                return None
            issues = await self.broker.check(request)
            if issues:
                self.show_issues(issues)
                return None
            if self.connection_cut_off() and not await self._ask_confirmation(request, degraded=True):
                self._set_result("Not sent: TWS is cut off from IB's servers and you chose not to send.")
                return None
            if self.confirmation_needed() and not await self._ask_confirmation(request):
                self._set_result("Not sent: you cancelled the confirmation.")
                return None
            order = await self.broker.place(request)
        except OrderRejected as exc:
            self.show_issues(exc.issues)
            return None
        except BrokerError as exc:
            self._show_general(str(exc))
            return None
        finally:
            self.in_flight = False
            self._update_submit()
        self.last_order = order
        # a status event may have overtaken place()'s answer (a rejection comes within milliseconds)
        latest = self.broker.order(order.order_id)
        self.show_order_result(latest if latest is not None else order)
        self.order_placed.emit(order)
        return order

    def preview_clicked(self) -> None:
        if self.in_flight or not self.broker.status.connected:
            return
        self._cancel_pending_check()
        self.clear_issues()
        if not self.commit_fields():
            self.preview_label.setText("")
            return
        self.preview_label.setText("Previewing…")
        self.tasks.spawn(self._preview(self.build_request()))

    async def _preview(self, request: OrderRequest) -> WhatIf | None:
        try:
            what_if = await self.broker.preview(request)
        except OrderRejected as exc:
            self.preview_label.setText("")
            self.show_issues(exc.issues)
            return None
        except BrokerError as exc:
            self.preview_label.setText(f"No preview: {exc}")
            return None
        self.last_preview = what_if
        currency = what_if.commission_currency or (self.instrument.currency if self.instrument else "")
        parts = []
        if what_if.commission is not None:
            parts.append(f"commission ≈ {what_if.commission:,.2f} {currency}")
        elif what_if.min_commission is not None:
            parts.append(f"commission {what_if.min_commission:,.2f}–{what_if.max_commission or 0:,.2f} {currency}")
        base = self.base_currency()  # IB reports margin and equity in the account's base currency
        if what_if.init_margin_change is not None:
            parts.append(f"initial margin {what_if.init_margin_change:+,.2f} {base}")
        if what_if.maint_margin_change is not None:
            parts.append(f"maintenance margin {what_if.maint_margin_change:+,.2f} {base}")
        if what_if.equity_with_loan_after is not None:
            parts.append(f"equity with loan after {what_if.equity_with_loan_after:,.2f} {base}")
        text = "What-if: " + (", ".join(parts) if parts else "no figures returned")
        if what_if.warning:
            text += f"\n⚠ {what_if.warning}"
        self.preview_label.setText(text)
        return what_if

    def base_currency(self) -> str:
        """The order's account's base currency (margin / equity figures are in it); USD if not yet known."""
        account = self.account_combo.currentText() or self.broker.status.account
        try:
            summary = self.broker.account_summary(account or None)
        except BrokerError:
            summary = None
        return (summary.base_currency if summary is not None and summary.base_currency else None) or "USD"

    # --- order status following -----------------------------------------------------------------
    def _set_result(self, text: str, colour: str = "") -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(f"color: {colour};" if colour else "")

    def _on_order_changed(self, order: OrderView) -> None:
        if self.last_order is not None and order.order_id == self.last_order.order_id:
            self.show_order_result(order)

    def show_order_result(self, order: OrderView) -> None:
        """The result line follows the order sent from this ticket, as TWS's order line does."""
        text, colour = order_result_text(order)
        self._set_result(text, colour)

    # --- prefill / clear ----------------------------------------------------------------------
    def prefill(self, d: dict) -> None:
        """Fill the ticket from a request dict: symbol, side, quantity, limit_price (and market, account)."""
        self.clear_issues()
        self._set_result("")
        self.preview_label.setText("")
        market = d.get("market")
        if market is not None:
            self.market_combo.setCurrentIndex(self.market_combo.findData(Market(market).value))
        else:
            self.market_combo.setCurrentIndex(0)
        symbol = d.get("symbol") or ""
        if symbol != self.symbol_edit.text():
            self.symbol_edit.setText(symbol)
            self._set_instrument(None)
        if d.get("side"):
            self.set_side(d["side"])
        if d.get("quantity") is not None:
            self.quantity_spin.setValue(int(Decimal(d["quantity"])))
        if d.get("limit_price") is not None:
            if self.order_type() not in (OrderType.LMT, OrderType.STP_LMT):
                self.set_order_type(OrderType.LMT)
            self.limit_spin.set_decimal(Decimal(str(d["limit_price"])))
            self._prices_for = _PREFILLED
        else:
            self.limit_spin.set_decimal(None)  # refilled from the quote once resolved
            self._prices_for = None
        if d.get("account"):
            index = self.account_combo.findText(d["account"])
            if index >= 0:
                self.account_combo.setCurrentIndex(index)
        self._resolved_text = ("", None)
        self._follow_market_hint()
        self._resolve_now()
        self.symbol_edit.setFocus()

    def clear(self) -> None:
        """Escape: close a pending confirmation (as No), else empty the ticket."""
        if self.confirm_box is not None:
            self.confirm_box.reject()
            return
        self._resolve_seq += 1
        self.symbol_edit.clear()
        self._set_instrument(None)
        self.quantity_spin.setValue(0)
        self.limit_spin.set_decimal(None)
        self.stop_spin.set_decimal(None)
        self._user_chose_type = False
        self._prices_for = None
        self.set_order_type(OrderType.LMT)
        self.tif_combo.setCurrentIndex(0)
        self.outside_rth_check.setChecked(False)
        self.clear_issues()
        self.preview_label.setText("")
        self._set_result("")

    # --- broker events ------------------------------------------------------------------------
    def _on_state_changed(self, status: ConnectionStatus) -> None:
        accounts = list(status.accounts)
        if [self.account_combo.itemText(i) for i in range(self.account_combo.count())] != accounts:
            self.account_combo.clear()
            self.account_combo.addItems(accounts)
        if status.account:
            index = self.account_combo.findText(status.account)
            if index >= 0 and self.account_combo.currentIndex() != index and self.account_combo.count():
                self.account_combo.setCurrentIndex(index)
        self._update_submit()
        if self.quote is not None:
            self._show_quote(self.quote)
        if status.connected and self.instrument is None and self.symbol_edit.text().strip():
            self._resolve_now()

    # --- tab protocol -------------------------------------------------------------------------
    def populated(self) -> bool:
        return self.broker.status.connected and self.account_combo.count() > 0

    def shutdown(self) -> None:
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.broker.quotes_updated.disconnect(self._on_quotes_updated)
        self.broker.order_changed.disconnect(self._on_order_changed)
        self._shut_down = True
        self._resolve_timer.stop()
        self._check_timer.stop()
        self.tasks.cancel()
        if self._subscribed is not None:
            try:
                self.broker.unsubscribe(self._subscribed)
            except BrokerError:
                pass
            self._subscribed = None
