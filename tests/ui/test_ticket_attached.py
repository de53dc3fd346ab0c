"""The ticket's trailing stops, attached (bracket) orders, money / risk sizing and presets, and the Orders
tab's OCA groups: driven through the widgets, counted at the practice exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.ui.orders_tab import OrdersTab, order_group
from PySide6.QtCore import QItemSelectionModel
from ticket_helpers import open_ticket


@pytest.fixture
def orders(qtbot, broker, ui_settings):
    """An Orders tab on the broker, shut down (its broker handlers dropped) however the test ends."""
    tab = OrdersTab(broker, ui_settings)
    qtbot.addWidget(tab)
    yield tab
    tab.shutdown()


def _market_at(sim, run_async, broker, symbol: str, price: str):
    instrument = run_async(broker.resolve(symbol))
    sim.call(sim.server.market.move_to, instrument.con_id, Decimal(price))
    return instrument


def _ready(qtbot, tab, request: dict) -> None:
    tab.prefill(request)
    qtbot.waitUntil(lambda: tab.instrument is not None and tab.quote is not None and tab.quote.last is not None,
                    timeout=10000)


def _at_exchange(sim, broker, order_id: int):
    client_id = broker.status.params.client_id
    return sim.call(sim.server.exchange.order, client_id, order_id)


def _arrived(qtbot, sim, broker, order_id: int):
    qtbot.waitUntil(lambda: _at_exchange(sim, broker, order_id) is not None, timeout=10000)
    return _at_exchange(sim, broker, order_id)


def _submit(qtbot, tab):
    qtbot.waitUntil(tab.submit_button.isEnabled, timeout=5000)
    tab.submit_clicked()
    qtbot.waitUntil(lambda: tab.last_order is not None, timeout=10000)
    return tab.last_order


def test_ticket_trailing_stop_shows_its_initial_stop_follows_the_price_and_fills(qtbot, broker, sim, run_async,
                                                                                 ui_settings):
    instrument = _market_at(sim, run_async, broker, "AAPL", "200.00")
    tab = open_ticket(qtbot, broker, ui_settings)
    _ready(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": 5, "order_type": "TRAIL", "trailing": "3.00"})
    qtbot.waitUntil(lambda: "initial stop" in tab.initial_stop_label.text(), timeout=5000)
    assert not tab.limit_edit.isEnabled() and tab.trailing_edit.isEnabled()
    order = _submit(qtbot, tab)
    sent = _arrived(qtbot, sim, broker, order.order_id)
    assert (sent.order_type, sent.aux_price) == ("TRAIL", Decimal("3"))
    first_stop = Decimal(sent.extra["trailStopPrice"])
    assert Decimal(202) < first_stop < Decimal(204)  # 3.00 above the market, set by the broker and sent
    sim.call(sim.server.market.move_to, instrument.con_id, Decimal("180.00"))
    qtbot.waitUntil(lambda: (broker.order(order.order_id).stop_price or 999) < Decimal(185), timeout=10000)
    sim.call(sim.server.market.move_to, instrument.con_id, Decimal("190.00"))
    qtbot.waitUntil(lambda: broker.order(order.order_id).status is OrderStatus.FILLED, timeout=10000)
    assert broker.order(order.order_id).avg_fill_price < 190.5  # bought on the trailed stop, not the first one
    tab.shutdown()


def test_ticket_bracket_is_grouped_in_orders_and_its_take_profit_fill_cancels_the_stop(qtbot, broker, sim, run_async,
                                                                                       ui_settings, orders):
    instrument = _market_at(sim, run_async, broker, "AAPL", "200.00")
    tab = open_ticket(qtbot, broker, ui_settings)
    _ready(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": 4, "order_type": "LMT", "limit_price": "150.00",
                        "take_profit": "210.00", "stop_loss": "140.00"})
    placed = sim.stats.count("PLACE_ORDER")
    entry = _submit(qtbot, tab)
    qtbot.waitUntil(lambda: sim.stats.count("PLACE_ORDER") == placed + 3, timeout=10000)  # parent + two children
    qtbot.waitUntil(lambda: len([o for o in orders.open_model.rows() if o.parent_id == entry.order_id]) == 2,
                    timeout=10000)
    children = [o for o in orders.open_model.rows() if o.parent_id == entry.order_id]
    assert sorted(o.order_type for o in children) == ["LMT", "STP"]
    assert {order_group(o) for o in children} == {f"↳ {entry.order_id}"}  # the Group column of the Orders tab
    # the entry fills (the market comes to it); then the take-profit fills and IB cancels the stop-loss
    tab.shutdown()
    run_async(broker.modify(entry.order_id, quantity=None, limit_price=Decimal("201.00"), stop_price=None))
    qtbot.waitUntil(lambda: broker.order(entry.order_id).status is OrderStatus.FILLED, timeout=10000)
    children = [o for o in broker.open_orders() if o.parent_id == entry.order_id]
    take_profit = next(c for c in children if c.order_type == "LMT")
    stop_loss = next(c for c in children if c.order_type == "STP")
    sim.call(sim.server.market.move_to, instrument.con_id, Decimal("212.00"))
    qtbot.waitUntil(lambda: broker.order(take_profit.order_id).status is OrderStatus.FILLED, timeout=10000)
    qtbot.waitUntil(lambda: broker.order(stop_loss.order_id).status is OrderStatus.CANCELLED, timeout=10000)


def test_orders_tab_puts_selected_orders_in_an_oca_group_and_one_fill_cancels_the_other(
        qtbot, broker, sim, run_async, orders):
    instrument = _market_at(sim, run_async, broker, "MSFT", "400.00")
    first = run_async(broker.place(OrderRequest("MSFT", Side.BUY, Decimal(1), OrderType.LMT, limit_price=Decimal(395))))
    second = run_async(broker.place(OrderRequest("MSFT", Side.BUY, Decimal(1), OrderType.LMT, limit_price=Decimal(390))))
    qtbot.waitUntil(lambda: {first.order_id, second.order_id} <= {o.order_id for o in orders.open_model.rows()},
                    timeout=10000)
    selection = orders.open_view.selectionModel()
    for position, order in enumerate(orders.open_model.rows()):
        if order.order_id in (first.order_id, second.order_id):
            selection.select(orders.open_model.index(position, 0),
                             QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    orders.put_in_oca_selected("MSFT-DIP")
    qtbot.waitUntil(lambda: all(_at_exchange(sim, broker, o.order_id).oca_group == "MSFT-DIP"
                                for o in (first, second)), timeout=10000)
    qtbot.waitUntil(lambda: all(order_group(o) == "OCA MSFT-DIP" for o in orders.open_model.rows()
                                if o.order_id in (first.order_id, second.order_id)), timeout=10000)
    sim.call(sim.server.market.move_to, instrument.con_id, Decimal("394.00"))
    qtbot.waitUntil(lambda: broker.order(first.order_id).status is OrderStatus.FILLED, timeout=10000)
    qtbot.waitUntil(lambda: broker.order(second.order_id).status is OrderStatus.CANCELLED, timeout=10000)


def test_money_sized_and_risk_sized_orders_reach_the_exchange_with_their_exact_quantities(
        qtbot, broker, sim, run_async, ui_settings):
    _market_at(sim, run_async, broker, "AAPL", "200.00")
    tab = open_ticket(qtbot, broker, ui_settings)
    _ready(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "order_type": "LMT", "limit_price": "190.00"})
    tab.size_mode_combo.setCurrentIndex(tab.size_mode_combo.findData("money"))
    tab.size_edit.setText("10,000")
    assert tab.quantity_edit.text() == "52"  # 10,000 / 190.00 = 52.6: rounded down
    assert "= 52 shares" in tab.size_label.text()
    money = _submit(qtbot, tab)
    assert _arrived(qtbot, sim, broker, money.order_id).total_qty == 52

    qtbot.waitUntil(lambda: bool((s := broker.account_summary()) and s.net_liquidation), timeout=10000)
    net = Decimal(str(broker.account_summary().net_liquidation))
    tab.prefill({"symbol": "AAPL", "side": "BUY", "order_type": "LMT", "limit_price": "190.00",
                 "stop_loss": "185.00"})
    qtbot.waitUntil(lambda: tab.instrument is not None, timeout=10000)
    tab.size_mode_combo.setCurrentIndex(tab.size_mode_combo.findData("risk"))
    tab.size_edit.setText("0.5")
    expected = int(net * Decimal("0.005") / Decimal(5))  # 0.5 % of net liquidation over 5.00 a share to the stop
    qtbot.waitUntil(lambda: tab.quantity_edit.text() == str(expected), timeout=5000)
    risk = _submit(qtbot, tab)
    assert _arrived(qtbot, sim, broker, risk.order_id).total_qty == expected
    tab.quantity_edit.setText("7")  # typing a quantity by hand goes back to shares
    assert tab.size_mode() == "shares"
    tab.shutdown()


def test_preset_saved_for_the_market_fills_in_a_bracket_for_another_symbol(qtbot, broker, sim, run_async,
                                                                           ui_settings):
    _market_at(sim, run_async, broker, "AAPL", "200.00")
    tab = open_ticket(qtbot, broker, ui_settings)
    ui_settings.remove("ticket/presets")
    _ready(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": 30, "order_type": "LMT", "tif": "GTC"})
    ask = Decimal(str(tab.quote.ask))
    tab.limit_edit.setText(str(ask))
    tab.take_profit_edit.setText(str((ask * Decimal("1.02")).quantize(Decimal("0.01"))))
    tab.stop_loss_edit.setText(str((ask * Decimal("0.99")).quantize(Decimal("0.01"))))
    preset = tab.save_preset()
    assert preset.attach == "bracket" and preset.quantity == 30
    assert ui_settings.get_json("ticket/presets")["US"]["tif"] == "GTC"
    _ready(qtbot, tab, {"symbol": "MSFT", "side": "BUY"})
    tab.apply_preset()
    assert (tab.quantity_edit.text(), tab.draft.tif.value) == ("30", "GTC")
    assert tab.take_profit_edit.text() and tab.stop_loss_edit.text()
    assert Decimal(tab.take_profit_edit.text()) > Decimal(str(tab.quote.ask)) > Decimal(tab.stop_loss_edit.text())
    ui_settings.remove("ticket/presets")
    tab.shutdown()
