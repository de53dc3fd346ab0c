"""A table's sort arrow matches its rows: ▼ when the newest / largest is on top (the Completed tab's default),
▲ when the smallest is. Fusion alone draws the opposite; the style sheet draws them right."""

from __future__ import annotations

import pytest
from ibpanel.ui.orders_tab import OrdersTab
from ibpanel.ui.style import apply_theme
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication


def _arrow_points_down(header, section: int) -> bool:
    """Where the drawn sort arrow is widest: near its top (▼) or its bottom (▲)."""
    image = header.grab(QRect(header.sectionViewportPosition(section), 0, header.sectionSize(section),
                              header.height())).toImage()
    background = image.pixelColor(2, image.height() // 2)
    # the arrow is the right-most mark of the section: find its columns, then its rows' widths
    ink = [[abs(image.pixelColor(x, y).lightness() - background.lightness()) > 40 for x in range(image.width())]
           for y in range(image.height())]
    columns = [x for x in range(image.width() - 3) if any(ink[y][x] for y in range(image.height()))]
    right = max(columns)
    left = right
    while left - 1 in columns:
        left -= 1
    widths = [sum(row[left:right + 1]) for row in ink]
    rows = [y for y, w in enumerate(widths) if w]
    assert len(rows) >= 3, "no sort arrow drawn"
    return widths[rows[0]] > widths[rows[-1]]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_sort_arrow_matches_the_rows_order(qtbot, broker, ui_settings, theme):
    apply_theme(QApplication.instance(), theme)
    tab = OrdersTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.resize(1200, 500)
    tab.show()
    try:
        tab.tabs.setCurrentWidget(tab.completed_view)
        header = tab.completed_view.horizontalHeader()
        qtbot.waitUntil(header.isVisible, timeout=2000)
        assert header.sortIndicatorSection() == 0 and header.sortIndicatorOrder() is Qt.SortOrder.DescendingOrder
        assert _arrow_points_down(header, 0)  # newest first: ▼
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        assert not _arrow_points_down(header, 0)  # oldest first: ▲
    finally:
        tab.shutdown()
        apply_theme(QApplication.instance(), "light")
