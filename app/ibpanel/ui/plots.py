"""The pyqtgraph parts of the panel's charts, in one module imported only when a chart is first shown.

pyqtgraph takes about a third of a second to import: the first window does not wait for it. Importing this
module applies the current theme's plot colours (``ibpanel.ui.style.apply_theme`` keeps them current after).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainter, QPicture

from ibpanel.ui import style

UP_CANDLE = "#1a7f37"
DOWN_CANDLE = "#cf222e"
CANDLE_BODY_FRACTION = 0.7  # of the bar spacing: a gap between neighbouring candles

style.apply_plot_options()


class CandlestickItem(pg.GraphicsObject):
    """OHLC candles drawn once into a QPicture (repainting replays it: cheap while the view pans or zooms).

    ``set_bars(x, open, high, low, close)`` takes float64 arrays of equal length (x: epoch seconds).
    Up candles (close >= open) are green, down candles red; a wick spans low to high.
    """

    def __init__(self) -> None:
        super().__init__()
        self.picture = QPicture()
        self.x = self.open = self.high = self.low = self.close = np.empty(0, dtype=np.float64)
        self._bounds = QRectF()

    def set_bars(self, x, open_, high, low, close) -> None:
        self.x, self.open, self.high, self.low, self.close = (np.asarray(a, dtype=np.float64)
                                                              for a in (x, open_, high, low, close))
        self.prepareGeometryChange()
        self.picture = self._draw()
        self.update()

    def __len__(self) -> int:
        return len(self.x)

    def body_width(self) -> float:
        if len(self.x) < 2:
            return 60.0
        spacing = float(np.median(np.diff(self.x)))
        return max(spacing, 1.0) * CANDLE_BODY_FRACTION

    def _draw(self) -> QPicture:
        picture = QPicture()
        if not len(self.x):
            self._bounds = QRectF()
            return picture
        half = self.body_width() / 2
        painter = QPainter(picture)
        pens = {True: pg.mkPen(UP_CANDLE, width=1), False: pg.mkPen(DOWN_CANDLE, width=1)}  # cosmetic: 1 px
        brushes = {True: pg.mkBrush(UP_CANDLE), False: pg.mkBrush(DOWN_CANDLE)}
        for x, o, h, lo, c in zip(self.x, self.open, self.high, self.low, self.close, strict=True):
            up = bool(c >= o)
            painter.setPen(pens[up])
            painter.setBrush(brushes[up])
            painter.drawLine(QPointF(x, lo), QPointF(x, h))
            if o == c:
                painter.drawLine(QPointF(x - half, o), QPointF(x + half, o))
            else:
                painter.drawRect(QRectF(x - half, min(o, c), 2 * half, abs(c - o)))
        painter.end()
        low, high = float(np.nanmin(self.low)), float(np.nanmax(self.high))
        self._bounds = QRectF(float(self.x[0]) - half, low, float(self.x[-1] - self.x[0]) + 2 * half, high - low)
        return picture

    def paint(self, painter, *_args) -> None:  # noqa: D102 - Qt API
        painter.drawPicture(0, 0, self.picture)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API: exact data bounds (QPicture's own are whole pixels)
        return QRectF(self._bounds)


class MoneyAxis(pg.AxisItem):
    """Whole-number tick labels with thousands separators (pyqtgraph would switch to 1.128e+06)."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph override
        decimals = 0 if spacing >= 1 else 2
        return [f"{v * scale:,.{decimals}f}" for v in values]
