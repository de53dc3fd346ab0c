"""Account tab: the selected account's numbers and a chart of net liquidation during the session.

Values come from ``Broker.account_changed`` / ``pnl_changed``; the chart collects points on each
update and redraws from a timer (never per event). When the connection is down the numbers stay
on screen, greyed, with the time they were last true.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ibpanel.broker.models import AccountSummary, ConnectionState, ConnectionStatus, PnL
from ibpanel.broker.service import Broker
from ibpanel.ui.formatting import format_money, format_percent, format_pnl
from ibpanel.ui.settings import Settings
from ibpanel.ui.style import PALETTE, set_prop, tone

#: (key, caption) of the plain metrics, in display order.
METRICS: tuple[tuple[str, str], ...] = (
    ("net_liquidation", "Net liquidation"),
    ("total_cash", "Total cash"),
    ("buying_power", "Buying power"),
    ("available_funds", "Available funds"),
    ("excess_liquidity", "Excess liquidity"),
    ("init_margin", "Initial margin"),
    ("maint_margin", "Maintenance margin"),
    ("gross_position_value", "Gross position value"),
)
PNL_METRICS: tuple[tuple[str, str], ...] = (
    ("unrealized_pnl", "Unrealized P&L"),
    ("realized_pnl", "Realized P&L"),
    ("daily_pnl", "Daily P&L"),
)
#: Currencies always listed under cash, even before TWS reports them.
CASH_CURRENCIES = ("USD", "HKD")
CHART_REDRAW_MS = 500
MAX_CHART_POINTS = 20_000
SAMPLE_EVERY_S = 5.0
CHART_PAD_FRACTION = 0.03  # of the data's time span, each side
MIN_CHART_PAD_S = 1.0  # so the last point is not glued to the edge
MIN_CHART_SPAN_S = 30.0  # a young session still shows clock times (hh:mm:ss), not fractions of a second


class MetricCard(QFrame):
    """A caption over a big number."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.caption = QLabel(caption)
        set_prop(self.caption, "metric", "caption")
        self.value = QLabel("—")
        set_prop(self.value, "metric", "value")
        layout.addWidget(self.caption)
        layout.addWidget(self.value)

    def show_value(self, text: str, value_tone: str = "", stale: bool = False) -> None:
        self.value.setText(text)
        set_prop(self.value, "tone", value_tone)
        set_prop(self.value, "stale", "true" if stale else "false")


class AccountTab(QWidget):
    TAB_NAME = "account"

    def __init__(self, broker: Broker, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self._summary: AccountSummary | None = None
        self._account: str | None = None  # the account of the last status: others' numbers are ignored
        self._pnl: PnL | None = None
        self._stale = True
        self._updated_at: datetime | None = None
        self._chart_x: list[float] = []
        self._chart_y: list[float] = []
        self._chart_dirty = False
        self._show_pending = True  # the numbers wait for the tab to be visible (updates while hidden cost CPU)
        self.cards: dict[str, MetricCard] = {}
        self._build()
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setObjectName("accountChartRedraw")
        self.redraw_timer.setInterval(CHART_REDRAW_MS)
        self.redraw_timer.timeout.connect(self._redraw_chart)
        self.redraw_timer.start()
        broker.account_changed.connect(self._on_account_changed)
        broker.pnl_changed.connect(self._on_pnl_changed)
        broker.state_changed.connect(self._on_state_changed)
        self._on_state_changed(broker.status)
        # values of this connection, also while it is still reading orders (they come first, shown as stale)
        status = broker.status
        summary = broker.account_summary() if status.account and (
            status.connected or status.state is ConnectionState.CONNECTING) else None
        if summary is not None:
            self._on_account_changed(summary)

    def _build(self) -> None:
        self.title_label = QLabel("Account —")
        self.title_label.setObjectName("headline")
        self.stale_label = QLabel()
        set_prop(self.stale_label, "badge", "stale")
        self.stale_label.hide()
        header = QHBoxLayout()
        header.addWidget(self.title_label)
        header.addStretch(1)
        header.addWidget(self.stale_label)

        values_box = QGroupBox("Balances")
        grid = QGridLayout(values_box)
        for i, (key, caption) in enumerate(METRICS):
            card = self.cards[key] = MetricCard(caption)
            grid.addWidget(card, i // 4, i % 4)
        cash_box = QGroupBox("Cash by currency")
        self.cash_grid = QGridLayout(cash_box)
        for currency in CASH_CURRENCIES:
            self._cash_card(currency)
        pnl_box = QGroupBox("Profit and loss")
        pnl_grid = QGridLayout(pnl_box)
        for i, (key, caption) in enumerate(PNL_METRICS):
            card = self.cards[key] = MetricCard(caption)
            pnl_grid.addWidget(card, 0, i)

        # The plot is built on first show (_ensure_chart): pyqtgraph costs a third of a second to import.
        self.chart = None
        self._curve = None
        chart_box = QGroupBox("Net liquidation this session")
        chart_layout = QVBoxLayout(chart_box)
        self.session_change_label = QLabel("Session change —")
        set_prop(self.session_change_label, "hint", "muted")
        chart_layout.addWidget(self.session_change_label)
        self._chart_holder = QWidget()
        self._chart_holder.setMinimumHeight(180)
        chart_layout.addWidget(self._chart_holder)

        row = QHBoxLayout()
        row.addWidget(cash_box, 1)
        row.addWidget(pnl_box, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(values_box)
        layout.addLayout(row)
        layout.addWidget(chart_box, 1)

    def _cash_card(self, currency: str) -> MetricCard:
        key = f"cash:{currency}"
        card = self.cards.get(key)
        if card is None:
            card = self.cards[key] = MetricCard(f"Cash {currency}")
            n = sum(1 for k in self.cards if k.startswith("cash:")) - 1
            self.cash_grid.addWidget(card, n // 3, n % 3)
        return card

    # --- broker events ----------------------------------------------------------------------
    def _on_account_changed(self, summary: AccountSummary) -> None:
        if self._account and summary.account != self._account:
            return
        self._summary = summary
        self._updated_at = summary.updated_at or datetime.now(timezone.utc)
        if summary.net_liquidation is not None:
            self._add_point(summary.net_liquidation)
        self._show()

    def _on_pnl_changed(self, pnl: PnL) -> None:
        if self._account and pnl.account != self._account:
            return
        self._pnl = pnl
        self._show()

    def _on_state_changed(self, status: ConnectionStatus) -> None:
        stale = not status.connected or status.state.value == "degraded"
        if status.account and self._summary is not None and self._summary.account != status.account:
            # Another account was chosen: its numbers come with the next account_changed.
            self._summary, self._pnl = None, None
            self._chart_x.clear()
            self._chart_y.clear()
            self._chart_dirty = True
        self._account = status.account
        self.title_label.setText(f"Account {status.account or '—'}")
        if stale != self._stale:
            self._stale = stale
        self._show()

    # --- display ----------------------------------------------------------------------------
    def _show(self) -> None:
        if not self.isVisible():  # behind another tab: its labels are brought up to date when it comes forward
            self._show_pending = True
            return
        self._show_pending = False
        s = self._summary
        stale = self._stale
        base = _base_currency(s)
        for key, _caption in METRICS:
            value = getattr(s, key) if s else None
            self.cards[key].show_value(_money(value, base), stale=stale)
        cash = dict(s.cash_by_currency) if s else {}
        for currency in sorted(set(CASH_CURRENCIES) | set(cash)):
            self._cash_card(currency).show_value(_money(cash.get(currency), currency), stale=stale)
        pnl_values = {
            "unrealized_pnl": _first(self._pnl.unrealized if self._pnl else None, s.unrealized_pnl if s else None),
            "realized_pnl": _first(self._pnl.realized if self._pnl else None, s.realized_pnl if s else None),
            "daily_pnl": _first(self._pnl.daily if self._pnl else None, s.daily_pnl if s else None),
        }
        for key, value in pnl_values.items():
            text = "—" if value is None else f"{format_pnl(value)} {base}".strip()
            self.cards[key].show_value(text, tone(value), stale=stale)
        if stale and s is not None and self._updated_at is not None:
            self.stale_label.setText(f"STALE — as of {self._updated_at.astimezone():%H:%M:%S}")
            self.stale_label.show()
        elif stale:
            self.stale_label.setText("NOT CONNECTED")
            self.stale_label.show()
        else:
            self.stale_label.hide()

    def _add_point(self, value: float) -> None:
        self._chart_x.append(time.time())
        self._chart_y.append(float(value))
        if len(self._chart_x) > MAX_CHART_POINTS:
            del self._chart_x[: len(self._chart_x) - MAX_CHART_POINTS]
            del self._chart_y[: len(self._chart_y) - MAX_CHART_POINTS]
        self._chart_dirty = True

    def _redraw_chart(self) -> None:
        s = self._summary
        if (
            not self._stale
            and s is not None
            and s.net_liquidation is not None
            and (not self._chart_x or time.time() - self._chart_x[-1] >= SAMPLE_EVERY_S)
        ):
            # Extend the line to "now" even when TWS sends no new value (it updates every few minutes).
            self._add_point(s.net_liquidation)
        if not self._chart_dirty:
            return
        self._chart_dirty = False
        if self._chart_y:
            first, last = self._chart_y[0], self._chart_y[-1]
            change = last - first
            pct = f" ({format_percent(100.0 * change / first, signed=True)})" if first else ""
            since = datetime.fromtimestamp(self._chart_x[0]).strftime("%H:%M:%S")
            self.session_change_label.setText(
                f"Session change since {since}: {format_pnl(change)} {_base_currency(self._summary)}{pct}".strip()
            )
            set_prop(self.session_change_label, "tone", tone(change))
        else:
            self.session_change_label.setText("Session change —")
        if self.chart is None:
            self._chart_dirty = True  # drawn once the plot is built
            return
        import numpy as np  # with the plot (pyqtgraph loads it anyway): not at start

        x = np.asarray(self._chart_x, dtype=np.float64)
        self._curve.setData(x, np.asarray(self._chart_y, dtype=np.float64))
        if len(x):
            # The time axis follows the data (no empty minutes ahead): its span plus a little padding.
            left, right = chart_x_range(float(x[0]), float(x[-1]))
            self.chart.setXRange(left, right, padding=0)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self._show_pending:
            self._show()
        if self.chart is None:
            QTimer.singleShot(0, self._ensure_chart)  # after this paint: the window shows before pyqtgraph loads

    def _ensure_chart(self) -> None:
        if self.chart is not None:
            return
        from ibpanel.ui import plots  # pyqtgraph: imported here, not at start

        pg = plots.pg
        axes = {"bottom": pg.DateAxisItem(orientation="bottom"), "left": plots.MoneyAxis(orientation="left")}
        self.chart = pg.PlotWidget(axisItems=axes, background=PALETTE["base"])
        self.chart.setAccessibleName("Net liquidation chart")
        self.chart.setMinimumHeight(180)
        self.chart.showGrid(x=True, y=True, alpha=0.15)
        self.chart.getPlotItem().setMenuEnabled(False)
        self.chart.setMouseEnabled(x=False, y=False)
        self._curve = self.chart.plot([], [], pen=pg.mkPen(PALETTE["accent"], width=1))
        self._curve.setClipToView(True)
        self._curve.setDownsampling(auto=True, method="peak")
        self._chart_holder.parentWidget().layout().replaceWidget(self._chart_holder, self.chart)
        self._chart_holder.deleteLater()
        self._chart_dirty = True  # draw the points collected before the plot existed

    @property
    def curve(self):
        """The net-liquidation line (builds the plot if it is not yet)."""
        self._ensure_chart()
        return self._curve

    def chart_x_view(self) -> tuple[float, float]:
        """The chart's visible time range (epoch seconds)."""
        self._ensure_chart()
        (left, right), _ = self.chart.getViewBox().viewRange()
        return float(left), float(right)

    def chart_points(self) -> int:
        return len(self._chart_x)

    def populated(self) -> bool:
        return self._summary is not None and self._summary.net_liquidation is not None

    def shutdown(self) -> None:
        self.redraw_timer.stop()
        self.broker.account_changed.disconnect(self._on_account_changed)
        self.broker.pnl_changed.disconnect(self._on_pnl_changed)
        self.broker.state_changed.disconnect(self._on_state_changed)


def _base_currency(summary: AccountSummary | None) -> str:
    """The account's base currency code; TWS's "BASE" pseudo-currency is not one, so look further."""
    if summary is None:
        return ""
    if summary.base_currency and summary.base_currency != "BASE":
        return summary.base_currency
    for row in summary.values:
        if row.tag == "NetLiquidation" and row.currency not in ("", "BASE"):
            return row.currency
    return ""


def _money(value: float | None, currency: str) -> str:
    return "—" if value is None else f"{format_money(value)} {currency}".strip()


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def chart_x_range(first: float, last: float) -> tuple[float, float]:
    """The NLV chart's time range for data from ``first`` to ``last``: the data plus a small padding.

    The right edge is always just after the last point (no empty future); a session younger than
    ``MIN_CHART_SPAN_S`` gets that much history room on the left instead.
    """
    pad = max((last - first) * CHART_PAD_FRACTION, MIN_CHART_PAD_S)
    right = last + pad
    return min(first - pad, right - MIN_CHART_SPAN_S), right
