"""A trader at the real ticket, at random (hypothesis stateful): typing, clearing, pasting, BUY / SELL,
order type, TIF, account, Submit by mouse / Ctrl+Enter, Clear, Escape, Quotes double-clicks and Positions "close",
against the practice exchange.

Invariants, counted at the exchange (the simulator's own record of the orders it received):
* every PLACE_ORDER that reaches the exchange carries exactly what the ticket displayed when Submit was
  pressed (symbol's contract, side, quantity, type, prices, TIF, outside RTH, account), and the
  confirmation the trader accepted said the same;
* nothing is sent while a field shows a message, or while the screen does not show a whole order.

The confirmation (``ticket/confirm_paper``) is really opened and answered by clicking its Send button.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from ibpanel.broker.exceptions import BrokerError
from ibpanel.broker.models import Market, OrderRequest, OrderType, Side
from ibpanel.ui.formatting import snap_price
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from ticket_helpers import CTRL, type_into

EXAMPLES = 40
STEPS = 15
SYMBOLS = ["AAPL", "msft", "700", "0005.HK", "SEHK:700", "HK:5", "BRK B", "", "ZZZZ", "12.5", "AAPL!"]
QUANTITIES = ["", "1", "100", "400", "1,000", "1.5", "300.05", "0", "abc", "1,5", " 200 "]
PRICES = ["", ".", "1.5", "abc", "0", "1,234.5", "below", "at", "off-tick", "far-below", "0.50"]
WHOLE = re.compile(r"^\s*(\d{1,3}(,\d{3})+|\d+)\s*$")
DECIMAL = re.compile(r"^\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d*)?\s*$")


def _read_quantity(text: str) -> Decimal | None:
    """The test's own reading of a quantity on screen (en locale): a positive whole number, else None."""
    if not WHOLE.match(text):
        return None
    value = Decimal(text.replace(",", "").strip())
    return value if value > 0 else None


def _read_price(text: str) -> Decimal | None:
    stripped = text.strip().replace(",", "")
    if not DECIMAL.match(text) or stripped in ("", "."):
        return None
    value = Decimal(stripped)
    return value if value > 0 else None


@pytest.mark.timeout(240)
def test_every_order_reaching_the_exchange_is_what_the_ticket_showed(qtbot, main_window, broker, sim, run_async,
                                                                     ui_settings, monkeypatch):
    ticket, quotes, positions = (main_window.tab(n) for n in ("ticket", "quotes", "positions"))
    assert (ticket.number_format.decimal_point, ticket.number_format.group_separator) == (".", ",")
    ui_settings.set("ticket/confirm_paper", True)  # every send goes through the confirmation
    run_async(broker.place(OrderRequest("MSFT", Side.BUY, Decimal(15), OrderType.MKT)))  # a position to close
    qtbot.waitUntil(lambda: any(p.instrument.symbol == "MSFT" for p in positions.model.rows()), timeout=15000)
    qtbot.waitUntil(lambda: len(quotes.model) >= 4, timeout=15000)
    with qtbot.waitActive(main_window):
        main_window.activateWindow()

    confirmations: list[str] = []
    original_open = QMessageBox.open

    def open_and_send(box: QMessageBox) -> None:
        """Show the confirmation for real, note what it says, then click its Send button."""
        original_open(box)
        confirmations.append(box.text())
        QTimer.singleShot(0, box.button(QMessageBox.StandardButton.Yes).click)

    monkeypatch.setattr(QMessageBox, "open", open_and_send)
    record = {"sent": 0, "refused": 0, "steps": 0, "examples": 0}
    base = sim.stats.count("PLACE_ORDER")

    class Trader(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            record["examples"] += 1

        @initialize(default_side=st.sampled_from(["", "BUY", "SELL"]))
        def a_fresh_ticket(self, default_side):
            """Each trader starts from an empty ticket with their own default side (or none)."""
            ui_settings.set("ticket/default_side", default_side)
            main_window.show_tab("ticket")
            qtbot.mouseClick(ticket.clear_button, Qt.MouseButton.LeftButton)
            assert ticket.side() is (Side(default_side) if default_side else None)

        def _field(self, name: str):
            return {"quantity": ticket.quantity_edit, "limit": ticket.limit_edit, "stop": ticket.stop_edit,
                    "trailing": ticket.trailing_edit}[name]

        def _usable(self, name: str) -> bool:
            """A trader can type only into an enabled field (the stop price of a LMT order is greyed out)."""
            return self._field(name).isEnabled()

        def _price_text(self, choice: str) -> str:
            quote, inst = ticket.quote, ticket.instrument
            last = (quote.last or quote.bid or quote.close) if quote is not None else None
            if choice not in ("below", "at", "off-tick", "far-below"):
                return choice
            if inst is None or not last:
                return "100.00"
            price = Decimal(str(last))
            factor = {"below": Decimal("0.97"), "at": Decimal(1), "far-below": Decimal("0.5")}.get(choice)
            if factor is None:  # half a tick off the grid
                return str(snap_price(inst.market, price) + Decimal("0.001"))
            return str(snap_price(inst.market, price * factor))

        @rule(text=st.sampled_from(SYMBOLS), enter=st.booleans())
        def type_symbol(self, text, enter):
            type_into(qtbot, ticket.symbol_edit, text)
            if enter:
                qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return)
                qtbot.waitUntil(lambda: ticket.instrument is not None or ticket.draft.spec() is None
                                or "symbol" in ticket.issues_shown(), timeout=10000)

        @rule(symbol=st.sampled_from(["AAPL", "700", "0005.HK", "SEHK:700", "MSFT"]),
              side=st.sampled_from([Qt.Key.Key_F1, Qt.Key.Key_F2]), quantity=st.sampled_from(["100", "400", "1,000"]),
              price=st.sampled_from(["below", "far-below", "at", "off-tick"]),
              then=st.sampled_from(["nothing", "mouse", "ctrl+enter in quantity", "ctrl+enter in limit"]))
        def fill_the_ticket(self, symbol, side, quantity, price, then):
            """A whole order typed field by field, as a trader does (so that some orders are complete)."""
            type_into(qtbot, ticket.symbol_edit, symbol)
            qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return)
            qtbot.waitUntil(lambda: (ticket.instrument is not None and ticket.quote is not None)
                            or "symbol" in ticket.issues_shown(), timeout=10000)  # e.g. 700 with market US
            qtbot.keyClick(ticket.symbol_edit, side)
            type_into(qtbot, ticket.quantity_edit, quantity)
            if ticket.limit_edit.isEnabled():
                type_into(qtbot, ticket.limit_edit, self._price_text(price))
            if ticket.trailing_edit.isEnabled():  # a TRAIL order: its trailing amount (or percent)
                type_into(qtbot, ticket.trailing_edit, "2")  # whole ticks in the US and in Hong Kong
            if then != "nothing":
                self.submit(then)

        @rule(index=st.integers(0, 2))
        def choose_market(self, index):
            ticket.market_combo.setCurrentIndex(index)

        @rule(field=st.sampled_from(["quantity", "limit", "stop", "trailing"]), text=st.sampled_from(QUANTITIES + PRICES))
        def type_number(self, field, text):
            if not self._usable(field):
                return
            type_into(qtbot, self._field(field), self._price_text(text))

        @rule(field=st.sampled_from(["quantity", "limit", "stop"]), text=st.sampled_from(QUANTITIES + PRICES))
        def paste_number(self, field, text):
            if not self._usable(field):
                return
            edit = self._field(field)
            QApplication.clipboard().setText(self._price_text(text))
            type_into(qtbot, edit, "")
            qtbot.keyClick(edit, Qt.Key.Key_V, CTRL)

        @rule(field=st.sampled_from(["quantity", "limit"]), up=st.booleans())
        def step_with_arrow(self, field, up):
            if not self._usable(field):
                return
            edit = self._field(field)
            edit.setFocus()
            qtbot.keyClick(edit, Qt.Key.Key_Up if up else Qt.Key.Key_Down)

        @rule(side=st.sampled_from(["buy", "sell"]), by_key=st.booleans())
        def choose_side(self, side, by_key):
            if by_key:
                qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_F1 if side == "buy" else Qt.Key.Key_F2)
            else:
                qtbot.mouseClick(ticket.buy_button if side == "buy" else ticket.sell_button, Qt.MouseButton.LeftButton)

        @rule(index=st.integers(0, 4))  # MKT, LMT, STP, STP LMT, TRAIL
        def choose_order_type(self, index):
            ticket.type_combo.setCurrentIndex(index)

        @rule(amount=st.sampled_from(["0.50", "1.5", "2", "", "abc", "0"]), percent=st.booleans(), send=st.booleans())
        def set_a_trailing_stop(self, amount, percent, send):
            ticket.type_combo.setCurrentIndex(ticket.type_combo.findData("TRAIL"))
            ticket.trail_unit_combo.setCurrentIndex(1 if percent else 0)
            type_into(qtbot, ticket.trailing_edit, amount)
            if send:
                self.submit("mouse")

        @rule(index=st.integers(0, 2), rth=st.booleans())
        def choose_tif(self, index, rth):
            ticket.tif_combo.setCurrentIndex(index)
            if rth:
                qtbot.mouseClick(ticket.outside_rth_check, Qt.MouseButton.LeftButton)

        @rule(index=st.integers(0, 1))
        def choose_account(self, index):
            ticket.account_combo.setCurrentIndex(index)

        @rule(by_key=st.booleans())
        def clear(self, by_key):
            if by_key:
                qtbot.keyClick(ticket.quantity_edit, Qt.Key.Key_Escape)
            else:
                qtbot.mouseClick(ticket.clear_button, Qt.MouseButton.LeftButton)

        @rule(pick=st.integers(0, 99))
        def double_click_a_quote(self, pick):
            main_window.show_tab("quotes")
            row = pick % len(quotes.model)
            rect = quotes.view.visualRect(quotes.model.index(row, 0))
            qtbot.mouseClick(quotes.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            qtbot.mouseDClick(quotes.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            assert main_window.current_tab_name() == "ticket"

        @rule(pick=st.integers(0, 99))
        def close_a_position(self, pick):
            # what hypothesis draws may not depend on the exchange (a close may have flattened a position)
            rows = [i for i, p in enumerate(positions.model.rows()) if p.quantity]
            if rows:
                positions.close_position(rows[pick % len(rows)])
                assert main_window.current_tab_name() == "ticket"

        @rule(how=st.sampled_from(["mouse", "ctrl+enter in quantity", "ctrl+enter in limit"]))
        def press_submit(self, how):
            self.submit(how)

        def submit(self, how):
            shown = self._screen()
            before, placed = ticket.last_order, sim.stats.count("PLACE_ORDER")
            confirmations.clear()
            if how == "mouse":
                qtbot.mouseClick(ticket.submit_button, Qt.MouseButton.LeftButton)
            else:
                edit = self._field(how.rsplit(" ", 1)[1])
                edit = edit if edit.isEnabled() else ticket.symbol_edit
                edit.setFocus()
                qtbot.keyClick(edit, Qt.Key.Key_Return, CTRL)
            qtbot.waitUntil(lambda: not ticket.in_flight, timeout=15000)
            sent = ticket.last_order is not None and ticket.last_order is not before
            if not sent:
                record["refused"] += 1
                assert sim.stats.count("PLACE_ORDER") == placed, "an order reached the exchange, the ticket says none"
                return
            record["sent"] += 1
            record["trail_sent"] = record.get("trail_sent", 0) + (shown["type"] == "TRAIL")
            assert not shown["errors"], f"sent while the screen showed {shown['errors']}"
            qtbot.waitUntil(lambda: sim.stats.count("PLACE_ORDER") == placed + 1, timeout=10000)
            order = ticket.last_order
            at_exchange = sim.call(sim.server.exchange.order, order.client_id, order.order_id)
            assert at_exchange is not None, "the exchange has no record of the order the ticket sent"
            self._assert_same(shown, at_exchange)
            assert len(confirmations) == 1 and self._confirmation_line(shown) in confirmations[0], confirmations

        def _screen(self) -> dict:
            """What the ticket displays right now, read from the widgets, not from the draft."""
            return {
                "symbol": ticket.symbol_edit.text(), "market": ticket.market_combo.currentText(),
                "side": "BUY" if ticket.buy_button.isChecked() else "SELL" if ticket.sell_button.isChecked() else None,
                "quantity": ticket.quantity_edit.text(), "type": ticket.type_combo.currentText(),
                "limit": ticket.limit_edit.text(), "stop": ticket.stop_edit.text(),
                "trailing": ticket.trailing_edit.text(), "trail_unit": ticket.trail_unit_combo.currentText(),
                "tif": ticket.tif_combo.currentText(), "rth": ticket.outside_rth_check.isChecked(),
                "account": ticket.account_combo.currentText(),
                "errors": {f: lbl.text() for f, lbl in ticket.issue_labels.items() if f != "general" and lbl.text()},
            }

        def _assert_same(self, shown: dict, order) -> None:
            quantity = _read_quantity(shown["quantity"])
            assert quantity is not None, f"sent with quantity {shown['quantity']!r} on screen"
            assert shown["side"] is not None and order.action == shown["side"]
            assert order.total_qty == quantity
            assert order.order_type == shown["type"] and order.tif == shown["tif"]
            assert order.outside_rth == shown["rth"] and order.account == shown["account"]
            for name, field, used in (("limit", "lmt_price", ("LMT", "STP LMT")), ("stop", "aux_price", ("STP", "STP LMT"))):
                if shown["type"] in used:
                    price = _read_price(shown[name])
                    assert price is not None and getattr(order, field) == price, (shown, order)
            if shown["type"] == "TRAIL":  # the trailing amount is the order's auxPrice; its stop the broker's
                trailing = _read_price(shown["trailing"])
                sent = Decimal(order.extra["trailingPercent"]) if shown["trail_unit"] == "%" else order.aux_price
                assert trailing is not None and sent == trailing, (shown, order)
            market = {"Auto": None, "US": Market.US, "HK": Market.HK}[shown["market"]]
            try:
                instrument = run_async(broker.resolve(shown["symbol"], market))
            except BrokerError as exc:
                raise AssertionError(f"sent for {shown['symbol']!r} ({shown['market']}), which is no stock: {exc}") from exc
            assert order.con_id == instrument.con_id

        def _confirmation_line(self, shown: dict) -> str:
            parts = [shown["side"], str(_read_quantity(shown["quantity"])), ticket.instrument.display, shown["type"]]
            for name, used in (("limit", ("LMT", "STP LMT")), ("stop", ("STP", "STP LMT"))):
                if shown["type"] in used:
                    parts += [name, str(_read_price(shown[name]))]
            if shown["type"] == "TRAIL":
                parts += ["trailing", f"{_read_price(shown['trailing'])}{'%' if shown['trail_unit'] == '%' else ''}"]
            parts.append(shown["tif"])
            return " ".join(parts) + (" outside RTH" if shown["rth"] else "")

        @invariant()
        def only_what_the_ticket_sent_reached_the_exchange(self):
            record["steps"] += 1
            assert sim.stats.count("PLACE_ORDER") == base + record["sent"]

        def teardown(self):
            qtbot.waitUntil(lambda: not ticket.in_flight, timeout=15000)

    run_state_machine_as_test(Trader, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: the exchange's prices move between runs
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    print(f"ticket stateful: {record}")  # the closing note reports these figures
    assert record["examples"] >= EXAMPLES // 2 and record["sent"] > 0 and record["refused"] > 0
