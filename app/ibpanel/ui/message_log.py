"""The Connection tab's message log: notices from TWS / IB Gateway and the panel, one line each, errors in colour."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QPlainTextEdit, QWidget

from ibpanel.broker.models import Notice
from ibpanel.ui.style import PALETTE

MAX_LINES = 2000  # the oldest lines go first; the log file keeps everything


class MessageLog(QPlainTextEdit):
    """A read-only log of timestamped lines; ``append(line, severity)`` colours warnings and errors."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setAccessibleName("Messages from IB")
        self.setMaximumBlockCount(MAX_LINES)
        self.setPlaceholderText("Notices from TWS / IB Gateway appear here.")

    def append(self, line: str, severity: str = "info") -> None:
        colour = {"error": PALETTE["down"], "warning": PALETTE["warning"]}.get(severity)
        if colour is None:
            self.appendPlainText(line)
        else:
            # pre-wrap: keep the column spacing the plain lines have.
            self.appendHtml(f'<span style="color:{colour}; white-space:pre-wrap">{html.escape(line)}</span>')

    def add_notice(self, notice: Notice) -> None:
        """One line for a broker notice: time, severity, IB's code, the message and what to do."""
        stamp = notice.time.astimezone().strftime("%H:%M:%S")
        advice = f" — {notice.advice}" if notice.advice else ""
        code = f"[{notice.code}] " if notice.code >= 0 else ""
        self.append(f"{stamp}  {notice.severity.upper():7} {code}{notice.message}{advice}", notice.severity)
