"""The real program in a subprocess: --smoke-test, --demo --screenshot, first run, SIGTERM, one instance."""

from __future__ import annotations

import configparser
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ibpanel.ui.app import SMOKE_MARKER
from PySide6.QtGui import QImage


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["IBPANEL_HOME"] = str(home)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("IBPANEL_API_TOKEN", None)
    return env


def _run(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ibpanel", *args], env=_env(home), capture_output=True, text=True, timeout=timeout
    )


def _ini(home: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(home / "config" / "settings.ini", encoding="utf-8")
    return parser


def test_smoke_test_prints_the_marker_and_exits_0(tmp_path):
    out = _run(tmp_path / "home", "--smoke-test")
    assert out.returncode == 0, out.stdout + out.stderr
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(SMOKE_MARKER)), None)
    assert line is not None, out.stdout + out.stderr
    fields = dict(part.split("=", 1) for part in line[len(SMOKE_MARKER):].split())
    assert fields["tabs"] == "7"
    assert fields["account"].startswith("DU")
    assert float(fields["populated_s"]) >= float(fields["connected_s"]) >= float(fields["window_s"]) > 0
    # Clean shutdown wrote the log and closed the journal it opened.
    log_text = (tmp_path / "home" / "logs" / "ibpanel.log").read_text(encoding="utf-8")
    assert "shut down cleanly" in log_text


@pytest.mark.parametrize("tab", ["account", "connection"])
def test_demo_screenshot_writes_a_png_of_the_populated_tab(tmp_path, tab):
    target = tmp_path / "shots" / f"{tab}.png"
    out = _run(tmp_path / "home", "--demo", "--screenshot", str(target), "--tab", tab)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"tab={tab} populated=1" in out.stdout, out.stdout + out.stderr
    image = QImage(str(target))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1280, 820)
    # Not a blank canvas: a populated window has many distinct colours.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 16) for y in range(0, image.height(), 16)}
    assert len(colours) > 8


def test_first_run_opens_on_connection_with_paper_preset(tmp_path):
    home = tmp_path / "home"
    assert not (home / "config" / "settings.ini").exists()
    out = _run(home, "--screenshot", str(tmp_path / "first.png"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tab=connection" in out.stdout
    ini = _ini(home)
    assert ini.get("window", "tab") == "connection"
    assert ini.get("connection", "preset") == "tws_paper"
    assert ini.get("connection", "port") == "7497"
    # The second run is not a first run any more and keeps the remembered tab.
    out = _run(home, "--screenshot", str(tmp_path / "second.png"), "--tab", "account")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _ini(home).get("window", "tab") == "account"


def test_bad_tab_name_says_which_are_valid(tmp_path):
    out = _run(tmp_path / "home", "--screenshot", str(tmp_path / "x.png"), "--tab", "nonsense")
    assert out.returncode != 0
    assert "--tab must be one of" in out.stdout + out.stderr


def _wait_for_log(proc: subprocess.Popen, log_file: Path, pattern: re.Pattern[str], what: str) -> None:
    """Poll the panel's log until ``pattern`` appears (the panel runs in another process: no event to await)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log_file.exists() and pattern.search(log_file.read_text(encoding="utf-8")):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)  # poll interval, not a wait for something to finish
    pytest.fail(f"the panel did not {what} within 30 s")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_sigterm_shuts_down_cleanly_and_one_instance_per_profile(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ibpanel", "--demo"], env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log_file = home / "logs" / "ibpanel.log"
    try:
        _wait_for_log(proc, log_file, re.compile(r"practice exchange listening"), "start its practice exchange")
        _wait_for_log(proc, log_file, re.compile(r"client .* connected"), "connect to its practice exchange")

        second = _run(home, "--demo", timeout=30)
        assert second.returncode == 0 and "already running" in second.stdout, second.stdout + second.stderr

        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stdout + stderr
    text = log_file.read_text(encoding="utf-8")
    assert "signal" in text and "shut down cleanly" in text


def test_screenshot_with_tws_port_waits_for_the_connection(tmp_path, sim):
    """QA F13: the picture is taken after the connection attempt, and populated= says what it shows."""
    target = tmp_path / "conn.png"
    out = _run(tmp_path / "home", "--tws-port", str(sim.port), "--client-id", "9", "--screenshot", str(target),
               "--tab", "connection")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tab=connection populated=1" in out.stdout, out.stdout + out.stderr
    assert not QImage(str(target)).isNull()


def test_screenshot_with_nothing_listening_says_populated_0(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    out = _run(tmp_path / "home", "--tws-port", str(free_port), "--screenshot", str(tmp_path / "x.png"), "--tab", "account")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tab=account populated=0" in out.stdout, out.stdout + out.stderr
    assert "screenshot: could not connect" in out.stderr and "Traceback" not in out.stderr


def test_screenshot_help_says_demo_places_practice_trades():
    from ibpanel.cli import build_parser

    action = next(a for a in build_parser()._actions if "--screenshot" in a.option_strings)
    assert "with --demo it first places sample practice trades" in action.help


def test_api_on_a_busy_port_is_one_line_on_the_terminal_and_a_note_in_the_window(tmp_path):
    """QA F24: no traceback on the terminal (it goes to the log file); the panel still starts."""
    import socket

    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run(home, "--api", "--api-port", str(port), "--screenshot", str(tmp_path / "x.png"), "--tab", "connection")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tab=connection" in out.stdout
    api_lines = [line for line in out.stderr.splitlines() if "REST API" in line]
    assert len(api_lines) == 1, out.stderr
    assert str(port) in api_lines[0] and "ibpanel.log" in api_lines[0]
    assert "Traceback" not in out.stderr and "[Errno" not in out.stderr
    log_text = (home / "logs" / "ibpanel.log").read_text(encoding="utf-8")
    assert "The local REST API did not start" in log_text and "Traceback" in log_text


def test_headless_demo_runs_leave_no_orders_in_the_profiles_journals(tmp_path):
    """QA F43: screenshot sample orders go to a throw-away journal, removed at exit, not the user's."""
    home = tmp_path / "home"
    out = _run(home, "--demo", "--screenshot", str(tmp_path / "orders.png"), "--tab", "orders")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tab=orders populated=1" in out.stdout, out.stdout + out.stderr  # the sample orders were placed
    journals = sorted(str(p.relative_to(home)) for p in home.rglob("*.sqlite3*"))
    assert journals == [], journals
    log_text = (home / "logs" / "ibpanel.log").read_text(encoding="utf-8")
    match = re.search(r"headless run: order journals in (.+?) \(removed at exit\)", log_text)
    assert match is not None, log_text
    assert not Path(match.group(1)).exists()  # the throw-away journals went with the run
    assert "shut down cleanly" in log_text
