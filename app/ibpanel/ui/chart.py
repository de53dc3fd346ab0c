"""Price chart for one instrument: historical bars as candles plus the live last price, with a crosshair.

The plot itself (pyqtgraph, ``ibpanel.ui.plots``) is built the first time the chart is shown, so a
window that opens on another tab never imports pyqtgraph. Speed rules from docs/qt-and-asyncio.md: float64 x arrays, 1 px pens, antialias off, clipToView and peak
downsampling, and redraws only from a timer (at most REDRAW_HZ a second) when something changed, never
per tick: each redraw repaints the whole plot with its axes, which costs more than a tick storm's table.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ibpanel.broker.exceptions import BrokerError
from ibpanel.broker.models import Bar, Instrument, Quote
from ibpanel.ui import formatting as fmt
from ibpanel.ui.tasks import TaskSet

# bar size -> (duration asked for, bar size string IB understands)
BAR_SIZES: dict[str, tuple[str, str]] = {
    "1 min": ("1 D", "1 min"),
    "5 mins": ("2 D", "5 mins"),
    "15 mins": ("5 D", "15 mins"),
    "1 hour": ("1 M", "1 hour"),
    "1 day": ("1 Y", "1 day"),
}
REDRAW_HZ = 4  # a live line at 4 Hz reads as live; 25 Hz cost a third of the UI thread in a tick storm
LIVE_POINTS_MAX = 20_000
PLOT_MIN_HEIGHT = 240
FOLLOW_BARS_AHEAD = 6  # room on the right for live prices, in bars: the view moves that seldom


class PriceChart(QWidget):
    """Chart widget. ``set_instrument`` loads bars (async); ``add_quote`` appends a live point.

    Signals: ``bars_loaded(int)`` with the number of bars drawn.
    """

    bars_loaded = Signal(int)

    def __init__(self, broker, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.tasks = TaskSet()
        self.instrument: Instrument | None = None
        self.bar_x = np.empty(0, dtype=np.float64)
        self.bar_y = np.empty(0, dtype=np.float64)
        self.bars: tuple[Bar, ...] = ()
        self._bars_drawn: tuple[Bar, ...] | None = None
        self.live_x: list[float] = []
        self.live_y: list[float] = []
        self.redraws = 0
        self._fitted = False  # the view range was set for the data at least once
        self._live_low: float | None = None  # live price band seen (the view must keep it)
        self._live_high: float | None = None
        self._dirty = False
        self._load_seq = 0
        self._closed = False

        self.bar_size_combo = QComboBox()
        self.bar_size_combo.setObjectName("barSize")
        self.bar_size_combo.addItems(list(BAR_SIZES))
        self.bar_size_combo.setCurrentText("5 mins")
        self.bar_size_combo.currentTextChanged.connect(lambda _t: self.reload())
        self.title_label = QLabel("Select a symbol")
        self.crosshair_label = QLabel("")
        self.crosshair_label.setObjectName("crosshairLabel")

        # Built on first show (_ensure_plot): pyqtgraph costs a third of a second to import.
        self.plot = self.candles = self.live_curve = self.last_line = self.v_line = self.h_line = None
        self._mouse_proxy = None
        self._plot_holder = QWidget()
        self._plot_holder.setMinimumHeight(PLOT_MIN_HEIGHT)  # the splitter sizes the chart pane by it at start
        # The view follows the data until the trader pans or zooms; a new symbol or bar size follows again.
        self.following = True

        top = QHBoxLayout()
        top.addWidget(self.title_label, 1)
        top.addWidget(self.crosshair_label)
        top.addWidget(QLabel("Bar size"))
        top.addWidget(self.bar_size_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self._plot_holder, 1)

        self._timer = QTimer(self)
        self._timer.setObjectName("chartRedraw")
        self._timer.setInterval(int(1000 / REDRAW_HZ))
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)

    # --- the plot, built when first needed ------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.plot is None and not self._closed:
            QTimer.singleShot(0, self._ensure_plot)  # after this paint: the window shows before pyqtgraph loads

    def _ensure_plot(self) -> None:
        if self.plot is not None or self._closed:
            return
        from ibpanel.ui import plots  # pyqtgraph: imported here, not at start

        pg = plots.pg
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setAccessibleName("Price chart")
        self.plot.setMinimumHeight(PLOT_MIN_HEIGHT // 2)
        self.plot.setBackground(self.palette().color(QPalette.ColorRole.Base))  # follows the light / dark theme
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.getPlotItem().setMenuEnabled(False)
        self.candles = plots.CandlestickItem()
        self.plot.addItem(self.candles)
        self.live_curve = self.plot.plot(pen=pg.mkPen("#bf8700", width=1), antialias=False)
        self.live_curve.setZValue(10)  # the live price stays on top of the candles
        self.last_line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#0969da", width=1, style=Qt.PenStyle.DashLine))
        self.last_line.setZValue(11)
        self.last_line.setVisible(False)
        self.plot.addItem(self.last_line, ignoreBounds=True)
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#57606a", width=1))
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#57606a", width=1))
        self.plot.addItem(self.v_line, ignoreBounds=True)
        self.plot.addItem(self.h_line, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        self.plot.getPlotItem().vb.sigRangeChangedManually.connect(self._stop_following)
        self.layout().replaceWidget(self._plot_holder, self.plot)
        self._plot_holder.deleteLater()
        self._bars_drawn = None
        self._fitted = False
        self._mark()  # draw what arrived before the plot existed

    # --- data ---------------------------------------------------------------------------------
    def set_instrument(self, instrument: Instrument | None) -> None:
        if instrument is not None and self.instrument is not None and instrument.key == self.instrument.key:
            return
        self.instrument = instrument
        self.live_x.clear()
        self.live_y.clear()
        self._live_low = self._live_high = None
        self._fitted = False
        self.bar_x = np.empty(0, dtype=np.float64)
        self.bar_y = np.empty(0, dtype=np.float64)
        self.bars = ()
        self.following = True
        self.title_label.setText(instrument.display if instrument else "Select a symbol")
        self._mark()
        self.reload()

    def reload(self) -> None:
        if self.instrument is None or not self.broker.status.connected:
            return
        self._load_seq += 1
        duration, bar_size = BAR_SIZES[self.bar_size_combo.currentText()]
        self.tasks.spawn(self._load(self.instrument, duration, bar_size, self._load_seq))

    async def _load(self, instrument: Instrument, duration: str, bar_size: str, seq: int) -> None:
        try:
            bars: tuple[Bar, ...] = await self.broker.bars(instrument, duration=duration, bar_size=bar_size)
        except BrokerError as exc:
            if seq == self._load_seq:
                self.title_label.setText(f"{instrument.display}: no history ({exc.message})")
            return
        if seq != self._load_seq:
            return  # another symbol or bar size was chosen meanwhile
        self.bar_x = np.fromiter((b.time.timestamp() for b in bars), dtype=np.float64, count=len(bars))
        self.bar_y = np.fromiter((b.close for b in bars), dtype=np.float64, count=len(bars))
        self.bars = tuple(bars)
        self.title_label.setText(f"{instrument.display} · {bar_size} bars · {len(bars)}")
        self.following = True
        self._fitted = False
        self._mark()
        self.redraw()
        self.bars_loaded.emit(len(bars))

    def add_quote(self, quote: Quote) -> None:
        """Append the live last price (only for the charted instrument); drawn on the next timer tick."""
        if self.instrument is None or quote.instrument.key != self.instrument.key or quote.last is None:
            return
        # the trade's own time (a replayed day is drawn on its day), else when the update arrived
        when = quote.last_time or quote.time
        stamp = when.timestamp() if isinstance(when, datetime) else time.time()
        if self.live_y and self.live_x[-1] == stamp and self.live_y[-1] == quote.last:
            return
        self.live_x.append(stamp)
        self.live_y.append(quote.last)
        if self._live_low is None or quote.last < self._live_low:
            self._live_low = quote.last
        if self._live_high is None or quote.last > self._live_high:
            self._live_high = quote.last
        if len(self.live_x) > LIVE_POINTS_MAX:
            del self.live_x[: len(self.live_x) - LIVE_POINTS_MAX]
            del self.live_y[: len(self.live_y) - LIVE_POINTS_MAX]
        self._mark()

    def _mark(self) -> None:
        self._dirty = True
        if not self._closed and not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        self._timer.stop()
        if not self._dirty or self.plot is None:
            return  # no plot yet: the data waits, dirty, until it is built
        self._dirty = False
        self.redraws += 1
        if self._bars_drawn is not self.bars:  # candles are re-drawn only when the history changes
            self._bars_drawn = self.bars
            self.candles.set_bars(self.bar_x, *(np.fromiter((getattr(b, name) for b in self.bars), dtype=np.float64,
                                                            count=len(self.bars)) for name in ("open", "high", "low")),
                                  self.bar_y)
        if self.live_x:
            self.live_curve.setData(np.asarray(self.live_x, dtype=np.float64), np.asarray(self.live_y, dtype=np.float64))
            self.last_line.setPos(self.live_y[-1])
            self.last_line.setVisible(True)
        else:
            self.live_curve.setData([], [])
            self.last_line.setVisible(False)
        if self.following:
            self._follow()

    def _stop_following(self, *_args) -> None:
        self.following = False

    def _follow(self) -> None:
        """Keep the data in view, moving the range only when the data leaves it, with room to grow.

        Auto-range would move the view (and so re-lay out both axes, the costliest paint here) on every
        live point; this moves it every few bars' time or when the price leaves the band.
        """
        xs = [a for a in (self.bar_x, self.live_x) if len(a)]
        if not xs:
            return
        x_low, x_high = min(float(a[0]) for a in xs), max(float(a[-1]) for a in xs)
        lows = [float(np.nanmin(self.candles.low))] if len(self.candles) else []
        highs = [float(np.nanmax(self.candles.high))] if len(self.candles) else []
        if self._live_low is not None and self._live_high is not None:
            lows.append(self._live_low)
            highs.append(self._live_high)
        y_low, y_high = min(lows), max(highs)
        (view_x0, view_x1), (view_y0, view_y1) = self.plot.getPlotItem().vb.viewRange()
        if self._fitted and view_x0 <= x_low and x_high <= view_x1 and view_y0 <= y_low and y_high <= view_y1:
            return
        spacing = float(np.median(np.diff(self.candles.x))) if len(self.candles) > 1 else 60.0
        x_room = max(FOLLOW_BARS_AHEAD * spacing, 0.02 * (x_high - x_low))
        y_pad = max(0.08 * (y_high - y_low), 0.002 * abs(y_high) or 1e-6)
        self._fitted = True
        self.plot.getPlotItem().vb.setRange(xRange=(x_low, x_high + x_room), yRange=(y_low - y_pad, y_high + y_pad),
                                            padding=0)

    def point_count(self) -> tuple[int, int]:
        """(historical bars, live points) currently drawn (builds the plot if it is not yet)."""
        self._ensure_plot()
        return len(self.candles), len(
            self.live_curve.xData if self.live_curve.xData is not None else ()
        )

    # --- crosshair ----------------------------------------------------------------------------
    def _mouse_moved(self, event) -> None:
        position = event[0]
        if not self.plot.sceneBoundingRect().contains(position):
            return
        point = self.plot.getPlotItem().vb.mapSceneToView(position)
        self.v_line.setPos(point.x())
        self.h_line.setPos(point.y())
        try:
            when = datetime.fromtimestamp(point.x()).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            when = ""
        self.crosshair_label.setText(f"{when}  {fmt.format_price(point.y(), self.instrument)}")

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        self.tasks.cancel()
        if self._mouse_proxy is not None:
            self._mouse_proxy.disconnect()  # SignalProxy owns a timer of its own
