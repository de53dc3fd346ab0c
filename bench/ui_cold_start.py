"""Cold start of the panel to a populated window, against a bare Qt window started the same way.

Each run is a fresh process (offscreen Qt, a fresh IBPANEL_HOME so it is a first run too):

* baseline: ``python -c`` that creates a QApplication and an empty QMainWindow, shows it,
  processes events once and prints a line;
* panel:    ``python -m ibpanel --demo --smoke-test``: every tab built, the practice exchange
  started in-process, connected, the Account tab filled in, marker printed.

Prints the median / min wall time from spawn to the line for each, the panel's own split
(window shown / connected / account populated, from its marker) and the ratio panel / baseline.

    .venv/bin/python bench/ui_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BASELINE_CODE = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "app = QApplication(sys.argv[:1])\n"
    "w = QMainWindow(); w.resize(1280, 820); w.show()\n"
    "app.processEvents()\n"
    "print('BASELINE READY', flush=True)\n"
)
MARKER = "IBPANEL SMOKE OK"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    baseline: list[float] = []
    panel: list[float] = []
    splits: list[dict[str, float]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IBPANEL_HOME=home)
            elapsed, _line = _time_to_line([sys.executable, "-c", BASELINE_CODE], "BASELINE READY", env)
            baseline.append(elapsed)
            elapsed, line = _time_to_line([sys.executable, "-m", "ibpanel", "--demo", "--smoke-test"], MARKER, env)
            panel.append(elapsed)
            fields = dict(part.split("=", 1) for part in line[len(MARKER):].split() if "=" in part)
            splits.append({k: float(fields[k]) for k in ("window_s", "connected_s", "populated_s") if k in fields})

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"runs: {args.runs}  (python {sys.version.split()[0]}, offscreen Qt, cold process each run)")
    print(f"baseline bare QApplication+QMainWindow shown : median {med(baseline):.3f} s  min {min(baseline):.3f} s")
    print(f"panel --demo to populated window (marker)    : median {med(panel):.3f} s  min {min(panel):.3f} s")
    for key, label in (("window_s", "window shown"), ("connected_s", "connected"), ("populated_s", "account populated")):
        values = [s[key] for s in splits if key in s]
        if values:
            print(f"  inside the panel, run_gui -> {label:<18}: median {med(values):.3f} s")
    print(f"ratio panel / baseline (median)              : {med(panel) / med(baseline):.2f}x")
    print(f"extra seconds over a bare window (median)    : {med(panel) - med(baseline):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
