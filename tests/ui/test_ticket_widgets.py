"""Order ticket fields without a connection: market detection through parse_symbol, tick- and lot-stepped
number fields that read exactly what is typed."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.draft import OrderDraft, step_price, step_quantity
from ibpanel.broker.models import Market
from ibpanel.ui.ticket_fields import SteppingLineEdit
from PySide6.QtCore import Qt


def test_the_symbol_names_its_market_by_the_one_symbol_grammar():
    for text, market in (("AAPL", Market.US), ("brk b", Market.US), ("700", Market.HK), ("0700.hk", Market.HK),
                         ("HK:5", Market.HK), ("SEHK:700", Market.HK)):
        assert OrderDraft(symbol=text).detected_market() is market, text
    assert OrderDraft(symbol="  ").detected_market() is None


def test_price_steps_by_the_tick_of_each_band():
    assert step_price("19.99", 1, Market.HK, "700") == "20.00"
    assert step_price("20.00", 1, Market.HK, "700") == "20.02"  # 20-50 band: 0.02
    assert step_price("20.02", -2, Market.HK, "700") == "19.99"
    assert step_price("385.3", 1, Market.HK, "700") == "385.40"  # off the 0.20 tick: rounds in the direction of travel
    assert step_price("1.00", -1, Market.US) == "0.9999"  # sub-dollar ticks
    assert step_price("", 1, Market.US) == "0.0001"  # from empty, the first step lands on one tick
    assert step_price("", -1, Market.US) is None
    assert step_price("abc", 1, Market.US) is None  # unreadable text is left for the trader to correct


def test_quantity_steps_by_the_board_lot_and_lands_on_the_lot_grid():
    assert step_quantity("400", 1, 400) == "800"
    assert step_quantity("150", 1, 100) == "200"
    assert step_quantity("150", -1, 100) == "100"
    assert step_quantity("100", -1, 100) == "100"  # never below one lot
    assert step_quantity("", 1, 400) == "400"
    assert step_quantity("1.5", 1, 1) is None


def test_number_field_shows_exactly_what_is_typed_and_steps_with_the_arrow_keys(qtbot):
    edit = SteppingLineEdit(lambda text, steps: step_price(text, steps, Market.US))
    qtbot.addWidget(edit)
    edit.show()
    edit.setFocus()
    qtbot.keyClicks(edit, "221.37")
    assert edit.text() == "221.37"
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    assert edit.text() == "221.38"
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(edit, "1.5")  # a spin box refused the "." and showed 15
    assert edit.text() == "1.5" and Decimal(edit.text()) == Decimal("1.5")
