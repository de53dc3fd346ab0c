"""The panel's look: a style sheet per theme (resources/style/light.qss, the default, and dark.qss)
and the colours code needs directly.

Widgets pick their look through dynamic properties the style sheet matches (``badge``, ``role``,
``metric``, ``tone``, ``stale``, ``level``); ``set_prop`` changes one and repolishes the widget.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

from ibpanel import paths

#: Colours per theme. Light is the default and matches the tabs' own P&L / side colours.
PALETTES: dict[str, dict[str, str]] = {
    "light": {
        "window": "#eef1f4",
        "background": "#f6f8fa",
        "base": "#ffffff",
        "alternate": "#f6f8fa",
        "text": "#1f2328",
        "muted": "#59636e",
        "up": "#1a7f37",
        "down": "#cf222e",
        "live": "#cf222e",
        "paper": "#0969da",
        "warning": "#9a6700",
        "accent": "#0969da",
        "grid": "#eaeef2",
        "button": "#f6f8fa",
    },
    "dark": {
        "window": "#0f141a",
        "background": "#161b22",
        "base": "#0d1117",
        "alternate": "#121820",
        "text": "#d7dde4",
        "muted": "#8b949e",
        "up": "#3fb950",
        "down": "#f85149",
        "live": "#da3633",
        "paper": "#1f6feb",
        "warning": "#d29922",
        "accent": "#3b82f6",
        "grid": "#21262d",
        "button": "#21262d",
    },
}
DEFAULT_THEME = "light"
#: The active theme's colours (``apply_theme`` switches them) for code that paints: charts, lights.
PALETTE: dict[str, str] = dict(PALETTES[DEFAULT_THEME])

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


def stylesheet(theme: str = DEFAULT_THEME) -> str:
    try:
        sheet = paths.resource_path("style", f"{theme}.qss")
        # Qt resolves url() against the working directory: point it at the bundled images instead.
        return sheet.read_text(encoding="utf-8").replace("@STYLE_DIR@", sheet.parent.as_posix())
    except OSError:
        return ""  # a missing sheet leaves Qt's default look; never a reason not to start


def apply_theme(app: QApplication, theme: str = DEFAULT_THEME) -> str:
    """Fusion style + palette + sheet (``theme``: "light" or "dark"), and a font that exists on headless
    Linux too. Returns the theme applied."""
    if theme not in PALETTES:
        theme = DEFAULT_THEME
    colours = PALETTES[theme]
    PALETTE.clear()
    PALETTE.update(colours)
    for colour, key in ((UP, "up"), (DOWN, "down"), (MUTED, "muted")):
        colour.setRgba(QColor(colours[key]).rgba())
    app.setStyle(QStyleFactory.create("Fusion"))
    palette = QPalette()
    role = QPalette.ColorRole
    for qt_role, key in (
        (role.Window, "window"),
        (role.WindowText, "text"),
        (role.Base, "base"),
        (role.AlternateBase, "alternate"),
        (role.Text, "text"),
        (role.Button, "button"),
        (role.ButtonText, "text"),
        (role.Highlight, "accent"),
        (role.ToolTipBase, "base"),
        (role.ToolTipText, "text"),
        (role.PlaceholderText, "muted"),
    ):
        palette.setColor(qt_role, QColor(colours[key]))
    palette.setColor(role.HighlightedText, QColor("#ffffff"))
    app.setPalette(palette)
    font = QFont(app.font())
    # Offscreen Qt has no fontconfig default; name common families so text never renders as boxes.
    font.setFamilies(["Inter", "Segoe UI", "SF Pro Text", "Helvetica Neue", "DejaVu Sans", "Noto Sans", "Arial"])
    font.setPointSize(10)
    app.setFont(font)
    app.setStyleSheet(stylesheet(theme))
    apply_plot_options()
    return theme


def apply_plot_options() -> None:
    """pyqtgraph's colours for the active theme, once pyqtgraph is loaded (ibpanel.ui.plots calls this on
    import; it is not imported here, so a window that shows no chart never loads it)."""
    pg = sys.modules.get("pyqtgraph")
    if pg is not None:
        pg.setConfigOptions(antialias=False, background=PALETTE["base"], foreground=PALETTE["muted"])
