"""Helpers for the UI tests that run the whole app in-process (PanelApp) or probe its REST API."""

from __future__ import annotations

import asyncio
import json

from ibpanel.cli import build_parser
from ibpanel.ui.app import PanelApp


async def http_get(port: int, path: str) -> tuple[int, dict]:
    """A bare HTTP/1.1 GET on loopback: (status, JSON body). No client library, so nothing else runs on the loop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"{}")


def start_panel(args_list, qapp, tmp_path) -> tuple[PanelApp, asyncio.Future]:
    """Parse ``args_list`` like the command line and start the app's main() on the running qasync loop."""
    panel = PanelApp(build_parser().parse_args(args_list), qapp, log_path=tmp_path / "ibpanel.log", started=0.0)
    return panel, asyncio.ensure_future(panel.main())
