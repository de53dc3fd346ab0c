"""Orders tab against the practice exchange: cancel one, modify with a broker-validated dialog, cancel all
behind a confirmation (No sends nothing), completed orders and CSV export."""

from __future__ import annotations

import asyncio
import csv
from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.formatting import tick_at
from ibpanel.ui.orders_tab import OrdersTab


def _orders_tab(qtbot, broker, settings) -> OrdersTab:
    tab = OrdersTab(broker, settings)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def _place_working(run_async, broker, symbol: str, quantity: int) -> int:
    """A buy limit 4% under the market: accepted and working, not filled."""
    instrument = run_async(broker.resolve(symbol))
    quote = run_async(broker.snapshot(instrument))
    reference = Decimal(str(quote.last or quote.bid or quote.close))
    target = reference * Decimal("0.96")
    tick = tick_at(instrument.market, target)
    price = (target / tick).to_integral_value() * tick
    order = run_async(broker.place(OrderRequest(symbol, Side.BUY, Decimal(quantity), OrderType.LMT, limit_price=price)))
    return order.order_id


def _status(model, order_id):
    row = next((o for o in model.rows() if o.order_id == order_id), None)
    return None if row is None else row.status


def test_cancel_selected_then_cancel_all_with_confirmation(qtbot, broker, sim, run_async, ui_settings, tmp_path):
    tab = _orders_tab(qtbot, broker, ui_settings)
    first = _place_working(run_async, broker, "AAPL", 5)
    second = _place_working(run_async, broker, "MSFT", 7)
    third = _place_working(run_async, broker, "0700.HK", 100)
    qtbot.waitUntil(lambda: all(_status(tab.open_model, i) in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
                                for i in (first, second, third)), timeout=10000)
    assert tab.cancel_button.isEnabled() and tab.cancel_all_button.isEnabled()

    # cancel one
    assert tab.select_order(first)
    tab.cancel_button.click()
    qtbot.waitUntil(lambda: _status(tab.completed_model, first) is OrderStatus.CANCELLED, timeout=10000)
    assert _status(tab.open_model, first) is None

    # cancel all: No sends nothing
    cancels = sim.stats.count("REQ_GLOBAL_CANCEL")
    tab.cancel_all_button.click()
    assert tab.confirm_box is not None and "Cancel every open order" in tab.confirm_box.text()
    tab.confirm_box.button(tab.confirm_box.StandardButton.No).click()
    qtbot.waitUntil(lambda: tab.confirm_box is None, timeout=2000)
    assert "nothing was cancelled" in tab.message.text()
    assert sim.stats.count("REQ_GLOBAL_CANCEL") == cancels
    assert len(tab.open_model) == 2

    # cancel all: Yes
    tab.cancel_all_button.click()
    tab.confirm_box.button(tab.confirm_box.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: len(tab.open_model) == 0, timeout=10000)
    assert sim.stats.count("REQ_GLOBAL_CANCEL") == cancels + 1
    assert {_status(tab.completed_model, i) for i in (second, third)} == {OrderStatus.CANCELLED}

    path = tmp_path / "completed.csv"
    assert tab.export_csv(path, "completed") == len(tab.completed_model) >= 3
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert {int(r["Id"]) for r in rows} >= {first, second, third}
    assert {r["Status"] for r in rows if int(r["Id"]) in (first, second, third)} == {"Cancelled"}
    tab.shutdown()


def test_modify_dialog_shows_broker_refusal_then_changes_the_order(qtbot, broker, sim, run_async, ui_settings):
    tab = _orders_tab(qtbot, broker, ui_settings)
    order_id = _place_working(run_async, broker, "0700.HK", 100)
    qtbot.waitUntil(lambda: _status(tab.open_model, order_id) is not None, timeout=10000)
    assert tab.select_order(order_id)
    dialog = tab.modify_selected()
    original = dialog.order

    dialog.quantity.setText("150")  # an odd lot for Tencent (lot 100)
    modifies = sim.stats.count("PLACE_ORDER")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: "lot" in dialog.message.text().lower(), timeout=10000)
    assert dialog.isVisible()  # stays open so the user can fix it
    assert sim.stats.count("PLACE_ORDER") == modifies  # refused before sending

    dialog.quantity.setText("200")
    dialog.limit_price.step_by(-1)
    new_price = Decimal(dialog.limit_price.text())
    assert new_price < original.limit_price
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: tab.modify_dialog is None, timeout=10000)  # accepted and closed

    def modified():
        row = next((o for o in tab.open_model.rows() if o.order_id == order_id), None)
        return row is not None and row.quantity == 200 and row.limit_price == new_price

    qtbot.waitUntil(modified, timeout=10000)
    task = asyncio.ensure_future(broker.cancel(order_id))
    qtbot.waitUntil(task.done, timeout=10000)
    tab.shutdown()
