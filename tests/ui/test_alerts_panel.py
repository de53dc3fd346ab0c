"""Alerts against the practice exchange: a crossing fires exactly once, with a notification and in the
list; an order-filled alert; the list survives a restart (same profile settings)."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.alerts import AlertKind
from ibpanel.broker.models import OrderRequest, OrderType, Side
from ibpanel.ui.alerts_panel import AlertsPanel


def test_price_alert_fires_exactly_once_on_a_crossing_and_is_kept_across_restarts(
        qtbot, broker, sim, run_async, ui_settings):
    panel = AlertsPanel(broker, ui_settings)
    qtbot.addWidget(panel)
    instrument = run_async(broker.resolve("AAPL"))
    start = Decimal(str(run_async(broker.snapshot(instrument)).last))
    level = (start * Decimal("1.05")).quantize(Decimal("0.01"))
    alert = run_async(panel.add_alert(AlertKind.ABOVE, "AAPL", str(level)))
    assert alert is not None and panel.table.rowCount() == 1
    qtbot.waitUntil(lambda: panel.book.last_price("AAPL") is not None, timeout=10000)
    assert panel.hits == []

    market = sim.server.market
    sim.call(market.move_to, instrument.con_id, level * Decimal("1.02"))
    qtbot.waitUntil(lambda: len(panel.hits) == 1, timeout=10000)
    hit = panel.hits[0]
    assert hit.alert.id == alert.id and f"crossed above {level}" in hit.message
    assert panel.notifier.shown == [hit.message]
    assert hit.message in panel.notice_label.text() or panel.notifier.tray is not None
    assert panel.table.item(0, 1).text().startswith("fired")

    # back below and up through the level again: the spent alert stays quiet
    sim.call(market.move_to, instrument.con_id, level * Decimal("0.97"))
    qtbot.waitUntil(lambda: panel.book.last_price("AAPL") < float(level), timeout=10000)
    sim.call(market.move_to, instrument.con_id, level * Decimal("1.03"))
    qtbot.waitUntil(lambda: panel.book.last_price("AAPL") > float(level), timeout=10000)
    assert len(panel.hits) == 1
    panel.shutdown()

    again = AlertsPanel(broker, ui_settings)
    qtbot.addWidget(again)
    saved = again.book.alerts()
    assert [(a.kind, a.symbol, a.threshold) for a in saved] == [(AlertKind.ABOVE, "AAPL", level)]
    assert not saved[0].armed
    again.shutdown()


def test_order_filled_alert_and_a_bad_entry_adds_nothing(qtbot, broker, run_async, ui_settings):
    panel = AlertsPanel(broker, ui_settings)
    qtbot.addWidget(panel)
    assert run_async(panel.add_alert(AlertKind.BELOW, "AAPL", "cheap")) is None
    assert "not a number" in panel.message_label.text() and panel.book.alerts() == ()
    run_async(panel.add_alert(AlertKind.FILLED, "", ""))
    order = run_async(broker.place(OrderRequest("MSFT", Side.BUY, Decimal(3), OrderType.MKT)))
    qtbot.waitUntil(lambda: len(panel.hits) == 1, timeout=10000)
    assert f"Order {order.order_id} filled: BUY 3 MSFT" in panel.hits[0].message
    panel.shutdown()
