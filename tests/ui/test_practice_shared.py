"""`ibpanel --demo` and `ibpanel serve --demo` on one profile share one practice exchange (one owner per
profile): an order placed through the API shows in the panel's account, and neither overwrites the
other's practice account."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal

from app_helpers import start_panel
from ibpanel.broker.models import ConnectionState
from ibpanel.runtime.practice import practice_files


def _serve() -> tuple[subprocess.Popen, str, str]:
    """`ibpanel serve --demo` on this test's profile (IBPANEL_HOME): the process, its ready line, its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ibpanel", "serve", "--demo", "--api-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    match = re.search(r"(http://[^\s/]+:\d+)/api/ibkr", line)
    assert match, f"no ready line: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
    return proc, line, match.group(1)


def _call(base: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/ibkr/{path}", data=data, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.load(response)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out


def _aapl_shares(panel) -> Decimal:
    return sum((p.quantity for p in panel.broker.positions() if p.instrument.symbol == "AAPL"), Decimal(0))


def _aapl_con_id(panel) -> int:
    return next(p.instrument.con_id for p in panel.broker.positions() if p.instrument.symbol == "AAPL")


def _saved_shares(con_id: int) -> float:
    """Shares of ``con_id`` in the profile's saved practice account (all accounts)."""
    state, _, _ = practice_files("default")
    saved = json.loads(state.read_text(encoding="utf-8"))["accounts"]["accounts"]
    return sum(float(p["quantity"]) for a in saved.values() for p in a["positions"] if p["con_id"] == con_id)


def _quit(panel, main, qtbot) -> None:
    panel.request_quit()
    qtbot.waitUntil(main.done, timeout=20000)
    assert main.result() == 0


def test_the_panel_joins_the_practice_exchange_serve_owns(qtbot, qapp, restore_signals, tmp_path):
    proc, ready, base = _serve()
    try:
        assert "practice exchange on port" in ready
        port = int(re.search(r"practice exchange on port (\d+)", ready).group(1))
        panel, main = start_panel(["--demo"], qapp, tmp_path)
        qtbot.waitUntil(lambda: panel.broker is not None and panel.broker.status.state is ConnectionState.CONNECTED,
                        timeout=20000)
        assert panel.sim.joined and panel.sim.port == port  # no copy of its own
        assert panel.broker.status.params.client_id != 1  # serve holds clientId 1; the panel took a free one
        reason = panel.window.tabs["connection"].paper_reason_label.text()
        assert reason.startswith(f"practice exchange (shared, run by process {proc.pid})"), reason

        bought = _call(base, "order", {"symbol": "AAPL", "side": "buy", "quantity": 7})
        assert bought["success"], bought
        qtbot.waitUntil(lambda: _aapl_shares(panel) == 7, timeout=15000)  # the same practice account
        aapl = _aapl_con_id(panel)
        _quit(panel, main, qtbot)
        assert _call(base, "status")["data"]["connected"]  # the panel leaving does not stop serve's exchange
    finally:
        _stop(proc)
    assert _saved_shares(aapl) == 7  # saved by serve, the owner; the panel wrote no copy over it
    assert not practice_files("default")[2].exists()  # the owner's address is gone with it


def test_serve_joins_the_practice_exchange_the_panel_owns(qtbot, qapp, restore_signals, tmp_path):
    panel, main = start_panel(["--demo", "--seed", "4"], qapp, tmp_path)
    qtbot.waitUntil(lambda: panel.broker is not None and panel.broker.status.state is ConnectionState.CONNECTED,
                    timeout=20000)
    assert panel.sim.owner
    proc = None
    try:
        proc, ready, base = _serve()
        assert "joined: one per profile" in ready and str(panel.sim.port) in ready, ready
        bought = _call(base, "order", {"symbol": "AAPL", "side": "buy", "quantity": 5})
        assert bought["success"], bought
        qtbot.waitUntil(lambda: _aapl_shares(panel) == 5, timeout=15000)
        _stop(proc)  # serve leaving saves nothing of its own: the panel owns the account
        proc = None
        aapl = _aapl_con_id(panel)
    finally:
        if proc is not None:
            _stop(proc)
        _quit(panel, main, qtbot)
    assert _saved_shares(aapl) == 5  # the API's buy is in the account the panel saved: nothing was overwritten
