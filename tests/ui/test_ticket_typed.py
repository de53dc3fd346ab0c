"""Order ticket driven by the keyboard only (QA F19): what the fields show is what is sent.

Prices and quantities are typed with key clicks (no setValue) and submitted with Ctrl+Enter while
the cursor is still in the field; the order the practice exchange received must carry exactly the
typed numbers. Unreadable text is refused beside its field; validation runs while typing.
"""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import OrderType
from ibpanel.ui.ticket_tab import TicketTab
from PySide6.QtCore import Qt
from ticket_helpers import idle_and_heard_by_the_exchange, open_ticket, prefill_and_wait

CTRL = Qt.KeyboardModifier.ControlModifier


def _ticket(qtbot, broker, settings, request: dict) -> TicketTab:
    tab = open_ticket(qtbot, broker, settings)
    with qtbot.waitActive(tab):
        tab.activateWindow()
    prefill_and_wait(qtbot, tab, request, "last")
    return tab


def _type_into(qtbot, spin, text: str) -> None:
    """Focus the box, select what it shows and type over it; no Enter, no focus change."""
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=2000)
    qtbot.keyClick(spin, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(spin, text)


def test_typed_price_and_quantity_submitted_with_ctrl_enter_are_what_is_sent(qtbot, broker, sim, ui_settings):
    tab = _ticket(qtbot, broker, ui_settings, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(30),
                                               "limit_price": None})
    assert tab.order_type() is OrderType.LMT
    last = Decimal(str(tab.quote.last))
    typed_price = (last * Decimal("0.93")).quantize(Decimal("0.01"))  # a resting bid: works, does not fill
    assert tab.draft.price_value("limit_price") != typed_price
    placed = sim.stats.count("PLACE_ORDER")

    _type_into(qtbot, tab.quantity_edit, "37")
    _type_into(qtbot, tab.limit_edit, str(typed_price))  # the cursor stays in the price field
    assert tab.limit_edit.text() == str(typed_price)
    # the estimate follows the keystrokes, before any Enter
    assert tab.estimated_value() == typed_price * 37
    assert f"{typed_price * 37:,.2f}" in tab.estimate_label.text()

    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: tab.last_order is not None, timeout=10000)
    assert tab.issues_shown() == {}
    assert tab.last_order.limit_price == typed_price and tab.last_order.quantity == 37
    qtbot.waitUntil(lambda: sim.stats.count("PLACE_ORDER") == placed + 1, timeout=10000)  # counted when received

    # read back what the exchange holds for it
    def working():
        return next((o for o in broker.open_orders() if o.order_id == tab.last_order.order_id), None)

    qtbot.waitUntil(lambda: working() is not None and working().status.value in ("Submitted", "PreSubmitted"),
                    timeout=10000)
    assert working().limit_price == typed_price
    assert working().quantity == 37
    assert working().filled == 0  # the typed bid rests: the stale (market) price would have filled
    assert sim.stats.count("PLACE_ORDER") == placed + 1  # exactly one order went out
    tab.shutdown()


def test_typed_quantity_with_ctrl_enter_is_validated_as_typed_hk_lot(qtbot, broker, sim, ui_settings):
    tab = _ticket(qtbot, broker, ui_settings, {"symbol": "700", "side": "BUY", "quantity": Decimal(100),
                                               "limit_price": None})
    assert tab.instrument.board_lot == 100
    placed = sim.stats.count("PLACE_ORDER")
    _type_into(qtbot, tab.quantity_edit, "250")  # an odd lot typed over a valid one, still in the field
    qtbot.keyClick(tab.quantity_edit, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: "quantity" in tab.issues_shown(), timeout=10000)
    assert "250" in tab.issues_shown()["quantity"] or "lot" in tab.issues_shown()["quantity"].lower()
    idle_and_heard_by_the_exchange(qtbot, tab)
    assert sim.stats.count("PLACE_ORDER") == placed  # the valid 100 it replaced is not sent
    assert tab.last_order is None
    tab.shutdown()


def test_unreadable_price_is_refused_beside_the_field_not_replaced_by_the_old_value(qtbot, broker, sim, ui_settings):
    tab = _ticket(qtbot, broker, ui_settings, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(5),
                                               "limit_price": None})
    assert tab.draft.price_value("limit_price") is not None  # seeded from the quote
    placed = sim.stats.count("PLACE_ORDER")
    _type_into(qtbot, tab.limit_edit, ".")  # a lone decimal point: not a price
    assert tab.limit_edit.text() == "."
    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_Return, CTRL)
    assert "limit_price" in tab.issues_shown()
    assert "not a price" in tab.issues_shown()["limit_price"]
    assert tab.issue_labels["limit_price"].isVisible()
    assert not tab.in_flight

    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_Backspace)  # now empty
    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_P, CTRL)  # Preview refuses the same way
    assert tab.issues_shown().get("limit_price", "").startswith("Type a limit price")
    idle_and_heard_by_the_exchange(qtbot, tab)
    assert sim.stats.count("PLACE_ORDER") == placed
    assert tab.last_order is None
    tab.shutdown()


def test_messages_appear_while_typing_before_submit(qtbot, broker, sim, ui_settings):
    tab = _ticket(qtbot, broker, ui_settings, {"symbol": "700", "side": "BUY", "quantity": Decimal(100),
                                               "limit_price": None})
    placed = sim.stats.count("PLACE_ORDER")
    _type_into(qtbot, tab.quantity_edit, "150")
    assert "quantity" not in tab.issues_shown()  # not per keystroke: after a pause
    qtbot.waitUntil(lambda: "quantity" in tab.issues_shown(), timeout=5000)
    assert "lot" in tab.issues_shown()["quantity"].lower()
    _type_into(qtbot, tab.quantity_edit, "200")
    assert "quantity" not in tab.issues_shown()  # editing the field clears its message at once
    # past the debounce: the check of the valid lot has run and brought no new message
    qtbot.waitUntil(lambda: not tab._check_timer.isActive(), timeout=5000)
    idle_and_heard_by_the_exchange(qtbot, tab)
    assert "quantity" not in tab.issues_shown()
    assert sim.stats.count("PLACE_ORDER") == placed  # checking sends nothing (not even a what-if)
    assert tab.last_order is None
    tab.shutdown()


def test_a_price_edited_for_one_instrument_does_not_carry_over_to_the_next(qtbot, broker, sim, ui_settings):
    """QA F25: 700 at ~298 HKD, limit stepped by the user, then AAPL typed: the ticket re-seeds from AAPL."""
    tab = _ticket(qtbot, broker, ui_settings, {"symbol": "700", "side": "BUY", "quantity": Decimal(100),
                                               "limit_price": None})
    tab.limit_edit.setFocus()
    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_Down)  # stepped by the user: now "their" price for 700
    hk_price = tab.draft.price_value("limit_price")
    hk_key = tab.instrument.key

    tab.symbol_edit.setFocus()
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(tab.symbol_edit, "AAPL")
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.instrument is not None and tab.instrument.key != hk_key and tab.quote is not None
                    and tab.quote.last is not None and tab.limit_edit.text() != "", timeout=10000)
    aapl_last = Decimal(str(tab.quote.last))
    assert tab.instrument.symbol == "AAPL"
    assert tab.draft.price_value("limit_price") != hk_price
    assert abs(tab.draft.price_value("limit_price") - aapl_last) <= aapl_last * Decimal("0.02")  # seeded from AAPL's quote

    # a price given with a prefill (close position, double-click) is kept for its instrument
    tab.prefill({"symbol": "MSFT", "side": "SELL", "quantity": Decimal(5), "limit_price": Decimal("401.23")})
    # the quote that would re-seed the price has arrived and the subscribe task is over
    qtbot.waitUntil(lambda: tab.instrument is not None and tab.instrument.symbol == "MSFT" and tab.quote is not None
                    and tab.quote.instrument.symbol == "MSFT" and len(tab.tasks) == 0, timeout=10000)
    assert tab.draft.price_value("limit_price") == Decimal("401.23")
    tab.shutdown()


def test_a_price_clicked_into_and_typed_replaces_the_suggested_one_and_is_what_is_sent(qtbot, broker, sim, ui_settings):
    tab = _ticket(qtbot, broker, ui_settings, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(10),
                                               "limit_price": None})
    qtbot.waitUntil(lambda: tab.limit_edit.text() != "", timeout=5000)  # the ticket suggests a limit price
    suggested = tab.limit_edit.text()
    typed_price = (Decimal(str(tab.quote.last)) * Decimal("0.93")).quantize(Decimal("0.01"))
    placed = sim.stats.count("PLACE_ORDER")

    tab.quantity_edit.setFocus()  # the cursor is elsewhere; the trader clicks into the price
    qtbot.waitUntil(tab.quantity_edit.hasFocus, timeout=2000)
    qtbot.mouseClick(tab.limit_edit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.limit_edit.hasFocus() and tab.limit_edit.selectedText() == suggested, timeout=2000)
    qtbot.keyClicks(tab.limit_edit, str(typed_price))
    assert tab.limit_edit.text() == str(typed_price)  # replaced, not appended to the suggestion

    # a second click in the focused field places the cursor: typing there edits, it does not replace
    qtbot.mouseClick(tab.limit_edit, Qt.MouseButton.LeftButton)
    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_End)
    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_Backspace)
    assert tab.limit_edit.text() == str(typed_price)[:-1]
    qtbot.keyClicks(tab.limit_edit, str(typed_price)[-1])

    qtbot.keyClick(tab.limit_edit, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: tab.last_order is not None, timeout=10000)
    qtbot.waitUntil(lambda: sim.stats.count("PLACE_ORDER") == placed + 1, timeout=10000)
    assert tab.last_order.limit_price == typed_price and tab.last_order.quantity == 10
    tab.shutdown()
