"""The order ticket's widgets: layout, accessible names, and drawing an ``OrderDraft`` on them.

``TicketForm`` is the view half of the ticket; ``ticket_tab.TicketTab`` adds the behaviour (the draft,
the broker, Submit). Every control has an objectName and an accessible name (screen readers, and GUI
tests that find widgets by name).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ibpanel.broker.draft import OrderDraft, step_price, step_quantity
from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderType, Quote, Side, TimeInForce
from ibpanel.ui import formatting as fmt
from ibpanel.ui.ticket_fields import BUY_COLOUR, SELL_COLOUR, SteppingLineEdit

DEGRADED_QUESTION = ("TWS is cut off from IB's servers: the order will wait in TWS and prices shown are stale"
                     " — send anyway?")
CHECK_DEBOUNCE_MS = 300  # validate while typing: this long after the last edit, as TWS does
RESOLVE_DEBOUNCE_MS = 500
NEUTRAL_COLOUR = "#57606a"


class TicketForm(QWidget):
    """The ticket's widgets. Subclasses provide the handlers the widgets call (``_edit``, ``set_side``, ...)."""

    SHORTCUTS = {"buy": ("F1", "Ctrl+B"), "sell": ("F2", "Ctrl+S"), "submit": ("Ctrl+Return", "Ctrl+Enter"),
                 "clear": ("Escape",), "preview": ("Ctrl+P",)}

    # --- layout -------------------------------------------------------------------------------
    def _control(self, widget: QWidget, name: str, accessible: str) -> QWidget:
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        return widget

    def _build(self) -> None:
        self.issue_labels: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        row = 0

        def add(field: str, title: str, *widgets: QWidget, even: bool = False) -> None:
            nonlocal row
            caption = QLabel(title)
            caption.setBuddy(widgets[0])  # screen readers tie the caption to its field
            grid.addWidget(caption, row, 0)
            line = QHBoxLayout()
            line.setContentsMargins(0, 0, 0, 0)
            for i, widget in enumerate(widgets):
                grows = i == 0 or (even and not isinstance(widget, QLabel))
                line.addWidget(widget, 1 if grows else 0)  # even: BUY and SELL the same size
            grid.addLayout(line, row, 1)
            label = self._control(QLabel(""), f"issue_{field}", f"{title or field.replace('_', ' ')} message")
            label.setWordWrap(True)
            label.setStyleSheet(f"color: {SELL_COLOUR};")
            label.setVisible(False)
            self.issue_labels[field] = label
            grid.addWidget(label, row + 1, 1)
            row += 2

        def extra_issue(field: str, title: str) -> None:
            """The message line of a field that shares the row above with another one."""
            nonlocal row
            label = self._control(QLabel(""), f"issue_{field}", f"{title} message")
            label.setWordWrap(True)
            label.setStyleSheet(f"color: {SELL_COLOUR};")
            label.setVisible(False)
            self.issue_labels[field] = label
            grid.addWidget(label, row, 1)
            row += 1

        self.symbol_edit = self._control(QLineEdit(), "symbol", "Symbol")
        self.symbol_edit.setPlaceholderText("AAPL, BRK.B, 700, 0700.HK …")
        self.symbol_edit.textChanged.connect(self._symbol_typed)
        self.symbol_edit.editingFinished.connect(self._resolve_now)
        self.market_combo = self._control(QComboBox(), "market", "Market")
        for text, market in (("Auto", ""), ("US", Market.US.value), ("HK", Market.HK.value)):
            self.market_combo.addItem(text, market)
        self.market_combo.setToolTip("Auto: a number or .HK is Hong Kong (SEHK, HKD); letters are US (SMART, USD)")
        self.market_combo.currentIndexChanged.connect(self._market_chosen)
        self.detected_label = self._control(QLabel(""), "detectedMarket", "Detected market")
        add("symbol", "Symbol", self.symbol_edit, self.market_combo, self.detected_label)
        self.instrument_label = self._control(QLabel(""), "instrumentLabel", "Instrument")
        grid.addWidget(self.instrument_label, row, 1)
        row += 1
        self.quote_strip = self._control(QLabel("Bid –   Ask –   Last –"), "quoteStrip", "Quote")
        self.quote_strip.setStyleSheet("font-family: monospace; font-size: 13px;")
        grid.addWidget(QLabel("Quote"), row, 0)
        grid.addWidget(self.quote_strip, row, 1)
        row += 1

        self.buy_button = self._control(QPushButton("BUY"), "buyButton", "Buy")
        self.sell_button = self._control(QPushButton("SELL"), "sellButton", "Sell")
        for button, side, colour in ((self.buy_button, Side.BUY, BUY_COLOUR), (self.sell_button, Side.SELL, SELL_COLOUR)):
            button.setCheckable(True)
            button.setMinimumHeight(30)
            button.setToolTip(f"{side.value} ({' / '.join(self.SHORTCUTS[side.value.lower()])})")
            button.setStyleSheet(
                f"QPushButton {{ color: {colour}; font-weight: bold; border: 2px solid {colour}; border-radius: 4px; }}"
                f"QPushButton:checked {{ background: {colour}; color: white; }}")
            button.clicked.connect(lambda _on, s=side: self.set_side(s))
        add("side", "Side", self.buy_button, self.sell_button, even=True)

        self.quantity_edit = self._control(SteppingLineEdit(self._step_quantity), "quantity", "Quantity")
        self.quantity_edit.setPlaceholderText("shares")
        self.quantity_edit.textChanged.connect(lambda text: self._edit("quantity", quantity=text))
        self.lot_label = self._control(QLabel(""), "lotLabel", "Lot size")
        add("quantity", "Quantity", self.quantity_edit, self.lot_label)
        self.quantity_edit.textChanged.connect(self.quantity_typed)
        self._build_sizing(add)
        self.type_combo = self._control(QComboBox(), "orderType", "Order type")
        for order_type in OrderType:
            self.type_combo.addItem(order_type.value, order_type.value)
        self.type_combo.currentIndexChanged.connect(
            lambda _i: self._edit("order_type", order_type=OrderType(self.type_combo.currentData())))
        add("order_type", "Order type", self.type_combo)
        self.limit_edit = self._control(SteppingLineEdit(self._step_price), "limitPrice", "Limit price")
        self.limit_edit.textChanged.connect(lambda text: self._edit("limit_price", limit_price=text))
        add("limit_price", "Limit price", self.limit_edit)
        self.stop_edit = self._control(SteppingLineEdit(self._step_price), "stopPrice", "Stop price")
        self.stop_edit.textChanged.connect(lambda text: self._edit("stop_price", stop_price=text))
        add("stop_price", "Stop price", self.stop_edit)
        self.trailing_edit = self._control(QLineEdit(), "trailing", "Trailing amount")
        self.trailing_edit.setPlaceholderText("e.g. 0.50")
        self.trailing_edit.textChanged.connect(lambda text: self._edit("trailing", trailing=text))
        self.trail_unit_combo = self._control(QComboBox(), "trailUnit", "Trail by")
        self.trail_unit_combo.addItem("amount", False)
        self.trail_unit_combo.addItem("%", True)
        self.trail_unit_combo.currentIndexChanged.connect(
            lambda _i: self._edit("trailing", trail_percent=bool(self.trail_unit_combo.currentData())))
        self.initial_stop_label = self._control(QLabel(""), "initialStop", "Initial stop")
        self.limit_offset_edit = self._control(QLineEdit(), "limitOffset", "Limit offset")
        self.limit_offset_edit.setPlaceholderText("TRAIL LIMIT, e.g. 0.10")
        self.limit_offset_edit.textChanged.connect(lambda text: self._edit("limit_offset", limit_offset=text))
        add("trailing", "Trailing", self.trailing_edit, self.trail_unit_combo, QLabel("limit offset"),
            self.limit_offset_edit, self.initial_stop_label, even=True)
        extra_issue("limit_offset", "Limit offset")
        self.tif_combo = self._control(QComboBox(), "tif", "Time in force")
        for tif in TimeInForce:
            self.tif_combo.addItem(tif.value, tif.value)
        self.tif_combo.currentIndexChanged.connect(lambda _i: self._edit("tif", tif=TimeInForce(self.tif_combo.currentData())))
        self.good_till_edit = self._control(QLineEdit(), "goodTill", "Good till")
        self.good_till_edit.setPlaceholderText("GTD: YYYYMMDD HH:MM:SS (exchange time)")
        self.good_till_edit.textChanged.connect(lambda text: self._edit("good_till", good_till=text))
        add("tif", "Time in force", self.tif_combo, QLabel("good till"), self.good_till_edit, even=True)
        extra_issue("good_till", "Good till")
        self.take_profit_edit = self._control(SteppingLineEdit(self._step_price), "takeProfit", "Take-profit")
        self.take_profit_edit.setPlaceholderText("take-profit (optional)")
        self.take_profit_edit.textChanged.connect(lambda text: self._edit("take_profit", take_profit=text))
        self.stop_loss_edit = self._control(SteppingLineEdit(self._step_price), "stopLoss", "Stop-loss")
        self.stop_loss_edit.setPlaceholderText("optional")
        self.stop_loss_edit.textChanged.connect(lambda text: self._edit("stop_loss", stop_loss=text))
        self.stop_loss_trail_edit = self._control(QLineEdit(), "stopLossTrail", "Trailing stop-loss")
        self.stop_loss_trail_edit.setPlaceholderText("optional")
        self.stop_loss_trail_edit.textChanged.connect(
            lambda text: self._edit("stop_loss_trail", stop_loss_trail=text))
        add("take_profit", "Attach take-profit", self.take_profit_edit, QLabel("stop-loss"), self.stop_loss_edit,
            QLabel("or trail by"), self.stop_loss_trail_edit, even=True)
        self.take_profit_edit.setPlaceholderText("take-profit (optional)")
        extra_issue("stop_loss", "Stop-loss")
        extra_issue("stop_loss_trail", "Trailing stop-loss")
        self.outside_rth_check = self._control(QCheckBox("Allow outside regular trading hours"), "outsideRth",
                                               "Allow outside regular trading hours")
        self.outside_rth_check.toggled.connect(lambda on: self._edit("outside_rth", outside_rth=on))
        add("outside_rth", "", self.outside_rth_check)
        self.account_combo = self._control(QComboBox(), "account", "Account")
        self.account_combo.currentIndexChanged.connect(
            lambda _i: self._edit("account", account=self.account_combo.currentText()))
        add("account", "Account", self.account_combo)

        self.estimate_label = self._control(QLabel(""), "estimatedValue", "Estimated value")
        grid.addWidget(QLabel("Estimated value"), row, 0)
        grid.addWidget(self.estimate_label, row, 1)
        self.preview_label = self._control(QLabel(""), "previewLabel", "Preview")
        self.preview_label.setWordWrap(True)
        grid.addWidget(self.preview_label, row + 1, 1)

        self.preview_button = self._control(QPushButton("Preview"), "previewButton", "Preview")
        self.preview_button.setToolTip("What-if: commission and margin change; nothing is sent (Ctrl+P)")
        self.preview_button.clicked.connect(self.preview_clicked)
        self.submit_button = self._control(QPushButton("Submit"), "submitButton", "Submit")
        self.submit_button.setMinimumHeight(32)
        self.submit_button.clicked.connect(self.submit_clicked)
        self.clear_button = self._control(QPushButton("Clear"), "clearButton", "Clear")
        self.clear_button.setToolTip("Empty the ticket (Escape)")
        self.clear_button.clicked.connect(self.clear)
        self.submit_reason = self._control(QLabel(""), "submitReason", "Why Submit is disabled")
        self.submit_reason.setWordWrap(True)
        self.submit_reason.setStyleSheet("color: #9a6700;")
        self.result_label = self._control(QLabel(""), "resultLabel", "Order result")
        self.result_label.setWordWrap(True)
        general = self._control(QLabel(""), "issue_general", "Message")
        general.setWordWrap(True)
        general.setStyleSheet(f"color: {SELL_COLOUR};")
        general.setVisible(False)
        self.issue_labels["general"] = general

        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.apply_preset_button)
        buttons.addWidget(self.save_preset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.submit_button)
        box = QGroupBox("New order")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(grid)
        box_layout.addLayout(buttons)
        for label in (self.submit_reason, general, self.result_label):
            box_layout.addWidget(label)
        outer = QVBoxLayout(self)
        outer.addWidget(box)
        outer.addStretch(1)

        self._resolve_timer = QTimer(self)
        self._resolve_timer.setObjectName("ticketResolveDebounce")
        self._resolve_timer.setSingleShot(True)
        self._resolve_timer.setInterval(RESOLVE_DEBOUNCE_MS)
        self._resolve_timer.timeout.connect(self._resolve_now)
        self._check_timer = QTimer(self)
        self._check_timer.setObjectName("ticketCheckDebounce")
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DEBOUNCE_MS)
        self._check_timer.timeout.connect(self._check_now)

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

    def chosen_market(self) -> Market | None:
        """The market selector: None is Auto."""
        value = self.market_combo.currentData()
        return Market(value) if value else None

    def read_fields(self) -> OrderDraft:
        """The draft as the widgets show it right now (every text box read again): what Submit sends."""
        return replace(self.draft.with_symbol(self.symbol_edit.text(), self.chosen_market()),
                       quantity=self.quantity_edit.text(), limit_price=self.limit_edit.text(),
                       stop_price=self.stop_edit.text(), order_type=OrderType(self.type_combo.currentData()),
                       tif=TimeInForce(self.tif_combo.currentData()), outside_rth=self.outside_rth_check.isChecked(),
                       account=self.account_combo.currentText() or self.draft.account,
                       trailing=self.trailing_edit.text(), trail_percent=bool(self.trail_unit_combo.currentData()),
                       limit_offset=self.limit_offset_edit.text(), good_till=self.good_till_edit.text(),
                       take_profit=self.take_profit_edit.text(), stop_loss=self.stop_loss_edit.text(),
                       stop_loss_trail=self.stop_loss_trail_edit.text())

    def _show_fields(self, draft: OrderDraft) -> None:
        """Put the draft on the widgets (only what differs, so a cursor never jumps while typing)."""
        self._rendering = True
        try:
            for edit, text in ((self.symbol_edit, draft.symbol), (self.quantity_edit, draft.quantity),
                               (self.limit_edit, draft.limit_price), (self.stop_edit, draft.stop_price),
                               (self.trailing_edit, draft.trailing), (self.limit_offset_edit, draft.limit_offset),
                               (self.good_till_edit, draft.good_till), (self.take_profit_edit, draft.take_profit),
                               (self.stop_loss_edit, draft.stop_loss),
                               (self.stop_loss_trail_edit, draft.stop_loss_trail)):
                if edit.text() != text:
                    edit.setText(text)
            for combo, value in ((self.market_combo, draft.market), (self.type_combo, draft.order_type),
                                 (self.tif_combo, draft.tif)):
                index = combo.findData(value.value if value else "")
                if combo.currentIndex() != index:
                    combo.setCurrentIndex(index)
            account = self.account_combo.findText(draft.account)
            if account >= 0 and self.account_combo.currentIndex() != account:
                self.account_combo.setCurrentIndex(account)
            self.outside_rth_check.setChecked(draft.outside_rth)
            unit = self.trail_unit_combo.findData(draft.trail_percent)
            if self.trail_unit_combo.currentIndex() != unit:
                self.trail_unit_combo.setCurrentIndex(unit)
            self.buy_button.setChecked(draft.side is Side.BUY)
            self.sell_button.setChecked(draft.side is Side.SELL)
        finally:
            self._rendering = False
        self.limit_edit.setEnabled(draft.needs("limit_price"))
        self.stop_edit.setEnabled(draft.needs("stop_price"))
        for field, widgets in (("trailing", (self.trailing_edit, self.trail_unit_combo, self.initial_stop_label)),
                               ("limit_offset", (self.limit_offset_edit,)), ("good_till", (self.good_till_edit,))):
            for widget in widgets:
                widget.setEnabled(draft.needs(field))
        self._show_initial_stop()
        detected = draft.detected_market()
        self.detected_label.setText(f"→ {detected.value}" if detected and draft.market is None else "")
        if draft.instrument is not self._shown_instrument:
            self._show_instrument(draft.instrument)

    def _show_instrument(self, instrument: Instrument | None) -> None:
        self._shown_instrument = instrument
        if instrument is None:
            self.instrument_label.setText("")
            self.lot_label.setText("")
        else:
            name = f" · {instrument.long_name}" if instrument.long_name else ""
            self.instrument_label.setText(f"{instrument.display}{name} · {instrument.exchange} · {instrument.currency}")
            self.lot_label.setText(f"board lot {instrument.board_lot:,} ({instrument.lot_source or 'lot table'})"
                                   if instrument.market is Market.HK else "whole shares")
        self.instrument_changed.emit(instrument)

    def _render_issues(self) -> None:
        problems = {f: m for f, m in self.draft.problems().items() if f in self._touched}
        shown = {**self._issues, **problems}
        for field, label in self.issue_labels.items():
            text = shown.get(field, "")
            if label.text() != text:
                label.setText(text)
                label.setVisible(bool(text))

    def issues_shown(self) -> dict[str, str]:
        """Field -> message currently displayed (what the user sees)."""
        return {field: label.text() for field, label in self.issue_labels.items() if label.text()}

    def _show_quote(self, quote: Quote | None) -> None:
        self.quote = quote
        if quote is None:
            return
        inst = self.draft.instrument

        def price(value):
            return fmt.format_price(value, inst) if value is not None else "–"

        tag = quote.data_type.label
        if quote.stale or not self.broker.status.connected:
            tag = "STALE"
        if quote.unavailable:
            tag = "NO DATA"  # IB gives no market-data line for it: nothing will stream (QA F36)
        self.quote_strip.setText(f"Bid {price(quote.bid)}   Ask {price(quote.ask)}   Last {price(quote.last)}   [{tag}]")
        self.quote_strip.setToolTip(quote.unavailable)
        self.quote_strip.setStyleSheet("font-family: monospace; font-size: 13px;"
                                       + (" color: #8c959f;" if tag in ("STALE", "NO DATA") else ""))
        self._update_estimate()
        self._show_initial_stop()
        self.apply_sizing()

    def _show_initial_stop(self) -> None:
        """A trailing stop's initial stop from the last trade (the broker sets it from its own last price)."""
        stop = self.draft.initial_stop(self.quote.last if getattr(self, "quote", None) else None)
        self.initial_stop_label.setText("" if stop is None else f"initial stop ≈ {stop}")

    def _set_result(self, text: str, colour: str = "") -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(f"color: {colour};" if colour else "")


    async def _ask_confirmation(self, request: OrderRequest, *, degraded: bool = False) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if degraded:
            title, text, icon = ("Send while cut off?", f"{DEGRADED_QUESTION}\n\n{self.describe(request)}",
                                 QMessageBox.Icon.Warning)
        else:
            title, text = "Send this order?", self.describe(request)
            icon = QMessageBox.Icon.Question if self.broker.status.is_paper else QMessageBox.Icon.Warning
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("degradedConfirm" if degraded else "submitConfirm")
        box.setAccessibleName(title)
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

    def _step_quantity(self, text: str, steps: int) -> str | None:
        instrument = self.draft.instrument
        return step_quantity(text, steps, instrument.board_lot if instrument else 1, self.number_format)

    def _step_price(self, text: str, steps: int) -> str | None:
        market = self.draft.instrument.market if self.draft.instrument else self.draft.detected_market()
        return step_price(text, steps, market or Market.US, self.draft.symbol, self.number_format)

    def _update_submit(self) -> None:
        """Submit / Preview enabled, labelled and coloured by the draft; the reason when Submit is disabled."""
        reason = self._submit_block_reason()
        side = self.draft.side
        self.submit_button.setEnabled(not reason and not self.in_flight)
        self.preview_button.setEnabled(self.broker.status.connected and not self.in_flight)
        self.submit_reason.setText("Sending…" if self.in_flight else reason)
        self.submit_reason.setVisible(bool(self.submit_reason.text()))
        self.submit_button.setText(f"Submit {side.value}" if side else "Submit")
        self.submit_button.setToolTip(reason or "Check and send the order (Ctrl+Enter)")
        colour = BUY_COLOUR if side is Side.BUY else SELL_COLOUR if side is Side.SELL else NEUTRAL_COLOUR
        self.submit_button.setStyleSheet(f"QPushButton {{ background: {colour}; color: white; font-weight: bold; }}"
                                         "QPushButton:disabled { background: #d0d7de; color: #57606a; }")

    # --- stepping with the arrow keys ------------------------------------------------------------
