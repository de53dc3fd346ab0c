"""Where the app finds its bundled resources and keeps the user's files.

Works the same from a source checkout, an installed wheel and a PyInstaller bundle.
A profile name (``--profile``) gives a separate settings/journal/log set.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

import platformdirs

APP_NAME = "ibpanel"
APP_AUTHOR = "ibpanel"
DEFAULT_PROFILE = "default"


def frozen_bundle_dir() -> Path | None:
    """The unpacked PyInstaller bundle (``sys._MEIPASS``) when running frozen, else None."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) if getattr(sys, "frozen", False) and bundle else None


def resource_path(*parts: str) -> Path:
    """Path of a bundled resource file, e.g. ``resource_path("sim", "instruments.json")``.

    Frozen, the files sit under ``<bundle>/ibpanel/resources`` (packaging/ibpanel.spec puts them
    there); otherwise they come from the installed or checked-out ``ibpanel.resources`` package.
    """
    bundle = frozen_bundle_dir()
    if bundle is not None:
        return bundle.joinpath("ibpanel", "resources", *parts)
    base = resources.files("ibpanel.resources")
    return Path(str(base.joinpath(*parts)))


def _profile_dir(root: str, profile: str) -> Path:
    path = Path(root) if profile == DEFAULT_PROFILE else Path(root) / "profiles" / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(profile: str = DEFAULT_PROFILE) -> Path:
    """User data directory (order journal). ``IBPANEL_HOME`` overrides, for tests and portable installs."""
    override = os.environ.get("IBPANEL_HOME")
    root = os.path.join(override, "data") if override else platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)
    return _profile_dir(root, profile)


def practice_state_path(profile: str = DEFAULT_PROFILE) -> Path:
    """The practice account (cash, positions, orders, fills) kept between practice sessions of a profile."""
    return data_dir(profile) / "practice-state.json"


def config_dir(profile: str = DEFAULT_PROFILE) -> Path:
    override = os.environ.get("IBPANEL_HOME")
    root = os.path.join(override, "config") if override else platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)
    return _profile_dir(root, profile)


def log_dir(profile: str = DEFAULT_PROFILE) -> Path:
    override = os.environ.get("IBPANEL_HOME")
    root = os.path.join(override, "logs") if override else platformdirs.user_log_dir(APP_NAME, APP_AUTHOR)
    return _profile_dir(root, profile)
