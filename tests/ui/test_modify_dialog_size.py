"""The modify dialog grows with its message: a tick refusal ("use 290.0 or 290.2") is shown whole, not clipped."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.orders_tab import OrdersTab


def test_modify_dialog_shows_a_long_refusal_whole(qtbot, broker, run_async, ui_settings):
    tab = OrdersTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    try:
        order = run_async(broker.place(OrderRequest("700", Side.BUY, Decimal(100), OrderType.LMT,
                                                    limit_price=Decimal("250.00"))))
        qtbot.waitUntil(lambda: any(o.order_id == order.order_id and o.status is OrderStatus.SUBMITTED
                                    for o in tab.open_model.rows()), timeout=10000)
        assert tab.select_order(order.order_id)
        dialog = tab.modify_selected()
        qtbot.waitUntil(dialog.isVisible, timeout=2000)
        before = dialog.size()
        dialog.limit_price.setText("250.10")  # off Tencent's 0.20 tick
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        qtbot.waitUntil(lambda: "tick" in dialog.message.text(), timeout=10000)
        qtbot.waitUntil(lambda: dialog.message.height() >= dialog.message.heightForWidth(dialog.message.width()),
                        timeout=2000)
        text = dialog.message.text()
        assert "250" in text and "250.2" in text  # the message names a valid price
        label = dialog.message
        # every line of the message is inside the label, and the label inside the dialog
        assert label.height() >= label.heightForWidth(label.width())
        assert label.geometry().bottom() < dialog.buttons.geometry().top()
        assert dialog.height() > before.height()
        dialog.reject()
    finally:
        tab.shutdown()
