"""The panel's look: one dark style sheet (resources/style/dark.qss) and the colours code needs directly.

Widgets pick their look through dynamic properties the style sheet matches (``badge``, ``role``,
``metric``, ``tone``, ``stale``, ``level``); ``set_prop`` changes one and repolishes the widget.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from ibpanel import paths

#: Colours shared with code that paints (charts, table foregrounds).
PALETTE = {
    "background": "#161b22",
    "base": "#0d1117",
    "text": "#d7dde4",
    "muted": "#8b949e",
    "up": "#3fb950",
    "down": "#f85149",
    "live": "#da3633",
    "paper": "#1f6feb",
    "warning": "#d29922",
    "accent": "#3b82f6",
    "grid": "#21262d",
}

UP = QColor(PALETTE["up"])
DOWN = QColor(PALETTE["down"])
MUTED = QColor(PALETTE["muted"])


def pnl_color(value: float | None) -> QColor | None:
    """Green for gains, red for losses, None for zero or unknown (use the default text colour)."""
    if value is None or value == 0:
        return None
    return UP if value > 0 else DOWN


def tone(value: float | None) -> str:
    """The ``tone`` property value for a number: "up", "down" or ""."""
    if value is None or value == 0:
        return ""
    return "up" if value > 0 else "down"


def set_prop(widget: QWidget, name: str, value: object) -> None:
    """Set a dynamic property the style sheet matches on, and re-apply the style if it changed."""
    if widget.property(name) == value:
        return
    widget.setProperty(name, value)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


def stylesheet(theme: str = "dark") -> str:
    try:
        return paths.resource_path("style", f"{theme}.qss").read_text(encoding="utf-8")
    except OSError:
        return ""  # a missing sheet leaves Qt's default look; never a reason not to start


def apply_theme(app: QApplication, theme: str = "dark") -> None:
    """Fusion style + the palette + the sheet, and a font that exists on headless Linux too."""
    app.setStyle("Fusion")
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor("#0f141a"))
    palette.setColor(QPalette.ColorRole.WindowText, QColor(PALETTE["text"]))
    palette.setColor(QPalette.ColorRole.Base, QColor(PALETTE["base"]))
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor("#121820"))
    palette.setColor(QPalette.ColorRole.Text, QColor(PALETTE["text"]))
    palette.setColor(QPalette.ColorRole.Button, QColor("#21262d"))
    palette.setColor(QPalette.ColorRole.ButtonText, QColor(PALETTE["text"]))
    palette.setColor(QPalette.ColorRole.Highlight, QColor(PALETTE["paper"]))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.ToolTipBase, QColor("#1c2128"))
    palette.setColor(QPalette.ColorRole.ToolTipText, QColor(PALETTE["text"]))
    app.setPalette(palette)
    font = QFont(app.font())
    # Offscreen Qt has no fontconfig default; name common families so text never renders as boxes.
    font.setFamilies(["Inter", "Segoe UI", "SF Pro Text", "Helvetica Neue", "DejaVu Sans", "Noto Sans", "Arial"])
    font.setPointSize(10)
    app.setFont(font)
    app.setStyleSheet(stylesheet(theme))
