"""Order ticket against the practice exchange: field-level broker messages, read-only, confirmation,
no double submit, and a limit order that works, is modified, fills and shows in Orders / Positions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.broker.models import Market, OrderStatus, Side
from ibpanel.ui.formatting import tick_at
from ibpanel.ui.ticket_tab import TicketTab
from PySide6.QtCore import Qt
from ticket_helpers import open_ticket, prefill_and_wait, type_into


def _resolve(qtbot, tab: TicketTab, request: dict) -> None:
    prefill_and_wait(qtbot, tab, request, "last")


def test_hk_odd_lot_and_off_tick_price_show_their_message_and_send_nothing(qtbot, broker, sim, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "700", "side": "BUY", "quantity": Decimal(150), "limit_price": None})
    assert tab.instrument.market is Market.HK and tab.instrument.board_lot == 100
    tab.quantity_edit.step_by(1)
    assert tab.quantity_edit.text() == "200"  # the arrow keys step by the board lot
    tab.quantity_edit.setText("150")
    assert tab.order_type().value == "LMT"  # HK defaults to limit
    placed = sim.stats.count("PLACE_ORDER")

    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "quantity" in tab.issues_shown(), timeout=10000)
    assert "lot" in tab.issues_shown()["quantity"].lower()
    assert tab.issue_labels["quantity"].isVisible()

    tab.quantity_edit.setText("100")
    assert "quantity" not in tab.issues_shown()  # editing the field clears its message
    last = Decimal(str(tab.quote.last))
    tick = tick_at(Market.HK, last)
    tab.limit_edit.setText(str((last / tick).to_integral_value() * tick + tick / 2))  # half a tick off
    qtbot.waitUntil(lambda: tab.submit_button.isEnabled(), timeout=5000)
    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "limit_price" in tab.issues_shown(), timeout=10000)
    assert "tick" in tab.issues_shown()["limit_price"].lower()
    qtbot.waitUntil(lambda: not tab.in_flight, timeout=5000)
    assert sim.stats.count("PLACE_ORDER") == placed  # nothing reached the exchange
    assert tab.last_order is None
    tab.shutdown()


def test_read_only_disables_submit_and_says_why(qtbot, sim, make_broker, connect_params, run_async, ui_settings):
    broker = make_broker()
    run_async(broker.connect(connect_params(sim, readonly=True)), timeout=15)
    tab = open_ticket(qtbot, broker, ui_settings)
    assert not tab.submit_button.isEnabled()
    assert "read-only" in tab.submit_reason.text().lower()
    assert tab.submit_reason.isVisible()
    placed = sim.stats.count("PLACE_ORDER")
    tab.prefill({"symbol": "AAPL", "side": "BUY", "quantity": Decimal(1), "limit_price": Decimal("1.00")})
    tab.submit_clicked()  # the shortcut path is refused too
    assert not tab.in_flight
    assert sim.stats.count("PLACE_ORDER") == placed
    tab.shutdown()


def test_paper_confirmation_shows_the_order_and_submit_cannot_double_send(qtbot, broker, sim, ui_settings):
    ui_settings.set("ticket/confirm_paper", True)
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "MSFT", "side": "BUY", "quantity": Decimal(3), "limit_price": None})
    last = Decimal(str(tab.quote.last))
    limit = (last * Decimal("0.97")).quantize(Decimal("0.01"))  # below the market: works, does not fill
    tab.limit_edit.setText(str(limit))
    placed = sim.stats.count("PLACE_ORDER")

    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.confirm_box is not None, timeout=10000)
    assert not tab.submit_button.isEnabled()  # in flight while the question is open
    tab.submit_clicked()
    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    text = tab.confirm_box.text()
    assert "BUY 3 MSFT" in text and f"limit {limit}" in text and "DAY" in text and "PAPER" in text
    tab.confirm_box.button(tab.confirm_box.StandardButton.No).click()
    qtbot.waitUntil(lambda: not tab.in_flight, timeout=5000)
    assert "Not sent" in tab.result_label.text()
    assert sim.stats.count("PLACE_ORDER") == placed

    tab.submit_clicked()
    qtbot.waitUntil(lambda: tab.confirm_box is not None, timeout=10000)
    tab.confirm_box.button(tab.confirm_box.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: tab.last_order is not None, timeout=10000)
    assert sim.stats.count("PLACE_ORDER") == placed + 1  # exactly one order despite three clicks
    assert tab.last_order.side is Side.BUY and tab.last_order.limit_price == limit
    qtbot.waitUntil(lambda: tab.submit_button.isEnabled(), timeout=5000)
    run_cancel = broker.cancel(tab.last_order.order_id)
    import asyncio

    task = asyncio.ensure_future(run_cancel)
    qtbot.waitUntil(task.done, timeout=10000)
    tab.shutdown()


def test_shortcuts_pick_sides_and_escape_clears(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    with qtbot.waitActive(tab):
        tab.activateWindow()
    tab.symbol_edit.setFocus()
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_F2)
    assert tab.side() is Side.SELL
    assert "SELL" in tab.submit_button.text()
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert tab.side() is Side.BUY
    assert "F1" in tab.buy_button.toolTip() and "F2" in tab.sell_button.toolTip()
    tab.symbol_edit.setText("AAPL")
    qtbot.keyClick(tab.symbol_edit, Qt.Key.Key_Escape)
    assert tab.symbol_edit.text() == ""
    tab.shutdown()


@pytest.mark.timeout(90)
def test_limit_order_works_then_modified_fills_in_orders_positions_and_account(qtbot, main_window, broker, sim):
    ticket = main_window.tab("ticket")
    orders = main_window.tab("orders")
    positions = main_window.tab("positions")
    main_window.show_tab("ticket")
    _resolve(qtbot, ticket, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(10), "limit_price": None})
    last = Decimal(str(ticket.quote.last))
    ticket.limit_edit.setText(str((last * Decimal("0.96")).quantize(Decimal("0.01"))))
    cash_before = broker.account_summary().cash_by_currency.get("USD")

    qtbot.waitUntil(ticket.submit_button.isEnabled, timeout=5000)
    qtbot.mouseClick(ticket.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ticket.last_order is not None, timeout=10000)
    assert ticket.issues_shown() == {}
    order_id = ticket.last_order.order_id

    # working in Orders
    def open_row():
        return next((o for o in orders.open_model.rows() if o.order_id == order_id), None)

    qtbot.waitUntil(lambda: open_row() is not None and open_row().status is OrderStatus.SUBMITTED, timeout=10000)
    # modify the price through the dialog to a marketable one: it fills
    assert orders.select_order(order_id)
    dialog = orders.modify_selected()
    assert dialog is not None
    quote = broker.quote(ticket.instrument)
    dialog.limit_price.setText(str((Decimal(str(quote.ask or quote.last)) * Decimal("1.01")).quantize(Decimal("0.01"))))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    def done_row():
        return next((o for o in orders.completed_model.rows() if o.order_id == order_id), None)

    qtbot.waitUntil(lambda: done_row() is not None and done_row().status is OrderStatus.FILLED, timeout=15000)
    assert open_row() is None
    qtbot.waitUntil(lambda: any(f.order_id == order_id and f.commission is not None
                                for f in orders.fills_model.rows()), timeout=10000)
    # Positions: AAPL +10
    qtbot.waitUntil(lambda: any(p.instrument.symbol == "AAPL" and p.quantity == 10 for p in positions.model.rows()),
                    timeout=10000)
    # Account: cash went down by about the order's value
    qtbot.waitUntil(lambda: broker.account_summary().cash_by_currency.get("USD") != cash_before, timeout=10000)
    assert broker.account_summary().cash_by_currency["USD"] < cash_before
    assert main_window.tab("account").populated()


def test_preview_shows_commission_and_margin_without_placing(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(100), "limit_price": None})
    assert tab.estimate_label.text().startswith("≈") and tab.estimate_label.text().endswith("USD")
    qtbot.waitUntil(tab.preview_button.isEnabled, timeout=5000)
    tab.preview_button.click()
    assert tab.preview_label.text() == "Previewing…"  # said at once, before TWS answers
    qtbot.waitUntil(lambda: tab.last_preview is not None or tab.preview_label.text() != "Previewing…", timeout=15000)
    assert tab.last_preview is not None, (tab.preview_label.text(), tab.issues_shown())
    text = tab.preview_label.text()
    assert "commission" in text and "USD" in text and "margin" in text
    assert tab.last_preview.commission is not None and tab.last_preview.commission >= 1.0  # US minimum USD 1
    assert tab.last_order is None
    assert not broker.open_orders()  # a what-if never leaves a working order
    tab.shutdown()


def test_a_what_if_line_clears_when_the_order_changes(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(100), "limit_price": None})
    qtbot.waitUntil(tab.preview_button.isEnabled, timeout=5000)
    tab.preview_button.click()
    qtbot.waitUntil(lambda: tab.last_preview is not None, timeout=15000)
    assert tab.preview_label.text().startswith("What-if:")
    type_into(qtbot, tab.quantity_edit, "200")  # another order now: the figures were for 100 shares
    qtbot.waitUntil(lambda: tab.preview_label.text() == "", timeout=2000)
    assert tab.last_preview is None
    tab.shutdown()


def test_live_account_always_confirms_and_says_live(qtbot, make_broker, connect_params, run_async, ui_settings):
    from ibpanel.sim.server import SimConfig, SimThread

    config = SimConfig(host="127.0.0.1", port=0, accounts=("U7654321",), seed=3, session_mode="always", quote_interval=0.05)
    with SimThread(config) as live_sim:
        broker = make_broker()
        run_async(broker.connect(connect_params(live_sim)), timeout=15)
        assert broker.status.is_paper is False
        ui_settings.set("ticket/confirm_paper", False)  # the paper setting does not matter on a live account
        tab = open_ticket(qtbot, broker, ui_settings)
        _resolve(qtbot, tab, {"symbol": "AAPL", "side": "SELL", "quantity": Decimal(1), "limit_price": None})
        tab.limit_edit.setText(str((Decimal(str(tab.quote.last)) * Decimal("1.03")).quantize(Decimal("0.01"))))
        placed = live_sim.stats.count("PLACE_ORDER")
        tab.submit_clicked()
        qtbot.waitUntil(lambda: tab.confirm_box is not None, timeout=10000)
        assert "LIVE" in tab.confirm_box.text() and "U7654321" in tab.confirm_box.text()
        assert "SELL 1 AAPL" in tab.confirm_box.text()
        qtbot.keyClick(tab.confirm_box, Qt.Key.Key_Escape)  # Escape answers No
        qtbot.waitUntil(lambda: not tab.in_flight, timeout=5000)
        assert live_sim.stats.count("PLACE_ORDER") == placed
        tab.shutdown()
        run_async(broker.disconnect(), timeout=10)
