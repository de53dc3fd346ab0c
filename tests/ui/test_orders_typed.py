"""Modify dialog driven by the keyboard (the QA F19 defect class): a price typed and confirmed with Return is
the price the exchange gets; a box emptied by the user is refused, not replaced by its previous value."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.formatting import tick_at
from ibpanel.ui.orders_tab import OrdersTab
from PySide6.QtCore import Qt


def test_typed_modify_price_is_sent_and_an_emptied_box_is_refused(qtbot, broker, sim, run_async, ui_settings):
    tab = OrdersTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    instrument = run_async(broker.resolve("AAPL"))
    quote = run_async(broker.snapshot(instrument))
    reference = Decimal(str(quote.last or quote.bid or quote.close))
    tick = tick_at(instrument.market, reference)
    first_price = (reference * Decimal("0.95") / tick).to_integral_value() * tick
    typed_price = first_price - 3 * tick
    order = run_async(broker.place(OrderRequest("AAPL", Side.BUY, Decimal(4), OrderType.LMT, limit_price=first_price)))

    def row():
        return next((o for o in tab.open_model.rows() if o.order_id == order.order_id), None)

    qtbot.waitUntil(lambda: row() is not None and row().status is OrderStatus.SUBMITTED, timeout=10000)
    assert tab.select_order(order.order_id)
    dialog = tab.modify_selected()
    with qtbot.waitActive(dialog):
        dialog.activateWindow()
    placed = sim.stats.count("PLACE_ORDER")

    # empty the price box and confirm: refused beside the fields, nothing sent
    dialog.limit_price.setFocus()
    qtbot.keyClick(dialog.limit_price, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(dialog.limit_price, Qt.Key.Key_Backspace)
    assert dialog.limit_price.text() == ""
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert "Type a limit price" in dialog.message.text()
    assert dialog.isVisible()
    assert sim.stats.count("PLACE_ORDER") == placed

    # type the new price and press Return in the box: the dialog's OK sends exactly it
    qtbot.keyClicks(dialog.limit_price, str(typed_price))
    qtbot.keyClick(dialog.limit_price, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.modify_dialog is None, timeout=10000)
    qtbot.waitUntil(lambda: row() is not None and row().limit_price == typed_price, timeout=10000)
    assert sim.stats.count("PLACE_ORDER") == placed + 1  # one modification, same order id
    assert row().quantity == 4
    task = asyncio.ensure_future(broker.cancel(order.order_id))
    qtbot.waitUntil(task.done, timeout=10000)
    tab.shutdown()
