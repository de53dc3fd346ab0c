"""A TWS that keeps its socket open but stops answering (stale heartbeat) shows in the status bar and banner."""

from __future__ import annotations

from dataclasses import replace

from ibpanel.broker.models import ConnectionState, ConnectionStatus
from ibpanel.ui.main_window import MainWindow


def test_status_bar_and_banner_say_tws_is_not_answering_and_clear_when_it_answers(qtbot, make_broker, ui_settings):
    window = MainWindow(make_broker(), ui_settings)
    qtbot.addWidget(window)
    window.show()
    connected = ConnectionStatus(state=ConnectionState.CONNECTED, accounts=("DU1",), account="DU1", is_paper=True)
    window._on_state_changed(connected)
    bar = window.status_bar
    assert bar.state_label.text() == "Connected" and not window.banner.isVisible()
    reason = "TWS has stopped answering (no reply to a heartbeat within 3 s)"
    window._on_state_changed(replace(connected, stale=True, stale_reason=reason))
    assert bar.state_label.text() == "Not answering" and bar.state_label.toolTip() == reason
    assert window.banner.isVisible() and window.banner.property("level") == "warning"
    assert reason in window.banner.label.text() and "Orders are refused" in window.banner.label.text()
    window._on_state_changed(connected)
    assert bar.state_label.text() == "Connected" and not window.banner.isVisible()
    window.close()
