"""Ticket after Submit: the result line follows the order's status events (a rejection shows IB's reason in
red), Submit asks first while TWS is cut off from IB (1100), and Preview labels margins with the base currency."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import ConnectionState, OrderStatus
from ibpanel.ui.ticket_fields import SELL_COLOUR
from ibpanel.ui.ticket_tab import TicketTab
from PySide6.QtCore import Qt
from ticket_helpers import open_ticket, prefill_and_wait


def _resolve(qtbot, tab: TicketTab, request: dict) -> None:
    prefill_and_wait(qtbot, tab, request, "bid")


def test_hk_short_sale_rejection_shows_rejected_and_ibs_reason_in_red(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "941", "side": "SELL", "quantity": Decimal(500), "limit_price": None})
    tab.limit_edit.setText(str(Decimal(str(tab.quote.bid))))  # at the bid: would trade at once if allowed
    qtbot.waitUntil(tab.submit_button.isEnabled, timeout=5000)
    qtbot.mouseClick(tab.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.last_order is not None, timeout=10000)
    qtbot.waitUntil(lambda: "Rejected" in tab.result_label.text(), timeout=5000)
    text = tab.result_label.text()
    assert "201" in text and "short" in text.lower(), text  # IB's reason, not just the status
    assert SELL_COLOUR in tab.result_label.styleSheet()  # red, as TWS shows a rejection
    assert broker.order(tab.last_order.order_id).status is OrderStatus.REJECTED
    tab.shutdown()


def test_result_line_follows_a_working_order_to_cancelled(qtbot, broker, run_async, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(2), "limit_price": None})
    tab.limit_edit.setText(str((Decimal(str(tab.quote.last)) * Decimal("0.97")).quantize(Decimal("0.01"))))
    qtbot.waitUntil(tab.submit_button.isEnabled, timeout=5000)
    tab.submit_clicked()
    qtbot.waitUntil(lambda: "working" in tab.result_label.text(), timeout=10000)
    assert "Submitted" in tab.result_label.text()
    run_async(broker.cancel(tab.last_order.order_id), timeout=10)
    qtbot.waitUntil(lambda: "Cancelled" in tab.result_label.text(), timeout=10000)
    tab.shutdown()


def test_submit_while_cut_off_from_ib_asks_first_and_no_sends_nothing(qtbot, broker, sim, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "AAPL", "side": "BUY", "quantity": Decimal(1), "limit_price": None})
    sim.faults.send_connectivity(1100)
    qtbot.waitUntil(lambda: broker.status.state is ConnectionState.DEGRADED, timeout=10000)
    placed = sim.stats.count("PLACE_ORDER")
    qtbot.waitUntil(tab.submit_button.isEnabled, timeout=5000)
    tab.submit_clicked()
    qtbot.waitUntil(lambda: tab.confirm_box is not None, timeout=10000)
    assert tab.confirm_box.objectName() == "degradedConfirm"
    assert "cut off from IB's servers" in tab.confirm_box.text() and "stale" in tab.confirm_box.text()
    tab.confirm_box.button(tab.confirm_box.StandardButton.No).click()
    qtbot.waitUntil(lambda: not tab.in_flight, timeout=5000)
    assert "Not sent" in tab.result_label.text()
    assert sim.stats.count("PLACE_ORDER") == placed
    assert tab.last_order is None
    tab.shutdown()


def test_preview_labels_margin_and_equity_with_the_base_currency(qtbot, broker, ui_settings):
    tab = open_ticket(qtbot, broker, ui_settings)
    _resolve(qtbot, tab, {"symbol": "700", "side": "BUY", "quantity": Decimal(200), "limit_price": None})
    qtbot.waitUntil(tab.preview_button.isEnabled, timeout=5000)
    tab.preview_button.click()
    qtbot.waitUntil(lambda: tab.last_preview is not None, timeout=15000)
    text = tab.preview_label.text()
    base = tab.base_currency()
    assert base == (broker.account_summary().base_currency or "USD")
    assert "HKD" in text  # the commission, in the instrument's currency
    assert f"initial margin {tab.last_preview.init_margin_change:+,.2f} {base}" in text, text
    assert f"maintenance margin {tab.last_preview.maint_margin_change:+,.2f} {base}" in text, text
    tab.shutdown()


def test_result_text_for_fills_partial_fills_and_inactive():
    from dataclasses import replace

    from ibpanel.broker.models import Instrument, Market, OrderView, Side
    from ibpanel.ui.ticket_fields import order_result_text

    hsbc = Instrument("5", Market.HK, "SEHK", "HKD", con_id=5, board_lot=400)
    base = OrderView(order_id=7, perm_id=None, client_id=1, journal_id=None, account="DU111111", instrument=hsbc,
                     side=Side.BUY, quantity=Decimal(800), order_type="LMT", limit_price=Decimal("98.5"),
                     stop_price=None, tif="DAY", outside_rth=False, status=OrderStatus.SUBMITTED,
                     remaining=Decimal(800))
    partial = replace(base, filled=Decimal(400), remaining=Decimal(400), avg_fill_price=98.45)
    assert order_result_text(partial)[0] == ("Order 7 BUY 800 0005.HK: partially filled 400 of 800 @ 98.45,"
                                             " 400 working (Submitted).")
    filled = replace(partial, status=OrderStatus.FILLED, filled=Decimal(800), remaining=Decimal(0))
    assert order_result_text(filled)[0] == "Order 7 BUY 800 0005.HK: Filled 800 @ 98.45."
    inactive = replace(base, status=OrderStatus.INACTIVE, message="Order held: outside trading hours.")
    text, colour = order_result_text(inactive)
    assert text == "Order 7 BUY 800 0005.HK: Inactive. Order held: outside trading hours." and colour == SELL_COLOUR
