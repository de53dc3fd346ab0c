"""The API on the panel's loop: qasync's Qt event loop, one thread, with the broker and the practice exchange.

Runs in a subprocess so its QApplication and loop never meet the other tests' loops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, tempfile, threading
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    import qasync
    import aiohttp
    from ibpanel.api.server import start_api
    from ibpanel.broker.service import Broker
    from ibpanel.sim.server import SimConfig, SimServer

    async def main():
        loop = asyncio.get_running_loop()
        sim = SimServer(SimConfig(port=0, seed=2))
        await sim.start()
        broker = Broker(Path(tempfile.mkdtemp()) / "journal.sqlite3")
        api = await start_api(broker, port=0, practice=sim)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(api.url + "/api/ibkr/connect", json={"port": 7497, "clientId": 3}) as r:
                    connect = await r.json()
                body = {"symbol": "AAPL", "side": "buy", "quantity": 10, "marketType": "USStock"}
                async with session.post(api.url + "/api/ibkr/order", json=body) as r:
                    order = await r.json()
            print(json.dumps({"loop": type(loop).__module__, "threads": threading.active_count(),
                              "connect": connect["success"], "order": order["success"],
                              "status": order["data"]["status"]}))
        finally:
            await api.close()
            await broker.close()
            await sim.stop()

    app = QApplication(sys.argv)
    qasync.run(main())
    """
)


def test_api_serves_on_the_qasync_loop_without_threads(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "IBPANEL_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loop"].startswith("qasync")
    assert result["connect"] is True and result["order"] is True and result["status"] in ("Filled", "Submitted")
    # Only the main thread: the API, broker and practice exchange share the Qt loop (Qt's own threads are not counted).
    assert result["threads"] == 1
