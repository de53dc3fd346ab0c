"""The main window's tabs by name, each built the first time it is needed.

Building all seven tabs before the window shows cost about a third of a second of the start (their
modules, tables and forms); the first screen needs one or two of them. ``TabSet`` is a read-only
mapping: ``tabs[name]`` and ``tabs.get(name)`` build the tab when it is not built yet, so callers need
not know which tabs exist already; iterating (``items()``, ``values()``) builds every tab. Code that
must not build (shutdown, focus tracking) asks ``built()`` / ``built_tab(name)``.

Until a tab is built the window shows a blank page with its title in its place (``placeholder``); the
window swaps the real tab in when it is built: on first show, on first access, or in the background
just after the first paint (``MainWindow.build_deferred_tabs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from PySide6.QtWidgets import QWidget


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
