"""Practice tab: record the streamed market for replay, and the report of practice sessions.

* **Record**: symbols to record, Start / Stop, the file's size and quote count, and how much of today's
  regular session is behind us. The recorder (broker/recorder.py) is Qt-free; this only shows it.
* **Report**: every practice trade, round trips, the figures and the equity curve beside the benchmark
  (practice_report.py computes them; pyqtgraph draws the curve and is imported when first drawn), for this
  session or across sessions; export to CSV and to one self-contained HTML file.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timezone
from decimal import Decimal
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ibpanel import paths
from ibpanel.broker.journal import practice_journal_path
from ibpanel.broker.models import ConnectionStatus, OrderRequest, OrderType, Side
from ibpanel.broker.recorder import MarketRecorder, start_recording, stop_recording
from ibpanel.practice_report import (
    PracticeReport,
    build_report,
    fills_from_executions,
    fills_from_journal,
    sessions,
    write_csv,
    write_html,
)
from ibpanel.ui.tasks import TaskSet

log = logging.getLogger(__name__)
UTC = timezone.utc
ALL_SESSIONS = "All sessions"
RECORD_KEY = "practice/record_symbols"


def _size_text(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return ""


class PracticeTab(QWidget):
    TAB_NAME = "practice"

    def __init__(self, broker, settings, parent=None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.tasks = TaskSet(on_error=lambda exc: self.record_status.setText(f"Failed: {exc}"))
        self.recorder: MarketRecorder | None = None
        self.report: PracticeReport | None = None
        self._plot = None

        record = QGroupBox("Record the market for replay")
        self.symbols_edit = QLineEdit(settings.get(RECORD_KEY, "AAPL, MSFT, 700"))
        self.symbols_edit.setPlaceholderText("symbols to record, e.g. AAPL, MSFT, 700")
        self.record_button = QPushButton("Start recording")
        self.record_button.setObjectName("recordButton")
        self.record_button.clicked.connect(self._on_record_clicked)
        self.record_status = QLabel("Not recording. Recordings replay with: ibpanel --demo --replay FILE")
        self.record_status.setObjectName("recordStatus")
        self.record_progress = QProgressBar()
        self.record_progress.setRange(0, 1000)
        self.record_progress.setFormat("today's session %p%")
        row = QHBoxLayout()
        row.addWidget(QLabel("Symbols"))
        row.addWidget(self.symbols_edit, 1)
        row.addWidget(self.record_button)
        box = QVBoxLayout(record)
        box.addLayout(row)
        box.addWidget(self.record_status)
        box.addWidget(self.record_progress)

        report = QGroupBox("Practice report")
        self.scope = QComboBox()
        self.scope.setObjectName("reportScope")
        self.scope.currentIndexChanged.connect(lambda _i: self.refresh_report())
        self.currency = QComboBox()
        self.currency.currentIndexChanged.connect(lambda _i: self._show_currency())
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.refresh_report(reload_scopes=True))
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(lambda: self._export("csv"))
        self.html_button = QPushButton("Export HTML…")
        self.html_button.clicked.connect(lambda: self._export("html"))
        controls = QHBoxLayout()
        for widget in (QLabel("Session"), self.scope, QLabel("Currency"), self.currency, refresh):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.csv_button)
        controls.addWidget(self.html_button)
        self.figures = QTableWidget(0, 2)
        self.figures.setObjectName("reportFigures")
        self.figures.setHorizontalHeaderLabels(["Figure", "Value"])
        self.figures.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.figures.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.figures.verticalHeader().hide()
        self.figures.verticalHeader().setDefaultSectionSize(22)
        self.figures.setMinimumWidth(300)
        self.trips = QTableWidget(0, 8)
        self.trips.setObjectName("reportTrips")
        self.trips.setHorizontalHeaderLabels(["Symbol", "Direction", "Opened", "Closed", "Quantity", "Entry",
                                              "Exit", "Realized"])
        self.trips.verticalHeader().hide()
        self.trips.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.chart_box = QVBoxLayout()
        self.empty_label = QLabel("No practice trades yet: trade on the practice exchange (ibpanel --demo), "
                                  "then Refresh.")
        self.empty_label.setWordWrap(True)  # a long line would set the whole window's minimum width
        self.chart_box.addWidget(self.empty_label)
        chart_holder = QWidget()
        chart_holder.setLayout(self.chart_box)
        upper = QSplitter()
        upper.addWidget(self.figures)
        upper.addWidget(chart_holder)
        upper.setStretchFactor(1, 2)
        lower = QSplitter(Qt.Orientation.Vertical)
        lower.addWidget(upper)
        lower.addWidget(self.trips)
        rbox = QVBoxLayout(report)
        rbox.addLayout(controls)
        rbox.addWidget(lower, 1)

        for widget, name in ((self.symbols_edit, "Symbols to record"), (self.record_button, "Start or stop recording"),
                             (self.scope, "Report session"), (self.currency, "Report currency"),
                             (refresh, "Refresh the report"), (self.csv_button, "Export the report to CSV"),
                             (self.html_button, "Export the report to HTML"), (self.figures, "Report figures"),
                             (self.trips, "Round trips"), (self.record_progress, "Share of today's session")):
            widget.setAccessibleName(name)
        layout = QVBoxLayout(self)
        layout.addWidget(record)
        layout.addWidget(report, 1)
        self.timer = QTimer(self)
        self.timer.setObjectName("practiceRecorderStatus")
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._show_recorder)
        self.refresh_timer = QTimer(self)  # a burst of fills refreshes the report once
        self.refresh_timer.setObjectName("practiceReportRefresh")
        self.refresh_timer.setSingleShot(True)
        self.refresh_timer.setInterval(500)
        self.refresh_timer.timeout.connect(lambda: self.refresh_report(reload_scopes=True))
        broker.state_changed.connect(self._on_state_changed)
        broker.fill_added.connect(self._on_fill_added)
        self.refresh_report(reload_scopes=True)

    # --- recording --------------------------------------------------------------------------
    def recordings_folder(self) -> Path:
        return paths.data_dir(getattr(self.settings, "profile", paths.DEFAULT_PROFILE)) / "recordings"

    def _on_record_clicked(self) -> None:
        if self.recorder is not None:
            stop_recording(self.broker, self.recorder)
            status = self.recorder.status()
            self.recorder = None
            self.timer.stop()
            self.record_button.setText("Start recording")
            self.record_status.setText(f"Stopped: {status.quotes:,} quotes in {status.path}")
            return
        symbols = [s.strip() for s in self.symbols_edit.text().replace(";", ",").split(",") if s.strip()]
        if not symbols:
            self.record_status.setText("Type the symbols to record, e.g. AAPL, 700.")
            return
        if not self.broker.status.connected:
            self.record_status.setText("Connect first (to TWS or the practice exchange): the recorder records "
                                       "what the panel streams.")
            return
        self.settings.set(RECORD_KEY, ", ".join(symbols))
        self.record_status.setText(f"Starting: {', '.join(symbols)}…")
        self.tasks.spawn(self._start(symbols))

    async def _start(self, symbols: list[str]) -> None:
        self.recorder = await start_recording(self.broker, symbols, self.recordings_folder())
        self.record_button.setText("Stop recording")
        self.timer.start()
        self._show_recorder()

    def _show_recorder(self) -> None:
        if self.recorder is None:
            return
        status = self.recorder.status()
        self.record_status.setText(
            f"Recording {', '.join(status.symbols)}: {status.quotes:,} quotes, {status.bars:,} bars, "
            f"{_size_text(status.size_bytes)} in {status.path}")
        if status.progress is None:
            self.record_progress.setRange(0, 0)  # busy: no session known for today
        else:
            self.record_progress.setRange(0, 1000)
            self.record_progress.setValue(int(status.progress * 1000))

    # --- report -----------------------------------------------------------------------------
    def practice_journal(self) -> Path:
        path = self.broker.journal.path
        params = self.broker.status.params
        return path if params is not None and params.practice else practice_journal_path(path)

    def _fills(self):
        fills = []
        journal = self.practice_journal()
        if journal.exists():
            try:
                fills = fills_from_journal(journal)
            except Exception:  # noqa: BLE001 - a journal being written or from an older app: show what we have
                log.exception("practice journal %s not readable for the report", journal)
        params = self.broker.status.params
        if params is not None and params.practice:
            known = {f.exec_id for f in fills}
            fills += [f for f in fills_from_executions(self.broker.fills()) if f.exec_id not in known]
        return fills

    def refresh_report(self, reload_scopes: bool = False) -> None:
        fills = self._fills()
        if reload_scopes:
            chosen = self.scope.currentText()
            self.scope.blockSignals(True)
            self.scope.clear()
            self.scope.addItem(ALL_SESSIONS)
            for day in reversed(sessions(fills)):
                self.scope.addItem(day.isoformat())
            index = self.scope.findText(chosen)
            self.scope.setCurrentIndex(index if index >= 0 else (1 if self.scope.count() > 1 else 0))
            self.scope.blockSignals(False)
        scope = self.scope.currentText()
        if scope and scope != ALL_SESSIONS:
            fills = [f for f in fills if f.time.astimezone(UTC).date().isoformat() == scope]
        title = f"Practice report — {scope or ALL_SESSIONS}"
        self.report = build_report(fills, title=title)
        chosen = self.currency.currentText()
        self.currency.blockSignals(True)
        self.currency.clear()
        self.currency.addItems(sorted(self.report.by_currency, key=lambda c: (c != "USD", c)))
        index = self.currency.findText(chosen)
        self.currency.setCurrentIndex(max(index, 0))
        self.currency.blockSignals(False)
        self._show_currency()

    def _show_currency(self) -> None:
        report = self.report
        rep = report.by_currency.get(self.currency.currentText()) if report else None
        rows = rep.figures() if rep else []
        self.figures.setRowCount(len(rows))
        for i, (label, value) in enumerate(rows):
            self.figures.setItem(i, 0, QTableWidgetItem(label))
            self.figures.setItem(i, 1, QTableWidgetItem(value))
        trips = rep.round_trips if rep else []
        self.trips.setRowCount(len(trips))
        for i, t in enumerate(trips):
            cells = [t.symbol, t.direction, f"{t.opened:%Y-%m-%d %H:%M:%S}", f"{t.closed:%Y-%m-%d %H:%M:%S}",
                     str(t.quantity), str(t.entry_price), str(t.exit_price), f"{t.realized:,.2f}"]
            for j, text in enumerate(cells):
                self.trips.setItem(i, j, QTableWidgetItem(text))
        self._draw(rep)

    def _draw(self, rep) -> None:
        self.empty_label.setVisible(rep is None or not rep.equity)
        if rep is None or not rep.equity:
            if self._plot is not None:
                self._plot.clear()
            return
        import pyqtgraph as pg  # only when there is a curve to draw

        if self._plot is None:
            self._plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
            self._plot.setObjectName("equityCurve")
            self._plot.setAccessibleName("Equity curve and the benchmark")
            self._plot.setBackground(self.palette().color(QPalette.ColorRole.Base))  # follows the theme
            self._plot.addLegend()
            self._plot.showGrid(x=True, y=True, alpha=0.2)
            self.chart_box.addWidget(self._plot)
        self._plot.clear()
        xs = [p.time.timestamp() for p in rep.equity]
        self._plot.plot(xs, [float(p.benchmark) for p in rep.equity], name="hold the traded stocks",
                        pen=pg.mkPen("#999", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine))
        self._plot.plot(xs, [float(p.equity) for p in rep.equity], name=f"equity ({rep.currency})",
                        pen=pg.mkPen("#1f6fd1", width=2))

    def _export(self, kind: str) -> None:
        if self.report is None:
            return
        suggested = str(Path.home() / f"practice-report.{kind}")
        path, _ = QFileDialog.getSaveFileName(self, "Export the practice report", suggested,
                                              "CSV (*.csv)" if kind == "csv" else "HTML (*.html)")
        if path:
            self.export(Path(path), kind)

    def export(self, path: Path, kind: str) -> Path:
        """Write the shown report (``kind`` "csv" or "html")."""
        assert self.report is not None
        return write_csv(self.report, path) if kind == "csv" else write_html(self.report, path)

    def _on_fill_added(self, _fill) -> None:
        if not self.refresh_timer.isActive():
            self.refresh_timer.start()

    def _on_state_changed(self, status: ConnectionStatus) -> None:
        if not status.connected and self.recorder is not None:
            self._show_recorder()

    # --- screenshots, app -------------------------------------------------------------------
    def populated(self) -> bool:
        return self.report is not None and any(r.round_trips for r in self.report.by_currency.values())

    async def prepare_screenshot(self, round_trips: int = 4, pause: float = 1.0) -> None:
        """``--demo --screenshot --tab practice``: close the sample buys, then a few AAPL round trips ``pause``
        seconds apart (a minute apart in a replay at 60x), so the report has trades and a curve."""
        orders = [(p.instrument.display, Side.SELL, Decimal(p.quantity)) for p in self.broker.positions()
                  if p.quantity > 0]
        orders += [("AAPL", Side.BUY if n % 2 == 0 else Side.SELL, Decimal(50)) for n in range(round_trips * 2)]
        for symbol, side, quantity in orders:
            try:
                await self.broker.place(OrderRequest(symbol=symbol, side=side, quantity=quantity,
                                                     order_type=OrderType.MKT))
            except Exception as exc:  # noqa: BLE001 - fewer rows is still a screenshot
                log.warning("sample trade %s %s not placed: %s", side.value, symbol, exc)
            if symbol == "AAPL":
                await asyncio.sleep(pause)
        self.refresh_report(reload_scopes=True)

    def shutdown(self) -> None:
        self.timer.stop()
        self.refresh_timer.stop()
        self.tasks.cancel()
        if self.recorder is not None:
            stop_recording(self.broker, self.recorder)
            self.recorder = None
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.broker.fill_added.disconnect(self._on_fill_added)


__all__ = ["PracticeTab"]
