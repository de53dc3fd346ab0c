"""Hotkeys: the settings dialog lists every key, a changed key is saved and used, and an order hotkey goes
through the ticket (check, confirmation rules, place) to the practice exchange."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.ui.hotkeys import FIXED_KEYS, HOTKEY_ACTIONS
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def _orders(sim):
    exchange = sim.server.exchange
    return sim.call(lambda: exchange.open_orders() + exchange.completed_orders())


def _press(qtbot, window, key, modifiers):
    window.activateWindow()
    qtbot.keyClick(QApplication.focusWidget() or window, key, modifiers)


def test_a_changed_hotkey_buys_at_the_ask_through_the_ticket_and_the_old_key_is_free(
        qtbot, main_window, sim, run_async, ui_settings):
    window = main_window
    hotkeys = window.hotkeys
    dialog = hotkeys.edit()
    assert dialog.table.rowCount() == len(HOTKEY_ACTIONS) + len(FIXED_KEYS)  # every key in use is listed
    assert dialog.chosen()["buy_ask"] == "Ctrl+Alt+E"
    dialog.set_key("buy_ask", "Ctrl+Alt+B")
    dialog.set_key("sell_bid", "Ctrl+Alt+B")
    assert not dialog.save() and "both" in dialog.error_label.text()  # one key, two actions: refused
    dialog.set_key("sell_bid", "Ctrl+Alt+A")
    assert dialog.save()
    assert ui_settings.get("hotkeys/buy_ask") == "Ctrl+Alt+B" and hotkeys.key("buy_ask") == "Ctrl+Alt+B"

    sim.set_quote_interval(3600.0)  # prices hold still: a buy at the bid rests
    ticket = window.tabs["ticket"]
    window.open_ticket({"symbol": "AAPL", "quantity": Decimal(7)})
    qtbot.waitUntil(lambda: ticket.draft.instrument is not None, timeout=10000)
    before = len(_orders(sim))
    _press(qtbot, window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.wait(0)  # the old key is no hotkey any more
    assert len(_orders(sim)) == before and "buy_ask" in hotkeys.shortcuts

    instrument = ticket.draft.instrument
    _press(qtbot, window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: len(_orders(sim)) == before + 1, timeout=10000)
    sent = max(_orders(sim), key=lambda o: o.order_id)
    assert (sent.action, sent.order_type, sent.total_qty) == ("BUY", "LMT", Decimal(7))
    table = run_async(window.broker.tick_table(instrument))
    assert table.is_on_tick(sent.lmt_price)
    assert "Buy at ask AAPL" in hotkeys.message
    assert ticket.last_order is not None and ticket.last_order.limit_price == sent.lmt_price

    # a buy at the bid rests (prices held still); "cancel last" cancels it at the exchange
    _press(qtbot, window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: len(_orders(sim)) == before + 2, timeout=10000)
    resting = max(_orders(sim), key=lambda o: o.order_id)
    assert resting.action == "BUY" and resting.status in ("Submitted", "PreSubmitted")
    qtbot.waitUntil(lambda: ticket.last_order is not None and ticket.last_order.order_id == resting.order_id,
                    timeout=10000)
    _press(qtbot, window, Qt.Key.Key_X, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: sim.call(sim.server.exchange.order, resting.client_id, resting.order_id).status
                    == "Cancelled", timeout=10000)
    qtbot.waitUntil(lambda: hotkeys.message == f"Hotkey: order {resting.order_id} cancelled.", timeout=10000)
    assert len(_orders(sim)) == before + 2


def test_flatten_hotkey_has_no_default_and_once_set_opens_the_flatten_confirmation(qtbot, main_window, run_async):
    window = main_window
    hotkeys = window.hotkeys
    assert hotkeys.key("flatten") == "" and "flatten" not in hotkeys.shortcuts
    dialog = hotkeys.edit()
    dialog.set_key("flatten", "F2")
    assert not dialog.save() and "fixed" in dialog.error_label.text()  # the ticket's SELL key stays its own
    dialog.set_key("flatten", "Ctrl+Alt+F")
    assert dialog.save()
    _press(qtbot, window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    positions = window.tabs["positions"]
    qtbot.waitUntil(lambda: positions.flatten_dialog is not None and positions.flatten_dialog.isVisible(), timeout=5000)
    flatten = positions.flatten_dialog
    qtbot.waitUntil(lambda: "No position to close" in flatten.plan_text.toPlainText(), timeout=10000)
    assert not flatten.send_button.isEnabled()  # nothing to send: nothing can be sent
    flatten.reject()
