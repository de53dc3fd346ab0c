"""The workspace: tabs torn off into docks side by side, the layout saved and restored per profile, and
"Reset layout" putting every tab back."""

from __future__ import annotations

from ibpanel.ui.main_window import TAB_NAMES, MainWindow
from PySide6.QtCore import Qt


def _tab_names(window):
    bar = window.tab_widget
    return [next(n for n, w in window.tabs.items() if w is bar.widget(i)) for i in range(bar.count())]


def _side_by_side(docks) -> bool:
    xs = [docks[n].geometry().x() for n in ("quotes", "ticket", "orders")]
    return xs == sorted(xs) and len(set(xs)) == 3


def test_layout_is_saved_restored_and_reset(qtbot, broker, ui_settings):
    window = MainWindow(broker, ui_settings)
    qtbot.addWidget(window)
    window.show()
    assert _tab_names(window) == list(TAB_NAMES)  # six tabs by default
    window.workspace.apply_preset("trading")
    docks = {n: window.workspace.docks[n] for n in ("quotes", "ticket", "orders")}
    assert _tab_names(window) == ["connection", "account", "positions"]
    for name, dock in docks.items():
        assert dock.widget() is window.tabs[name] and dock.isVisible()
        assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    # side by side: quotes left of ticket left of orders, all on screen at once
    qtbot.waitUntil(lambda: _side_by_side(docks), timeout=3000)
    window.show_tab("ticket")  # a torn-off tab: its dock comes forward, the tab bar stays
    assert window.tab_widget.count() == 3
    window.workspace.alerts_dock.show()
    window.close()

    again = MainWindow(broker, ui_settings)  # same profile settings: the next start
    qtbot.addWidget(again)
    again.show()
    assert again.workspace.torn == ["quotes", "ticket", "orders"]
    assert _tab_names(again) == ["connection", "account", "positions"]
    restored = {n: again.workspace.docks[n] for n in ("quotes", "ticket", "orders")}
    qtbot.waitUntil(lambda: all(d.isVisible() for d in restored.values()), timeout=3000)
    qtbot.waitUntil(lambda: _side_by_side(restored), timeout=3000)
    assert again.workspace.alerts_dock.isVisible()

    again.workspace.reset_action.trigger()
    assert _tab_names(again) == list(TAB_NAMES)
    assert not any(d.isVisible() for d in again.workspace.docks.values())
    assert not again.workspace.alerts_dock.isVisible()
    assert all(not a.isChecked() for a in again.workspace.tear_actions.values())
    again.close()

    third = MainWindow(broker, ui_settings)
    qtbot.addWidget(third)
    assert _tab_names(third) == list(TAB_NAMES) and third.workspace.torn == []
    third.close()


def test_closing_a_dock_puts_its_tab_back_in_place(qtbot, main_window):
    workspace = main_window.workspace
    workspace.tear_actions["positions"].trigger()
    assert workspace.is_torn("positions") and "positions" not in _tab_names(main_window)
    workspace.docks["positions"].close()
    assert _tab_names(main_window) == list(TAB_NAMES)
    assert not workspace.tear_actions["positions"].isChecked()
