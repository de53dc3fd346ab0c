"""Packaging tests: register the ``slow`` marker (slow but part of the normal run)."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes tens of seconds (clones, venvs); still part of the default run")
