"""Cold start and idle cost of the panel, each against a bare PySide6 window measured in the same run.

Each start is a fresh process (offscreen Qt, a fresh IBPANEL_HOME so it is a first run too):

* baseline: ``python -c`` that creates a QApplication and an empty QMainWindow, shows it, processes
  events once and prints a line;
* demo:     ``python -m ibpanel --demo`` as a trader types it (IBPANEL_EXIT_AFTER_POPULATED=1 makes it
  print a line and exit once the Account tab has filled in from the in-process practice exchange);
* smoke:    ``python -m ibpanel --demo --smoke-test`` (every tab built, connected, Account filled in),
  with the panel's own split from its marker (window shown / connected / populated);
* frozen:   with ``--frozen DIR``, the PyInstaller bundle's ``ibpanel --demo`` (to a populated window) and
            ``ibpanel --demo --smoke-test`` the same way.

Then idle: the bare window and ``ibpanel --demo`` (practice exchange in-process) are left running; after
``--settle`` seconds their CPU (% of one core) over ``--idle-seconds`` and their resident memory are read.
The panel is measured twice: as it starts (Connection tab; the Quotes tab is built, and its watchlist
streams, only once opened) and with ``--tab quotes`` (the 8-symbol demo watchlist streaming, its chart drawn).

Before timing, ibpanel's own modules are byte-compiled (``compileall``), as ``pip install`` does for an
installed package: an editable install run with PYTHONDONTWRITEBYTECODE=1 (set in some environments)
would otherwise compile every module from source on every start. Then one untimed start, as the first
start after an install, writes the compiled dataclass methods beside them (``ibpanel.dataclass_cache``).
``--no-compile`` skips both steps.

    .venv/bin/python bench/ui_cold_start.py [--runs 5] [--frozen dist/ibpanel] [--no-idle] [--no-compile]

Targets (issue 13): demo start <= 0.6 s (median), idle CPU <= 1% of a core, idle RSS <= 120 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE_CODE = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "app = QApplication(sys.argv[:1])\n"
    "w = QMainWindow(); w.resize(1280, 820); w.show()\n"
    "app.processEvents()\n"
    "print('BASELINE READY', flush=True)\n"
    "if '--stay' in sys.argv:\n"
    "    app.exec()\n"
)
SMOKE_MARKER = "IBPANEL SMOKE OK"
POPULATED_MARKER = "IBPANEL POPULATED ok=1"


def _env(home: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IBPANEL_HOME=home, **extra)
    return env


def _time_to_line(cmd: list[str], marker: str, env: dict[str, str], timeout: float = 120) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                elapsed = time.perf_counter() - start
                proc.wait(timeout=timeout)
                return elapsed, line.strip()
        proc.wait(timeout=timeout)
        raise RuntimeError(f"{cmd!r} exited {proc.returncode} without {marker!r}: {proc.stderr.read() if proc.stderr else ''}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _idle(cmd: list[str], env: dict[str, str], settle: float, seconds: float) -> tuple[float, float]:
    """(CPU % of one core over ``seconds``, RSS in MB) of a process left running ``settle`` seconds first."""
    import psutil  # the test extra: benches run in the development environment

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)  # a bench, not a test: the start settles (practice exchange up, tabs filled in)
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd!r} exited {proc.returncode} before it was measured")
        watched = psutil.Process(proc.pid)
        cpu0, wall0 = watched.cpu_times(), time.perf_counter()
        time.sleep(seconds)
        cpu1, wall1 = watched.cpu_times(), time.perf_counter()
        rss = watched.memory_info().rss / 1e6
        used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        return 100.0 * used / (wall1 - wall0), rss
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _compile_ibpanel() -> str:
    """Byte-compile ibpanel's modules where they are (what pip does at install); says what it did."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("ibpanel")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        return "ibpanel not found: nothing compiled"
    ok = all(compileall.compile_dir(folder, quiet=1) for folder in folders)
    return f"ibpanel byte-compiled in {', '.join(folders)}" + ("" if ok else " (some files failed)")


def _first_start() -> str:
    """One untimed ``--demo`` start, as the first after an install: it writes the dataclass cache
    (``ibpanel.dataclass_cache``) where Python writes bytecode, which later starts read."""
    from ibpanel import dataclass_cache

    with tempfile.TemporaryDirectory() as home:
        env = _env(home, IBPANEL_EXIT_AFTER_POPULATED="1")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        _time_to_line([sys.executable, "-m", "ibpanel", "--demo"], POPULATED_MARKER, env)
    path = dataclass_cache.default_path()
    if path is None or not os.path.exists(path):
        return "first start: no dataclass cache written (bytecode is not kept beside ibpanel)"
    return f"first start: {len(dataclass_cache.loads(Path(path).read_bytes()))} dataclass methods cached in {path}"


SPLIT_KEYS = ("window_s", "practice_s", "connected_s", "populated_s", "process_s")


def _fields(line: str, marker: str) -> dict[str, float]:
    parts = dict(part.split("=", 1) for part in line[len(marker):].split() if "=" in part)
    out = {}
    for key in SPLIT_KEYS:
        try:
            out[key] = float(parts[key])
        except (KeyError, ValueError):
            pass
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frozen", type=Path, default=None, help="a built bundle folder (dist/ibpanel) to time too")
    parser.add_argument("--no-idle", action="store_true")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--no-compile", action="store_true",
                        help="time ibpanel as it is (no compileall and no untimed first start)")
    args = parser.parse_args()
    compiled = "ibpanel not byte-compiled first (--no-compile)" if args.no_compile else _compile_ibpanel()
    if not args.no_compile:
        compiled += "\n" + _first_start()

    frozen_exe = None
    if args.frozen is not None:
        frozen_exe = args.frozen / ("ibpanel.exe" if sys.platform == "win32" else "ibpanel")
        if not frozen_exe.exists():
            print(f"no frozen executable at {frozen_exe}", file=sys.stderr)
            return 2
    times: dict[str, list[float]] = {"baseline": [], "demo": [], "smoke": [], "frozen_demo": [], "frozen": []}
    splits: dict[str, list[dict[str, float]]] = {"demo": [], "smoke": [], "frozen_demo": [], "frozen": []}
    for _ in range(args.runs):  # interleaved, so a load change on the machine hits every kind alike
        with tempfile.TemporaryDirectory() as home:
            times["baseline"].append(_time_to_line([sys.executable, "-c", BASELINE_CODE], "BASELINE READY", _env(home))[0])
        with tempfile.TemporaryDirectory() as home:
            env = _env(home, IBPANEL_EXIT_AFTER_POPULATED="1")
            elapsed, line = _time_to_line([sys.executable, "-m", "ibpanel", "--demo"], POPULATED_MARKER, env)
            times["demo"].append(elapsed)
            splits["demo"].append(_fields(line, POPULATED_MARKER))
        with tempfile.TemporaryDirectory() as home:
            elapsed, line = _time_to_line([sys.executable, "-m", "ibpanel", "--demo", "--smoke-test"], SMOKE_MARKER,
                                          _env(home))
            times["smoke"].append(elapsed)
            splits["smoke"].append(_fields(line, SMOKE_MARKER))
        if frozen_exe is not None:
            with tempfile.TemporaryDirectory() as home:
                elapsed, line = _time_to_line([str(frozen_exe), "--demo"], POPULATED_MARKER,
                                              _env(home, IBPANEL_EXIT_AFTER_POPULATED="1"))
                times["frozen_demo"].append(elapsed)
                splits["frozen_demo"].append(_fields(line, POPULATED_MARKER))
            with tempfile.TemporaryDirectory() as home:
                elapsed, line = _time_to_line([str(frozen_exe), "--demo", "--smoke-test"], SMOKE_MARKER, _env(home))
                times["frozen"].append(elapsed)
                splits["frozen"].append(_fields(line, SMOKE_MARKER))

    med = statistics.median
    base = med(times["baseline"])
    print(f"runs: {args.runs}  (python {sys.version.split()[0]}, offscreen Qt, a cold process each run; absolute figures"
          " depend on the machine's load, ratios compare runs interleaved in this one)")
    print(f"bytecode: {compiled}")
    print(f"baseline bare QApplication+QMainWindow shown   : median {base:.3f} s  min {min(times['baseline']):.3f} s")
    labels = (("demo", "ibpanel --demo to a populated window"), ("smoke", "ibpanel --demo --smoke-test"),
              ("frozen_demo", "frozen ibpanel --demo to a populated window"), ("frozen", "frozen ibpanel --smoke-test"))
    for kind, label in labels:
        if not times[kind]:
            continue
        value = med(times[kind])
        print(f"{label:<47}: median {value:.3f} s  min {min(times[kind]):.3f} s  ratio {value / base:.2f}x"
              f"  extra {value - base:+.3f} s")
        for key, name in (("window_s", "window shown"), ("practice_s", "practice up"), ("connected_s", "connected"),
                          ("populated_s", "populated")):
            values = [s[key] for s in splits.get(kind, []) if key in s]
            if values:
                print(f"    inside the panel, run_gui -> {name:<14}: median {med(values):.3f} s")
        values = [s["process_s"] for s in splits.get(kind, []) if "process_s" in s]
        if values:  # the process's own age at the marker: the rest of the figure is spawning and reading the line
            print(f"    process start -> marker (its own clock)   : median {med(values):.3f} s")
    if times["frozen"]:
        for frozen, source, what in (("frozen_demo", "demo", "--demo start"), ("frozen", "smoke", "smoke-test start")):
            ratio = med(times[frozen]) / med(times[source])
            print(f"frozen / source {what + ' (median)':<32}: {ratio:.2f}x ({'faster' if ratio < 1 else 'NOT faster'})")
    demo = med(times["demo"])
    print(f"target --demo start <= 0.6 s (median)           : {'MET' if demo <= 0.6 else 'NOT MET'} ({demo:.3f} s)")

    if not args.no_idle:
        with tempfile.TemporaryDirectory() as home:
            base_cpu, base_rss = _idle([sys.executable, "-c", BASELINE_CODE, "--stay"], _env(home), args.settle,
                                       args.idle_seconds)
        with tempfile.TemporaryDirectory() as home:
            cpu, rss = _idle([sys.executable, "-m", "ibpanel", "--demo"], _env(home), args.settle, args.idle_seconds)
        with tempfile.TemporaryDirectory() as home:
            q_cpu, q_rss = _idle([sys.executable, "-m", "ibpanel", "--demo", "--tab", "quotes"], _env(home), args.settle,
                                 args.idle_seconds)
        print(f"idle over {args.idle_seconds:g} s after {args.settle:g} s    : bare window CPU {base_cpu:.2f}% RSS {base_rss:.0f} MB;"
              f" ibpanel --demo (practice exchange in-process) CPU {cpu:.2f}% RSS {rss:.0f} MB"
              f" ({rss / base_rss:.2f}x the bare window's RSS)")
        print(f"    with the Quotes tab open (--tab quotes: 8-symbol watchlist streaming, chart drawn): CPU {q_cpu:.2f}%"
              f" RSS {q_rss:.0f} MB")
        print(f"target idle CPU <= 1% of a core                 : {'MET' if cpu <= 1.0 else 'NOT MET'} ({cpu:.2f}%)")
        print(f"target idle RSS <= 120 MB                       : {'MET' if rss <= 120 else 'NOT MET'} ({rss:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
