"""House rule: a module over 500 lines says why near its top ("over 500 lines because ...")."""

from __future__ import annotations

import pathlib

PKG = pathlib.Path(__file__).resolve().parents[2] / "app" / "ibpanel"
LIMIT = 500
REASON = "over 500 lines because"


def test_every_module_over_500_lines_says_why_at_its_top():
    unexplained = []
    for path in sorted(PKG.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > LIMIT and REASON not in "\n".join(lines[:15]).lower():
            unexplained.append(f"{path.relative_to(PKG)} ({len(lines)} lines)")
    assert unexplained == [], "modules over 500 lines without a reason at their top: " + ", ".join(unexplained)
