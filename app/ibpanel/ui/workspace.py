"""The workspace: tabs that tear off into docks, side by side (Quotes + Ticket + Orders on one screen).

The six tabs stay the default. "Tear off" (View menu, or a double-click on the tab) moves a tab's widget
into a ``QDockWidget`` on the right; the trader drags docks where they want them, floats them, or closes a
dock to put the tab back. The Alerts panel lives in a dock of its own (View > Alerts). The layout is
saved in the profile's settings with the window state (``workspace/torn`` names the torn-off tabs, the
window's ``saveState`` places them); "Reset layout" puts every tab back in the tab bar.

``IBPANEL_LAYOUT=trading`` in the environment applies the Quotes + Ticket + Orders layout at start-up
(for a screenshot of a docked layout with the app's own ``--screenshot``).
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

log = logging.getLogger(__name__)
TORN_KEY = "workspace/torn"
#: Named layouts: the tabs torn off, left to right (the rest stay tabs).
PRESETS: dict[str, tuple[str, ...]] = {"trading": ("quotes", "ticket", "orders")}
BELOW = frozenset({"orders"})  # a wide, short table: docked under the whole window rather than beside it


class PanelDock(QDockWidget):
    """A dock holding one tab; closing it puts the tab back (``closed`` carries the tab name)."""

    closed = Signal(str)

    def __init__(self, name: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.name = name
        self.setObjectName(f"dock_{name}")  # saveState / restoreState find docks by object name
        self.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        super().closeEvent(event)
        self.closed.emit(self.name)


class Workspace:
    """Docks for the main window's tabs, the Alerts dock, the View menu and the saved layout."""

    def __init__(self, window: QMainWindow, names: tuple[str, ...]) -> None:
        self.window = window
        self.names = names
        self.docks: dict[str, PanelDock] = {}
        self.torn: list[str] = []
        self.window.setDockNestingEnabled(True)
        self.alerts_dock: QDockWidget | None = None
        self.alerts = None
        self._build_alerts()
        self.menu = window.menuBar().addMenu("&View")
        self.tear_actions: dict[str, QAction] = {}
        for name in names:
            action = self.menu.addAction(f"Tear off {self._title(name)}")
            action.setCheckable(True)
            action.toggled.connect(lambda on, name=name: self._toggle(name, on))
            self.tear_actions[name] = action
        self.menu.addSeparator()
        if self.alerts_dock is not None:
            self.menu.addAction(self.alerts_dock.toggleViewAction())
        self.preset_action = self.menu.addAction("Quotes + Ticket + Orders", lambda: self.apply_preset("trading"))
        self.reset_action = self.menu.addAction("Reset layout", self.reset)
        window.tab_widget.tabBarDoubleClicked.connect(self._tear_index)

    # --- building ---------------------------------------------------------------------------
    def _title(self, name: str) -> str:
        return self.window.tab_title(name)  # known without building the tab

    def _build_alerts(self) -> None:
        try:
            from ibpanel.ui.alerts_panel import AlertsPanel

            self.alerts = AlertsPanel(self.window.broker, self.window.settings)
        except Exception as exc:  # noqa: BLE001 - the panel starts without alerts rather than not at all
            log.exception("alerts panel could not be built")
            self.window.tab_errors["alerts"] = f"{type(exc).__name__}: {exc}"
            return
        dock = QDockWidget("Alerts", self.window)
        dock.setObjectName("dock_alerts")
        dock.setWidget(self.alerts)
        self.window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        dock.hide()
        self.alerts_dock = dock
        # a firing shows the panel's notice; the status bar says it too, wherever the trader is
        self.alerts.alert_fired.connect(lambda hit: self.window.statusBar().showMessage(f"Alert: {hit.message}", 15000))

    def _dock(self, name: str) -> PanelDock:
        dock = self.docks.get(name)
        if dock is None:
            dock = PanelDock(name, self._title(name), self.window)
            dock.closed.connect(self.dock_back)
            self.docks[name] = dock
        return dock

    # --- tearing off and back ---------------------------------------------------------------
    def is_torn(self, name: str) -> bool:
        return name in self.torn

    def _tear_index(self, index: int) -> None:
        name = self.window.tabs.name_of(self.window.tab_widget.widget(index))  # a placeholder too: built below
        if name is not None:
            self.tear_off(name)

    def _toggle(self, name: str, on: bool) -> None:
        if on and not self.is_torn(name):
            self.tear_off(name)
        elif not on and self.is_torn(name):
            self.dock_back(name)

    def tear_off(self, name: str, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> PanelDock | None:
        """Move the tab ``name`` into its dock (shown); None when there is no such tab."""
        widget = self.window.tabs.get(name)
        if widget is None or self.is_torn(name):
            return self.docks.get(name)
        tabs = self.window.tab_widget
        index = tabs.indexOf(widget)
        if index >= 0:
            tabs.removeTab(index)
        dock = self._dock(name)
        dock.setWidget(widget)
        if self.window.dockWidgetArea(dock) == Qt.DockWidgetArea.NoDockWidgetArea:
            self.window.addDockWidget(area, dock)
        dock.show()
        widget.show()
        self.torn.append(name)
        self._sync_action(name, True)
        return dock

    def dock_back(self, name: str) -> None:
        """Put the tab ``name`` back in the tab bar, in its usual place."""
        if not self.is_torn(name):
            return
        self.torn.remove(name)
        dock = self.docks[name]
        widget = self.window.tabs[name]
        dock.hide()
        dock.setWidget(None)
        place = sum(1 for n in self.names[: self.names.index(name)] if not self.is_torn(n))
        self.window.tab_widget.insertTab(place, widget, self._title(name))
        self._sync_action(name, False)

    def _sync_action(self, name: str, on: bool) -> None:
        action = self.tear_actions.get(name)
        if action is not None and action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)

    def apply_preset(self, preset: str) -> None:
        """Tear off the preset's tabs side by side (left to right), the others back in the tab bar; Orders
        goes below the whole width, so the three fit a full-HD screen beside the remaining tabs."""
        wanted = PRESETS[preset]
        self.reset()
        previous: PanelDock | None = None
        for name in wanted:
            below = name in BELOW
            dock = self.tear_off(name, Qt.DockWidgetArea.BottomDockWidgetArea if below
                                 else Qt.DockWidgetArea.RightDockWidgetArea)
            if dock is None or below:
                continue
            if previous is not None:
                self.window.splitDockWidget(previous, dock, Qt.Orientation.Horizontal)
            previous = dock
        screen = self.window.screen()
        if screen is not None:  # never wider or taller than the screen the window is on
            room = screen.availableGeometry()
            self.window.resize(min(self.window.width(), room.width()), min(self.window.height(), room.height()))
        side = [self.docks[n] for n in wanted if n in self.docks and n not in BELOW]
        width = max(self.window.width() // (len(side) + 2), 200)
        self.window.resizeDocks(side, [width] * len(side), Qt.Orientation.Horizontal)

    def reset(self) -> None:
        """Every tab back in the tab bar in its usual order; the Alerts dock hidden; the saved layout cleared."""
        for name in list(self.torn):
            self.dock_back(name)
        for dock in self.docks.values():
            dock.setFloating(False)
        if self.alerts_dock is not None:
            self.alerts_dock.hide()
        self.window.settings.remove(TORN_KEY)

    def show(self, name: str) -> bool:
        """Raise the dock of a torn-off tab; False when the tab is in the tab bar."""
        if not self.is_torn(name):
            return False
        dock = self.docks[name]
        dock.show()
        dock.raise_()
        return True

    # --- saving -------------------------------------------------------------------------------
    def restore(self) -> None:
        """Before the window's restoreState: tear off the tabs saved as torn (the state then places them)."""
        preset = os.environ.get("IBPANEL_LAYOUT", "")
        if preset in PRESETS:
            self.apply_preset(preset)
            return
        saved = self.window.settings.get_json(TORN_KEY, [])
        for name in saved if isinstance(saved, list) else []:
            if name in self.names:
                self.tear_off(str(name))

    def after_restore_state(self) -> None:
        """restoreState may hide a dock saved hidden: a torn-off tab must never vanish, so show it."""
        for name in self.torn:
            self.docks[name].show()

    def save(self) -> None:
        self.window.settings.set_json(TORN_KEY, list(self.torn))

    def shutdown(self) -> None:
        self.window.statusBar().clearMessage()  # an alert's message: its timer stops with the window
        if self.alerts is not None:
            try:
                self.alerts.shutdown()
            except Exception:  # noqa: BLE001 - keep shutting down
                log.exception("alerts panel failed to shut down")
