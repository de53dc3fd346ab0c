"""The Connection tab's "Local REST API" group: the checkbox starts / stops the API on the panel's loop (QA F33)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import shiboken6
from app_helpers import http_get as _http_get
from ibpanel.ui.settings import Settings


@pytest.fixture
def api_group(main_window, run_async):
    group = main_window.tabs["connection"].api_group
    group.port_spin.setValue(0)  # any free port: tests never use fixed ports
    handle = None
    try:
        yield group
    finally:
        handle = group.handle if shiboken6.isValid(group) else None
    if handle is not None:  # a test that failed half-way: do not leave a port open
        run_async(handle.close())


def test_ticking_the_box_serves_the_panels_connection_and_unticking_closes_the_port(
    qtbot, main_window, api_group, broker, sim, run_async
):
    assert not api_group.enabled_check.isChecked() and api_group.handle is None  # off by default
    assert not api_group.token_edit.isVisibleTo(api_group)  # loopback: no token needed, none asked for
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: api_group.handle is not None, timeout=10000)
    port = api_group.handle.port
    assert port != 0

    status, body = run_async(_http_get(port, "/api/ibkr/status"))
    assert status == 200 and body["success"] is True
    data = body["data"]
    assert data["connected"] is True and data["port"] == sim.port
    assert data["clientId"] == broker.status.params.client_id and data["account"] == broker.status.account

    url = f"http://127.0.0.1:{port}/api/ibkr"
    assert url in api_group.status_label.text()
    bar = main_window.status_bar.api_label
    assert bar.isVisible() and bar.text() == f"API 127.0.0.1:{port}" and url in bar.toolTip()
    assert not api_group.port_spin.isEnabled()  # the address of a running API is fixed until it is turned off
    saved = Settings("default")
    assert saved.get("api/enabled", False) is True and saved.get("api/host", "") == "127.0.0.1"

    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: api_group.handle is None and api_group.port_spin.isEnabled(), timeout=10000)
    with pytest.raises(OSError):
        run_async(asyncio.open_connection("127.0.0.1", port))  # the port is closed
    assert not bar.isVisible()  # off by choice: nothing to warn about
    assert api_group.status_label.text().startswith("Off.")
    assert Settings("default").get("api/enabled", True) is False


def test_another_address_without_a_token_is_refused_with_a_message(qtbot, main_window, api_group, monkeypatch):
    monkeypatch.delenv("IBPANEL_API_TOKEN", raising=False)
    api_group.token_edit.clear()
    api_group.host_edit.setText("0.0.0.0")
    assert api_group.token_edit.isVisibleTo(api_group)  # any address but loopback: the token is required, so shown
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: "token" in api_group.status_label.text(), timeout=5000)
    assert api_group.handle is None and not api_group.enabled_check.isChecked()
    text = api_group.status_label.text()
    assert text.startswith("Off: Refusing to serve the trading API on 0.0.0.0 without a token")
    assert "127.0.0.1" in text and "Traceback" not in text
    assert api_group.status_label.property("hint") == "error"
    bar = main_window.status_bar.api_label
    assert bar.isVisible() and bar.text() == "API off: needs a token" and bar.property("hint") == "error"
    log_text = main_window.tabs["connection"].message_log.toPlainText()
    assert "The local REST API is off: Refusing" in log_text
    assert Settings("default").get("api/enabled", True) is False  # a refused start is not saved as on


def test_a_short_token_is_refused_before_binding(qtbot, api_group):
    api_group.host_edit.setText("0.0.0.0")
    api_group.token_edit.setText("short")
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: "at least 16 characters" in api_group.status_label.text(), timeout=5000)
    assert api_group.handle is None and not api_group.enabled_check.isChecked()


def test_a_token_of_spaces_is_refused_not_taken_for_no_token(qtbot, main_window, api_group):
    api_group.token_edit.setText("     ")  # on loopback no token is needed, but spaces are a mistake, not a choice
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: "only spaces" in api_group.status_label.text(), timeout=5000)
    assert api_group.handle is None and not api_group.enabled_check.isChecked()
    assert main_window.status_bar.api_label.text() == "API off: blank token"


def test_a_busy_port_says_which_field_to_change(qtbot, main_window, api_group):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        api_group.port_spin.setValue(port)
        api_group.enabled_check.click()
        qtbot.waitUntil(lambda: api_group.status_label.text().startswith("Off:"), timeout=5000)
    text = api_group.status_label.text()
    assert "in use" in text and "Port field of the Local REST API group" in text and "--api-port" not in text
    assert main_window.status_bar.api_label.text() == f"API off: port {port} in use"
    assert api_group.handle is None and not api_group.enabled_check.isChecked()


def test_the_token_is_stored_only_when_the_user_asks(qtbot, main_window, api_group, monkeypatch):
    token = "t0ken-for-a-test-0123456789"
    api_group.host_edit.setText("192.0.2.10")
    api_group.token_edit.setText(token)
    api_group.token_edit.editingFinished.emit()
    saved = Settings("default")
    assert not saved.contains("api/token")  # not asked to remember
    api_group.remember_token_check.setChecked(True)
    assert Settings("default").get("api/token", "") == token
    api_group.remember_token_check.setChecked(False)
    assert not Settings("default").contains("api/token")  # forgotten again


def test_the_token_field_starts_from_the_environment(qtbot, broker, ui_settings, monkeypatch):
    from ibpanel.ui.connection_tab import ApiGroup

    monkeypatch.setenv("IBPANEL_API_TOKEN", "from-the-environment-0123")
    group = ApiGroup(broker, ui_settings)
    qtbot.addWidget(group)
    assert group.token_edit.text() == "from-the-environment-0123"
    ui_settings.set("api/remember_token", True)
    ui_settings.set("api/token", "remembered-token-0123456789")
    ui_settings.set("api/host", "10.1.2.3")
    ui_settings.set("api/port", 5123)
    group = ApiGroup(broker, ui_settings)
    qtbot.addWidget(group)
    assert group.token_edit.text() == "remembered-token-0123456789"
    assert (group.host_edit.text(), group.port_spin.value()) == ("10.1.2.3", 5123)
    assert group.token_edit.isVisibleTo(group)


def test_a_token_from_the_environment_is_enforced_and_said_on_loopback(qtbot, api_group, run_async, monkeypatch):
    api_group.token_edit.setText("env-token-for-loopback-0123")  # as _load_settings puts IBPANEL_API_TOKEN there
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: api_group.handle is not None, timeout=10000)
    port = api_group.handle.port
    assert "Authorization: Bearer" in api_group.status_label.text()
    status, body = run_async(_http_get(port, "/api/ibkr/status"))
    assert status == 401 and body["success"] is False
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: api_group.handle is None, timeout=10000)


async def _post(port: int, path: str, body: dict) -> tuple[int, dict]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(f"http://127.0.0.1:{port}{path}", json=body) as response:
        return response.status, await response.json()


def test_the_panels_read_only_switch_cannot_be_lifted_from_the_api(qtbot, main_window, api_group, broker, sim, run_async):
    tab = main_window.tabs["connection"]
    tab.readonly_check.setChecked(True)  # the trader switched read-only on for the next connection
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: api_group.handle is not None, timeout=10000)
    port = api_group.handle.port
    status, body = run_async(_http_get(port, "/api/ibkr/status"))
    assert body["data"]["readonlyLocked"] is True and "panel" in body["data"]["readonlyReason"]

    status, _ = run_async(_post(port, "/api/ibkr/disconnect", {}))
    assert status == 200
    target = {"host": "127.0.0.1", "port": sim.port}
    status, body = run_async(_post(port, "/api/ibkr/connect", {**target, "readonly": False}), timeout=15.0)
    assert status == 403 and body["code"] == "readonly_locked", body
    assert not broker.status.connected
    status, body = run_async(_post(port, "/api/ibkr/connect", target), timeout=15.0)
    assert status == 200 and body["data"]["readonly"] is True and broker.status.readonly, body

    tab.readonly_check.setChecked(False)  # only the panel lifts it
    status, body = run_async(_http_get(port, "/api/ibkr/status"))
    assert body["data"]["readonlyLocked"] is False


def test_readonly_on_the_panels_command_line_locks_the_api(qtbot, main_window, api_group, sim, run_async):
    tab = main_window.tabs["connection"]
    tab.readonly_check.setChecked(False)
    tab.readonly_forced = True  # what the app sets for `ibpanel --readonly`
    api_group.enabled_check.click()
    qtbot.waitUntil(lambda: api_group.handle is not None, timeout=10000)
    port = api_group.handle.port
    run_async(_post(port, "/api/ibkr/disconnect", {}))
    status, body = run_async(_post(port, "/api/ibkr/connect", {"host": "127.0.0.1", "port": sim.port,
                                                               "readonly": False}), timeout=15.0)
    assert status == 403 and "--readonly" in body["error"], body
