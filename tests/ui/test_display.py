"""Without a display Qt aborts the process with a core dump; the panel must say what to do and exit 3."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ibpanel.ui.display import NO_DISPLAY_EXIT, XCB_LIBRARIES, display_problem, missing_libraries


def _without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONFAULTHANDLER"] = "0"
    return env


@pytest.mark.parametrize("flags", [[], ["--smoke-test"]], ids=["window", "smoke-test"])
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for Linux")
def test_no_display_exits_with_a_message_instead_of_a_core_dump(flags):
    run = subprocess.run([sys.executable, "-m", "ibpanel", *flags], env=_without_display(), capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == NO_DISPLAY_EXIT, (run.returncode, run.stderr[-2000:])
    assert "cannot open a window" in run.stderr and "no display" in run.stderr
    assert "QT_QPA_PLATFORM=offscreen" in run.stderr
    assert "core dumped" not in run.stderr and "Aborted" not in run.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for Linux")
def test_a_display_nobody_answers_on_is_a_message_not_a_core_dump():
    free = next(n for n in range(93, 200) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    env = {**_without_display(), "DISPLAY": f":{free}"}  # no X server there (an SSH session's stale DISPLAY)
    run = subprocess.run([sys.executable, "-m", "ibpanel", "--smoke-test"], env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == NO_DISPLAY_EXIT, (run.returncode, run.stderr[-2000:])
    assert f"no X server answers on DISPLAY=:{free}" in run.stderr and "QT_QPA_PLATFORM=offscreen" in run.stderr


def test_display_checks_follow_the_chosen_platform():
    assert display_problem({}, "linux") is not None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert "DISPLAY is not set" in display_problem({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "w0"}, "linux")
    assert "WAYLAND_DISPLAY is not set" in display_problem({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux")
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "win32") is None and display_problem({}, "darwin") is None


def test_a_missing_library_is_named_and_one_that_loads_is_not():
    assert missing_libraries(["libibpanel-not-a-library.so.9", "libc.so.6"]) == ["libibpanel-not-a-library.so.9"]
    assert "libxcb-icccm.so.4" in XCB_LIBRARIES and XCB_LIBRARIES["libxcb-keysyms.so.1"] == "libxcb-keysyms1"


def test_readme_lists_every_package_the_display_check_names():
    """The README's Linux list and the check's list are one list: a fresh machine with the README's
    packages passes the check."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"needs these system libraries.*?`sudo apt-get install ([^`]+)`", readme, re.DOTALL)
    assert match, "README's Quick start has no Linux package list"
    listed = set(match.group(1).split())
    assert set(XCB_LIBRARIES.values()) <= listed, sorted(set(XCB_LIBRARIES.values()) - listed)
