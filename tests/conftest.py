"""Shared test setup: headless Qt, an isolated user directory, and the practice exchange fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own settings / journal / log directories."""
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path / "ibpanel-home"))
    yield
