"""The workspace: tabs torn off into docks side by side, the layout saved and restored per profile, and
"Reset layout" putting every tab back."""

from __future__ import annotations

from ibpanel.ui.main_window import TAB_NAMES, MainWindow
from PySide6.QtCore import Qt


def _tab_names(window):
    bar = window.tab_widget
    return [next(n for n, w in window.tabs.items() if w is bar.widget(i)) for i in range(bar.count())]


REMAINING = [n for n in TAB_NAMES if n not in ("quotes", "ticket", "orders")]


def _side_by_side(docks) -> bool:
    """Quotes left of the ticket, both beside the tabs; Orders under the whole width."""
    quotes, ticket, orders = (docks[n].geometry() for n in ("quotes", "ticket", "orders"))
    return quotes.x() < ticket.x() and orders.y() >= max(quotes.bottom(), ticket.bottom())


def test_layout_is_saved_restored_and_reset(qtbot, broker, ui_settings):
    window = MainWindow(broker, ui_settings)
    qtbot.addWidget(window)
    window.show()
    assert _tab_names(window) == list(TAB_NAMES)  # every tab in the tab bar by default
    window.workspace.apply_preset("trading")
    docks = {n: window.workspace.docks[n] for n in ("quotes", "ticket", "orders")}
    assert _tab_names(window) == REMAINING
    for name, dock in docks.items():
        assert dock.widget() is window.tabs[name] and dock.isVisible()
        assert window.dockWidgetArea(dock) == (Qt.DockWidgetArea.BottomDockWidgetArea if name == "orders"
                                               else Qt.DockWidgetArea.RightDockWidgetArea)
    # all on screen at once: quotes beside the ticket, orders below
    qtbot.waitUntil(lambda: _side_by_side(docks), timeout=3000)
    window.show_tab("ticket")  # a torn-off tab: its dock comes forward, the tab bar stays
    assert window.tab_widget.count() == len(REMAINING)
    window.workspace.alerts_dock.show()
    window.close()

    again = MainWindow(broker, ui_settings)  # same profile settings: the next start
    qtbot.addWidget(again)
    again.show()
    assert again.workspace.torn == ["quotes", "ticket", "orders"]
    assert _tab_names(again) == REMAINING
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


def test_quotes_ticket_and_orders_side_by_side_need_no_more_than_a_1600_pixel_screen(qtbot, main_window):
    window = main_window
    window.workspace.apply_preset("trading")
    qtbot.waitUntil(lambda: all(window.workspace.is_torn(n) for n in ("quotes", "ticket", "orders")), timeout=2000)
    needed = window.minimumSizeHint()
    assert needed.width() <= 1600 and needed.height() <= 1000, needed
