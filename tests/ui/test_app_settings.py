"""Settings: values survive a new Settings object (a restart) with their types; profiles are separate."""

from __future__ import annotations

import asyncio

from ibpanel import paths
from ibpanel.ui.settings import Settings
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QTableView


def test_first_run_until_something_is_saved():
    first = Settings("default")
    assert first.first_run
    first.mark_started()
    assert not Settings("default").first_run


def test_values_keep_their_types_across_restart():
    s = Settings()
    s.set("connection/port", 4002)
    s.set("connection/readonly", True)
    s.set("connection/auto_reconnect", False)
    s.set("connection/host", "127.0.0.1")
    s.set("chart/width", 1.5)
    s.set_json("quotes/watchlist", ["AAPL", "0700.HK", "BRK.B"])
    s.sync()

    again = Settings()
    assert again.get("connection/port", 7497) == 4002
    assert again.get("connection/readonly", False) is True
    assert again.get("connection/auto_reconnect", True) is False
    assert again.get("connection/host", "") == "127.0.0.1"
    assert again.get("chart/width", 0.0) == 1.5
    assert again.get_json("quotes/watchlist", []) == ["AAPL", "0700.HK", "BRK.B"]
    assert again.get("missing/key", "fallback") == "fallback"
    assert again.get_json("missing/json", {"a": 1}) == {"a": 1}


def test_garbage_in_the_file_falls_back_to_default():
    s = Settings()
    s.set("connection/port", "not a number")
    s.set("quotes/watchlist", "[broken json")
    assert s.get("connection/port", 7497) == 7497
    assert s.get_json("quotes/watchlist", []) == []


def test_profiles_are_separate_files():
    Settings("default").set("connection/port", 7496)
    other = Settings("work")
    assert other.get("connection/port", 4002) == 4002
    assert other.path.parent == paths.config_dir("work")
    assert Settings("default").path != other.path


def test_header_state_round_trip(qtbot):
    model = QStandardItemModel(3, 4)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    header = view.horizontalHeader()
    header.resizeSection(2, 217)
    header.moveSection(0, 3)
    header.setSortIndicator(1, Qt.SortOrder.DescendingOrder)
    Settings().save_header("positions", header)
    Settings().sync()

    fresh = QTableView()
    qtbot.addWidget(fresh)
    fresh.setModel(QStandardItemModel(3, 4))
    assert Settings().restore_header("positions", fresh.horizontalHeader())
    assert fresh.horizontalHeader().sectionSize(2) == 217
    assert fresh.horizontalHeader().visualIndex(0) == 3
    assert not Settings().restore_header("orders", fresh.horizontalHeader())


def test_qasync_loop_runs_coroutines_in_sync_tests(run_async):
    """The shared loop pattern itself: a coroutine with a timer and a future completes under qtbot."""

    async def work():
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, fut.set_result, 42)
        await asyncio.sleep(0.01)  # the behaviour under test: a loop timer fires under qtbot
        return await fut

    assert run_async(work(), timeout=5.0) == 42


def test_safety_limits_default_and_from_settings():
    from decimal import Decimal

    from ibpanel.ui.app import safety_limits

    s = Settings()
    limits = safety_limits(s)
    assert limits["max_order_value"] == {"USD": Decimal(1_000_000), "HKD": Decimal(8_000_000)}
    assert limits["fat_finger_pct"] == Decimal(10)
    # Written back so the user can find them in settings.ini and change them.
    assert s.contains("safety/max_order_value_usd") and s.contains("safety/fat_finger_pct")
    s.set("safety/max_order_value_usd", "250000")
    s.set("safety/fat_finger_pct", "5")
    s.set("safety/max_order_value_hkd", "not a number")
    limits = safety_limits(Settings())
    assert limits["max_order_value"]["USD"] == Decimal(250_000)
    assert limits["max_order_value"]["HKD"] == Decimal(8_000_000)
    assert limits["fat_finger_pct"] == Decimal(5)


def test_panel_and_serve_read_the_same_safety_limits():
    """What the panel writes (QSettings) is what ``ibpanel serve`` reads (configparser): one definition."""
    from decimal import Decimal

    from ibpanel.safety import load_safety_limits
    from ibpanel.ui.app import safety_limits

    s = Settings("shared")
    assert safety_limits(s) == load_safety_limits("shared").broker_options()  # the defaults, on both sides
    s.set("safety/max_order_value_usd", 300000)
    s.set("safety/max_order_value_hkd", "2,000,000")
    s.set("safety/fat_finger_pct", 7.5)
    s.sync()
    panel = safety_limits(Settings("shared"))
    assert panel == load_safety_limits("shared").broker_options()
    assert panel["max_order_value"] == {"USD": Decimal(300_000), "HKD": Decimal(2_000_000)}
    assert panel["fat_finger_pct"] == Decimal("7.5")
