"""Order ticket widgets without a connection: market detection and tick-stepped price boxes."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import Market
from ibpanel.ui.ticket_tab import PriceSpinBox, detect_market


def test_detect_market_from_typed_text():
    assert detect_market("AAPL") is Market.US
    assert detect_market("brk b") is Market.US
    assert detect_market("700") is Market.HK
    assert detect_market("0700.hk") is Market.HK
    assert detect_market("HK:5") is Market.HK
    assert detect_market("  ") is None


def test_price_box_steps_by_the_tick_of_each_band(qtbot):
    box = PriceSpinBox()
    qtbot.addWidget(box)
    box.set_market(Market.HK, "700")
    box.set_decimal(Decimal("19.99"))
    box.stepBy(1)
    assert box.decimal_value() == Decimal("20")
    box.stepBy(1)
    assert box.decimal_value() == Decimal("20.02")  # 20-50 band: 0.02
    box.stepBy(-2)
    assert box.decimal_value() == Decimal("19.99")
    box.set_decimal(Decimal("385.3"))  # off the 0.20 tick: first step rounds in the direction of travel
    box.stepBy(1)
    assert box.decimal_value() == Decimal("385.4")
    assert box.text() == "385.40"
    box.set_market(Market.US)
    box.set_decimal(Decimal("1.00"))
    box.stepBy(-1)
    assert box.decimal_value() == Decimal("0.9999")  # sub-dollar ticks
    box.set_decimal(Decimal("150.005"))
    assert box.text() == "150.005"  # a typed off-tick digit stays visible


def test_price_box_reads_exactly_what_is_typed_and_refuses_ambiguous_text(qtbot):
    from PySide6.QtCore import Qt

    box = PriceSpinBox()
    qtbot.addWidget(box)
    box.set_market(Market.US)
    box.set_decimal(Decimal("230.02"))
    box.show()
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(box, "221.37")
    assert box.text() == "221.37" and box.decimal_value() == Decimal("221.37")  # no Enter needed
    assert box.value() == 221.37  # keyboard tracking: the value follows the keystrokes
    qtbot.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(box, "5,012")  # a thousands comma is refused, never read as 5.012
    assert box.text() == "5012" and box.decimal_value() == Decimal("5012")
    qtbot.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(box, "1.234567")  # a fifth decimal is not taken
    assert box.text() == "1.2345"
    qtbot.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(box, Qt.Key.Key_Backspace)
    assert box.shown_decimal() is None  # empty: not a price (the ticket refuses it beside the field)
