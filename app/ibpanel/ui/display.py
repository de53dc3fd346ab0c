"""Can Qt open a window here? Checked before the QApplication exists, because Qt cannot say so itself.

On Linux without a display, or without the system libraries of Qt's xcb plugin, creating the
QApplication aborts the process (a core dump, after a message that names the wrong library). This
module finds both cases first, so the panel exits with a message that says what to do instead.
Imports no Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable, Mapping

#: What Qt 6's xcb platform plugin loads beyond the Qt libraries (``ldd`` on PySide6's
#: ``Qt/plugins/platforms/libqxcb.so`` and ``Qt/lib/libQt6XcbQpa.so.6``), with the Debian / Ubuntu
#: package of each. README.md's Linux list carries the same packages.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}

#: Exit code of the panel when it cannot open a window (distinct from 1, a failed run, and 2, bad arguments).
NO_DISPLAY_EXIT = 3

_OFFSCREEN_HINT = ("For a run without a window (--smoke-test, --screenshot, CI) set QT_QPA_PLATFORM=offscreen, "
                   "e.g. `QT_QPA_PLATFORM=offscreen ibpanel --smoke-test`.")


def missing_libraries(sonames: Iterable[str]) -> list[str]:
    """The shared libraries of ``sonames`` that the dynamic loader cannot load."""
    missing = []
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(soname)
    return missing


def x_display_reachable(display: str) -> bool:
    """True when an X server answers on ``display`` (libxcb's own connect, as Qt's plugin would do)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True  # the library check reports it missing
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)  # also frees a failed connection object


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why Qt could not open a window here (the message to print), or None when it can (or we cannot tell).

    Only Linux is checked: Windows and macOS always have their platform plugin. ``QT_QPA_PLATFORM``
    naming another plugin (offscreen, minimal, vnc, eglfs, ...) is taken as the user's choice.
    """
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return None
    chosen = (env.get("QT_QPA_PLATFORM") or "").split(":", 1)[0].split(";", 1)[0].strip().lower()
    if chosen and chosen not in ("xcb", "wayland", "wayland-egl"):
        return None
    x11, wayland = bool(env.get("DISPLAY")), bool(env.get("WAYLAND_DISPLAY"))
    if chosen == "xcb":
        unset = "" if x11 else "DISPLAY is not set"
    elif chosen:
        unset = "" if wayland else "WAYLAND_DISPLAY is not set"
    else:
        unset = "" if x11 or wayland else "neither DISPLAY nor WAYLAND_DISPLAY is set"
    if unset:
        return (f"cannot open a window: there is no display ({unset}). Run it in a desktop session "
                f"(or under Xvfb with DISPLAY set). {_OFFSCREEN_HINT}")
    uses_xcb = chosen == "xcb" or (not chosen and not wayland)
    if uses_xcb:
        missing = missing_libraries(XCB_LIBRARIES)
        if missing:
            packages = " ".join(dict.fromkeys(XCB_LIBRARIES[m] for m in missing))
            return (f"cannot open a window: Qt's X11 (xcb) plugin needs system libraries that are not "
                    f"installed: {', '.join(missing)}. On Debian / Ubuntu: sudo apt-get install {packages} "
                    f"(README.md, Quick start, lists every package). {_OFFSCREEN_HINT}")
        display = env.get("DISPLAY", "")
        if not x_display_reachable(display):
            return (f"cannot open a window: no X server answers on DISPLAY={display} (an SSH session without X "
                    f"forwarding, or a display that has gone). {_OFFSCREEN_HINT}")
    return None
