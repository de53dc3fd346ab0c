"""The frozen panel's own Qt runtime hook says where Qt's plugins are without importing Qt: the panel imports
its Qt-free stack before PySide6 (PySide6's import hook then runs for every later import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "packaging" / "rthooks" / "qt_paths.py"


def test_qt_paths_hook_points_qt_into_the_bundle_and_imports_no_qt(tmp_path):
    probe = (
        "import runpy, sys, os, json\n"
        "sys._MEIPASS = sys.argv[1]\n"
        "runpy.run_path(sys.argv[2])\n"
        "print(json.dumps({'plugins': os.environ['QT_PLUGIN_PATH'], 'qml': os.environ['QML2_IMPORT_PATH'],\n"
        "                  'qt_loaded': sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("QT_PLUGIN_PATH", "QML2_IMPORT_PATH")}
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path), str(HOOK)], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    qt_dir = tmp_path / "PySide6" if sys.platform.startswith("win") else tmp_path / "PySide6" / "Qt"
    assert seen["plugins"] == str(qt_dir / "plugins") and seen["qml"] == str(qt_dir / "qml")
    assert seen["qt_loaded"] == []

