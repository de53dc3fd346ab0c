"""The chart places a live price at the time the trade printed (a replayed day on its own day), and at its
arrival time only when the exchange gave no trade time."""

from __future__ import annotations

from datetime import datetime, timezone

from ibpanel.broker.models import Instrument, Market, Quote
from ibpanel.ui.chart import PriceChart


def test_live_points_use_the_trades_own_time(qtbot, broker):
    chart = PriceChart(broker)
    qtbot.addWidget(chart)
    aapl = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
    chart.set_instrument(aapl)
    printed = datetime(2025, 3, 14, 13, 30, tzinfo=timezone.utc)
    arrived = datetime(2026, 12, 3, 14, 0, tzinfo=timezone.utc)
    chart.add_quote(Quote(instrument=aapl, last=200.5, time=arrived, last_time=printed))
    assert chart.live_x[-1] == printed.timestamp()
    chart.add_quote(Quote(instrument=aapl, last=200.6, time=arrived))
    assert chart.live_x[-1] == arrived.timestamp()
    chart.shutdown()
