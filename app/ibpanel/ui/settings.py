"""Persistent panel settings, one INI file per profile (``paths.config_dir(profile)/settings.ini``).

QSettings in IniFormat returns strings for everything it read back from disk, so ``get`` converts
the stored value to the type of the ``default`` it is given (bool, int, float, str, list).
Keys are "group/name" strings; the ones in use:

    connection/preset, connection/host, connection/port, connection/client_id, connection/account,
    connection/readonly, connection/auto_reconnect   last connection form (ConnectionTab)
    window/geometry, window/state, window/tab        main window (MainWindow)
    quotes/watchlist (json list[str])                U2's Quotes tab
    ticket/confirm_paper (bool)                      confirm orders on paper accounts too
    ticket/default_side (str: "", BUY, SELL)         the side a new or cleared ticket starts with ("": none)
    confirm/live_connect (bool)                      ask before connecting to a live preset
    tables/<name>/header_state (QByteArray)          column widths / order, via save_header / restore_header
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QHeaderView

from ibpanel import paths

_TRUE = {"true", "1", "yes", "on"}


class Settings:
    """A QSettings wrapper for one profile. Cheap to construct; every instance sees the same file."""

    FILE_NAME = "settings.ini"

    def __init__(self, profile: str = paths.DEFAULT_PROFILE) -> None:
        self.profile = profile
        self.path = paths.config_dir(profile) / self.FILE_NAME
        # Checked before QSettings touches the file: no file yet means this is the first run.
        self.first_run = not self.path.exists()
        self._qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    @property
    def qsettings(self) -> QSettings:
        return self._qsettings

    def contains(self, key: str) -> bool:
        return self._qsettings.contains(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value converted to ``type(default)``; ``default`` when missing or unconvertible."""
        value = self._qsettings.value(key, None)
        if value is None:
            return default
        try:
            return _coerce(value, default)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        self._qsettings.setValue(key, value)

    def remove(self, key: str) -> None:
        self._qsettings.remove(key)

    def get_json(self, key: str, default: Any = None) -> Any:
        raw = self._qsettings.value(key, None)
        if raw is None:
            return default
        try:
            return json.loads(str(raw))
        except ValueError:
            return default

    def set_json(self, key: str, value: Any) -> None:
        self._qsettings.setValue(key, json.dumps(value))

    def get_bytes(self, key: str) -> QByteArray | None:
        value = self._qsettings.value(key, None)
        if isinstance(value, QByteArray):
            return value
        if isinstance(value, (bytes, bytearray)):
            return QByteArray(bytes(value))
        return None

    def save_header(self, name: str, header_view: QHeaderView) -> None:
        """Remember a table's column order, widths and sort (key ``tables/<name>/header_state``)."""
        self._qsettings.setValue(f"tables/{name}/header_state", header_view.saveState())

    def restore_header(self, name: str, header_view: QHeaderView) -> bool:
        """Restore what ``save_header`` stored; False when nothing (valid) was stored."""
        state = self.get_bytes(f"tables/{name}/header_state")
        return bool(state) and header_view.restoreState(state)

    def mark_started(self) -> None:
        """Write the file now so the next launch is not a first run."""
        self.set("app/started", True)
        self.sync()

    def sync(self) -> None:
        self._qsettings.sync()


def _coerce(value: Any, default: Any) -> Any:
    if default is None or isinstance(value, type(default)) and not isinstance(default, bool):
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in _TRUE
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, str):
        return str(value)
    if isinstance(default, (list, tuple)):
        # IniFormat reads a one-element list back as a plain string, and an empty one as None.
        items = value if isinstance(value, (list, tuple)) else [value]
        return type(default)(items)
    return value
