"""The Practice tab over a real practice exchange: the report follows the fills, exports, and the recorder
shows its size and quote count; the Replay control drives the exchange's replay clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from ibpanel.broker.models import OrderRequest, OrderType, Side
from ibpanel.sim.replay import open_replay
from ibpanel.sim.server import SimThread
from ibpanel.ui.practice_tab import PracticeTab
from ibpanel.ui.replay_bar import ReplayBar

from tests.conftest import sim_test_config

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def practice_broker(sim, make_broker, connect_params, run_async):
    broker = make_broker()
    run_async(broker.connect(connect_params(sim, practice=True)), timeout=15.0)
    return broker


def test_report_shows_round_trips_after_practice_fills_and_exports(qtbot, practice_broker, ui_settings, run_async,
                                                                   tmp_path):
    tab = PracticeTab(practice_broker, ui_settings)
    qtbot.addWidget(tab)
    for side in (Side.BUY, Side.SELL):
        run_async(practice_broker.place(OrderRequest("AAPL", side, Decimal(10), OrderType.MKT)))
        qtbot.waitUntil(lambda s=side: sum(1 for f in practice_broker.fills() if f.side is s) == 1, timeout=10000)
    qtbot.waitUntil(tab.populated, timeout=10000)
    trips = tab.report.by_currency["USD"].round_trips
    assert len(trips) == 1 and trips[0].symbol == "AAPL" and trips[0].quantity == 10
    assert tab.trips.rowCount() == 1 and tab.trips.item(0, 0).text() == "AAPL"
    figures = {tab.figures.item(i, 0).text(): tab.figures.item(i, 1).text() for i in range(tab.figures.rowCount())}
    assert figures["Round trips"] == "1" and figures["Realized P&L"].endswith("USD")
    assert tab._plot is not None  # the equity curve was drawn
    assert "AAPL" in tab.export(tmp_path / "r.html", "html").read_text()
    assert "AAPL" in tab.export(tmp_path / "r.csv", "csv").read_text()
    tab.shutdown()


def test_recording_shows_quotes_and_size_then_stops(qtbot, practice_broker, ui_settings):
    tab = PracticeTab(practice_broker, ui_settings)
    qtbot.addWidget(tab)
    tab.symbols_edit.setText("AAPL, 700")
    tab.record_button.click()
    qtbot.waitUntil(lambda: tab.recorder is not None and tab.recorder.status().quotes >= 5, timeout=15000)
    qtbot.waitUntil(lambda: "quotes" in tab.record_status.text() and "KB" in tab.record_status.text(), timeout=5000)
    path = tab.recorder.status().path
    assert tab.record_button.text() == "Stop recording"
    tab.record_button.click()
    assert tab.recorder is None and "Stopped" in tab.record_status.text() and path.exists()
    tab.shutdown()


def test_replay_bar_plays_pauses_sets_speed_and_jumps(qtbot, tmp_path):
    csv = tmp_path / "AAPL.csv"
    csv.write_text("time,open,high,low,close,volume\n2025-03-14 09:30,200,201,199,200.5,1000\n"
                   "2025-03-14 10:30,200.5,202,200,201,1000\n")
    session = open_replay(csv, playing=False)
    with SimThread(sim_test_config(replay=session)):
        bar = ReplayBar(session.clock, "US/Eastern", "AAPL.csv")
        qtbot.addWidget(bar)
        assert bar.play_button.text() == "Play" and "09:30:00" in bar.time_label.text()
        assert all(w.accessibleName() for w in (bar.play_button, bar.speed, bar.jump_edit, bar.jump_button))
        bar.play_button.click()
        assert session.clock.state().playing and bar.play_button.text() == "Pause"
        bar.speed.setCurrentIndex(bar.speed.findData(60))
        assert session.clock.state().speed == 60
        bar.play_button.click()
        assert not session.clock.state().playing and bar.play_button.text() == "Play"
        bar.jump_edit.setDateTime(bar._local(session.clock.start + timedelta(minutes=30)))
        bar.jump_button.click()
        assert session.clock.now() == session.clock.start + timedelta(minutes=30)
        assert "10:00:00" in bar.time_label.text()
        bar.shutdown()
