"""The main window's tabs by name, each built the first time it is needed.

Building all seven tabs before the window shows cost about a third of a second of the start (their
modules, tables and forms); the first screen needs one or two of them. ``TabSet`` is a read-only
mapping: ``tabs[name]`` and ``tabs.get(name)`` build the tab when it is not built yet, so callers need
not know which tabs exist already; iterating (``items()``, ``values()``) builds every tab. Code that
must not build (shutdown, focus tracking) asks ``built()`` / ``built_tab(name)``.

Until a tab is built the window shows a blank page with its title in its place (``placeholders``);
``swap_in`` puts the real tab there when it is built: on first show, on first access, or in the
background (``BackgroundBuild``: one tab per loop turn, after the first paint or when the window's
owner says, see ``MainWindow.build_deferred_tabs``).
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterator, Mapping

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QTabWidget, QWidget


class TabSet(Mapping[str, QWidget]):
    """Tab name -> tab widget, in display order; ``build(name)`` makes a tab (never raises)."""

    def __init__(self, names: tuple[str, ...], build: Callable[[str], QWidget]) -> None:
        self._names = names
        self._build = build
        self._built: dict[str, QWidget] = {}
        self._building: set[str] = set()
        #: The blank page standing in for each tab not built yet (the window puts them in its tab bar).
        self.placeholders: dict[str, QWidget] = {}

    def __getitem__(self, name: str) -> QWidget:
        widget = self._built.get(name)
        if widget is not None:
            return widget
        if name not in self._names:
            raise KeyError(name)
        if name in self._building:  # a tab that asks for itself while it is built: not there yet
            raise KeyError(name)
        self._building.add(name)
        try:
            widget = self._build(name)
        finally:
            self._building.discard(name)
        self._built[name] = widget
        return widget

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def built(self) -> dict[str, QWidget]:
        """The tabs built so far, in display order (nothing is built by asking)."""
        return {name: self._built[name] for name in self._names if name in self._built}

    def built_tab(self, name: str) -> QWidget | None:
        """The tab when it is built, else None (nothing is built by asking)."""
        return self._built.get(name)

    def is_built(self, name: str) -> bool:
        return name in self._built

    def unbuilt(self) -> list[str]:
        return [name for name in self._names if name not in self._built]

    def build_all(self) -> dict[str, QWidget]:
        """Build every tab not built yet (the smoke test checks them all); returns them all."""
        return {name: self[name] for name in self._names}

    def name_of(self, widget: QWidget | None) -> str | None:
        """The name of a tab widget or of the placeholder standing in for it; None for anything else."""
        if widget is None:
            return None
        for name in self._names:
            if self._built.get(name) is widget or self.placeholders.get(name) is widget:
                return name
        return None

    def swap_in(self, name: str, widget: QWidget, bar: QTabWidget, title: str) -> None:
        """Put a newly built tab where its placeholder stands in ``bar`` (the same page stays current)."""
        placeholder = self.placeholders.pop(name, None)
        if placeholder is None:
            return
        index = bar.indexOf(placeholder)
        if index >= 0:
            current = bar.currentIndex()
            bar.blockSignals(True)  # the same page index stays current: nothing changed for listeners
            try:
                bar.removeTab(index)
                bar.insertTab(index, widget, title)
                bar.setCurrentIndex(current)
            finally:
                bar.blockSignals(False)
        placeholder.deleteLater()


class BackgroundBuild:
    """Builds the tabs of a TabSet not built yet, but ``skip``, one per turn of the event loop."""

    def __init__(self, tabs: TabSet, skip: frozenset[str], stopped: Callable[[], bool]) -> None:
        self.tabs = tabs
        self.skip = skip
        self.stopped = stopped
        self.held = False  # the window waits for start() from its owner instead of starting at the first paint
        self.started = False

    def pending(self) -> list[str]:
        return [name for name in self.tabs.unbuilt() if name not in self.skip]

    def start(self, delay_ms: int = 0) -> None:
        if not self.started:
            self.started = True
            QTimer.singleShot(delay_ms, self._next)

    def _next(self) -> None:
        if self.stopped():
            return
        pending = self.pending()
        if pending:
            self.tabs.get(pending[0])
        if len(pending) > 1:
            QTimer.singleShot(0, self._next)
            return
        # The start is over. PySide6's import hook read the source of every module imported since PySide6
        # (it looks for "PySide6" in them, for ``from __feature__``), and linecache keeps all those lines
        # (~5 MB here): only tracebacks use that cache, and they read the files again when they need to.
        linecache.clearcache()
