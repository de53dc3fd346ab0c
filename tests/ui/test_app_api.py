"""The panel honours ``[api] enabled`` in settings.ini at launch, without ``--api`` (QA F33)."""

from __future__ import annotations

import asyncio

import pytest
from app_helpers import http_get as _http_get
from app_helpers import start_panel as _start
from ibpanel.broker.models import ConnectionState
from ibpanel.ui.settings import Settings


def _save_api_settings(**values):
    settings = Settings("default")
    for key, value in values.items():
        settings.set(f"api/{key}", value)
    settings.sync()


def test_api_enabled_in_settings_starts_with_the_panel(qtbot, qapp, sim, run_async, restore_signals, tmp_path):
    _save_api_settings(enabled=True, host="127.0.0.1", port=0)
    panel, main = _start(["--tws-port", str(sim.port), "--client-id", "12"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.api_handle is not None, timeout=10000)
    qtbot.waitUntil(lambda: panel.broker.status.state is ConnectionState.CONNECTED, timeout=15000)
    group = panel.api_group
    assert group.enabled_check.isChecked() and not group.port_spin.isEnabled()
    port = panel.api_handle.port
    status, body = run_async(_http_get(port, "/api/ibkr/status"))
    assert status == 200 and body["data"]["connected"] is True and body["data"]["clientId"] == 12
    assert panel.window.status_bar.api_label.text() == f"API 127.0.0.1:{port}"
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0
    with pytest.raises(OSError):
        run_async(asyncio.open_connection("127.0.0.1", port))  # shutdown closed the API
    assert Settings("default").get("api/enabled", False) is True  # still on for the next launch


def test_api_off_in_settings_stays_off_unless_the_command_line_asks(qtbot, qapp, restore_signals, tmp_path):
    _save_api_settings(enabled=False, port=0)
    panel, main = _start([], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.window is not None and panel.window.isVisible(), timeout=10000)
    assert panel.api_handle is None and not panel.api_group.enabled_check.isChecked()
    assert not panel.window.status_bar.api_label.isVisible()
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)

    # --api forces it on for this run only (the saved choice stays off); the saved port is used.
    panel, main = _start(["--api"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.api_handle is not None, timeout=10000)
    assert panel.api_group.enabled_check.isChecked() and panel.api_handle.port != 5000
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0
    assert Settings("default").get("api/enabled", True) is False


def test_saved_non_loopback_address_without_token_is_refused_at_launch(qtbot, qapp, restore_signals, tmp_path,
                                                                        monkeypatch):
    monkeypatch.delenv("IBPANEL_API_TOKEN", raising=False)
    _save_api_settings(enabled=True, host="0.0.0.0", port=0)
    panel, main = _start([], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.window is not None and panel.window.status_bar.api_label.isVisible(), timeout=10000)
    assert panel.api_handle is None
    assert panel.window.status_bar.api_label.text() == "API off: needs a token"
    assert "without a token" in panel.api_group.status_label.text()
    assert panel.reporter.count == 0  # a refusal, not an error dialog
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0


def test_readonly_on_the_command_line_is_locked_for_the_api(qtbot, qapp, run_async, restore_signals, tmp_path):
    _save_api_settings(enabled=False, port=0)
    panel, main = _start(["--readonly", "--api", "--api-port", "0"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.api_handle is not None, timeout=10000)
    status, body = run_async(_http_get(panel.api_handle.port, "/api/ibkr/status"))
    assert status == 200 and body["data"]["readonlyLocked"] is True and "--readonly" in body["data"]["readonlyReason"]
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0
