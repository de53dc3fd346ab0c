"""Order ticket: a view over one Qt-free ``OrderDraft`` (broker/draft.py).

Over 500 lines because the ticket's submit path (check, confirmation, send, what-if) and its redraw from
the draft stay together; its form and fields are in ticket_form.py and ticket_fields.py.

Every edit writes the draft and the window is redrawn from it; every way in (typing, Quotes
double-click, Positions "close", the demo, Escape / Clear) loads a whole draft, never part of one.
Submit (button, Ctrl+Enter, the confirmation) sends ``draft.to_request()`` of what the fields show,
after ``Broker.check``; it is disabled while a field is empty or unreadable, or shows a message,
and refuses such a draft if reached anyway. Live accounts (and paper, if "ticket/confirm_paper") get
a confirmation with exactly what will be sent. Dialogs use ``open()`` and a Future, never a nested
event loop inside an asyncio task. "ticket/default_side" (BUY / SELL / empty) is the side a new
ticket starts with; empty means none: the trader picks one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox

from ibpanel.broker.draft import OrderDraft, describe_request, price_text
from ibpanel.broker.exceptions import BrokerError, OrderRejected
from ibpanel.broker.models import (
    ConnectionState,
    ConnectionStatus,
    Instrument,
    Market,
    OrderRequest,
    OrderType,
    OrderView,
    Quote,
    Side,
    ValidationIssue,
    WhatIf,
)
from ibpanel.ui import formatting as fmt
from ibpanel.ui.table_model import TaskSet
from ibpanel.ui.ticket_fields import number_format_of, order_result_text
from ibpanel.ui.ticket_form import DEGRADED_QUESTION, TicketForm  # noqa: F401 - part of this module's API
from ibpanel.ui.ticket_sizing import TicketSizing

log = logging.getLogger(__name__)

# Field names a ValidationIssue may carry, mapped to the ticket's field rows; others show by Submit.
FIELD_ALIASES = {"trailing_amount": "trailing", "trailing_percent": "trailing",
                 "market": "symbol", "instrument": "symbol", "contract": "symbol", "price": "limit_price",
                 "lmt_price": "limit_price", "aux_price": "stop_price", "size": "quantity", "qty": "quantity"}
FIELDS = ("symbol", "side", "quantity", "order_type", "limit_price", "stop_price", "tif", "outside_rth", "account",
          "trailing", "limit_offset", "good_till", "take_profit", "stop_loss", "stop_loss_trail")


class TicketTab(TicketSizing, TicketForm):
    """The order ticket. Signals: ``order_placed(OrderView)`` after a successful submit,
    ``instrument_changed(Instrument | None)`` when the resolved stock changes."""

    TAB_NAME = "ticket"

    order_placed = Signal(object)
    instrument_changed = Signal(object)

    def __init__(self, broker, settings, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.tasks = TaskSet(on_error=lambda exc: self._show_issue("general", f"Unexpected error: {exc}"))
        self.number_format = number_format_of(self.locale())
        self.draft = self._blank_draft()
        self.quote: Quote | None = None
        self.in_flight = False
        self.last_order: OrderView | None = None
        self.last_preview: WhatIf | None = None
        self.confirm_box: QMessageBox | None = None
        self._touched: set[str] = set()  # fields whose own problems are shown (edited, or Submit tried)
        self._issues: dict[str, str] = {}  # the broker's messages by field row
        self._resolve_seq = self._check_seq = self._preview_seq = 0
        self._subscribed: Instrument | None = None
        self._shown_instrument: Instrument | None = None
        self._shut_down = False
        self._rendering = True  # building fires the widgets' change signals: not edits
        self._build()
        self._rendering = False
        self._install_shortcuts()
        broker.state_changed.connect(self._on_state_changed)
        broker.quotes_updated.connect(self._on_quotes_updated)
        broker.order_changed.connect(self._on_order_changed)
        self._on_state_changed(broker.status)

    # --- the draft ------------------------------------------------------------------------------
    def default_side(self) -> Side | None:
        value = str(self.settings.get("ticket/default_side", "") or "").strip().upper()
        return Side(value) if value in ("BUY", "SELL") else None

    def _blank_draft(self) -> OrderDraft:
        return OrderDraft.blank(side=self.default_side(), account=self.broker.status.account or "",
                                number_format=self.number_format)

    def side(self) -> Side | None:
        return self.draft.side

    def set_side(self, side: Side | str) -> None:
        self._edit("side", side=Side(side))

    def order_type(self) -> OrderType:
        return self.draft.order_type

    def set_order_type(self, order_type: OrderType | str) -> None:
        self._edit("order_type", order_type=OrderType(order_type))

    @property
    def instrument(self) -> Instrument | None:
        return self.draft.instrument

    def _edit(self, field: str, **changes) -> None:
        """A user edit of one field: write it into the draft, redraw, re-check after a pause."""
        if self._rendering:
            return
        draft = replace(self.draft, **changes)
        if field in ("limit_price", "stop_price", "take_profit", "stop_loss"):  # typed for this stock (or, unresolved yet, the one that comes)
            draft = draft.with_prices_for(draft.instrument.key if draft.instrument else None)
        self._touched.add(field)
        self._issues.pop(field, None)
        self._issues.pop("general", None)
        self._set_draft(draft)
        if field != "quantity":
            self.apply_sizing()  # a new price, stop or side changes what money / risk buys

    def _symbol_typed(self, text: str) -> None:
        if self._rendering:
            return
        self._touched.add("symbol")
        self._issues.pop("symbol", None)
        self._set_draft(self.draft.with_symbol(text))
        self._resolve_timer.start()

    def _market_chosen(self, _index: int) -> None:
        if self._rendering:
            return
        self._issues.pop("symbol", None)
        self._set_draft(self.draft.with_symbol(self.draft.symbol, self.chosen_market()))
        self._resolve_now()

    def load(self, draft: OrderDraft) -> None:
        """Show a whole new draft (an entry point): nothing of the previous order stays."""
        self._resolve_seq += 1  # an answer for the previous symbol must not land in this draft
        self._resolve_timer.stop()
        self._touched = set()
        self._issues = {}
        self._set_result("")
        self.preview_label.setText("")
        if draft.account == "":
            draft = replace(draft, account=self.broker.status.account or "")
        self._set_draft(replace(draft, number_format=self.number_format))
        self._resolve_now()

    def prefill(self, request) -> None:
        """Open the ticket with a whole draft: an ``OrderDraft``, or a request dict (see ``OrderDraft.from_mapping``)."""
        draft = request if isinstance(request, OrderDraft) else OrderDraft.from_mapping(
            request, default_side=self.default_side(), number_format=self.number_format)
        self.load(draft)
        self.symbol_edit.setFocus()

    def clear(self) -> None:
        """Escape / Clear: close a pending confirmation (as No), else reset the whole draft."""
        if self.confirm_box is not None:
            self.confirm_box.reject()
            return
        self.load(self._blank_draft())

    def _set_draft(self, draft: OrderDraft) -> None:
        if draft != self.draft:  # a what-if describes the order it was asked for, not this one
            self._preview_seq += 1
            self.preview_label.setText("")
            self.last_preview = None
        self.draft = draft
        self._render()
        self._sync_subscription()
        self._schedule_check()

    # --- drawing the draft ---------------------------------------------------------------------
    def _render(self) -> None:
        self._show_fields(self.draft)
        self._render_issues()
        self._update_estimate()
        self._update_submit()

    def show_issues(self, issues: tuple[ValidationIssue, ...] | list[ValidationIssue]) -> None:
        grouped: dict[str, list[str]] = {}
        for issue in issues:
            field = FIELD_ALIASES.get(issue.field, issue.field)
            grouped.setdefault(field if field in self.issue_labels else "general", []).append(issue.message)
        self._issues = {field: "\n".join(messages) for field, messages in grouped.items()}
        self._render_issues()
        self._update_submit()

    def _show_issue(self, field: str, message: str) -> None:
        self._issues[field] = message
        self._render_issues()
        self._update_submit()

    def _update_estimate(self) -> None:
        value = self.estimated_value()
        currency = self.draft.instrument.currency if self.draft.instrument else ""
        self.estimate_label.setText("" if value is None else f"≈ {value:,.2f} {currency}".rstrip())

    def estimated_value(self) -> Decimal | None:
        quote = self.quote
        return self.draft.estimated_value(*((quote.bid, quote.ask, quote.last) if quote else (None, None, None)))

    def _submit_block_reason(self) -> str:
        status = self.broker.status
        if not status.connected:
            return "Not connected: connect to TWS / IB Gateway or start a practice session to send orders."
        if status.readonly:
            return "Read-only connection: orders cannot be sent. Reconnect with Read-only unticked to trade."
        problems = self.draft.problems()
        unshown = [message for field, message in problems.items() if field not in self._touched]
        if unshown:  # said here once; a field's own message is said beside it
            return "To send: " + " ".join(unshown)
        if problems or any(field != "general" for field in self._issues):
            return "To send: correct the field marked in red."
        return ""

    # --- validation while typing ----------------------------------------------------------------
    def _schedule_check(self) -> None:
        """(Re)start the debounce: ``broker.check`` runs once the user pauses, never per keystroke."""
        if self._shut_down:
            return
        self._check_seq += 1  # an answer for older field contents is dropped
        ready = self.broker.status.connected and self.draft.instrument is not None and not self.draft.problems()
        if ready:
            self._check_timer.start()
        else:
            self._check_timer.stop()

    def _cancel_pending_check(self) -> None:
        """Submit / Preview check for themselves: a typing-time answer must not land over their messages."""
        self._check_timer.stop()
        self._check_seq += 1

    def _check_now(self) -> None:
        if self.in_flight or self.draft.problems() or not self.broker.status.connected:
            return
        self.tasks.spawn(self._check(self.draft.to_request(), self._check_seq))

    async def _check(self, request: OrderRequest, seq: int) -> None:
        try:
            issues = await self.broker.check(request)
        except BrokerError as exc:
            log.debug("check while typing failed: %s", exc)
            return
        if seq == self._check_seq and not self.in_flight:  # else the fields changed meanwhile: stale
            self.show_issues(issues)

    # --- symbol resolution and quotes ---------------------------------------------------------
    def _resolve_now(self) -> None:
        self._resolve_timer.stop()
        draft = self.draft
        if draft.instrument is not None or draft.spec() is None or not self.broker.status.connected:
            return
        self._resolve_seq += 1
        self.tasks.spawn(self._resolve(draft.symbol, draft.market, self._resolve_seq))

    async def _resolve(self, text: str, market: Market | None, seq: int) -> Instrument | None:
        try:
            instrument = await self.broker.resolve(text, market)
        except BrokerError as exc:
            if seq == self._resolve_seq and self.draft.symbol == text:
                self._show_issue("symbol", str(exc))
            return None
        draft = self.draft.with_instrument(instrument)
        if seq != self._resolve_seq or draft.instrument is not instrument:
            return None  # the user typed something else meanwhile
        if draft.prices_for not in (None, instrument.key):
            # prices typed for another stock never carry over
            draft = replace(draft, limit_price="", stop_price="", take_profit="", stop_loss="")
        self._set_draft(draft.with_prices_for(instrument.key))
        return instrument

    def _sync_subscription(self) -> None:
        """Follow the draft's instrument: subscribe to its quote, drop the previous one."""
        instrument = self.draft.instrument
        if self._subscribed is not None and (instrument is None or instrument.key != self._subscribed.key):
            try:
                self.broker.unsubscribe(self._subscribed)
            except BrokerError:
                pass
            self._subscribed = None
        if instrument is None:
            if self.quote is not None or not self.quote_strip.text():
                self.quote = None
                self.quote_strip.setText("Bid –   Ask –   Last –")
                self._update_estimate()
            return
        if self._subscribed is None and not self._shut_down:
            self._subscribed = instrument
            self.quote = None
            self.tasks.spawn(self._subscribe(instrument))

    async def _subscribe(self, instrument: Instrument) -> None:
        try:
            quote = await self.broker.subscribe(instrument)
        except BrokerError as exc:
            if self._subscribed is instrument:
                self.quote_strip.setText(f"No quote: {exc}")
            return
        if self._subscribed is not instrument:
            return
        self._show_quote(quote)
        draft = self.draft
        if quote is not None and draft.instrument is instrument and draft.needs("limit_price") and not draft.limit_price:
            price = quote.last or (quote.bid if draft.side is Side.SELL else quote.ask) or quote.close
            if price:  # seeded once, on screen before any Submit; never at Submit
                seeded = fmt.snap_price(instrument.market, Decimal(str(price)))
                self._set_draft(replace(draft, limit_price=price_text(
                    seeded, fmt.price_decimals(instrument, seeded), self.number_format)))

    def _on_quotes_updated(self, quotes: tuple[Quote, ...]) -> None:
        if self._subscribed is None:
            return
        key = self._subscribed.key
        for quote in quotes:
            if quote.instrument.key == key:
                self._show_quote(quote)

    # --- submit / preview ---------------------------------------------------------------------
    def _ready_request(self) -> OrderRequest | None:
        """The order the fields show, or None (every problem then shown beside its field).

        A field that shows the broker's message refuses too: correct it first (editing clears it).
        """
        self._cancel_pending_check()
        self._issues.pop("general", None)
        self._rendering = True  # the widgets already show this draft: read, do not redraw them
        try:
            self.draft = self.read_fields()
        finally:
            self._rendering = False
        self._touched = set(FIELDS)
        self._render()
        if self.draft.problems() or self._issues_block():
            return None
        return self.draft.to_request()

    def submit_clicked(self) -> None:
        """Button, Ctrl+Enter: check and send exactly what the fields show; refuse if a field is wrong."""
        if self.in_flight:
            return  # one submission at a time; a second click or shortcut does nothing
        self._set_result("")
        request = self._ready_request()
        if request is None or self._submit_block_reason():
            return  # a field's message, not connected or read-only: said on screen, nothing sent
        self.last_order = None  # the result line now belongs to the new order
        self.in_flight = True
        self._update_submit()
        self.tasks.spawn(self._submit(request))

    def _issues_block(self) -> bool:
        return any(field != "general" for field in self._issues)

    def confirmation_needed(self) -> bool:
        if self.broker.status.is_paper is not True:
            return True  # live, or unknown (treated as live): always confirm
        return bool(self.settings.get("ticket/confirm_paper", False))

    def describe(self, request: OrderRequest) -> str:
        """Exactly what will be sent, in words."""
        inst = self.draft.instrument
        where = f" ({inst.exchange} {inst.currency})" if inst else ""
        value = self.estimated_value()
        estimate = f"\nEstimated value ≈ {value:,.2f} {inst.currency if inst else ''}" if value is not None else ""
        account = request.account or self.broker.status.account or "?"
        kind = "PAPER" if self.broker.status.is_paper else "LIVE"
        return f"{describe_request(request, inst, self.number_format)}{where}\nAccount {account} [{kind}]{estimate}"

    def connection_cut_off(self) -> bool:
        """TWS has lost IB's servers (1100) or the panel is reconnecting: orders wait, prices are stale."""
        return self.broker.status.state in (ConnectionState.DEGRADED, ConnectionState.RECONNECTING)

    async def _submit(self, request: OrderRequest) -> OrderView | None:
        try:
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
            self._show_issue("general", str(exc))
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
        request = self._ready_request()
        self.preview_label.setText("" if request is None else "Previewing…")
        if request is not None:
            self.tasks.spawn(self._preview(request))

    async def _preview(self, request: OrderRequest) -> WhatIf | None:
        seq = self._preview_seq
        try:
            what_if = await self.broker.preview(request)
        except OrderRejected as exc:
            if seq != self._preview_seq:
                return None  # the ticket changed meanwhile: this answer is about another order
            self.preview_label.setText("")
            self.show_issues(exc.issues)
            return None
        except BrokerError as exc:
            if seq == self._preview_seq:
                self.preview_label.setText(f"No preview: {exc}")
            return None
        if seq != self._preview_seq:
            return None
        self.last_preview = what_if
        currency = what_if.commission_currency or (self.draft.instrument.currency if self.draft.instrument else "")
        parts = []
        if what_if.commission is not None:
            parts.append(f"commission ≈ {what_if.commission:,.2f} {currency}")
        elif what_if.min_commission is not None:
            parts.append(f"commission {what_if.min_commission:,.2f}–{what_if.max_commission or 0:,.2f} {currency}")
        base = self.base_currency()  # IB reports margin and equity in the account's base currency
        for name, value in (("initial margin", what_if.init_margin_change),
                            ("maintenance margin", what_if.maint_margin_change)):
            if value is not None:
                parts.append(f"{name} {value:+,.2f} {base}")
        if what_if.equity_with_loan_after is not None:
            parts.append(f"equity with loan after {what_if.equity_with_loan_after:,.2f} {base}")
        text = "What-if: " + (", ".join(parts) if parts else "no figures returned")
        self.preview_label.setText(text + (f"\n⚠ {what_if.warning}" if what_if.warning else ""))
        return what_if

    def base_currency(self) -> str:
        """The order's account's base currency (margin / equity figures are in it); USD if not yet known."""
        try:
            summary = self.broker.account_summary(self.draft.account or self.broker.status.account or None)
        except BrokerError:
            summary = None
        return (summary.base_currency if summary is not None and summary.base_currency else None) or "USD"

    # --- order status following -----------------------------------------------------------------
    def _on_order_changed(self, order: OrderView) -> None:
        if self.last_order is not None and order.order_id == self.last_order.order_id:
            self.show_order_result(order)

    def show_order_result(self, order: OrderView) -> None:
        """The result line follows the order sent from this ticket, as TWS's order line does."""
        self._set_result(*order_result_text(order))

    # --- broker events ------------------------------------------------------------------------
    def _on_state_changed(self, status: ConnectionStatus) -> None:
        accounts = list(status.accounts)
        if [self.account_combo.itemText(i) for i in range(self.account_combo.count())] != accounts:
            self._rendering = True
            try:
                self.account_combo.clear()
                self.account_combo.addItems(accounts)
            finally:
                self._rendering = False
        if accounts and self.draft.account not in accounts:
            self.draft = replace(self.draft, account=status.account if status.account in accounts else accounts[0])
        self._render()
        if self.quote is not None:
            self._show_quote(self.quote)
        if status.connected:
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
