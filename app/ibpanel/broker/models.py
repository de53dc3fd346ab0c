"""Frozen dataclasses the UI and the API consume. Never an ib_async object past broker/.

Conventions: prices and quantities are ``Decimal`` where they are sent or compared to a
tick / lot (orders, rules); displayed market numbers (quotes, P&L, account values) are
``float``. Every value IB leaves unset (``sys.float_info.max``, ``2147483647``, NaN) is ``None``.
Times are timezone-aware ``datetime`` in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, IntEnum


class Market(str, Enum):
    """Which market an instrument trades on. The module's marketType values map here."""

    US = "US"  # SMART routed, USD ("USStock" in the original module)
    HK = "HK"  # SEHK, HKD ("HShare" in the original module)

    @classmethod
    def from_market_type(cls, value: str) -> Market:
        """Map the original module's ``marketType`` (USStock / HShare) or US / HK to a Market."""
        key = value.strip().lower()
        if key in ("usstock", "us", "usa", "stk"):
            return cls.US
        if key in ("hshare", "hk", "hkstock", "sehk"):
            return cls.HK
        raise ValueError(f"Unknown marketType {value!r}: use USStock or HShare")


@dataclass(frozen=True)
class Instrument:
    """A qualified stock. ``symbol`` is IB's spelling ("BRK B", "700"); ``display`` is ours ("BRK.B", "0700.HK")."""

    symbol: str
    market: Market
    exchange: str  # "SMART" or "SEHK"
    currency: str  # "USD" or "HKD"
    con_id: int | None = None
    primary_exchange: str | None = None
    long_name: str | None = None
    local_symbol: str | None = None
    min_tick: Decimal | None = None
    board_lot: int = 1
    lot_source: str = ""  # "contract details", "fallback table", "US whole shares"
    market_rule_ids: tuple[int, ...] = ()
    order_types: tuple[str, ...] = ()
    time_zone: str | None = None
    trading_hours: str | None = None
    liquid_hours: str | None = None

    @property
    def display(self) -> str:
        if self.market is Market.HK:
            return f"{int(self.symbol):04d}.HK" if self.symbol.isdigit() else f"{self.symbol}.HK"
        return self.symbol.replace(" ", ".")

    @property
    def key(self) -> str:
        """Stable identity for tables and caches: the conId when known, else market:symbol."""
        return str(self.con_id) if self.con_id else f"{self.market.value}:{self.symbol}"


class ConnectionState(str, Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"  # connected to TWS, but TWS lost its IB servers (1100)
    RECONNECTING = "reconnecting"


@dataclass(frozen=True)
class ConnectionParams:
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    account: str = ""
    readonly: bool = False
    timeout: float = 8.0
    auto_reconnect: bool = True
    practice: bool = False  # the built-in practice exchange: orders go to the practice journal


class FailureKind(str, Enum):
    NOTHING_LISTENING = "nothing_listening"  # TWS / Gateway not running, or wrong port
    HANDSHAKE_CLOSED = "handshake_closed"  # API not enabled, or host not trusted
    CLIENT_ID_IN_USE = "client_id_in_use"  # error 326
    TIMEOUT = "timeout"
    NOT_CONNECTED = "not_connected"
    OTHER = "other"
    UNKNOWN_ACCOUNT = "unknown_account"  # the account asked for is not managed by this login


@dataclass(frozen=True)
class ConnectionFailure:
    kind: FailureKind
    message: str  # one plain sentence: what happened
    advice: str  # what to do
    suggested_client_id: int | None = None
    detail: str = ""  # the technical cause (OS error text, ...) for the log; never part of ``message``


@dataclass(frozen=True)
class ConnectionStatus:
    state: ConnectionState = ConnectionState.DISCONNECTED
    params: ConnectionParams | None = None
    accounts: tuple[str, ...] = ()
    account: str | None = None  # the account orders and views use
    server_version: int | None = None
    connection_time: str | None = None
    is_paper: bool | None = None
    paper_reason: str = ""  # which rule decided paper vs live, in words
    readonly: bool = False
    failure: ConnectionFailure | None = None  # the last failure, if the last attempt failed
    reconnect_attempt: int = 0
    next_retry_in: float | None = None
    # TWS stopped answering (the heartbeat timed out) while the socket stays open: orders are refused
    stale: bool = False
    stale_reason: str = ""

    @property
    def connected(self) -> bool:
        return self.state in (ConnectionState.CONNECTED, ConnectionState.DEGRADED)


class Side(str, Enum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(str, Enum):
    MKT = "MKT"
    LMT = "LMT"
    STP = "STP"
    STP_LMT = "STP LMT"
    TRAIL = "TRAIL"  # trailing stop: trailing_amount or trailing_percent below (sell) / above (buy) the market
    TRAIL_LIMIT = "TRAIL LIMIT"  # trailing stop that becomes a limit order limit_offset beyond the stop
    MOC = "MOC"  # market on close (US)
    LOC = "LOC"  # limit on close (US)


class TimeInForce(str, Enum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    GTD = "GTD"  # good till good_till ("YYYYMMDD HH:MM:SS" in the exchange's time zone)
    OPG = "OPG"  # at the opening auction (US, MKT or LMT)


@dataclass(frozen=True)
class OrderRequest:
    """What the user asked for, before validation. ``symbol`` is what they typed."""

    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.LMT
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    outside_rth: bool = False
    account: str | None = None
    market: Market | None = None  # hint; otherwise detected from the symbol
    take_profit: Decimal | None = None  # bracket child (limit), optional
    stop_loss: Decimal | None = None  # bracket child (stop), optional
    stop_loss_trail: Decimal | None = None  # bracket child as a trailing stop by this amount, optional
    trailing_amount: Decimal | None = None  # TRAIL / TRAIL LIMIT: distance of the stop from the market
    trailing_percent: Decimal | None = None  # ... or that distance as a percent of the market
    limit_offset: Decimal | None = None  # TRAIL LIMIT: the limit sits this far beyond the stop
    good_till: str | None = None  # GTD: "YYYYMMDD HH:MM:SS" in the exchange's time zone
    source: str = "panel"  # "panel" or "api": kept in the journal


@dataclass(frozen=True)
class ValidationIssue:
    field: str  # "symbol", "quantity", "limit_price", "stop_price", "order_type", "tif", "account", "session", ...
    code: str  # stable machine code, e.g. "odd_lot", "off_tick", "readonly"
    message: str  # plain sentence that says what to do


class OrderStatus(str, Enum):
    UNCONFIRMED = "Unconfirmed"  # journal: intent written, no acknowledgement seen yet
    PENDING_SUBMIT = "PendingSubmit"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    PENDING_CANCEL = "PendingCancel"
    CANCELLED = "Cancelled"
    API_CANCELLED = "ApiCancelled"
    FILLED = "Filled"
    INACTIVE = "Inactive"
    REJECTED = "Rejected"  # refused by IB (error on a live order)
    NOT_SENT = "NotSent"  # journal: refused before sending, or the send failed

    @property
    def is_done(self) -> bool:
        return self in (
            OrderStatus.CANCELLED,
            OrderStatus.API_CANCELLED,
            OrderStatus.FILLED,
            OrderStatus.INACTIVE,
            OrderStatus.REJECTED,
            OrderStatus.NOT_SENT,
        )


@dataclass(frozen=True)
class OrderView:
    """One order as the panel shows it: a snapshot; a new one is emitted on every change."""

    order_id: int
    perm_id: int | None
    client_id: int | None
    journal_id: str | None
    account: str | None
    instrument: Instrument
    side: Side
    quantity: Decimal
    order_type: str  # str, not OrderType: TWS may show orders of types the panel does not create
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: str
    outside_rth: bool
    status: OrderStatus
    filled: Decimal = Decimal(0)
    remaining: Decimal = Decimal(0)
    avg_fill_price: float | None = None
    message: str = ""  # last error / warning text for this order
    parent_id: int | None = None  # a bracket child's entry order
    oca_group: str = ""  # one-cancels-all group ("" for none)
    trailing: str = ""  # a trailing stop's distance: "0.5" or "2%"
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Fill:
    exec_id: str
    order_id: int
    perm_id: int | None
    account: str
    instrument: Instrument
    side: Side
    quantity: Decimal
    price: float
    time: datetime
    commission: float | None = None
    commission_currency: str | None = None
    realized_pnl: float | None = None


@dataclass(frozen=True)
class AccountValue:
    account: str
    tag: str
    value: str
    currency: str


@dataclass(frozen=True)
class AccountSummary:
    """The numbers the Account tab shows for one account. Missing values are None."""

    account: str
    base_currency: str | None = None
    net_liquidation: float | None = None
    total_cash: float | None = None
    cash_by_currency: dict[str, float] = field(default_factory=dict)
    buying_power: float | None = None
    available_funds: float | None = None
    excess_liquidity: float | None = None
    init_margin: float | None = None
    maint_margin: float | None = None
    gross_position_value: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    daily_pnl: float | None = None
    values: tuple[AccountValue, ...] = ()  # everything TWS sent, for the API's summary
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Position:
    account: str
    instrument: Instrument
    quantity: Decimal
    avg_cost: float | None  # per share, in the instrument's currency
    market_price: float | None = None
    market_value: float | None = None  # real market value (quantity x price), never cost basis
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    # IB's single-position P&L (reqPnLSingle), in the account's BASE currency (not the instrument's)
    daily_pnl: float | None = None
    single_unrealized_pnl: float | None = None

    @property
    def currency(self) -> str:
        return self.instrument.currency

    @property
    def cost_basis(self) -> float | None:
        return None if self.avg_cost is None else float(self.quantity) * self.avg_cost


class MarketDataType(IntEnum):
    LIVE = 1
    FROZEN = 2
    DELAYED = 3
    DELAYED_FROZEN = 4

    @property
    def label(self) -> str:
        return {1: "live", 2: "frozen", 3: "delayed", 4: "delayed frozen"}[int(self)]


@dataclass(frozen=True)
class Quote:
    instrument: Instrument
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    last_size: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None  # previous close
    volume: float | None = None
    data_type: MarketDataType = MarketDataType.LIVE
    time: datetime | None = None  # when this update arrived
    stale: bool = False  # True while the connection is down or degraded
    unavailable: str = ""  # why no data can come (e.g. IB's market-data line limit, 101); "" when streaming
    last_time: datetime | None = None  # when the last trade printed, by the exchange's clock (tick 45)

    @property
    def change(self) -> float | None:
        if self.last is None or self.close is None:
            return None
        return self.last - self.close

    @property
    def change_pct(self) -> float | None:
        if self.change is None or not self.close:
            return None
        return 100.0 * self.change / self.close


@dataclass(frozen=True)
class Bar:
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class WhatIf:
    """What-if preview of an order: commission and margin impact, before anything is sent."""

    commission: float | None
    min_commission: float | None
    max_commission: float | None
    commission_currency: str | None
    init_margin_change: float | None
    maint_margin_change: float | None
    init_margin_after: float | None
    maint_margin_after: float | None
    equity_with_loan_after: float | None
    warning: str = ""


@dataclass(frozen=True)
class PnL:
    account: str
    daily: float | None
    unrealized: float | None
    realized: float | None


@dataclass(frozen=True)
class Notice:
    """An IB message for the log: error, warning or information, with plain advice."""

    time: datetime
    code: int
    text: str  # IB's own text
    message: str  # our plain sentence
    advice: str  # what to do ("" when nothing is needed)
    severity: str  # "info", "warning" or "error"
    req_id: int = -1


@dataclass(frozen=True)
class JournalEntry:
    journal_id: str
    created_at: datetime
    source: str
    account: str | None
    symbol: str
    side: str
    quantity: str
    order_type: str
    limit_price: str | None
    stop_price: str | None
    tif: str
    status: str
    order_id: int | None = None
    perm_id: int | None = None
    filled: str = "0"
    avg_fill_price: float | None = None
    message: str = ""
    updated_at: datetime | None = None
