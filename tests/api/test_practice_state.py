"""The practice account continues across launches of ``serve --demo`` (a paper account would), the
starter holding is given once, and ``--reset-practice`` starts it over (QA F43)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request


def _serve(home, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "IBPANEL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ibpanel", "serve", "--demo", "--seed", "7", "--api-port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    while line.startswith("ibpanel: practice account"):  # --reset-practice says so first
        line = proc.stdout.readline()
    match = re.search(r"(http://[^\s/]+:\d+)/api/ibkr", line)
    assert match, f"no ready line: {line!r}"
    return proc, match.group(1)


def _call(base: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/ibkr/{path}", data=data, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.load(response)


def _holdings(base: str) -> dict[str, float]:
    deadline = time.monotonic() + 10
    while True:
        rows = _call(base, "positions")["data"]
        if rows or time.monotonic() > deadline:
            return {row["symbol"]: row["quantity"] for row in rows}
        time.sleep(0.2)  # poll interval: the API runs in another process


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_practice_account_continues_and_resets(tmp_path):
    home = tmp_path / "home"
    proc, base = _serve(home)
    try:
        first = _holdings(base)
        assert first == {"0700.HK": 1000}  # the starter holding of a new practice account
        bought = _call(base, "order", {"symbol": "AAPL", "side": "buy", "quantity": 10})
        assert bought["success"] and bought["data"]["status"] == "Filled", bought
    finally:
        _stop(proc)

    proc, base = _serve(home)
    try:
        assert _holdings(base) == {"0700.HK": 1000, "AAPL": 10}  # same account, starter not given twice
    finally:
        _stop(proc)

    proc, base = _serve(home, "--reset-practice")
    try:
        assert _holdings(base) == {"0700.HK": 1000}
    finally:
        _stop(proc)
