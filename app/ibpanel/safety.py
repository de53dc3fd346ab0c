"""Safety limits for every front door (panel, ``ibpanel --api``, ``ibpanel serve``): one definition.

The limits live in the ``[safety]`` section of the profile's settings file
(``paths.config_dir(profile)/settings.ini``, the same file the panel's QSettings writes)::

    [safety]
    max_order_value_usd=1000000    ; refuse a single order worth more than this (per currency)
    max_order_value_hkd=8000000
    fat_finger_pct=10              ; refuse a limit / stop price this far (%) from the last trade
    max_order_wait_s=2             ; refuse an order that would wait longer than this to be sent (back-pressure)

Missing file, section or keys give the defaults; a value that is not a positive number is
logged and replaced by its default (a typo must never switch a limit off). Qt-free, so the
headless ``ibpanel serve`` reads the same limits without loading Qt.
"""

from __future__ import annotations

import configparser
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ibpanel import paths
from ibpanel.numbers import decimal_or_none

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.ini"
SECTION = "safety"
FAT_FINGER_KEY = "fat_finger_pct"
MAX_ORDER_VALUE_PREFIX = "max_order_value_"
MAX_ORDER_WAIT_KEY = "max_order_wait_s"

#: Refuse a single order worth more than this, per currency (the instrument's currency).
DEFAULT_MAX_ORDER_VALUE: dict[str, Decimal] = {"USD": Decimal(1_000_000), "HKD": Decimal(8_000_000)}
#: Refuse a limit / stop price more than this percentage away from the last trade.
DEFAULT_FAT_FINGER_PCT = Decimal(10)
#: Refuse (API: 503 with Retry-After) an order that would wait longer than this many seconds behind orders
#: already queued for sending; nothing is sent.
DEFAULT_MAX_ORDER_WAIT = Decimal(2)


def max_order_value_key(currency: str) -> str:
    """The settings key (inside ``[safety]``) of one currency's order-value limit, e.g. ``max_order_value_usd``."""
    return f"{MAX_ORDER_VALUE_PREFIX}{currency.lower()}"


def settings_path(profile: str = paths.DEFAULT_PROFILE) -> Path:
    """The profile's settings file, where the ``[safety]`` section lives."""
    return paths.config_dir(profile) / SETTINGS_FILE


def default_values() -> dict[str, Decimal]:
    """Every ``[safety]`` key with its default (what a fresh settings file gets)."""
    values = {max_order_value_key(ccy): limit for ccy, limit in DEFAULT_MAX_ORDER_VALUE.items()}
    values[FAT_FINGER_KEY] = DEFAULT_FAT_FINGER_PCT
    values[MAX_ORDER_WAIT_KEY] = DEFAULT_MAX_ORDER_WAIT
    return values


@dataclass(frozen=True)
class SafetyLimits:
    """The limits the Broker enforces before anything is sent.

    ``source``: the settings file they came from (named in messages so a user can find them).
    """

    max_order_value: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_MAX_ORDER_VALUE))
    fat_finger_pct: Decimal = DEFAULT_FAT_FINGER_PCT
    source: Path | None = None
    max_order_wait: Decimal = DEFAULT_MAX_ORDER_WAIT

    def broker_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Broker(...)``: ``max_order_value``, ``fat_finger_pct``, ``max_order_wait`` and, when the
        limits came from a file, ``limits_source`` (its path: refusals name the key and this file)."""
        options: dict[str, Any] = {"max_order_value": dict(self.max_order_value), "fat_finger_pct": self.fat_finger_pct,
                                   "max_order_wait": float(self.max_order_wait)}
        if self.source is not None:
            options["limits_source"] = str(self.source)
        return options

    def where(self, key: str) -> str:
        """Where a limit is set, for messages: ``safety/fat_finger_pct in /path/settings.ini``."""
        place = f" in {self.source}" if self.source is not None else ""
        return f"{SECTION}/{key}{place}"


def _positive(raw: Any) -> Decimal | None:
    if isinstance(raw, (list, tuple)):  # QSettings reads an unquoted "1,000,000" back as a list
        raw = ",".join(str(part) for part in raw)
    text = str(raw).strip().strip('"').strip()
    value = decimal_or_none(text.replace(",", "").replace("_", ""))
    return value if value is not None and value > 0 else None


def limits_from_values(
    values: Mapping[str, Any], source: Path | None = None, *, on_bad: Callable[[str, Any, Decimal], None] | None = None
) -> SafetyLimits:
    """Build limits from the ``[safety]`` section's key/value pairs (keys without the ``safety/`` prefix).

    Used by ``load_safety_limits`` (configparser) and by the panel (QSettings), so both read the
    same keys with the same defaults. Any ``max_order_value_<ccy>`` key adds a currency.
    """
    lowered = {str(k).strip().lower(): v for k, v in values.items()}
    report = on_bad or _log_bad

    def pick(key: str, default: Decimal) -> Decimal:
        if key not in lowered or lowered[key] is None or str(lowered[key]).strip() == "":
            return default
        value = _positive(lowered[key])
        if value is None:
            report(key, lowered[key], default)
            return default
        return value

    max_values = {ccy: pick(max_order_value_key(ccy), default) for ccy, default in DEFAULT_MAX_ORDER_VALUE.items()}
    for key in lowered:
        if key.startswith(MAX_ORDER_VALUE_PREFIX):
            currency = key[len(MAX_ORDER_VALUE_PREFIX):].upper()
            if currency and currency not in max_values:
                value = _positive(lowered[key])
                if value is None:
                    report(key, lowered[key], Decimal(0))
                else:
                    max_values[currency] = value
    return SafetyLimits(max_values, pick(FAT_FINGER_KEY, DEFAULT_FAT_FINGER_PCT), source,
                        pick(MAX_ORDER_WAIT_KEY, DEFAULT_MAX_ORDER_WAIT))


def _log_bad(key: str, raw: Any, default: Decimal) -> None:
    if default:
        log.warning("settings: %s/%s = %r is not a positive number; using the default %s", SECTION, key, raw, default)
    else:
        log.warning("settings: %s/%s = %r is not a positive number; ignored", SECTION, key, raw)


def load_safety_limits(profile: str = paths.DEFAULT_PROFILE, path: Path | None = None) -> SafetyLimits:
    """The profile's safety limits from its settings.ini ``[safety]`` section (defaults for anything missing).

    Never raises for a missing or unreadable file: it logs why and returns the defaults.
    """
    path = path or settings_path(profile)
    values: dict[str, str] = {}
    if path.exists():
        # QSettings' INI: no interpolation ("%" appears in its escapes), keys may repeat across edits.
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(path, encoding="utf-8")
            if parser.has_section(SECTION):
                values = dict(parser.items(SECTION))
        except (configparser.Error, OSError, UnicodeDecodeError) as exc:
            log.warning("settings: could not read %s (%s); using the default safety limits", path, exc)
    return limits_from_values(values, path)


def describe(limits: SafetyLimits, currencies: Iterable[str] | None = None) -> str:
    """One line for logs and the serve banner: ``max order USD 1,000,000, HKD 8,000,000; fat finger 10%``."""
    chosen = currencies or limits.max_order_value.keys()
    parts = ", ".join(f"{ccy} {limits.max_order_value[ccy]:,f}" for ccy in chosen if ccy in limits.max_order_value)
    return f"max order {parts}; fat finger {limits.fat_finger_pct}%"
