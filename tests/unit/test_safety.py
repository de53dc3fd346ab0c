"""Safety limits: one Qt-free reader of settings.ini's [safety] section for every front door."""

from __future__ import annotations

import logging
import subprocess
import sys
from decimal import Decimal

from ibpanel import paths, safety
from ibpanel.safety import SafetyLimits, load_safety_limits


def _write(profile: str, text: str) -> None:
    safety.settings_path(profile).write_text(text, encoding="utf-8")


def test_defaults_without_a_settings_file():
    limits = load_safety_limits("nofile")
    assert limits.max_order_value == {"USD": Decimal(1_000_000), "HKD": Decimal(8_000_000)}
    assert limits.fat_finger_pct == Decimal(10)
    assert limits.source == paths.config_dir("nofile") / "settings.ini"
    assert limits.broker_options() == {"max_order_value": {"USD": Decimal(1_000_000), "HKD": Decimal(8_000_000)},
                                       "fat_finger_pct": Decimal(10), "max_order_wait": 2.0,
                                       # Refusals name the key and this file (even before it exists: create it there).
                                       "limits_source": str(paths.config_dir("nofile") / "settings.ini")}
    assert "limits_source" not in SafetyLimits().broker_options()  # no file behind them: nothing to name


def test_reads_the_keys_the_panel_writes():
    # The shape QSettings' IniFormat writes (other groups, @ByteArray values with % escapes).
    _write("p1", "[General]\napp%2Fstarted=true\n\n[window]\ngeometry=@ByteArray(\\x1\\xd9\\xd0%)\n\n"
                 "[safety]\nmax_order_value_usd=250000\nmax_order_value_hkd=2000000\nfat_finger_pct=5\n"
                 "max_order_value_eur=50000\n")
    limits = load_safety_limits("p1")
    assert limits.max_order_value == {"USD": Decimal(250_000), "HKD": Decimal(2_000_000), "EUR": Decimal(50_000)}
    assert limits.fat_finger_pct == Decimal(5)
    assert limits.where("fat_finger_pct") == f"safety/fat_finger_pct in {paths.config_dir('p1') / 'settings.ini'}"


def test_the_order_wait_bound_is_a_setting():
    _write("p6", "[safety]\nmax_order_wait_s=0.5\n")
    assert load_safety_limits("p6").broker_options()["max_order_wait"] == 0.5
    _write("p7", "[safety]\nmax_order_wait_s=0\n")  # a bound of 0 would refuse every order: the default stands
    assert load_safety_limits("p7").broker_options()["max_order_wait"] == 2.0


def test_bad_values_fall_back_to_defaults_and_say_so(caplog):
    _write("p2", "[safety]\nmax_order_value_usd=lots\nmax_order_value_hkd=-5\nfat_finger_pct=0\n")
    with caplog.at_level(logging.WARNING, logger="ibpanel.safety"):
        limits = load_safety_limits("p2")
    # A typo never switches a limit off: the defaults stay.
    assert limits == SafetyLimits(source=limits.source)
    assert "max_order_value_usd = 'lots'" in caplog.text and "fat_finger_pct = '0'" in caplog.text


def test_thousands_separators_and_decimals_are_understood():
    _write("p3", '[safety]\nmax_order_value_usd="1,500,000"\nfat_finger_pct=7.5\n')
    limits = load_safety_limits("p3")
    assert limits.max_order_value["USD"] == Decimal(1_500_000) and limits.fat_finger_pct == Decimal("7.5")


def test_a_broken_file_gives_the_defaults(caplog):
    _write("p4", "this is not an ini file\n[safety\n")
    with caplog.at_level(logging.WARNING, logger="ibpanel.safety"):
        limits = load_safety_limits("p4")
    assert limits.max_order_value["USD"] == Decimal(1_000_000) and "could not read" in caplog.text


def test_a_missing_section_gives_the_defaults():
    _write("p5", "[connection]\nport=7497\n")
    assert load_safety_limits("p5").fat_finger_pct == Decimal(10)


def test_module_loads_no_qt():
    code = "import sys, ibpanel.safety; print(any(m.startswith(('PySide6', 'qasync', 'pyqtgraph')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
