"""Entry point of the frozen ``ibpanel`` executable (PyInstaller runs this file as __main__).

Same behaviour as the installed ``ibpanel`` console script; the only extras are what a frozen,
windowed program needs before the CLI runs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _ensure_stdio() -> None:
    """Give a windowed Windows build a stdout/stderr so --smoke-test and --help can print.

    A windowed Windows executable starts with sys.stdout = None. When it was started from a
    console (CI, a user's terminal), attach to that console; otherwise write to the null device
    so a stray print can never crash the panel.
    """
    if sys.stdout is not None and sys.stderr is not None:
        return
    stream = None
    if sys.platform == "win32":
        import ctypes

        attach_parent_process = -1
        if ctypes.windll.kernel32.AttachConsole(attach_parent_process):
            stream = open("CONOUT$", "w", encoding="utf-8", errors="replace", buffering=1)
    if stream is None:
        stream = open(os.devnull, "w", encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream


def main() -> int:
    multiprocessing.freeze_support()
    _ensure_stdio()
    from ibpanel.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
