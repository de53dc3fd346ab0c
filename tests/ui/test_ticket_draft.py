"""The ticket's symptoms from the new-user trial (issue 9), each against the practice exchange: what the
screen shows is what is sent, fields never refill or re-read, entry points write a whole draft."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.broker.models import Market, Side
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QComboBox, QLabel, QLineEdit
from ticket_helpers import idle_and_heard_by_the_exchange, open_ticket, prefill_and_wait, type_into

CTRL = Qt.KeyboardModifier.ControlModifier


def _ready_aapl(qtbot, tab) -> None:
    prefill_and_wait(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(100), "limit_price": None})
    qtbot.waitUntil(tab.submit_button.isEnabled, timeout=5000)


def test_an_emptied_quantity_disables_submit_and_a_click_or_shortcut_sends_nothing(qtbot, broker, sim, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _ready_aapl(qtbot, tab)
    assert tab.estimate_label.text().startswith("≈")
    placed = sim.stats.count("PLACE_ORDER")
    type_into(qtbot, tab.quantity_edit, "")
    assert tab.quantity_edit.text() == ""
    assert tab.issues_shown()["quantity"].startswith("Type a quantity")
    assert tab.estimate_label.text() == ""  # no estimate from a blank quantity
    assert not tab.submit_button.isEnabled()
    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(tab.quantity_edit, Qt.Key.Key_Return, CTRL)
    tab.submit_clicked()  # reached anyway (as a shortcut would): refused
    idle_and_heard_by_the_exchange(qtbot, tab)
    assert sim.stats.count("PLACE_ORDER") == placed
    assert tab.quantity_edit.text() == ""  # never refilled behind the trader's back
    assert not tab.in_flight and tab.last_order is None
    tab.shutdown()


@pytest.mark.parametrize("typed", ["1.5", "300.05"])
def test_a_fractional_quantity_is_refused_with_a_message_not_read_as_another_number(qtbot, broker, sim, ui_settings,
                                                                                     typed):
    tab = open_ticket(qtbot, broker, ui_settings)
    _ready_aapl(qtbot, tab)
    placed = sim.stats.count("PLACE_ORDER")
    type_into(qtbot, tab.quantity_edit, typed)
    assert tab.quantity_edit.text() == typed  # shown as typed: not 15, not 30,005
    assert "whole number" in tab.issues_shown()["quantity"] and typed in tab.issues_shown()["quantity"]
    assert not tab.submit_button.isEnabled()
    qtbot.keyClick(tab.quantity_edit, Qt.Key.Key_Return, CTRL)
    idle_and_heard_by_the_exchange(qtbot, tab)
    assert sim.stats.count("PLACE_ORDER") == placed
    assert tab.last_order is None
    tab.shutdown()


def test_a_typed_price_keeps_its_decimals_and_an_off_tick_one_is_refused(qtbot, broker, sim, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _ready_aapl(qtbot, tab)
    placed = sim.stats.count("PLACE_ORDER")
    type_into(qtbot, tab.limit_edit, "100.005")
    assert tab.draft.price_value("limit_price") == Decimal("100.005")
    qtbot.waitUntil(lambda: "limit_price" in tab.issues_shown(), timeout=5000)  # the broker's tick check
    assert "tick" in tab.issues_shown()["limit_price"].lower()
    assert not tab.submit_button.isEnabled()
    tab.submit_clicked()
    idle_and_heard_by_the_exchange(qtbot, tab)
    assert sim.stats.count("PLACE_ORDER") == placed
    tab.shutdown()


def test_quotes_double_click_on_hsbc_opens_one_board_lot_with_no_side_then_aapl_types_with_market_auto(
        qtbot, main_window, sim):
    ticket, quotes = main_window.tab("ticket"), main_window.tab("quotes")
    # the previous order: SELL 100 of 700 with the market chosen by hand
    ticket.prefill({"symbol": "700", "market": Market.HK, "side": "SELL", "quantity": Decimal(100),
                    "limit_price": None})
    assert ticket.side() is Side.SELL and ticket.market_combo.currentText() == "HK"
    quotes.add_symbol("5")
    qtbot.waitUntil(lambda: any(q.instrument.symbol == "5" for q in quotes.model.rows()), timeout=10000)
    row = next(i for i, q in enumerate(quotes.model.rows()) if q.instrument.symbol == "5")
    main_window.show_tab("quotes")
    quotes.view.scrollTo(quotes.model.index(row, 0))
    rect = quotes.view.visualRect(quotes.model.index(row, 0))
    qtbot.mouseClick(quotes.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(quotes.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert main_window.current_tab_name() == "ticket"
    assert ticket.symbol_edit.text() == "0005.HK"
    assert ticket.side() is None and not ticket.buy_button.isChecked() and not ticket.sell_button.isChecked()
    assert ticket.quantity_edit.text() == "400"  # one board lot of HSBC, not the 100 left from the last order
    assert ticket.market_combo.currentText() == "Auto"
    assert ticket.instrument is not None and ticket.instrument.board_lot == 400
    assert "BUY or SELL" in ticket.submit_reason.text() and not ticket.submit_button.isEnabled()

    type_into(qtbot, ticket.symbol_edit, "AAPL")
    qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ticket.instrument is not None and ticket.instrument.symbol == "AAPL", timeout=10000)
    assert "symbol" not in ticket.issues_shown()
    assert ticket.market_combo.currentText() == "Auto"
    window_text = " ".join(w.text() for w in ticket.findChildren(QLineEdit) + ticket.findChildren(QLabel))
    assert "USStock" not in window_text and "HShare" not in window_text


def test_with_the_market_set_by_hand_a_wrong_symbol_is_said_in_the_windows_words(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    tab.market_combo.setCurrentIndex(tab.market_combo.findText("HK"))
    type_into(qtbot, tab.symbol_edit, "AAPL")
    message = tab.issues_shown()["symbol"]
    assert "Hong Kong" in message and "Auto" in message and "USStock" not in message
    tab.shutdown()


def test_sehk_700_with_market_auto_resolves_to_tencent(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    assert tab.market_combo.currentText() == "Auto"
    type_into(qtbot, tab.symbol_edit, "SEHK:700")
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.instrument is not None, timeout=10000)
    assert tab.instrument.market is Market.HK and tab.instrument.symbol == "700"
    assert "symbol" not in tab.issues_shown()
    tab.shutdown()


@pytest.mark.parametrize("how", ["escape", "clear"])
def test_escape_and_clear_reset_the_whole_draft_side_and_market_included(qtbot, broker, ui_settings, how):
    tab = open_ticket(qtbot, broker, ui_settings)
    with qtbot.waitActive(tab):
        tab.activateWindow()
    tab.prefill({"symbol": "700", "market": Market.HK, "side": "SELL", "quantity": Decimal(300),
                 "limit_price": Decimal("300.2"), "tif": "GTC"})
    assert tab.side() is Side.SELL and tab.market_combo.currentText() == "HK"
    if how == "escape":
        qtbot.keyClick(tab.quantity_edit, Qt.Key.Key_Escape)
    else:
        qtbot.mouseClick(tab.clear_button, Qt.MouseButton.LeftButton)
    assert tab.side() is None and not tab.sell_button.isChecked()
    assert tab.market_combo.currentText() == "Auto" and tab.tif_combo.currentText() == "DAY"
    assert (tab.symbol_edit.text(), tab.quantity_edit.text(), tab.limit_edit.text()) == ("", "", "")
    assert tab.instrument is None and tab.issues_shown() == {}
    tab.shutdown()


def test_the_users_default_side_is_where_clear_returns(qtbot, broker, ui_settings):
    ui_settings.set("ticket/default_side", "BUY")
    tab = open_ticket(qtbot, broker, ui_settings)
    assert tab.side() is Side.BUY
    tab.set_side(Side.SELL)
    tab.clear()
    assert tab.side() is Side.BUY and tab.buy_button.isChecked()
    tab.shutdown()


def test_every_control_of_the_ticket_has_an_accessible_name_and_an_object_name(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    controls = [w for kind in (QLineEdit, QComboBox, QAbstractButton, QCheckBox) for w in tab.findChildren(kind)]
    controls = [w for w in controls if not isinstance(w.parent(), QComboBox) and w.objectName() != "qt_spinbox_lineedit"]
    assert len(controls) >= 14
    unnamed = [type(w).__name__ + ":" + (w.objectName() or "?") for w in controls
               if not w.accessibleName() or not w.objectName()]
    assert unnamed == []
    for label in [*tab.issue_labels.values(), tab.estimate_label, tab.quote_strip, tab.result_label]:
        assert label.accessibleName() and label.objectName()
    tab.shutdown()


def test_a_german_desktop_types_its_own_decimal_comma_and_thousands_point(qtbot, broker, sim, ui_settings):
    from PySide6.QtCore import QLocale

    previous = QLocale()
    QLocale.setDefault(QLocale(QLocale.Language.German, QLocale.Country.Germany))
    try:
        tab = open_ticket(qtbot, broker, ui_settings)
    finally:
        QLocale.setDefault(previous)
    assert (tab.number_format.decimal_point, tab.number_format.group_separator) == (",", ".")
    prefill_and_wait(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(100), "limit_price": None})
    assert "," in tab.limit_edit.text()  # the seeded price in the trader's own notation
    type_into(qtbot, tab.quantity_edit, "1.000")
    type_into(qtbot, tab.limit_edit, "150,25")
    assert tab.draft.to_request().quantity == 1000 and tab.draft.to_request().limit_price == Decimal("150.25")
    assert tab.describe(tab.draft.to_request()).startswith("BUY 1000 AAPL LMT limit 150,25 DAY")  # the confirmation
    type_into(qtbot, tab.quantity_edit, "1,5")
    assert "whole number" in tab.issues_shown()["quantity"]  # 1,5 is one and a half here: refused
    type_into(qtbot, tab.limit_edit, "150.25")
    assert "limit_price" in tab.issues_shown()  # "." groups thousands here: neither 150.25 nor 15025
    assert not tab.submit_button.isEnabled()
    tab.shutdown()


def test_a_price_typed_while_the_new_symbol_resolves_is_kept_for_it(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    prefill_and_wait(qtbot, tab, {"symbol": "700", "side": "BUY", "quantity": Decimal(100), "limit_price": None})
    type_into(qtbot, tab.limit_edit, "297.60")  # a price for 700
    type_into(qtbot, tab.symbol_edit, "AAPL")
    assert tab.instrument is None  # IB has not answered yet
    type_into(qtbot, tab.limit_edit, "150.00")  # the trader's price for AAPL, typed before the answer
    qtbot.waitUntil(lambda: tab.instrument is not None and tab.instrument.symbol == "AAPL", timeout=10000)
    assert tab.limit_edit.text() == "150.00"  # not wiped as "a price for another stock"
    tab.shutdown()
