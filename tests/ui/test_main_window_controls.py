"""Main window controls: every interactive control has an accessible name (screen readers, GUI tests that
find widgets by name); F1 / F2 open the ticket on BUY / SELL from every tab; at its minimum size the window
keeps the ticket usable."""

from __future__ import annotations

from ibpanel.ui.main_window import TAB_NAMES
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QGraphicsView,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTabWidget,
    QTextEdit,
    QWidget,
)

INTERACTIVE = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView, QTabWidget,
               QPlainTextEdit, QTextEdit, QAbstractSlider, QGraphicsView)  # charts take the mouse and wheel


def _is_qt_internal(widget: QWidget, window: QWidget) -> bool:
    """Parts Qt builds inside a control (a spin box's line edit, a tab bar's scroll buttons, a table's
    corner button, a combo's popup list): screen readers reach them through the named control."""
    if widget.window() is not window or isinstance(widget, QHeaderView):
        return True
    if isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
        return True
    return widget.objectName().startswith("qt_") or isinstance(widget, QScrollBar)


def test_every_control_has_an_accessible_name(main_window):
    window = main_window
    window.tabs.build_all()  # tabs are built when first needed: walk every one
    checked, unnamed = 0, []
    for widget in window.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or _is_qt_internal(widget, window):
            continue
        checked += 1
        if not widget.accessibleName().strip():
            owner = next((n for n, t in window.tabs.items() if t.isAncestorOf(widget)), "window")
            unnamed.append(f"{owner}: {type(widget).__name__} {widget.objectName() or ''}".strip())
    assert checked >= 30  # the walk really reached the tabs' controls
    assert unnamed == []


def _side(ticket) -> str:
    return ticket.side().value


def test_f1_and_f2_open_the_ticket_on_a_side_from_every_tab(qtbot, main_window):
    window = main_window
    ticket = window.tabs["ticket"]
    for name in TAB_NAMES:
        if name == "ticket":
            continue
        for key, side in ((Qt.Key.Key_F2, "SELL"), (Qt.Key.Key_F1, "BUY")):
            window.show_tab(name)
            window.activateWindow()
            tab = window.tabs[name]
            focusable = next((w for w in tab.findChildren(QWidget) if w.focusPolicy() & Qt.FocusPolicy.TabFocus
                              and w.isVisible() and w.isEnabled()), tab)
            focusable.setFocus()
            qtbot.keyClick(focusable, key)
            assert window.current_tab_name() == "ticket", (name, key)
            assert _side(ticket) == side, (name, key)
    # in the ticket, the ticket's own F1 / F2 still work (no ambiguous double binding)
    focus = ticket.focusWidget()
    assert focus is not None and ticket.isAncestorOf(focus)
    qtbot.keyClick(focus, Qt.Key.Key_F2)
    assert _side(ticket) == "SELL"
    qtbot.keyClick(focus, Qt.Key.Key_F1)
    assert _side(ticket) == "BUY"


def test_at_its_minimum_size_the_window_keeps_the_ticket_usable(qtbot, main_window):
    window = main_window
    window.resize(200, 150)  # as small as a drag or a small screen can ask
    window.show_tab("ticket")
    ticket = window.tabs["ticket"]
    qtbot.waitUntil(lambda: ticket.isVisible(), timeout=2000)
    assert window.width() == window.minimumWidth() or window.width() >= window.minimumSizeHint().width()
    assert ticket.width() >= ticket.minimumSizeHint().width() and ticket.height() >= ticket.sizeHint().height()
    area = ticket.rect()
    for widget in ticket.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or _is_qt_internal(widget, window) or not widget.isVisible():
            continue
        box = QRect(widget.mapTo(ticket, QPoint(0, 0)), widget.size())
        assert area.contains(box), f"{widget.objectName() or type(widget).__name__} is cut off at {box}"
        assert widget.height() >= widget.minimumSizeHint().height()
