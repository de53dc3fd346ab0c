"""The app in-process: --demo with --api starts both on the panel's loop; closing the window shuts all down."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import pytest
from app_helpers import http_get as _http_get
from app_helpers import start_panel as _start
from ibpanel.broker.models import ConnectionState
from ibpanel.cli import build_parser
from ibpanel.ui.app import PanelApp


@pytest.mark.parametrize("how", ["window close", "SIGTERM", "Ctrl+C"])
def test_shutdown_stops_api_broker_and_exchange(qtbot, qapp, run_async, restore_signals, tmp_path, how):
    args: argparse.Namespace = build_parser().parse_args(["--demo", "--api", "--api-port", "0"])
    panel = PanelApp(args, qapp, log_path=tmp_path / "ibpanel.log", started=0.0)
    main = asyncio.ensure_future(panel.main())
    qtbot.waitUntil(lambda: panel.broker is not None and panel.broker.status.state is ConnectionState.CONNECTED, timeout=15000)
    window, broker = panel.window, panel.broker
    qtbot.waitUntil(window.tabs["account"].populated, timeout=10000)
    assert panel.sim is not None and panel.api_handle is not None
    assert window.tabs["connection"].current_preset().key == "practice"

    port = panel.api_handle.port
    status, body = run_async(_http_get(port, "/api/ibkr/status"))
    assert status == 200 and json.dumps(body).count("DU") >= 1  # the API serves the panel's own broker

    # Every way out runs the one shutdown path.
    if how == "window close":
        window.close()
    else:
        signal.raise_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0
    assert broker.status.state is ConnectionState.DISCONNECTED
    assert panel.sim is None  # practice exchange stopped
    assert len(broker.state_changed) == 0  # every tab unsubscribed
    with pytest.raises(OSError):
        run_async(asyncio.open_connection("127.0.0.1", port))  # the API no longer listens


def test_practice_button_starts_the_exchange_and_connects(qtbot, qapp, restore_signals, tmp_path):
    from PySide6.QtCore import Qt

    panel, main = _start([], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.window is not None and panel.window.isVisible(), timeout=10000)
    tab = panel.window.tabs["connection"]
    assert panel.window.current_tab_name() == "connection"  # first run
    assert tab.current_preset().key == "tws_paper" and tab.practice_button.isVisible()
    qtbot.mouseClick(tab.practice_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.broker.status.state is ConnectionState.CONNECTED, timeout=15000)
    assert panel.sim is not None and panel.broker.status.params.port == panel.sim.port
    assert tab.current_preset().key == "practice"
    assert panel.broker.journal.path.name == "journal-practice.sqlite3"  # practice orders stay out of the real record
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0 and panel.sim is None
    from ibpanel.paths import practice_state_path

    assert practice_state_path("default").exists()  # the practice account continues next launch


def test_command_line_connection_options_connect_at_start(qtbot, qapp, sim, restore_signals, tmp_path):
    panel, main = _start(["--tws-port", str(sim.port), "--client-id", "9", "--readonly"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.broker is not None and panel.broker.status.state is ConnectionState.CONNECTED, timeout=15000)
    status = panel.broker.status
    assert (status.params.port, status.params.client_id, status.readonly) == (sim.port, 9, True)
    assert panel.window.status_bar.readonly_badge.isVisible()
    assert panel.sim is None  # a real endpoint: no practice exchange started
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0


def test_second_launch_brings_the_window_to_the_front(qtbot, qapp, restore_signals, tmp_path):
    from ibpanel.ui import instance
    from PySide6.QtCore import Qt

    guard = instance.acquire("default")
    assert guard is not None
    panel = PanelApp(build_parser().parse_args([]), qapp, log_path=tmp_path / "ibpanel.log", started=0.0, guard=guard)
    main = asyncio.ensure_future(panel.main())
    try:
        qtbot.waitUntil(lambda: panel.window is not None and panel.window.isVisible(), timeout=10000)
        panel.window.showMinimized()
        qtbot.waitUntil(lambda: bool(panel.window.windowState() & Qt.WindowState.WindowMinimized), timeout=2000)
        assert instance.acquire("default") is None  # a second launch: told the first to come forward
        qtbot.waitUntil(lambda: not panel.window.windowState() & Qt.WindowState.WindowMinimized, timeout=5000)
    finally:
        panel.request_quit()
        qtbot.waitUntil(main.done, timeout=20000)
        guard.release()
    assert main.result() == 0


@pytest.mark.parametrize("demo", [True, False])
def test_command_line_flags_are_not_saved_for_the_next_start(qtbot, qapp, sim, restore_signals, tmp_path, demo):
    """QA F12: ``ibpanel --demo --readonly`` / ``--tws-port P --readonly`` once; the next plain start is not read-only."""
    from ibpanel.ui.settings import Settings

    saved = Settings("default")
    saved.set("connection/client_id", 3)
    saved.set("connection/preset", "gateway_paper")
    saved.sync()
    flags = ["--demo"] if demo else ["--tws-port", str(sim.port)]
    panel, main = _start([*flags, "--client-id", "9", "--readonly"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.broker is not None and panel.broker.status.state is ConnectionState.CONNECTED, timeout=15000)
    assert panel.broker.status.readonly and panel.broker.status.params.client_id == 9
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0
    after = Settings("default")
    assert after.get("connection/readonly", False) is False
    assert after.get("connection/client_id", 0) == 3 and after.get("connection/preset", "") == "gateway_paper"
    assert after.get("connection/port", 0) != sim.port

    panel, main = _start([], qapp, tmp_path)  # the next plain start
    qtbot.waitUntil(lambda: panel.window is not None and panel.window.isVisible(), timeout=10000)
    tab = panel.window.tabs["connection"]
    assert not tab.readonly_check.isChecked() and tab.client_id_spin.value() == 3
    assert tab.current_preset().key == "gateway_paper"
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)


def test_api_on_a_busy_port_leaves_a_note_in_the_status_bar_and_the_log(qtbot, qapp, restore_signals, tmp_path):
    """QA F24: the window says the API is off and why; the panel works on without it."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        panel, main = _start(["--api", "--api-port", str(port)], qapp, tmp_path)
        qtbot.waitUntil(lambda: panel.window is not None and panel.window.status_bar.api_label.isVisible(), timeout=10000)
    window = panel.window
    label = window.status_bar.api_label
    assert label.text() == f"API off: port {port} in use"
    assert label.property("hint") == "error" and str(port) in label.toolTip()
    assert panel.api_handle is None
    log_text = window.tabs["connection"].message_log.toPlainText()
    assert "The local REST API is off" in log_text and str(port) in log_text and "--api-port" in log_text
    assert panel.reporter.count == 0  # no error dialog for a busy port: the note says it
    window.close()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0


def test_api_that_starts_is_shown_in_the_status_bar(qtbot, qapp, restore_signals, tmp_path):
    panel, main = _start(["--api", "--api-port", "0"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.api_handle is not None, timeout=10000)
    label = panel.window.status_bar.api_label
    assert label.isVisible() and label.text() == f"API 127.0.0.1:{panel.api_handle.port}"
    assert label.property("hint") == "muted"
    panel.window.close()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0


def test_panel_refusals_name_the_settings_file_of_the_limit(qtbot, qapp, sim, run_async, restore_signals, tmp_path):
    """A fat-finger or order-value refusal in the panel says which key in which settings.ini to change."""
    from decimal import Decimal

    from ibpanel.broker.exceptions import OrderRejected
    from ibpanel.broker.models import OrderRequest, OrderType, Side

    panel, main = _start(["--tws-port", str(sim.port), "--client-id", "8"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.broker is not None and panel.broker.status.state is ConnectionState.CONNECTED, timeout=15000)
    broker, settings_file = panel.broker, str(panel.settings.path)
    instrument = run_async(broker.resolve("AAPL"))
    quote = run_async(broker.snapshot(instrument), timeout=10)
    last = Decimal(str(quote.last or quote.ask))
    before = sim.stats.count("PLACE_ORDER")
    fat = OrderRequest(symbol="AAPL", side=Side.BUY, quantity=Decimal(1), order_type=OrderType.LMT,
                       limit_price=(last * Decimal("1.5")).quantize(Decimal("0.01")))
    with pytest.raises(OrderRejected) as refused:
        run_async(broker.place(fat))
    assert f"safety/fat_finger_pct in {settings_file}" in str(refused.value)
    huge = OrderRequest(symbol="AAPL", side=Side.BUY, quantity=Decimal(100_000), order_type=OrderType.MKT)
    with pytest.raises(OrderRejected) as refused:
        run_async(broker.place(huge))
    assert f"safety/max_order_value_usd in {settings_file}" in str(refused.value)
    assert sim.stats.count("PLACE_ORDER") == before  # nothing sent
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0


def test_quitting_while_the_demo_still_connects_ends_cleanly(qtbot, qapp, restore_signals, tmp_path):
    panel, main = _start(["--demo"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.sim is not None, timeout=15000)  # the exchange is up; the connect has begun
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0 and panel.sim is None
    # The connect in flight ended while the Connection tab still existed: nothing touched a deleted widget.
    assert panel.reporter.count == 0
