"""How to run the practice exchange (``SimConfig``): the one object the CLI, the embedding thread and tests fill."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ACCOUNT_PUSH_SECONDS = 1.0  # live account values / portfolio / PnL cadence while prices move


@dataclass
class SimConfig:
    """How to run the practice exchange. ``port=0`` picks a free port (read it back from ``.port``)."""

    host: str = "127.0.0.1"
    port: int = 0
    accounts: tuple[str, ...] = ("DU111111", "DU222222")
    seed: int = 1
    session_mode: str = "always"  # "always" open, or "real" US/HK sessions incl. the HK lunch break
    quote_interval: float = 0.25  # seconds between quote updates of every instrument
    synthetic_symbols: int = 0  # extra generated US instruments SYM0001.. (benchmarks)
    state_file: str | Path | None = None
    log_requests: bool = False
    starting_cash: dict[str, Decimal] | None = None  # None: the data file's default
    market_data_live: bool = True
    readonly: bool = False
    pacing: bool = False
    delay_replies: float = 0.0
    refuse_for: float = 0.0  # refuse connections for this long after start (a TWS that is restarting)
    max_market_data_lines: int = 0  # 0 = unlimited (TWS's default is 100; benchmarks stream 1000)
    account_push_seconds: float = ACCOUNT_PUSH_SECONDS
    replay: object | None = None  # a sim/replay.py ReplaySession: replay a recorded day instead of the random walk
    commission_plan: str = ""  # "fixed" or "tiered" IBKR Pro pricing; "" = commissions.json's commission_plan
