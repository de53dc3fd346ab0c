"""The main window: assembles the tabs, wires their cross-tab signals, and shows the connection.

Assembly only: every tab is its own module (``XTab(broker, settings)``), the status bar and the
banner below only display ``Broker.status``. A tab that fails to import or build is replaced by a
note saying so (``tab_errors`` lists them; ``--smoke-test`` fails on any).
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime, timezone
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStatusBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ibpanel import __version__, paths
from ibpanel.broker.models import ConnectionState, ConnectionStatus, MarketDataType, Quote
from ibpanel.broker.service import Broker
from ibpanel.ui.connection_tab import classification_text
from ibpanel.ui.hotkeys import Hotkeys
from ibpanel.ui.settings import Settings
from ibpanel.ui.style import PALETTE, set_prop
from ibpanel.ui.tab_set import BackgroundBuild, TabSet
from ibpanel.ui.workspace import Workspace

log = logging.getLogger(__name__)

#: (tab name, module, class, title in the tab bar) in display order; the title is known before the tab is built.
TAB_SPECS: tuple[tuple[str, str, str, str], ...] = (
    ("connection", "ibpanel.ui.connection_tab", "ConnectionTab", "Connection"),
    ("account", "ibpanel.ui.account_tab", "AccountTab", "Account"),
    ("positions", "ibpanel.ui.positions_tab", "PositionsTab", "Positions"),
    ("orders", "ibpanel.ui.orders_tab", "OrdersTab", "Orders"),
    ("ticket", "ibpanel.ui.ticket_tab", "TicketTab", "Order ticket"),
    ("quotes", "ibpanel.ui.quotes_tab", "QuotesTab", "Quotes"),
    ("practice", "ibpanel.ui.practice_tab", "PracticeTab", "Practice"),
)
TAB_NAMES = tuple(spec[0] for spec in TAB_SPECS)
TAB_TITLES = {spec[0]: spec[3] for spec in TAB_SPECS}
DEFAULT_WINDOW_SIZE = (1280, 820)
#: Tabs built only when first shown or asked for, never in the background: the watchlist starts its quote
#: streams, a chart and its price history (numpy) when built, which a panel that never opens Quotes does
#: not need (it idles on less CPU and memory). Opening the tab builds it and the streams start then.
BUILT_WHEN_SHOWN = frozenset({"quotes"})
#: Keys that open the ticket on a side from every tab (the ticket binds the same keys inside itself).
SIDE_KEYS = (("F1", "BUY"), ("F2", "SELL"))

try:  # Exchange clocks for the status bar; zoneinfo needs tz data (the tzdata package on Windows).
    from zoneinfo import ZoneInfo

    _CLOCKS = (("NY", ZoneInfo("America/New_York")), ("HK", ZoneInfo("Asia/Hong_Kong")))
except Exception:  # noqa: BLE001 - no tz database: show UTC only
    _CLOCKS = (("UTC", timezone.utc),)


class ConnectionBanner(QFrame):
    """A strip above the tabs, so a lost or degraded connection is obvious wherever the user is."""

    go_to_connection = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionBanner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Connection…")
        self.button.setAccessibleName("Go to the Connection tab")
        self.button.clicked.connect(self.go_to_connection.emit)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.hide()

    def show_status(self, status: ConnectionStatus, ever_connected: bool) -> None:
        state = status.state
        if state is ConnectionState.CONNECTED and not status.stale:
            self.hide()
            return
        if status.stale and status.connected:
            level, text = "warning", (f"{status.stale_reason}. Orders are refused until it answers again; "
                                      "prices shown may be stale.")
        elif state is ConnectionState.DEGRADED:
            level, text = "warning", "TWS has lost its connection to IB's servers: prices and orders may be stale until it is back."
        elif state is ConnectionState.RECONNECTING:
            retry = f", next try in {status.next_retry_in:.0f} s" if status.next_retry_in is not None else ""
            level = "warning"
            text = f"Connection lost: reconnecting (attempt {status.reconnect_attempt}{retry}). Data shown is stale."
        elif state is ConnectionState.CONNECTING:
            level, text = "warning", "Connecting…"
        elif ever_connected:
            level, text = "error", "Disconnected from IBKR. Data shown is stale; nothing can be sent."
        else:
            level, text = "warning", "Not connected. Connect to TWS / IB Gateway, or start a practice session."
        self.label.setText(text)
        set_prop(self, "level", level)
        self.show()


class StatusBar(QStatusBar):
    """Connection light and state, account, PAPER / LIVE, READ-ONLY, market-data type, exchange clocks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.light = QLabel("●")
        self.state_label = QLabel("Disconnected")
        self.account_label = QLabel("Account —")
        self.type_badge = QLabel("—")
        set_prop(self.type_badge, "badge", "unknown")
        self.readonly_badge = QLabel("READ-ONLY")
        set_prop(self.readonly_badge, "badge", "readonly")
        self.readonly_badge.hide()
        self.data_badge = QLabel("data —")
        set_prop(self.data_badge, "badge", "unknown")
        self._data_type: MarketDataType | None = None
        #: The connection state that makes every quote stale (TWS cut off from IB, or reconnecting).
        self._stale_state: ConnectionState | None = None
        #: The local REST API's state (when it is on, or failed to start): where it serves, or why it is off.
        self.api_label = QLabel()
        self.api_label.setObjectName("apiState")
        self.api_label.hide()
        self.clock_label = QLabel()
        for widget in (self.light, self.state_label, self.account_label, self.type_badge, self.readonly_badge):
            self.addWidget(widget)
        self.addPermanentWidget(self.api_label)
        self.addPermanentWidget(self.data_badge)
        self.addPermanentWidget(self.clock_label)
        self.tick_clock()

    def show_status(self, status: ConnectionStatus) -> None:
        colour = {
            ConnectionState.CONNECTED: PALETTE["up"],
            ConnectionState.DEGRADED: PALETTE["warning"],
            ConnectionState.RECONNECTING: PALETTE["warning"],
            ConnectionState.CONNECTING: PALETTE["warning"],
        }.get(status.state, PALETTE["down"])
        stale_link = status.stale and status.connected  # the socket is open but TWS does not answer
        if stale_link:
            colour = PALETTE["warning"]
        self.light.setStyleSheet(f"color: {colour}; font-size: 13pt;")
        self.state_label.setText("Not answering" if stale_link else status.state.value.capitalize())
        self.state_label.setToolTip(status.stale_reason if stale_link else "")
        self.account_label.setText(f"Account {status.account or '—'}")
        text, kind = classification_text(status)
        self.type_badge.setText(text)
        self.type_badge.setToolTip(status.paper_reason)
        set_prop(self.type_badge, "badge", kind)
        self.type_badge.setVisible(kind != "unknown")  # "Account —" says it already; no grey "—" chip
        self.readonly_badge.setVisible(status.readonly)
        stale = status.state in (ConnectionState.DEGRADED, ConnectionState.RECONNECTING)
        self._stale_state = status.state if stale else None
        if not status.connected:
            self._data_type = None  # after a reconnect the next quotes say which type they are
        self._show_data_badge()

    def show_api_state(self, text: str, ok: bool, details: str = "") -> None:
        """Show the REST API's state, e.g. ``API 127.0.0.1:5000`` or ``API off: port 5000 in use`` (in red).

        An empty ``text`` hides the label: the API is off because the user turned it off.
        """
        if not text:
            self.api_label.hide()
            return
        self.api_label.setText(text)
        self.api_label.setToolTip(details)
        set_prop(self.api_label, "hint", "muted" if ok else "error")
        self.api_label.show()

    def show_data_type(self, data_type: MarketDataType | None) -> None:
        """The market-data type of the latest quotes; shown unless the connection makes them stale."""
        self._data_type = data_type
        self._show_data_badge()

    def _show_data_badge(self) -> None:
        if self._stale_state is not None:
            # Never green "live" while TWS is cut off from IB (1100) or the panel from TWS: prices are old.
            self.data_badge.setText("data stale")
            self.data_badge.setToolTip(
                "TWS has lost IB's servers: quotes are the last received, not live."
                if self._stale_state is ConnectionState.DEGRADED
                else "Reconnecting to TWS: quotes are the last received, not live."
            )
            set_prop(self.data_badge, "badge", "stale")
            return
        data_type = self._data_type
        self.data_badge.setToolTip("")
        if data_type is None:
            self.data_badge.setText("data —")
            set_prop(self.data_badge, "badge", "unknown")
            return
        self.data_badge.setText(f"data {data_type.label}")
        set_prop(self.data_badge, "badge", "live-data" if data_type is MarketDataType.LIVE else "delayed")

    def tick_clock(self) -> None:
        now = datetime.now(timezone.utc)
        self.clock_label.setText("   ".join(f"{name} {now.astimezone(tz):%H:%M:%S}" for name, tz in _CLOCKS))


class MainWindow(QMainWindow):
    #: The window closed (tabs already shut down): the app shuts the broker down and exits.
    closed = Signal()
    #: A tab asked for a practice session.
    practice_requested = Signal()

    def __init__(self, broker: Broker, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.broker = broker
        self.settings = settings
        self.tab_errors: dict[str, str] = {}
        #: Every tab by name, built on first access (ui/tab_set.py): the first screen needs one or two.
        self.tabs = TabSet(TAB_NAMES, self._build_tab)
        self._background = BackgroundBuild(self.tabs, BUILT_WHEN_SHOWN, lambda: self._shut_down)
        self._ever_connected = False
        self._data_type: MarketDataType | None = None
        self._shut_down = False
        self.setWindowTitle(f"IB Panel {__version__}")
        icon = paths.resource_path("icons", "ibpanel-256.png")
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))

        self.banner = ConnectionBanner()
        self.tab_widget = QTabWidget()
        self.tab_widget.setAccessibleName("Panel tabs")
        self.tab_widget.setDocumentMode(True)
        for name in TAB_NAMES:  # a blank page per tab until it is built (swapped in by _build_tab)
            placeholder = QWidget()
            placeholder.setObjectName(f"unbuilt_{name}")
            self.tabs.placeholders[name] = placeholder
            self.tab_widget.addTab(placeholder, self.tab_title(name))
        self.tab_widget.currentChanged.connect(self._on_current_changed)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tab_widget, 1)
        self._central_layout = layout
        self.replay_bar: QWidget | None = None  # the Replay control, while a recorded day replays
        self.setCentralWidget(central)
        self.status_bar = StatusBar()
        self.setStatusBar(self.status_bar)
        self.clock_timer = QTimer(self)
        self.clock_timer.setObjectName("statusClock")
        self.clock_timer.setInterval(1000)
        self.clock_timer.timeout.connect(self.status_bar.tick_clock)
        self.clock_timer.start()

        self.workspace = Workspace(self, TAB_NAMES)  # docks, View menu, Alerts, saved layout
        self.hotkeys = Hotkeys(self, self.workspace.menu)  # configurable order / cancel / flatten keys
        self._install_side_keys()
        self._wire()
        broker.state_changed.connect(self._on_state_changed)
        broker.quotes_updated.connect(self._on_quotes_updated)
        self._on_state_changed(broker.status)
        self._restore_window()

    # --- assembly ---------------------------------------------------------------------------
    @staticmethod
    def tab_title(name: str) -> str:
        return TAB_TITLES.get(name, name.capitalize())

    def _build_tab(self, name: str) -> QWidget:
        """Build the tab ``name`` (TabSet calls this on first access), put it in its placeholder's place, wire it."""
        module, cls = next((m, c) for n, m, c, _title in TAB_SPECS if n == name)
        try:
            tab_class = getattr(importlib.import_module(module), cls)
            widget = tab_class(self.broker, self.settings)
        except Exception as exc:  # noqa: BLE001 - one broken tab must not stop the panel from starting
            log.exception("tab %s could not be built", name)
            self.tab_errors[name] = f"{type(exc).__name__}: {exc}"
            widget = QLabel(f"The {name} tab could not be loaded: {exc}\nDetails are in the log file.")
            widget.setWordWrap(True)
        self.tabs.swap_in(name, widget, self.tab_widget, self.tab_title(name))
        self._wire_tab(name, widget)
        return widget

    def _wire_tab(self, name: str, widget: QWidget) -> None:
        """Cross-tab signals of one tab, connected as it is built."""
        def connect(signal: str, slot: Any) -> None:
            sig = getattr(widget, signal, None)
            if sig is not None and hasattr(sig, "connect"):
                sig.connect(slot)

        if name in ("positions", "quotes"):
            connect("ticket_requested", self.open_ticket)
        if name == "positions":
            connect("quote_requested", self.show_quote)
        if name == "connection":
            connect("start_practice_requested", self.practice_requested.emit)
            api_group = getattr(widget, "api_group", None)
            if api_group is not None:
                api_group.state_changed.connect(self.status_bar.show_api_state)
        if name == "ticket":
            # The window's minimum size is its layout's: with this, one at which the ticket is usable, every
            # field at its natural height and Submit in view (not squeezed by a smaller screen or a drag);
            # the width only as wide as its fields need, so docked side by side it still fits a screen.
            widget.setMinimumSize(widget.minimumSizeHint().width(), widget.sizeHint().height())

    def _wire(self) -> None:
        self.banner.go_to_connection.connect(lambda: self.show_tab("connection"))

    def _on_current_changed(self, index: int) -> None:
        """A tab not built yet comes to the front: build it now (it replaces its placeholder)."""
        name = self.tabs.name_of(self.tab_widget.widget(index))
        if name is not None and not self._shut_down:
            self.tabs.get(name)

    def deferred_tabs(self) -> list[str]:
        """The tabs still to be built in the background (all but BUILT_WHEN_SHOWN, until built)."""
        return self._background.pending()

    def hold_deferred_tabs(self) -> None:
        """The owner calls ``build_deferred_tabs`` when it suits the start (the panel: after --demo connects)."""
        self._background.held = True

    def build_deferred_tabs(self) -> None:
        """Build the tabs not built yet (but BUILT_WHEN_SHOWN) one per loop turn, so switching to them is
        instant and each runs as it always did (the ticket sets the window's minimum size). Idempotent."""
        self._background.start()

    def _install_side_keys(self) -> None:
        """F1 (BUY) and F2 (SELL) from every tab: the ticket opens on that side. Inside the ticket its own
        shortcuts serve; these stand aside there, or both would match and Qt would run neither."""
        self._side_keys: list[QShortcut] = []
        for key, side in SIDE_KEYS:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(lambda side=side: self.ticket_side(side))
            self._side_keys.append(shortcut)
        self.tab_widget.currentChanged.connect(lambda _i: self._update_side_keys())
        QApplication.instance().focusChanged.connect(self._on_focus_changed)
        self._update_side_keys()

    def _on_focus_changed(self, _old: QWidget | None, _new: QWidget | None) -> None:
        if not self._shut_down:
            self._update_side_keys()

    def _update_side_keys(self) -> None:
        ticket = self.tabs.built_tab("ticket")  # not built: the focus cannot be in it
        focus = QApplication.focusWidget()
        in_ticket = ticket is not None and focus is not None and ticket.isAncestorOf(focus)
        for shortcut in self._side_keys:
            shortcut.setEnabled(not in_ticket)

    def ticket_side(self, side: str) -> None:
        """Switch to the ticket with ``side`` ("BUY" / "SELL") chosen, focus in it (F1 / F2 on any tab)."""
        ticket = self.tabs.get("ticket")
        set_side = getattr(ticket, "set_side", None)
        if set_side is None:
            return
        self.show_tab("ticket")
        set_side(side)
        target = ticket.focusWidget() or next(
            (w for w in ticket.findChildren(QWidget)
             if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isEnabled() and w.isVisible()), None)
        if target is not None:
            target.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def open_ticket(self, request: dict) -> None:
        """Fill the order ticket (symbol, side, quantity, limit price) and switch to it."""
        ticket = self.tabs.get("ticket")
        prefill = getattr(ticket, "prefill", None)
        if prefill is not None:
            prefill(request)
            self.show_tab("ticket")

    def show_quote(self, symbol: str) -> None:
        """Add the symbol to the watchlist and switch to Quotes."""
        quotes = self.tabs.get("quotes")
        if quotes is not None:  # None only when the tab failed to build (see tab_errors)
            quotes.show_symbol(symbol)
        self.show_tab("quotes")

    def show_replay(self, clock: Any, zone: str, title: str = "", zones: tuple[str, ...] = ()) -> None:
        """Show the Replay control (ui/replay_bar.py) above the tabs, driving ``clock`` (sim/replay.py)."""
        from ibpanel.ui.replay_bar import ReplayBar

        self.replay_bar = ReplayBar(clock, zone, title, zones=zones)
        self._central_layout.insertWidget(1, self.replay_bar)

    def tab(self, name: str) -> QWidget:
        return self.tabs[name]

    def show_tab(self, name: str) -> None:
        if self.workspace.show(name):  # torn off: its dock is raised instead
            return
        if name in self.tabs:
            self.tab_widget.setCurrentWidget(self.tabs[name])

    def current_tab_name(self) -> str:
        return self.tabs.name_of(self.tab_widget.currentWidget()) or TAB_NAMES[0]

    # --- broker events ----------------------------------------------------------------------
    def _on_state_changed(self, status: ConnectionStatus) -> None:
        if status.connected:
            self._ever_connected = True
        if not status.connected:
            self._data_type = None
        self.banner.show_status(status, self._ever_connected)
        self.status_bar.show_status(status)
        mode = "" if status.is_paper is None else (" — PAPER" if status.is_paper else " — LIVE")
        account = f" — {status.account}" if status.account else ""
        self.setWindowTitle(f"IB Panel {__version__}{account}{mode}")

    def _on_quotes_updated(self, quotes: tuple[Quote, ...]) -> None:
        if not quotes:
            return
        # The worst type in the batch: one delayed symbol makes "delayed" the honest label.
        data_type = max(q.data_type for q in quotes)
        if data_type != self._data_type:
            self._data_type = data_type
            self.status_bar.show_data_type(data_type)

    # --- window state -----------------------------------------------------------------------
    def _restore_window(self) -> None:
        geometry = self.settings.get_bytes("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            size = QSize(*DEFAULT_WINDOW_SIZE)
            screen = self.screen()
            if screen is not None:  # a laptop screen smaller than the default: fit it (never below the minimum)
                size = size.boundedTo(screen.availableGeometry().size())
            self.resize(size.expandedTo(self.minimumSizeHint()))
        self.workspace.restore()
        state = self.settings.get_bytes("window/state")
        if state is not None:
            self.restoreState(state)
        self.workspace.after_restore_state()
        self.show_tab(self.settings.get("window/tab", "connection"))

    def save_window(self) -> None:
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.set("window/state", self.saveState())
        self.settings.set("window/tab", self.current_tab_name())
        self.workspace.save()
        self.settings.sync()

    def shutdown(self) -> None:
        """Save window state, stop every tab (timers, event subscriptions). Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self.save_window()
        self.clock_timer.stop()
        if self.replay_bar is not None:
            self.replay_bar.shutdown()
        QApplication.instance().focusChanged.disconnect(self._on_focus_changed)
        self.broker.state_changed.disconnect(self._on_state_changed)
        self.broker.quotes_updated.disconnect(self._on_quotes_updated)
        self.workspace.shutdown()
        self.hotkeys.shutdown()
        for name, widget in self.tabs.built().items():  # a tab never built has nothing to stop
            stop = getattr(widget, "shutdown", None)
            if stop is None:
                continue
            try:
                stop()
            except Exception:  # noqa: BLE001 - keep shutting the others down
                log.exception("tab %s failed to shut down", name)
        self.settings.sync()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._background.held:
            self.build_deferred_tabs()  # the tabs not on the first screen, once it is painted

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        event.accept()
        self.closed.emit()
