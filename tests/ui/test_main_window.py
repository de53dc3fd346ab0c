"""Main window: the tabs in order, the status bar, the banner on every tab, window state that persists."""

from __future__ import annotations

from dataclasses import replace

from ibpanel.broker.models import ConnectionState, ConnectionStatus, MarketDataType
from ibpanel.ui.main_window import BUILT_WHEN_SHOWN, TAB_NAMES, MainWindow
from PySide6.QtCore import QTimer


def test_tabs_in_order_and_status_bar_shows_the_connection(qtbot, main_window, broker):
    window = main_window
    titles = [window.tab_widget.tabText(i) for i in range(window.tab_widget.count())]
    assert titles[:2] == ["Connection", "Account"]
    assert list(window.tabs) == list(TAB_NAMES) == ["connection", "account", "positions", "orders", "ticket", "quotes",
                                                  "practice"]
    bar = window.status_bar
    assert bar.isVisible()
    assert bar.state_label.text() == "Connected"
    assert bar.account_label.text() == f"Account {broker.status.account}"
    assert bar.type_badge.text() == "PAPER" and bar.type_badge.property("badge") == "paper"
    assert not bar.readonly_badge.isVisible()
    assert "NY" in bar.clock_label.text() or "UTC" in bar.clock_label.text()
    assert not window.banner.isVisible()
    assert broker.status.account in window.windowTitle() and "PAPER" in window.windowTitle()


def test_banner_when_the_exchange_drops_and_gone_after_reconnect(qtbot, sim, make_broker, ui_settings, run_async, connect_params):
    broker = make_broker(reconnect_backoff=(0.2, 0.5))
    run_async(broker.connect(connect_params(sim, auto_reconnect=True)), timeout=15)
    window = MainWindow(broker, ui_settings)
    qtbot.addWidget(window)
    window.show()
    account_tab = window.tabs["account"]
    qtbot.waitUntil(account_tab.populated, timeout=10000)
    assert not window.banner.isVisible()

    for name in TAB_NAMES:  # the banner sits above the tabs: visible whichever tab is shown
        window.show_tab(name)
        assert window.banner.isVisibleTo(window) is False

    sim.faults.drop_all()
    qtbot.waitUntil(window.banner.isVisible, timeout=10000)
    assert "stale" in window.banner.label.text().lower() or "connect" in window.banner.label.text().lower()
    assert window.status_bar.state_label.text() != "Connected"
    for name in TAB_NAMES:
        window.show_tab(name)
        assert window.banner.isVisible()

    qtbot.waitUntil(lambda: broker.status.state is ConnectionState.CONNECTED, timeout=20000)
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: not account_tab.stale_label.isVisible(), timeout=10000)
    assert window.status_bar.state_label.text() == "Connected"
    window.close()
    run_async(broker.disconnect())


def test_degraded_connection_is_a_warning_banner(qtbot, sim, main_window, broker):
    sim.faults.send_connectivity(1100)
    qtbot.waitUntil(main_window.banner.isVisible, timeout=5000)
    assert main_window.banner.property("level") == "warning"
    assert "lost its connection" in main_window.banner.label.text()
    sim.faults.send_connectivity(1102)
    qtbot.waitUntil(lambda: not main_window.banner.isVisible(), timeout=5000)


def test_status_bar_badges_follow_the_status(qtbot, make_broker, ui_settings):
    window = MainWindow(make_broker(), ui_settings)
    qtbot.addWidget(window)
    window.show()
    assert window.banner.isVisible()  # never connected: says how to get connected
    assert "practice" in window.banner.label.text()
    assert not window.status_bar.type_badge.isVisible()  # no account yet: no empty "—" chip
    live = ConnectionStatus(
        state=ConnectionState.CONNECTED, accounts=("U7654321",), account="U7654321", is_paper=False, readonly=True
    )
    window._on_state_changed(live)
    bar = window.status_bar
    assert bar.type_badge.text() == "LIVE" and bar.type_badge.property("badge") == "live"
    assert bar.type_badge.isVisible() and bar.readonly_badge.isVisible()
    assert "LIVE" in window.windowTitle()
    window._on_state_changed(replace(live, state=ConnectionState.DISCONNECTED))
    assert window.banner.isVisible() and window.banner.property("level") == "error"
    bar.show_data_type(MarketDataType.DELAYED)
    assert bar.data_badge.text() == "data delayed"
    window.close()


def test_window_state_and_tab_persist(qtbot, make_broker, ui_settings):
    broker = make_broker()
    window = MainWindow(broker, ui_settings)
    qtbot.addWidget(window)
    window.show()
    assert window.current_tab_name() == "connection"  # first run opens on Connection
    # the other tabs are built just after the first paint; the ticket sets the window's minimum size
    qtbot.waitUntil(lambda: not window.deferred_tabs(), timeout=5000)
    window.resize(701, 533)  # inside the offscreen screen (800 x 600): restoreGeometry clamps to it
    window.show_tab("account")
    size = (window.width(), window.height())
    assert size != (1280, 820)  # not the default any more
    window.close()

    again = MainWindow(broker, ui_settings)
    qtbot.addWidget(again)
    again.show()
    assert again.current_tab_name() == "account"
    assert (again.width(), again.height()) == size
    again.close()


def test_close_stops_every_timer_and_unsubscribes(qtbot, make_broker, ui_settings):
    broker = make_broker()
    window = MainWindow(broker, ui_settings)
    qtbot.addWidget(window)
    window.show()
    assert len(broker.state_changed) > 0
    with qtbot.waitSignal(window.closed, timeout=2000):
        window.close()
    assert [t for t in window.findChildren(QTimer) if t.isActive()] == []
    assert len(broker.state_changed) == 0
    assert len(broker.account_changed) == 0


def test_cross_tab_requests_open_the_ticket(qtbot, main_window):
    tabs = main_window.tabs
    request = {"symbol": "AAPL", "side": "SELL", "quantity": None, "limit_price": None}
    main_window.show_tab("connection")
    for source in ("positions", "quotes"):
        main_window.show_tab("connection")
        tabs[source].ticket_requested.emit(request)
        assert main_window.current_tab_name() == "ticket"
    tabs["positions"].quote_requested.emit("MSFT")
    assert main_window.current_tab_name() == "quotes"


def test_status_bar_shows_delayed_market_data(qtbot, sim, main_window, broker, run_async):
    sim.faults.set_market_data_live(False)  # no subscription: the broker falls back to delayed data
    instrument = run_async(broker.resolve("AAPL"))
    run_async(broker.subscribe(instrument), timeout=15)
    badge = main_window.status_bar.data_badge
    qtbot.waitUntil(lambda: badge.text() == "data delayed", timeout=10000)
    assert badge.property("badge") == "delayed"
    broker.unsubscribe(instrument)


def test_status_bar_says_data_stale_while_degraded_and_live_again_after(qtbot, sim, main_window, broker, run_async):
    """QA F30: during 1100 the market-data badge is "data stale", never green "data live"; 1101 / 1102 restore it."""
    instrument = run_async(broker.resolve("AAPL"))
    run_async(broker.subscribe(instrument), timeout=15)
    badge = main_window.status_bar.data_badge
    qtbot.waitUntil(lambda: badge.text() == "data live", timeout=10000)
    assert badge.property("badge") == "live-data"
    for restored in (1101, 1102):
        sim.faults.send_connectivity(1100)
        qtbot.waitUntil(lambda: broker.status.state is ConnectionState.DEGRADED, timeout=5000)
        assert badge.text() == "data stale" and badge.property("badge") == "stale"
        assert "lost IB's servers" in badge.toolTip()
        sim.faults.send_connectivity(restored)
        qtbot.waitUntil(lambda: broker.status.state is ConnectionState.CONNECTED, timeout=5000)
        qtbot.waitUntil(lambda: badge.text() == "data live", timeout=10000)
        assert badge.property("badge") == "live-data" and badge.toolTip() == ""
    broker.unsubscribe(instrument)


def test_status_bar_data_badge_is_stale_while_reconnecting(qtbot, make_broker, ui_settings):
    window = MainWindow(make_broker(), ui_settings)
    qtbot.addWidget(window)
    window.show()
    bar = window.status_bar
    connected = ConnectionStatus(state=ConnectionState.CONNECTED, accounts=("DU1",), account="DU1", is_paper=True)
    window._on_state_changed(connected)
    bar.show_data_type(MarketDataType.LIVE)
    window._on_state_changed(replace(connected, state=ConnectionState.RECONNECTING))
    assert bar.data_badge.text() == "data stale"
    window._on_state_changed(replace(connected, state=ConnectionState.DISCONNECTED))
    assert bar.data_badge.text() == "data —"
    window.close()


def test_tabs_are_built_when_first_needed_and_all_soon_after_the_first_paint(qtbot, make_broker, ui_settings):
    window = MainWindow(make_broker(), ui_settings)
    qtbot.addWidget(window)
    bar = window.tab_widget
    # Only the first screen is built with the window; every tab has its title in the bar already.
    assert window.tabs.unbuilt() == [n for n in TAB_NAMES if n != "connection"]
    assert [bar.tabText(i) for i in range(bar.count())] == [window.tab_title(n) for n in TAB_NAMES]
    # Asking for a tab builds it in its own place in the bar.
    orders = window.tabs["orders"]
    assert bar.widget(TAB_NAMES.index("orders")) is orders and window.tabs.is_built("orders")
    # Clicking the title of a tab not built yet shows the real tab.
    bar.setCurrentIndex(TAB_NAMES.index("positions"))
    assert bar.currentWidget() is window.tabs.built_tab("positions") is not None
    assert window.current_tab_name() == "positions"
    # Once shown, the rest are built in the background, one per turn of the event loop; Quotes (quote
    # streams, chart history) only when it is first shown.
    window.show()
    qtbot.waitUntil(lambda: not window.deferred_tabs(), timeout=5000)
    assert window.tabs.unbuilt() == sorted(BUILT_WHEN_SHOWN) == ["quotes"]
    window.show_tab("quotes")
    assert window.tabs.unbuilt() == [] and window.current_tab_name() == "quotes"
    assert [bar.widget(i) for i in range(bar.count())] == [window.tabs.built_tab(n) for n in TAB_NAMES]
    assert window.tab_errors == {}
    window.close()
