"""Runtime hook of the frozen ``ibpanel``: where Qt finds its plugins, without importing Qt yet.

It stands in for PyInstaller's own PySide6 runtime hook (the spec leaves that one out). That hook sets the
same variables, then imports ``PySide6.QtCore`` to give Qt an embedded ``qt.conf``, which the PySide6 wheel
already does itself when it is imported. Importing Qt that early undid the panel's import order: the
Qt-free stack (broker, ib_async, asyncio) is imported before PySide6 (ibpanel/ui/app.py), because once
PySide6 is loaded its import hook runs for every later import.
"""

import os
import sys


def _qt_paths() -> None:
    qt_dir = os.path.join(sys._MEIPASS, "PySide6") if sys.platform.startswith("win") else os.path.join(
        sys._MEIPASS, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt_dir, "plugins")
    os.environ["QML2_IMPORT_PATH"] = os.path.join(qt_dir, "qml")
    if sys.platform.startswith("win"):  # DLLs collected beside the executable (as PyInstaller's hook does)
        os.environ["PATH"] = sys._MEIPASS + os.pathsep + os.environ.get("PATH", "")


_qt_paths()
del _qt_paths
