"""The Broker: the one trading service the panel and the REST API share.

CONTRACT (fixed at project start; the implementation fills in the bodies). UI and API code
against exactly these names. Everything runs on the asyncio loop that calls ``connect``
(under the panel that is qasync's Qt loop); every event below is emitted on that loop's
thread, synchronously, with our frozen dataclasses from ``ibpanel.broker.models``.

Events (``ibpanel.broker.events.Event``; ``broker.<name>.connect(handler)``):

================== ================================ ==============================================
event              payload                          when
================== ================================ ==============================================
state_changed      ConnectionStatus                 any change of connection state / account
notice             Notice                           every IB error / warning / info message
account_changed    AccountSummary                   account values of the selected account moved
positions_changed  tuple[Position, ...]             positions or their prices / P&L changed
order_changed      OrderView                        an order was placed, changed status, filled
fill_added         Fill                             an execution (and later its commission)
quotes_updated     tuple[Quote, ...]                streaming quotes changed (one emit per packet)
pnl_changed        PnL                              daily / unrealized / realized P&L changed
================== ================================ ==============================================

Errors: ``ibpanel.broker.exceptions`` (NotConnected, ConnectError, SymbolError, OrderRejected,
OrderNotFound, NotCancellable, BrokerTimeout), each with ``message`` and ``advice``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ibpanel.broker.events import Event
from ibpanel.broker.models import (
    AccountSummary,
    Bar,
    ConnectionParams,
    ConnectionStatus,
    Fill,
    Instrument,
    Market,
    OrderRequest,
    OrderView,
    PnL,
    Position,
    Quote,
    ValidationIssue,
    WhatIf,
)


class Broker:
    """See the module docstring for events. Construct once per process; connect many times."""

    def __init__(
        self,
        journal_path: Path | None = None,
        *,
        max_order_value: dict[str, Decimal] | None = None,  # per currency, e.g. {"USD": 1_000_000}
        fat_finger_pct: Decimal = Decimal(10),  # refuse a limit/stop price this far from the last trade
        reconnect_backoff: tuple[float, float] = (1.0, 30.0),  # first and largest delay, seconds
    ) -> None:
        self.state_changed = Event("state_changed")
        self.notice = Event("notice")
        self.account_changed = Event("account_changed")
        self.positions_changed = Event("positions_changed")
        self.order_changed = Event("order_changed")
        self.fill_added = Event("fill_added")
        self.quotes_updated = Event("quotes_updated")
        self.pnl_changed = Event("pnl_changed")
        raise NotImplementedError

    # --- connection -------------------------------------------------------------------------
    @property
    def status(self) -> ConnectionStatus: ...

    async def connect(self, params: ConnectionParams) -> ConnectionStatus:
        """Connect; raises ConnectError (with .failure: kind, message, advice, suggested_client_id)."""

    async def disconnect(self) -> None:
        """Disconnect politely and stop auto-reconnect. Safe to call when not connected."""

    def set_account(self, account: str) -> None:
        """Choose which managed account the views and new orders use. Raises BrokerError if unknown."""

    async def close(self) -> None:
        """Disconnect and close the journal (app shutdown)."""

    # --- symbols and rules ------------------------------------------------------------------
    async def resolve(self, text: str, market: Market | None = None) -> Instrument:
        """Parse what the user typed and qualify it with IB (cached). Raises SymbolError."""

    # --- orders -----------------------------------------------------------------------------
    async def check(self, request: OrderRequest) -> tuple[ValidationIssue, ...]:
        """Every rule the request breaks (empty when it may be sent). Sends nothing."""

    async def place(self, request: OrderRequest) -> OrderView:
        """Validate (raises OrderRejected), journal the intent, send. Returns the first snapshot."""

    async def preview(self, request: OrderRequest, timeout: float = 5.0) -> WhatIf:
        """What-if: commission and margin change. Validates first. Raises BrokerTimeout."""

    async def modify(
        self,
        order_id: int,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> OrderView:
        """Change a working order (validated like a new one). Raises OrderNotFound / NotCancellable."""

    async def cancel(self, order_id: int, timeout: float = 5.0) -> OrderView:
        """Cancel and wait until the exchange confirms. Raises OrderNotFound, NotCancellable, BrokerTimeout."""

    async def cancel_all(self) -> None:
        """Global cancel (every open order of every client on this TWS)."""

    def open_orders(self) -> tuple[OrderView, ...]: ...

    def completed_orders(self) -> tuple[OrderView, ...]: ...

    def order(self, order_id: int) -> OrderView | None: ...

    def fills(self) -> tuple[Fill, ...]: ...

    # --- account ----------------------------------------------------------------------------
    @property
    def accounts(self) -> tuple[str, ...]: ...

    def account_summary(self, account: str | None = None) -> AccountSummary | None: ...

    def positions(self, account: str | None = None) -> tuple[Position, ...]: ...

    def pnl(self, account: str | None = None) -> PnL | None: ...

    # --- market data ------------------------------------------------------------------------
    async def subscribe(self, instrument: Instrument) -> Quote:
        """Stream quotes for the instrument (idempotent, reference counted); falls back to delayed."""

    def unsubscribe(self, instrument: Instrument) -> None: ...

    async def snapshot(self, instrument: Instrument, timeout: float = 5.0) -> Quote:
        """One quote (from the stream if subscribed). Raises BrokerTimeout."""

    def quote(self, instrument: Instrument) -> Quote | None:
        """The latest streamed quote, or None."""

    async def bars(self, instrument: Instrument, duration: str = "1 D", bar_size: str = "5 mins") -> tuple[Bar, ...]:
        """Historical bars (TRADES) for the chart."""

    # --- journal ----------------------------------------------------------------------------
    def export_journal_csv(self, path: Path) -> int:
        """Write the order journal to CSV; returns the number of rows."""
