"""Connection tab against the practice exchange: presets, connect / disconnect, failures and their fixes."""

from __future__ import annotations

import re
import socket
from dataclasses import replace
from datetime import timezone
from zoneinfo import ZoneInfo

import pytest
from ibpanel.broker.models import ConnectionState, ConnectionStatus
from ibpanel.ui.connection_tab import (
    PRESETS,
    PRESETS_BY_KEY,
    ConnectionTab,
    connection_time_text,
    parse_tws_time,
)
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox


def _tab(qtbot, broker, settings) -> ConnectionTab:
    tab = ConnectionTab(broker, settings)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def _answer_live_confirmation(qtbot, accept: bool) -> list[str]:
    """Click the live-connection question when it appears (it runs a nested loop); returns its text."""
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        button = QMessageBox.StandardButton.Yes if accept else QMessageBox.StandardButton.Cancel
        qtbot.mouseClick(box.button(button), Qt.MouseButton.LeftButton)

    QTimer.singleShot(20, answer)
    return seen


def _wait_state(qtbot, broker, state: ConnectionState, timeout_ms: int = 15000) -> None:
    qtbot.waitUntil(lambda: broker.status.state is state, timeout=timeout_ms)


def test_presets_fill_the_standard_ports(qtbot, make_broker, ui_settings):
    tab = _tab(qtbot, make_broker(), ui_settings)
    expected = {"tws_paper": 7497, "tws_live": 7496, "gateway_paper": 4002, "gateway_live": 4001}
    for key, port in expected.items():
        tab.select_preset(key)
        assert tab.port_spin.value() == port
        assert tab.params().port == port
        assert tab.is_live_target() is PRESETS_BY_KEY[key].live
        assert tab.host_edit.isEnabled() and tab.port_spin.isEnabled()
    tab.select_preset("practice")
    # The practice exchange runs in-process: its address is not the user's to type.
    assert not tab.port_spin.isEnabled() and not tab.host_edit.isEnabled()
    assert tab.connect_button.text() == "Start practice session"
    assert [p.label for p in PRESETS] == ["TWS Paper", "TWS Live", "Gateway Paper", "Gateway Live", "Practice exchange"]


def test_first_run_defaults_to_tws_paper_with_practice_offered(qtbot, make_broker, ui_settings):
    assert ui_settings.first_run
    tab = _tab(qtbot, make_broker(), ui_settings)
    assert tab.current_preset().key == "tws_paper"
    assert tab.port_spin.value() == 7497
    assert tab.client_id_spin.value() == 1
    assert tab.auto_reconnect_check.isChecked() and not tab.readonly_check.isChecked()
    assert tab.practice_button.isVisible() and tab.connect_button.isEnabled()
    assert not tab.disconnect_button.isEnabled()


@pytest.mark.parametrize("preset", ["tws_paper", "tws_live", "gateway_paper", "gateway_live"])
def test_connect_with_each_preset_port_overridden_to_the_exchange(qtbot, sim, make_broker, ui_settings, preset):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    tab.select_preset(preset)
    assert tab.port_spin.value() == PRESETS_BY_KEY[preset].port
    tab.port_spin.setValue(sim.port)
    tab.client_id_spin.setValue(40 + PRESETS.index(PRESETS_BY_KEY[preset]))
    asked = _answer_live_confirmation(qtbot, accept=True) if PRESETS_BY_KEY[preset].live else []

    qtbot.mouseClick(tab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(tab.populated, timeout=15000)

    if PRESETS_BY_KEY[preset].live:
        assert asked and "LIVE" in asked[0]
    status = broker.status
    assert status.params.port == sim.port
    assert tab.state_label.text() == "Connected"
    assert tab.server_version_label.text() == str(status.server_version)
    assert tab.accounts_label.text() == ", ".join(status.accounts)
    assert tab.connection_time_label.text() not in ("", "—")
    # The practice accounts are DU...: classified paper whatever the preset said.
    assert tab.account_type_badge.text() == "PAPER"
    assert not tab.connect_button.isEnabled() and tab.disconnect_button.isEnabled()
    # The form is remembered for next time.
    assert ui_settings.get("connection/port", 0) == sim.port
    assert ui_settings.get("connection/preset", "") == preset

    qtbot.mouseClick(tab.disconnect_button, Qt.MouseButton.LeftButton)
    _wait_state(qtbot, broker, ConnectionState.DISCONNECTED)
    qtbot.waitUntil(tab.connect_button.isEnabled, timeout=5000)
    tab.shutdown()


def test_declining_the_live_question_connects_nothing(qtbot, sim, make_broker, ui_settings):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    tab.select_preset("gateway_live")
    tab.port_spin.setValue(sim.port)
    asked = _answer_live_confirmation(qtbot, accept=False)
    qtbot.mouseClick(tab.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in tab.message_log.toPlainText(), timeout=5000)
    assert asked
    assert broker.status.state is ConnectionState.DISCONNECTED
    assert sim.stats.count("START_API") == 0
    tab.shutdown()


def test_several_accounts_give_a_selector_that_switches_the_account(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    assert run_async(tab.connect_with(connect_params(sim)), timeout=15)
    accounts = broker.status.accounts
    assert len(accounts) >= 2
    combo = tab.account_combo
    assert combo.isEnabled() and not combo.isEditable()
    assert [combo.itemText(i) for i in range(combo.count())] == list(accounts)
    other = next(a for a in accounts if a != broker.status.account)
    combo.setCurrentText(other)
    combo.activated.emit(combo.currentIndex())
    qtbot.waitUntil(lambda: broker.status.account == other, timeout=5000)
    run_async(broker.disconnect())
    tab.shutdown()


def test_client_id_in_use_shows_the_reason_and_the_suggested_id(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    first = make_broker()
    taken = connect_params(sim, client_id=77)
    run_async(first.connect(taken), timeout=15)

    second = make_broker()
    tab = _tab(qtbot, second, ui_settings)
    ok = run_async(tab.connect_with(taken), timeout=20)
    assert not ok
    assert tab.failure_box.isVisible()
    assert "77" in tab.failure_label.text() and "326" in tab.failure_label.text()
    assert tab.suggested_id_button.isVisible()
    suggested = tab._last_failure.suggested_client_id
    assert suggested is not None and suggested != 77
    assert str(suggested) in tab.suggested_id_button.text()

    qtbot.mouseClick(tab.suggested_id_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(tab.populated, timeout=15000)
    assert second.status.params.client_id == suggested
    assert not tab.failure_box.isVisible()
    run_async(second.disconnect())
    tab.shutdown()


def test_nothing_listening_says_so_in_one_line_and_offers_practice(qtbot, make_broker, ui_settings, run_async, connect_params):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Closed:
        pass

    closed = Closed()
    closed.port = port
    tab = _tab(qtbot, make_broker(), ui_settings)
    assert not run_async(tab.connect_with(connect_params(closed)), timeout=15)
    message = tab.failure_label.text()
    assert message and "\n" not in message and "Nothing is listening" in message
    assert str(port) in message
    assert tab.practice_button.isVisible()
    assert not tab.suggested_id_button.isVisible()
    with qtbot.waitSignal(tab.start_practice_requested, timeout=2000):
        qtbot.mouseClick(tab.practice_button, Qt.MouseButton.LeftButton)
    tab.shutdown()


def test_readonly_connection_shows_the_badge(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    tab.readonly_check.setChecked(True)
    params = replace(tab.params(), port=sim.port, client_id=55)
    assert run_async(tab.connect_with(params), timeout=15)
    assert broker.status.readonly
    assert tab.readonly_badge.isVisible()
    run_async(broker.disconnect())
    tab.shutdown()


def test_live_and_unknown_classification_are_red(qtbot, make_broker, ui_settings):
    tab = _tab(qtbot, make_broker(), ui_settings)
    live = ConnectionStatus(
        state=ConnectionState.CONNECTED, accounts=("U1234567",), account="U1234567", server_version=176,
        is_paper=False, paper_reason="account U1234567 is live (no DU prefix)",
    )
    tab._on_state_changed(live)
    assert tab.account_type_badge.text() == "LIVE"
    assert tab.account_type_badge.property("badge") == "live"
    assert "live" in tab.paper_reason_label.text()
    tab._on_state_changed(replace(live, is_paper=None, paper_reason="unknown, treated as live"))
    assert tab.account_type_badge.text() == "LIVE?"
    assert tab.account_type_badge.property("badge") == "live"
    tab._on_state_changed(replace(live, is_paper=True))
    assert tab.account_type_badge.property("badge") == "paper"
    tab.shutdown()


def test_notices_go_to_the_message_log(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    assert run_async(tab.connect_with(connect_params(sim)), timeout=15)
    sim.faults.send_connectivity(1100)
    qtbot.waitUntil(lambda: "[1100]" in tab.message_log.toPlainText(), timeout=5000)
    sim.faults.send_connectivity(1102)
    qtbot.waitUntil(lambda: "[1102]" in tab.message_log.toPlainText(), timeout=5000)
    run_async(broker.disconnect())
    tab.shutdown()


def test_dont_ask_again_for_live_is_remembered_per_profile(qtbot, make_broker, ui_settings):
    tab = _tab(qtbot, make_broker(), ui_settings)
    tab.select_preset("tws_live")

    def tick_and_accept() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, tick_and_accept)
            return
        box.checkBox().setChecked(True)
        qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)

    QTimer.singleShot(20, tick_and_accept)
    assert tab.confirm_live() is True
    assert ui_settings.get("confirm/live_connect", True) is False
    # Next time: no question at all (a dialog here would block the test until its timeout).
    assert tab.confirm_live() is True
    tab.shutdown()


def test_command_line_connection_is_one_off_until_the_user_edits(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    """QA F12: ``--readonly`` (any flag) on one run must not tick Read-only on the next plain start."""
    ui_settings.set("connection/readonly", False)
    ui_settings.set("connection/client_id", 3)
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    params = replace(tab.params(), port=sim.port, client_id=61, readonly=True)
    assert run_async(tab.connect_with(params, one_off=True), timeout=15)
    assert broker.status.readonly and tab.readonly_check.isChecked()
    tab.save_settings()
    assert ui_settings.get("connection/readonly", True) is False and ui_settings.get("connection/client_id", 0) == 3
    assert not ui_settings.contains("connection/account")  # the session's account is not the user's choice
    run_async(broker.disconnect())
    # A field the user changes by hand afterwards is saved as usual; the others stay one-off.
    tab.client_id_spin.setValue(77)
    tab.shutdown()
    assert ui_settings.get("connection/client_id", 0) == 77 and ui_settings.get("connection/readonly", True) is False
    again = _tab(qtbot, make_broker(), ui_settings)
    assert not again.readonly_check.isChecked() and again.client_id_spin.value() == 77
    again.shutdown()


def test_a_connection_from_the_form_is_saved(qtbot, sim, make_broker, ui_settings, run_async):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    tab.readonly_check.setChecked(True)
    assert run_async(tab.connect_with(replace(tab.params(), port=sim.port, client_id=62)), timeout=15)
    assert ui_settings.get("connection/readonly", False) is True and ui_settings.get("connection/client_id", 0) == 62
    run_async(broker.disconnect())
    tab.shutdown()


def test_practice_session_shows_its_endpoint_and_says_practice(qtbot, sim, make_broker, ui_settings, run_async):
    """QA F18: the actual port / client id, read-only, and "practice exchange (in-process)" as the paper reason."""
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    tab.set_practice_port(sim.port)
    assert run_async(tab.connect_with(replace(tab.params(), host="127.0.0.1", port=sim.port, client_id=63)), timeout=15)
    assert tab.current_preset().key == "practice"
    assert (tab.host_edit.text(), tab.port_spin.value(), tab.client_id_spin.value()) == ("127.0.0.1", sim.port, 63)
    assert tab.port_spin.text() == str(sim.port) and tab.client_id_spin.text() == "63"  # shown, not blank
    assert not tab.port_spin.isEnabled() and not tab.client_id_spin.isEnabled() and not tab.host_edit.isEnabled()
    reason = tab.paper_reason_label.text()
    assert reason.startswith("practice exchange (in-process)") and "DU111111" in reason
    assert "not a standard" not in reason
    run_async(broker.disconnect())
    tab.shutdown()


def test_other_endpoints_keep_the_brokers_paper_reason(qtbot, sim, make_broker, ui_settings, run_async):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    assert run_async(tab.connect_with(replace(tab.params(), port=sim.port, client_id=64)), timeout=15)
    assert tab.paper_reason_label.text() == broker.status.paper_reason != ""
    assert "in-process" not in tab.paper_reason_label.text()
    run_async(broker.disconnect())
    tab.shutdown()


def _closed_port() -> int:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_failed_connect_after_a_session_shows_no_stale_session_info_and_logs_once(
    qtbot, sim, make_broker, ui_settings, run_async, connect_params
):
    """QA F20 + F21: the Session box never pairs a failed endpoint with the last session's details;
    the failure is in "Messages from IB" once: a one-line headline, the advice on the line below."""
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    session = tab.server_version_label, tab.connection_time_label, tab.accounts_label
    assert run_async(tab.connect_with(connect_params(sim)), timeout=15)
    assert all(label.text() != "—" for label in session)
    assert "DU111111" in tab.accounts_label.text()
    run_async(broker.disconnect())
    assert [label.text() for label in session] == ["—", "—", "—"]

    port = _closed_port()
    params = replace(connect_params(sim), port=port)
    assert not run_async(tab.connect_with(params), timeout=15)
    assert f":{port}" in tab.endpoint_label.text()
    assert [label.text() for label in session] == ["—", "—", "—"]
    assert tab.account_type_badge.text() == "—"

    lines = tab.message_log.toPlainText().splitlines()
    failures = [i for i, line in enumerate(lines) if "Could not connect" in line]
    assert len(failures) == 1, lines
    headline = lines[failures[0]]
    assert "Nothing is listening" in headline and str(port) in headline and "Errno" not in headline
    assert "ERROR" in headline
    advice = lines[failures[0] + 1]
    assert tab._last_failure.advice and advice.strip() == tab._last_failure.advice
    assert "Errno" not in tab.failure_label.text() and "\n" not in tab.failure_label.text()
    assert tab.failure_label.toolTip()  # the technical cause stays one hover away (and in the log file)
    tab.shutdown()


def test_a_new_attempt_clears_the_last_sessions_details_at_once(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    assert run_async(tab.connect_with(connect_params(sim)), timeout=15)
    run_async(broker.disconnect())
    tab.server_version_label.setText("176")  # as if left over: a new attempt must not show it beside a new endpoint
    seen: list[str] = []
    broker.state_changed.connect(
        lambda status: seen.append(tab.server_version_label.text())
        if status.state is ConnectionState.CONNECTING else None
    )
    assert run_async(tab.connect_with(connect_params(sim)), timeout=15)
    assert seen and all(text == "—" for text in seen)
    assert tab.server_version_label.text() != "—"
    run_async(broker.disconnect())
    tab.shutdown()


@pytest.mark.parametrize(
    ("message", "headline"),
    [
        (
            "Nothing is listening on 127.0.0.1:1: TWS / IB Gateway is not running there, or uses another port "
            "([Errno 111] Connect call failed ('127.0.0.1', 1)).",
            "Nothing is listening on 127.0.0.1:1: TWS / IB Gateway is not running there, or uses another port.",
        ),
        ("Client ID 77 is already in use (326).", "Client ID 77 is already in use (326)."),
        ("TWS did not answer\nin 8 s.", "TWS did not answer in 8 s."),
    ],
)
def test_failure_headline_drops_python_errno_detail(message, headline):
    from ibpanel.ui.connection_tab import failure_headline

    assert failure_headline(message) == headline


_HONG_KONG = ZoneInfo("Asia/Hong_Kong")


@pytest.mark.parametrize(
    ("raw", "local_zone", "shown"),
    [
        ("20261124 12:42:25 UTC", _HONG_KONG, "2026-11-24 20:42:25 HKT  (12:42:25 UTC)"),
        ("20261124 12:42:25 UTC", timezone.utc, "2026-11-24 12:42:25 UTC"),
        ("20261124 12:42:25", _HONG_KONG, "2026-11-24 20:42:25 HKT  (12:42:25 UTC)"),
        ("20261124 07:42:25 EST", _HONG_KONG, "2026-11-24 20:42:25 HKT  (12:42:25 UTC)"),
        ("20260701 20:00:00 Asia/Hong_Kong", ZoneInfo("America/New_York"), "2026-07-01 08:00:00 EDT  (12:00:00 UTC)"),
        ("20261124 23:30:00 UTC", ZoneInfo("Asia/Kolkata"), "2026-11-25 05:00:00 IST  (23:30:00 UTC)"),
        # Ambiguous zone (China or US Central), bad date, other text: TWS's own words rather than a wrong hour.
        ("20261124 12:42:25 CST", _HONG_KONG, "20261124 12:42:25 CST"),
        ("20261340 12:00:00 UTC", _HONG_KONG, "20261340 12:00:00 UTC"),
        ("yesterday", _HONG_KONG, "yesterday"),
        ("", _HONG_KONG, "—"),
    ],
)
def test_connection_time_is_shown_in_local_time(raw, local_zone, shown):
    assert connection_time_text(raw, local_zone) == shown


def test_connection_tab_shows_tws_time_readable_and_keeps_the_raw_text_in_the_tooltip(
    qtbot, sim, make_broker, ui_settings, run_async, connect_params
):
    broker = make_broker()
    tab = _tab(qtbot, broker, ui_settings)
    assert run_async(tab.connect_with(connect_params(sim)), timeout=15)
    raw = broker.status.connection_time
    assert raw and parse_tws_time(raw) is not None, raw
    shown = tab.connection_time_label.text()
    assert shown == connection_time_text(raw)
    assert shown != raw and re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ", shown), shown
    assert raw in tab.connection_time_label.toolTip()
    # A time the panel cannot read for sure is shown as TWS wrote it.
    tab._on_state_changed(replace(broker.status, connection_time="20261124 12:42:25 CST"))
    assert tab.connection_time_label.text() == "20261124 12:42:25 CST"
    run_async(broker.disconnect())
    tab.shutdown()


def test_session_and_api_boxes_have_no_blank_band_the_message_log_takes_the_height(qtbot, make_broker, ui_settings):
    """Screenshot review: a blank band sat under the API status line and the session rows."""
    tab = _tab(qtbot, make_broker(), ui_settings)
    tab.resize(1280, 780)
    qtbot.waitUntil(lambda: tab.api_group.height() > 0 and tab.message_log.height() > 0, timeout=2000)
    QApplication.processEvents()
    status = tab.api_group.status_label
    assert status.text()  # "Off. Tick the box ..."
    # The status line is as tall as its text needs at its width (one line here), not four lines of hint.
    assert status.height() == status.heightForWidth(status.width())
    assert status.height() < 2 * status.fontMetrics().lineSpacing()
    assert tab.api_group.height() - status.geometry().bottom() < 30
    # Disconnected: no paper reason, so no empty line under the headline.
    assert not tab.paper_reason_label.isVisible()
    session_box = tab.server_version_label.parentWidget()
    assert session_box.height() <= session_box.sizeHint().height()
    log_box = tab.message_log.parentWidget()
    assert log_box.height() > session_box.height()
    tab.shutdown()
