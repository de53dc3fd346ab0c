"""End to end: `ibpanel serve --demo` as a subprocess, driven by the trading module's own curl examples.

The examples are the module README's, verbatim; only the address changes (tests use an
ephemeral port, never 5000).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

# Verbatim from the trading module's README ("Usage Examples").
MODULE_EXAMPLES = r"""
curl -X POST http://localhost:5000/api/ibkr/connect \
  -H "Content-Type: application/json" \
  -d '{"host": "127.0.0.1", "port": 7497, "clientId": 1}'

curl -X POST http://localhost:5000/api/ibkr/order \
  -H "Content-Type: application/json" \
  -d '{"symbol": "AAPL", "side": "buy", "quantity": 10, "marketType": "USStock"}'

curl -X POST http://localhost:5000/api/ibkr/order \
  -H "Content-Type: application/json" \
  -d '{"symbol": "0700.HK", "side": "sell", "quantity": 100, "marketType": "HShare", "orderType": "limit", "price": 300}'

curl http://localhost:5000/api/ibkr/positions
"""


def _commands(base: str) -> list[list[str]]:
    joined = MODULE_EXAMPLES.replace("\\\n", " ")
    return [shlex.split(line.replace("http://localhost:5000", base)) for line in joined.splitlines() if line.strip()]


@pytest.fixture
def demo_server(tmp_path):
    env = {**os.environ, "IBPANEL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ibpanel", "serve", "--demo", "--seed", "7", "--api-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # the one "ready" line
        match = re.search(r"(http://[^\s/]+:\d+)/api/ibkr", line)
        assert match, f"no ready line: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield proc, match.group(1).replace("127.0.0.1", "localhost")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, proc.stderr.read()


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_module_curl_examples_succeed_against_serve_demo(demo_server):
    proc, base = demo_server
    answers = []
    for command in _commands(base):
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        answers.append(json.loads(out.stdout))
    for command, answer in zip(_commands(base), answers, strict=True):
        assert answer["success"] is True, (command, answer)
    connect, buy, sell, positions = answers
    assert connect["message"].startswith("Connected successfully") and connect["data"]["practice"] is True
    assert buy["data"]["symbol"] == "AAPL" and buy["data"]["status"] in ("Filled", "Submitted")
    # Tencent trades near 300 on the practice exchange: the sell is a normal limit order (no fat-finger
    # loosening): it fills when the bid reaches 300, or rests.
    assert sell["data"]["symbol"] == "0700.HK" and sell["data"]["status"] in ("Filled", "Submitted", "PreSubmitted")
    sell_filled = sell["data"]["status"] == "Filled"
    # Market orders fill at once on the practice exchange; on a loaded machine the report may trail.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        symbols = {p["symbol"]: p for p in positions["data"]}
        if symbols.get("AAPL", {}).get("quantity", 0) >= 10 and symbols.get("0700.HK", {}).get("quantity") in (900, 1000):
            break
        time.sleep(0.2)  # poll interval: the API runs in another process
        positions = json.loads(subprocess.run(_commands(base)[-1], capture_output=True, text=True, timeout=30).stdout)
    assert symbols["AAPL"]["quantity"] >= 10
    # The practice account's starter holding of Tencent covers the sale (no HK short selling).
    orders = _curl_json(f"{base}/api/ibkr/orders")["data"]
    resting = [o for o in orders if o["orderId"] == sell["data"]["orderId"] and o["status"] in ("Submitted", "PreSubmitted")]
    if sell_filled or not resting:
        assert symbols["0700.HK"]["quantity"] in (900, 1000)
    else:
        assert symbols["0700.HK"]["quantity"] == 1000 and resting[0]["limitPrice"] == 300


def _curl_json(url: str, *args: str) -> dict:
    out = subprocess.run(["curl", "-s", *args, url], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)


def _order(base: str, body: str) -> dict:
    return _curl_json(f"{base}/api/ibkr/order", "-X", "POST", "-H", "Content-Type: application/json", "-d", body)


@needs_curl
def test_serve_demo_enforces_the_profile_safety_limits(demo_server, tmp_path):
    """QA F1/F2: the headless server refuses what the panel refuses, before anything reaches the exchange,
    and says which key of which settings file holds the limit."""
    proc, base = demo_server
    settings_file = tmp_path / "home" / "config" / "settings.ini"
    too_big = _order(base, '{"symbol": "AAPL", "side": "buy", "quantity": 100000}')
    assert too_big["success"] is False and "above the limit of 1,000,000.00 USD" in too_big["error"], too_big
    assert f"safety/max_order_value_usd in {settings_file}" in too_big["error"], too_big
    fat = _order(base, '{"symbol": "AAPL", "side": "buy", "quantity": 1, "orderType": "limit", "price": 1000}')
    assert fat["success"] is False and "limit 10%" in fat["error"], fat
    assert f"safety/fat_finger_pct in {settings_file}" in fat["error"], fat
    orders = _curl_json(f"{base}/api/ibkr/orders")["data"]
    assert orders == []  # nothing was sent


@needs_curl
def test_serve_reads_safety_limits_from_the_profile_settings(tmp_path):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.ini").write_text("[safety]\nmax_order_value_usd=5000\nfat_finger_pct=3\n")
    env = {**os.environ, "IBPANEL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ibpanel", "serve", "--demo", "--seed", "7", "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        base = re.search(r"(http://[^\s/]+:\d+)/api/ibkr", line).group(1)
        refused = _order(base, '{"symbol": "AAPL", "side": "buy", "quantity": 100}')
        assert refused["success"] is False and "above the limit of 5,000.00 USD" in refused["error"], refused
        allowed = _order(base, '{"symbol": "AAPL", "side": "buy", "quantity": 10}')
        assert allowed["success"] is True, allowed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0, proc.stderr.read()


@needs_curl
def test_serve_uses_the_profile_journal(demo_server, tmp_path):
    proc, base = demo_server
    out = subprocess.run(["curl", "-s", "-X", "POST", f"{base}/api/ibkr/order", "-H", "Content-Type: application/json",
                          "-d", '{"symbol": "MSFT", "side": "buy", "quantity": 1}'], capture_output=True, text=True,
                         timeout=30)
    assert json.loads(out.stdout)["success"] is True
    assert (tmp_path / "home" / "data" / "journal.sqlite3").exists()


def test_serve_connects_at_start_to_a_given_tws(sim, tmp_path):
    env = {**os.environ, "IBPANEL_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "ibpanel", "serve", "--tws-port", str(sim.port), "--client-id", "4",
                             "--readonly", "--api-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert f"connected to 127.0.0.1:{sim.port} as clientId 4" in line, line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.returncode == 0, proc.stderr.read()


def test_serve_stops_cleanly_on_sigterm(demo_server):
    proc, base = demo_server
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err  # not 143 / -15: the signal was handled
    assert time.monotonic() - start < 10
    assert "IB Panel API stopped on SIGTERM: connection closed, journal flushed" in out
    assert "Traceback" not in err


def _catches_sigterm(pid: int) -> bool:
    """True once the process has its own SIGTERM handler (Linux: the SigCgt mask in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next(line for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize("extra_wait", [0.0, 0.6])
def test_serve_stops_cleanly_on_sigterm_while_starting(tmp_path, extra_wait):
    """A SIGTERM before the ready line (imports, practice exchange, connect) is a clean stop too: sent as soon
    as serve has taken over SIGTERM (its first act), and again a little later in the start-up."""
    env = {**os.environ, "IBPANEL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ibpanel", "serve", "--demo", "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while not (_catches_sigterm(proc.pid) or proc.poll() is not None or time.monotonic() > deadline):
            time.sleep(0.002)  # polling the condition: serve's SIGTERM handler is installed
        assert proc.poll() is None, proc.communicate()
        if extra_wait:
            time.sleep(extra_wait)  # the point in start-up is the variable under test, not a wait for a condition
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out, err)
    assert "IB Panel API stopped on SIGTERM" in out and "Traceback" not in err


def test_serve_refuses_an_open_bind_without_token(tmp_path):
    env = {**os.environ, "IBPANEL_HOME": str(tmp_path / "home")}
    env.pop("IBPANEL_API_TOKEN", None)
    out = subprocess.run([sys.executable, "-m", "ibpanel", "serve", "--api-host", "0.0.0.0", "--api-port", "0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2
    assert "without a token" in out.stderr and "Traceback" not in out.stderr


@needs_curl
def test_serve_keeps_serving_when_tws_is_not_there(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    env = {**os.environ, "IBPANEL_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "ibpanel", "serve", "--tws-port", str(free_port), "--api-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "not connected (" in line and "POST /api/ibkr/connect" in line, line
        base = re.search(r"(http://[^\s/]+:\d+)/api/ibkr", line).group(1)
        out = subprocess.run(["curl", "-s", f"{base}/api/ibkr/status"], capture_output=True, text=True, timeout=30)
        status = json.loads(out.stdout)["data"]
        assert status["connected"] is False and status["lastFailure"]["kind"] == "nothing_listening"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert proc.returncode == 0


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path):
    """QA F24 (headless side): one plain line naming the port and the flag, exit 1, no traceback or errno."""
    env = {**os.environ, "IBPANEL_HOME": str(tmp_path / "home")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "ibpanel", "serve", "--port", str(port)],
                             capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0]
    assert "Traceback" not in out.stderr and "[Errno" not in out.stderr
