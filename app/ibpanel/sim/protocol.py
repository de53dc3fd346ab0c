"""The TWS API text protocol at server version 176: framing, the field codec, typed requests, reply encoders.

Over 500 lines because it holds every request decoder and reply encoder the practice exchange uses, so
field orders are checked in one place.

Wire format: every message after the client's ``API\\0`` greeting is a 4-byte big-endian length followed by
ASCII fields, each terminated by NUL; the first field is the message id. Field layouts follow what
ib_async 2.1 and IB's official client decode at server version 176 (see docs/protocol.md).
Encoders here are written for this project; only the field orders are taken from those clients.

Field counts matter: ib_async unpacks fixed tuples for several messages and ibapi drops a message whose
count is wrong, so every encoder below builds an exact list. Nothing in this module does I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

SERVER_VERSION = 176
# the oldest server version the practice exchange speaks: a client whose range tops out between this and
# SERVER_VERSION is answered at its own maximum (see ``for_version``), as TWS negotiates down
MIN_SERVER_VERSION = 151
UNSET_INT = 2147483647
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"
MAX_MESSAGE_BYTES = 1 << 24  # TWS itself refuses longer messages; a bigger length prefix means a broken stream
GREETING = b"API\0"

_LENGTH = struct.Struct(">I")
_pack_length = _LENGTH.pack


class ProtocolError(ValueError):
    """A message that cannot be read: the text says which message and field, for the request log."""


# ----- incoming message ids (client -> server) ---------------------------------------------------------------
IN_NAMES: dict[int, str] = {
    1: "REQ_MKT_DATA", 2: "CANCEL_MKT_DATA", 3: "PLACE_ORDER", 4: "CANCEL_ORDER", 5: "REQ_OPEN_ORDERS",
    6: "REQ_ACCT_DATA", 7: "REQ_EXECUTIONS", 8: "REQ_IDS", 9: "REQ_CONTRACT_DATA", 10: "REQ_MKT_DEPTH",
    11: "CANCEL_MKT_DEPTH", 12: "REQ_NEWS_BULLETINS", 13: "CANCEL_NEWS_BULLETINS", 14: "SET_SERVER_LOGLEVEL",
    15: "REQ_AUTO_OPEN_ORDERS", 16: "REQ_ALL_OPEN_ORDERS", 17: "REQ_MANAGED_ACCTS", 18: "REQ_FA",
    19: "REPLACE_FA", 20: "REQ_HISTORICAL_DATA", 21: "EXERCISE_OPTIONS", 22: "REQ_SCANNER_SUBSCRIPTION",
    23: "CANCEL_SCANNER_SUBSCRIPTION", 24: "REQ_SCANNER_PARAMETERS", 25: "CANCEL_HISTORICAL_DATA",
    49: "REQ_CURRENT_TIME", 50: "REQ_REAL_TIME_BARS", 51: "CANCEL_REAL_TIME_BARS", 52: "REQ_FUNDAMENTAL_DATA",
    53: "CANCEL_FUNDAMENTAL_DATA", 54: "REQ_CALC_IMPLIED_VOLAT", 55: "REQ_CALC_OPTION_PRICE",
    56: "CANCEL_CALC_IMPLIED_VOLAT", 57: "CANCEL_CALC_OPTION_PRICE", 58: "REQ_GLOBAL_CANCEL",
    59: "REQ_MARKET_DATA_TYPE", 61: "REQ_POSITIONS", 62: "REQ_ACCOUNT_SUMMARY", 63: "CANCEL_ACCOUNT_SUMMARY",
    64: "CANCEL_POSITIONS", 65: "VERIFY_REQUEST", 66: "VERIFY_MESSAGE", 67: "QUERY_DISPLAY_GROUPS",
    68: "SUBSCRIBE_TO_GROUP_EVENTS", 69: "UPDATE_DISPLAY_GROUP", 70: "UNSUBSCRIBE_FROM_GROUP_EVENTS",
    71: "START_API", 72: "VERIFY_AND_AUTH_REQUEST", 73: "VERIFY_AND_AUTH_MESSAGE", 74: "REQ_POSITIONS_MULTI",
    75: "CANCEL_POSITIONS_MULTI", 76: "REQ_ACCOUNT_UPDATES_MULTI", 77: "CANCEL_ACCOUNT_UPDATES_MULTI",
    78: "REQ_SEC_DEF_OPT_PARAMS", 79: "REQ_SOFT_DOLLAR_TIERS", 80: "REQ_FAMILY_CODES",
    81: "REQ_MATCHING_SYMBOLS", 82: "REQ_MKT_DEPTH_EXCHANGES", 83: "REQ_SMART_COMPONENTS",
    84: "REQ_NEWS_ARTICLE", 85: "REQ_NEWS_PROVIDERS", 86: "REQ_HISTORICAL_NEWS", 87: "REQ_HEAD_TIMESTAMP",
    88: "REQ_HISTOGRAM_DATA", 89: "CANCEL_HISTOGRAM_DATA", 90: "CANCEL_HEAD_TIMESTAMP", 91: "REQ_MARKET_RULE",
    92: "REQ_PNL", 93: "CANCEL_PNL", 94: "REQ_PNL_SINGLE", 95: "CANCEL_PNL_SINGLE", 96: "REQ_HISTORICAL_TICKS",
    97: "REQ_TICK_BY_TICK_DATA", 98: "CANCEL_TICK_BY_TICK_DATA", 99: "REQ_COMPLETED_ORDERS",
    100: "REQ_WSH_META_DATA", 101: "CANCEL_WSH_META_DATA", 102: "REQ_WSH_EVENT_DATA",
    103: "CANCEL_WSH_EVENT_DATA", 104: "REQ_USER_INFO",
}

# ----- outgoing message ids (server -> client) ---------------------------------------------------------------
TICK_PRICE = 1
TICK_SIZE = 2
ORDER_STATUS = 3
ERR_MSG = 4
OPEN_ORDER = 5
ACCT_VALUE = 6
PORTFOLIO_VALUE = 7
ACCT_UPDATE_TIME = 8
NEXT_VALID_ID = 9
CONTRACT_DATA = 10
EXECUTION_DATA = 11
MANAGED_ACCTS = 15
HISTORICAL_DATA = 17
TICK_GENERIC = 45
TICK_STRING = 46
CURRENT_TIME = 49
CONTRACT_DATA_END = 52
OPEN_ORDER_END = 53
ACCT_DOWNLOAD_END = 54
EXECUTION_DATA_END = 55
TICK_SNAPSHOT_END = 57
MARKET_DATA_TYPE = 58
COMMISSION_REPORT = 59
POSITION_DATA = 61
POSITION_END = 62
ACCOUNT_SUMMARY = 63
ACCOUNT_SUMMARY_END = 64
ACCOUNT_UPDATE_MULTI = 73
ACCOUNT_UPDATE_MULTI_END = 74
TICK_REQ_PARAMS = 81
HISTORICAL_DATA_UPDATE = 90
MARKET_RULE = 93
PNL = 94
PNL_SINGLE = 95
COMPLETED_ORDER = 101
COMPLETED_ORDERS_END = 102
POSITION_MULTI = 71
POSITION_MULTI_END = 72
SYMBOL_SAMPLES = 79
HEAD_TIMESTAMP = 88
RECEIVE_FA = 16
SCANNER_PARAMETERS = 19
SCANNER_DATA = 20
REAL_TIME_BARS = 50
FUNDAMENTAL_DATA = 51
DISPLAY_GROUP_LIST = 67
DISPLAY_GROUP_UPDATED = 68
SECURITY_DEFINITION_OPTION_PARAMETER_END = 76
SOFT_DOLLAR_TIERS = 77
FAMILY_CODES = 78
MKT_DEPTH_EXCHANGES = 80
SMART_COMPONENTS = 82
NEWS_PROVIDERS = 85
HISTOGRAM_DATA = 89
HISTORICAL_TICKS = 96
HISTORICAL_TICKS_BID_ASK = 97
HISTORICAL_TICKS_LAST = 98
TICK_BY_TICK = 99
REPLACE_FA_END = 103
USER_INFO = 107

OUT_NAMES: dict[int, str] = {
    TICK_PRICE: "TICK_PRICE", TICK_SIZE: "TICK_SIZE", ORDER_STATUS: "ORDER_STATUS", ERR_MSG: "ERR_MSG",
    OPEN_ORDER: "OPEN_ORDER", ACCT_VALUE: "ACCT_VALUE", PORTFOLIO_VALUE: "PORTFOLIO_VALUE",
    ACCT_UPDATE_TIME: "ACCT_UPDATE_TIME", NEXT_VALID_ID: "NEXT_VALID_ID", CONTRACT_DATA: "CONTRACT_DATA",
    EXECUTION_DATA: "EXECUTION_DATA", MANAGED_ACCTS: "MANAGED_ACCTS", HISTORICAL_DATA: "HISTORICAL_DATA",
    TICK_GENERIC: "TICK_GENERIC", TICK_STRING: "TICK_STRING", CURRENT_TIME: "CURRENT_TIME",
    CONTRACT_DATA_END: "CONTRACT_DATA_END", OPEN_ORDER_END: "OPEN_ORDER_END",
    ACCT_DOWNLOAD_END: "ACCT_DOWNLOAD_END", EXECUTION_DATA_END: "EXECUTION_DATA_END",
    TICK_SNAPSHOT_END: "TICK_SNAPSHOT_END", MARKET_DATA_TYPE: "MARKET_DATA_TYPE",
    COMMISSION_REPORT: "COMMISSION_REPORT", POSITION_DATA: "POSITION_DATA", POSITION_END: "POSITION_END",
    ACCOUNT_SUMMARY: "ACCOUNT_SUMMARY", ACCOUNT_SUMMARY_END: "ACCOUNT_SUMMARY_END",
    ACCOUNT_UPDATE_MULTI: "ACCOUNT_UPDATE_MULTI", ACCOUNT_UPDATE_MULTI_END: "ACCOUNT_UPDATE_MULTI_END",
    TICK_REQ_PARAMS: "TICK_REQ_PARAMS", HISTORICAL_DATA_UPDATE: "HISTORICAL_DATA_UPDATE",
    MARKET_RULE: "MARKET_RULE", PNL: "PNL", PNL_SINGLE: "PNL_SINGLE", COMPLETED_ORDER: "COMPLETED_ORDER",
    COMPLETED_ORDERS_END: "COMPLETED_ORDERS_END", POSITION_MULTI: "POSITION_MULTI",
    POSITION_MULTI_END: "POSITION_MULTI_END", SYMBOL_SAMPLES: "SYMBOL_SAMPLES", HEAD_TIMESTAMP: "HEAD_TIMESTAMP",
    RECEIVE_FA: "RECEIVE_FA", SCANNER_PARAMETERS: "SCANNER_PARAMETERS", SCANNER_DATA: "SCANNER_DATA",
    REAL_TIME_BARS: "REAL_TIME_BARS", FUNDAMENTAL_DATA: "FUNDAMENTAL_DATA",
    DISPLAY_GROUP_LIST: "DISPLAY_GROUP_LIST", DISPLAY_GROUP_UPDATED: "DISPLAY_GROUP_UPDATED",
    SECURITY_DEFINITION_OPTION_PARAMETER_END: "SECURITY_DEFINITION_OPTION_PARAMETER_END",
    SOFT_DOLLAR_TIERS: "SOFT_DOLLAR_TIERS", FAMILY_CODES: "FAMILY_CODES",
    MKT_DEPTH_EXCHANGES: "MKT_DEPTH_EXCHANGES", SMART_COMPONENTS: "SMART_COMPONENTS",
    NEWS_PROVIDERS: "NEWS_PROVIDERS", HISTOGRAM_DATA: "HISTOGRAM_DATA", HISTORICAL_TICKS: "HISTORICAL_TICKS",
    HISTORICAL_TICKS_BID_ASK: "HISTORICAL_TICKS_BID_ASK", HISTORICAL_TICKS_LAST: "HISTORICAL_TICKS_LAST",
    TICK_BY_TICK: "TICK_BY_TICK", REPLACE_FA_END: "REPLACE_FA_END", USER_INFO: "USER_INFO",
}


# ----- field codec -------------------------------------------------------------------------------------------
def field_text(value: object) -> str:
    """One field as TWS writes it: None -> empty, bools 0/1, Decimals without exponent, unset double as TWS."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if kind is bool:
        return "1" if value else "0"
    if kind is Decimal:
        if not value.is_finite():  # type: ignore[union-attr]
            return UNSET_DOUBLE_TEXT
        return format(value, "f")
    if kind is float:
        if value >= UNSET_DOUBLE:  # type: ignore[operator]
            return UNSET_DOUBLE_TEXT
        return repr(value)
    return str(value)


def encode_payload(fields: Iterable[object]) -> bytes:
    """Fields -> payload bytes (no length prefix). Non-ASCII text is sent as backslash escapes."""
    texts = [field_text(f) for f in fields]
    if not texts:
        return b""
    return ("\0".join(texts) + "\0").encode("ascii", "backslashreplace")


def encode(fields: Iterable[object]) -> bytes:
    """Fields -> one framed message (length prefix + payload)."""
    payload = encode_payload(fields)
    return _pack_length(len(payload)) + payload


def frame(payload: bytes) -> bytes:
    """Add the 4-byte length prefix to a payload."""
    return _pack_length(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """Payload bytes -> field strings. Bytes that are not ASCII become escapes instead of failing."""
    text = payload.decode("ascii", "backslashreplace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


class FrameBuffer:
    """Reassembles length-prefixed messages from arbitrary TCP chunks."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add received bytes; return every complete payload. ProtocolError for an absurd length prefix."""
        data = self._data
        data += chunk
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while end - pos >= 4:
            (size,) = _LENGTH.unpack_from(data, pos)
            if size > MAX_MESSAGE_BYTES:
                data.clear()
                raise ProtocolError(f"message length {size} exceeds {MAX_MESSAGE_BYTES} bytes: the stream is broken")
            if end - pos - 4 < size:
                break
            out.append(bytes(data[pos + 4:pos + 4 + size]))
            pos += 4 + size
        if pos:
            del data[:pos]
        return out

    def pending(self) -> int:
        return len(self._data)


def parse_version_range(text: str) -> tuple[int, int, str]:
    """The client's "v157..178 +opts" greeting -> (min, max, options). ProtocolError when unreadable."""
    body = text.strip()
    if not body.startswith("v"):
        raise ProtocolError(f"greeting {text[:40]!r} does not start with 'v<min>..<max>'")
    version_part, _, options = body[1:].partition(" ")
    lo_text, sep, hi_text = version_part.partition("..")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        raise ProtocolError(f"greeting {text[:40]!r} has no readable version range") from None
    return lo, hi, options


def negotiate_version(low: int, high: int) -> int | None:
    """The server version for a client declaring ``low..high``: the highest both sides speak, else None."""
    version = min(high, SERVER_VERSION)
    if version < max(low, MIN_SERVER_VERSION):
        return None
    return version


def for_version(message: bytes, version: int) -> bytes:
    """A framed message encoded at SERVER_VERSION, rewritten for an older negotiated ``version``.

    Between 151 and 176 only the tails of a few messages change: ERR_MSG gained advancedOrderRejectJson (166);
    CONTRACT_DATA lost its version field and mdSizeMultiplier and gained the size rules (164; 163 had one
    sizeMinTick field) after stockType (152); OPEN_ORDER gained duration (158), postToAts (160), autoCancelParent (162) and the
    PEG BEST/MID fields (170); COMPLETED_ORDER the PEG BEST/MID fields (170). Everything else is unchanged.
    """
    if version >= SERVER_VERSION:
        return message
    head = message[4:8]
    msg_id = head[:head.find(b"\0")] if b"\0" in head else b""
    if msg_id not in (b"4", b"10", b"5", b"101"):
        return message
    fields = message[4:].decode("ascii").split("\0")[:-1]
    if msg_id == b"4":
        if version < 166:
            fields = fields[:5]  # without advancedOrderRejectJson
    elif msg_id == b"10" and version < 164:
        sizes = fields[-3:]
        fields = fields[:-3]
        if version < 152:
            fields = fields[:-1]  # stockType
        if version == 163:
            fields.append(sizes[1])  # sizeMinTick
        fields.insert(14, "1")  # mdSizeMultiplier, after minTick
        fields.insert(1, "8")  # the message version field of older servers
    elif msg_id == b"5":
        drop = (5 if version < 170 else 0) + (version < 162) + (version < 160) + (version < 158)
        fields = fields[:len(fields) - drop]
    elif msg_id == b"101" and version < 170:
        fields = fields[:-5]
    return encode(fields)


# ----- typed requests ----------------------------------------------------------------------------------------
class FieldReader:
    """Sequential typed reads over one request's fields; errors name the message and the field."""

    __slots__ = ("fields", "pos", "name")

    def __init__(self, fields: Sequence[str], name: str, start: int = 1):
        self.fields = fields
        self.pos = start
        self.name = name

    def _next(self, what: str) -> str:
        if self.pos >= len(self.fields):
            raise ProtocolError(f"{self.name}: message ended before field {self.pos} ({what})")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def text(self, what: str = "") -> str:
        return self._next(what)

    def int(self, what: str = "", default: int = 0) -> int:
        raw = self._next(what)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            pass
        try:  # some clients send whole numbers as "5.0"
            as_float = float(raw)
            if as_float == int(as_float):
                return int(as_float)
        except (ValueError, OverflowError):
            pass
        raise ProtocolError(f"{self.name}: field {self.pos - 1} ({what}) {raw[:30]!r} is not an integer")

    def bool(self, what: str = "") -> bool:
        raw = self._next(what)
        if raw in ("", "0", "false", "False"):
            return False
        if raw in ("1", "true", "True"):
            return True
        try:
            return int(float(raw)) != 0
        except (ValueError, OverflowError):
            raise ProtocolError(f"{self.name}: field {self.pos - 1} ({what}) {raw[:30]!r} is not a boolean") from None

    def decimal(self, what: str = "") -> Decimal | None:
        """A number; empty or the 'unset' markers -> None."""
        raw = self._next(what)
        if raw == "" or raw == UNSET_DOUBLE_TEXT or raw == str(UNSET_INT) or raw == "1.7976931348623157e+308":
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ProtocolError(f"{self.name}: field {self.pos - 1} ({what}) {raw[:30]!r} is not a number") from None
        if not value.is_finite():
            return None
        return value

    def skip(self, count: int, what: str = "") -> None:
        if self.pos + count > len(self.fields):
            raise ProtocolError(f"{self.name}: message ended inside {what or 'skipped fields'}")
        self.pos += count

    def remaining(self) -> int:
        return len(self.fields) - self.pos


@dataclass(frozen=True)
class ContractSpec:
    """The 12 contract fields clients send in requests."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade: str = ""
    strike: Decimal | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    def describe(self) -> str:
        bits = [self.symbol or self.local_symbol or f"conId {self.con_id}", self.sec_type, self.exchange,
                self.currency]
        return " ".join(b for b in bits if b)


def read_contract(r: FieldReader, with_primary: bool = True) -> ContractSpec:
    return ContractSpec(
        con_id=r.int("conId"), symbol=r.text("symbol"), sec_type=r.text("secType"),
        last_trade=r.text("lastTradeDateOrContractMonth"), strike=r.decimal("strike"), right=r.text("right"),
        multiplier=r.text("multiplier"), exchange=r.text("exchange"),
        primary_exchange=r.text("primaryExchange") if with_primary else "", currency=r.text("currency"),
        local_symbol=r.text("localSymbol"), trading_class=r.text("tradingClass"),
    )


@dataclass(frozen=True)
class StartApi:
    client_id: int
    capabilities: str


@dataclass(frozen=True)
class MktDataRequest:
    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool
    regulatory_snapshot: bool


@dataclass(frozen=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractSpec
    include_expired: bool
    sec_id_type: str
    sec_id: str


@dataclass(frozen=True)
class HistoricalDataRequest:
    req_id: int
    contract: ContractSpec
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


@dataclass(frozen=True)
class ExecutionsRequest:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


@dataclass(frozen=True)
class PlaceOrderRequest:
    """A PLACE_ORDER as read at server version 176; ``wire`` keeps echo-worthy extras by their TWS names."""

    order_id: int
    contract: ContractSpec
    action: str
    total_qty: Decimal | None
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    oca_group: str
    account: str
    open_close: str
    origin: int
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    hidden: bool
    good_after_time: str
    good_till_date: str
    oca_type: int
    all_or_none: bool
    what_if: bool
    trail_stop_price: Decimal | None
    trailing_percent: Decimal | None
    algo_strategy: str
    cash_qty: Decimal | None
    conditions: int
    wire: dict = field(default_factory=dict)


_CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


def _read_place_order(r: FieldReader) -> PlaceOrderRequest:
    order_id = r.int("orderId")
    contract = read_contract(r)
    r.text("secIdType")
    r.text("secId")
    action = r.text("action").upper()
    total_qty = r.decimal("totalQuantity")
    order_type = r.text("orderType").upper()
    lmt_price = r.decimal("lmtPrice")
    aux_price = r.decimal("auxPrice")
    tif = r.text("tif").upper()
    oca_group = r.text("ocaGroup")
    account = r.text("account")
    open_close = r.text("openClose")
    origin = r.int("origin")
    order_ref = r.text("orderRef")
    transmit = r.bool("transmit")
    parent_id = r.int("parentId")
    block_order = r.bool("blockOrder")
    sweep_to_fill = r.bool("sweepToFill")
    display_size = r.int("displaySize")
    trigger_method = r.int("triggerMethod")
    outside_rth = r.bool("outsideRth")
    hidden = r.bool("hidden")
    if contract.sec_type.upper() == "BAG":
        legs = r.int("comboLegs count")
        r.skip(legs * 8, "combo legs")
        r.skip(r.int("orderComboLegs count"), "order combo legs")
        r.skip(r.int("smartComboRoutingParams count") * 2, "smart combo routing params")
    r.text("sharesAllocation")
    discretionary_amt = r.decimal("discretionaryAmt")
    good_after_time = r.text("goodAfterTime")
    good_till_date = r.text("goodTillDate")
    fa_group = r.text("faGroup")
    fa_method = r.text("faMethod")
    fa_percentage = r.text("faPercentage")
    r.text("faProfile")  # present below server version 177
    model_code = r.text("modelCode")
    short_sale_slot = r.int("shortSaleSlot")
    designated_location = r.text("designatedLocation")
    exempt_code = r.int("exemptCode", default=-1)
    oca_type = r.int("ocaType")
    rule80a = r.text("rule80A")
    settling_firm = r.text("settlingFirm")
    all_or_none = r.bool("allOrNone")
    min_qty = r.decimal("minQty")
    percent_offset = r.decimal("percentOffset")
    r.skip(3, "eTradeOnly, firmQuoteOnly, nbboPriceCap")
    auction_strategy = r.int("auctionStrategy")
    r.skip(5, "startingPrice .. stockRangeUpper")
    r.text("overridePercentageConstraints")
    r.text("volatility")
    r.text("volatilityType")
    delta_neutral_type = r.text("deltaNeutralOrderType")
    r.text("deltaNeutralAuxPrice")
    if delta_neutral_type:
        r.skip(8, "delta neutral order fields")
    r.text("continuousUpdate")
    r.text("referencePriceType")
    trail_stop_price = r.decimal("trailStopPrice")
    trailing_percent = r.decimal("trailingPercent")
    r.text("scaleInitLevelSize")
    r.text("scaleSubsLevelSize")
    scale_increment = r.decimal("scalePriceIncrement")
    if scale_increment is not None and scale_increment > 0:
        r.skip(7, "scale order fields")
    r.skip(3, "scaleTable, activeStartTime, activeStopTime")
    if r.text("hedgeType"):
        r.text("hedgeParam")
    r.text("optOutSmartRouting")
    clearing_account = r.text("clearingAccount")
    clearing_intent = r.text("clearingIntent")
    not_held = r.bool("notHeld")
    if r.bool("deltaNeutralContract present"):
        r.skip(3, "delta neutral contract")
    algo_strategy = r.text("algoStrategy")
    if algo_strategy:
        r.skip(r.int("algoParams count") * 2, "algo params")
    r.text("algoId")
    what_if = r.bool("whatIf")
    r.text("orderMiscOptions")
    solicited = r.bool("solicited")
    r.skip(2, "randomizeSize, randomizePrice")
    if order_type in ("PEG BENCH", "PEGBENCH"):
        r.skip(5, "pegged-to-benchmark fields")
    conditions = r.int("conditions count")
    for _ in range(max(conditions, 0)):
        cond_type = r.int("condition type")
        if cond_type not in _CONDITION_FIELDS:
            raise ProtocolError(f"PLACE_ORDER: unknown order condition type {cond_type}")
        r.skip(_CONDITION_FIELDS[cond_type], "order condition")
    if conditions > 0:
        r.skip(2, "conditionsIgnoreRth, conditionsCancelOrder")
    r.skip(2, "adjustedOrderType, triggerPrice")
    lmt_price_offset = r.decimal("lmtPriceOffset")  # TRAIL LIMIT's limit offset
    r.skip(4, "adjustedStopPrice .. adjustableTrailingUnit")
    r.skip(3, "extOperator, softDollarTier")
    cash_qty = r.decimal("cashQty")
    # the rest (mifid2, price management, duration, postToAts, autoCancelParent, advanced override,
    # manual order time, peg offsets) does not change how the practice exchange handles the order
    wire = {
        "blockOrder": block_order, "sweepToFill": sweep_to_fill, "displaySize": display_size,
        "triggerMethod": trigger_method, "discretionaryAmt": discretionary_amt, "faGroup": fa_group,
        "faMethod": fa_method, "faPercentage": fa_percentage, "modelCode": model_code,
        "shortSaleSlot": short_sale_slot, "designatedLocation": designated_location, "exemptCode": exempt_code,
        "rule80A": rule80a, "settlingFirm": settling_firm, "minQty": min_qty, "percentOffset": percent_offset,
        "auctionStrategy": auction_strategy, "clearingAccount": clearing_account,
        "clearingIntent": clearing_intent, "notHeld": not_held, "solicited": solicited,
        "openClose": open_close, "origin": origin, "hidden": hidden, "goodAfterTime": good_after_time,
        "goodTillDate": good_till_date, "ocaType": oca_type, "allOrNone": all_or_none,
        "lmtPriceOffset": lmt_price_offset,
    }
    return PlaceOrderRequest(
        order_id=order_id, contract=contract, action=action, total_qty=total_qty, order_type=order_type,
        lmt_price=lmt_price, aux_price=aux_price, tif=tif or "DAY", oca_group=oca_group, account=account,
        open_close=open_close, origin=origin, order_ref=order_ref, transmit=transmit, parent_id=parent_id,
        outside_rth=outside_rth, hidden=hidden, good_after_time=good_after_time, good_till_date=good_till_date,
        oca_type=oca_type, all_or_none=all_or_none, what_if=what_if, trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent, algo_strategy=algo_strategy, cash_qty=cash_qty,
        conditions=conditions, wire=wire,
    )


@dataclass(frozen=True)
class Request:
    """One decoded request: ``msg_id``, its ``name`` and ``args`` (a typed object or a tuple of values)."""

    msg_id: int
    name: str
    args: object


def decode_request(fields: Sequence[str]) -> Request:
    """Fields of one client message -> Request. ProtocolError when it is malformed; unknown ids come back
    with ``args`` None so the server can answer as TWS does."""
    if not fields:
        raise ProtocolError("empty message")
    try:
        msg_id = int(fields[0])
    except ValueError:
        raise ProtocolError(f"message id {fields[0][:20]!r} is not a number") from None
    name = IN_NAMES.get(msg_id)
    if name is None:
        return Request(msg_id, f"UNKNOWN_{msg_id}", None)
    decoder = _DECODERS.get(msg_id)
    if decoder is None:
        return Request(msg_id, name, tuple(fields[1:]))
    return Request(msg_id, name, decoder(FieldReader(fields, name)))


def _d_start_api(r: FieldReader) -> StartApi:
    r.int("version")
    client_id = r.int("clientId")
    caps = r.text("optionalCapabilities") if r.remaining() else ""
    return StartApi(client_id, caps)


def _d_mkt_data(r: FieldReader) -> MktDataRequest:
    r.int("version")
    req_id = r.int("reqId")
    contract = read_contract(r)
    if contract.sec_type.upper() == "BAG":
        r.skip(r.int("comboLegs count") * 4, "combo legs")
    if r.bool("deltaNeutralContract present"):
        r.skip(3, "delta neutral contract")
    generic = r.text("genericTickList")
    snapshot = r.bool("snapshot")
    regulatory = r.bool("regulatorySnapshot") if r.remaining() else False
    return MktDataRequest(req_id, contract, generic, snapshot, regulatory)


def _d_contract_data(r: FieldReader) -> ContractDetailsRequest:
    r.int("version")
    req_id = r.int("reqId")
    contract = read_contract(r)
    include_expired = r.bool("includeExpired")
    sec_id_type = r.text("secIdType")
    sec_id = r.text("secId")
    return ContractDetailsRequest(req_id, contract, include_expired, sec_id_type, sec_id)


def _d_historical(r: FieldReader) -> HistoricalDataRequest:
    req_id = r.int("reqId")
    contract = read_contract(r)
    r.bool("includeExpired")
    end = r.text("endDateTime")
    bar_size = r.text("barSizeSetting")
    duration = r.text("durationStr")
    use_rth = r.bool("useRTH")
    what = r.text("whatToShow")
    format_date = r.int("formatDate", default=1)
    if contract.sec_type.upper() == "BAG":
        r.skip(r.int("comboLegs count") * 4, "combo legs")
    keep = r.bool("keepUpToDate") if r.remaining() else False
    return HistoricalDataRequest(req_id, contract, end, bar_size, duration, use_rth, what, format_date, keep)


def _d_executions(r: FieldReader) -> ExecutionsRequest:
    r.int("version")
    return ExecutionsRequest(
        req_id=r.int("reqId"), client_id=r.int("clientId"), account=r.text("acctCode"), time=r.text("time"),
        symbol=r.text("symbol"), sec_type=r.text("secType"), exchange=r.text("exchange"), side=r.text("side"),
    )


def _versioned(*kinds: str):
    """Decoder for "<id>, <version>, values..." with typed values; returns a tuple."""

    def decode(r: FieldReader) -> tuple:
        r.int("version")
        return tuple(_read_kind(r, k) for k in kinds)

    return decode


def _plain(*kinds: str):
    """Decoder for "<id>, values..." (newer messages carry no version field)."""

    def decode(r: FieldReader) -> tuple:
        return tuple(_read_kind(r, k) for k in kinds)

    return decode


def _read_kind(r: FieldReader, kind: str):
    if kind == "i":
        return r.int()
    if kind == "b":
        return r.bool()
    if kind == "s":
        return r.text()
    if kind == "s?":  # optional trailing text
        return r.text() if r.remaining() else ""
    raise AssertionError(kind)


_DECODERS = {
    71: _d_start_api,
    1: _d_mkt_data,
    2: _versioned("i"),  # reqId
    3: _read_place_order,
    4: _versioned("i", "s?"),  # orderId, manualCancelOrderTime
    5: _versioned(),
    6: _versioned("b", "s"),  # subscribe, account
    7: _d_executions,
    8: _versioned("i"),  # numIds
    9: _d_contract_data,
    15: _versioned("b"),
    16: _versioned(),
    17: _versioned(),
    20: _d_historical,
    25: _versioned("i"),
    49: _versioned(),
    58: _versioned(),
    59: _versioned("i"),  # market data type
    61: _versioned(),
    62: _versioned("i", "s", "s"),  # reqId, group, tags
    63: _versioned("i"),
    64: _versioned(),
    74: _versioned("i", "s", "s"),  # reqId, account, modelCode
    75: _versioned("i"),
    76: _versioned("i", "s", "s", "b"),  # reqId, account, modelCode, ledgerAndNLV
    77: _versioned("i"),
    91: _plain("i"),  # marketRuleId
    92: _plain("i", "s", "s"),  # reqId, account, modelCode
    93: _plain("i"),
    94: _plain("i", "s", "s", "i"),  # reqId, account, modelCode, conId
    95: _plain("i"),
    99: _plain("b"),  # apiOnly
    81: _plain("i", "s"),  # reqId, pattern
    87: lambda r: (r.int("reqId"), read_contract(r), r.bool("includeExpired"), r.bool("useRTH"),
                   r.text("whatToShow"), r.int("formatDate", default=1)),
    90: _plain("i"),  # cancel head timestamp: reqId
}


@dataclass(frozen=True)
class SideRequest:
    """A request outside quotes, orders and accounts (see sim/side_requests.py): its reqId (-1 when the
    message has none), the contract when it names one, and the remaining fields as text."""

    req_id: int
    contract: ContractSpec | None
    rest: tuple[str, ...]


def _side(version: bool, req_id: bool = True, contract: bool = False, primary: bool = True):
    """Decoder for a side request: [version], [reqId], [12/11 contract fields], rest as text."""

    def decode(r: FieldReader) -> SideRequest:
        if version:
            r.int("version")
        rid = r.int("reqId") if req_id else -1
        spec = read_contract(r, with_primary=primary) if contract else None
        return SideRequest(rid, spec, tuple(r.fields[r.pos:]))

    return decode


def _replace_fa(r: FieldReader) -> SideRequest:
    r.int("version")
    fa_type = r.text("faDataType")
    xml = r.text("xml")
    req_id = r.int("reqId") if r.remaining() else -1
    return SideRequest(req_id, None, (fa_type, xml))


# where each side request keeps its reqId: messages below 79 mostly carry a version first, but 20, 22 and 78
# do not (reading the wrong field gave scanner and option-chain replies reqId -1)
_DECODERS.update({
    10: _side(True, contract=True),  # reqMktDepth
    11: _side(True),  # cancelMktDepth
    12: _side(True, req_id=False),  # reqNewsBulletins(allMsgs)
    13: _side(True, req_id=False),
    14: _side(True, req_id=False),  # setServerLogLevel
    18: _side(True, req_id=False),  # requestFA(faDataType)
    19: _replace_fa,
    21: _side(True, contract=True, primary=False),  # exerciseOptions
    22: _side(False),  # reqScannerSubscription: no version field at this server version
    23: _side(True),
    24: _side(True, req_id=False),
    50: _side(True, contract=True),  # reqRealTimeBars
    51: _side(True),
    52: _side(True),  # reqFundamentalData (its contract has 7 fields: not needed)
    53: _side(True),
    54: _side(True, contract=True),
    55: _side(True, contract=True),
    56: _side(True),
    57: _side(True),
    65: _side(True, req_id=False),
    66: _side(True, req_id=False),
    67: _side(True),  # queryDisplayGroups
    68: _side(True),  # subscribeToGroupEvents
    69: _side(True),  # updateDisplayGroup
    70: _side(True),
    72: _side(True, req_id=False),
    73: _side(True, req_id=False),
    78: _side(False),  # reqSecDefOptParams: no version field
    79: _side(False),
    80: _side(False, req_id=False),
    82: _side(False, req_id=False),
    83: _side(False),
    84: _side(False),
    85: _side(False, req_id=False),
    86: _side(False),
    88: _side(False, contract=True),  # reqHistogramData
    89: _side(False),
    96: _side(False, contract=True),  # reqHistoricalTicks
    97: _side(False, contract=True),  # reqTickByTickData
    98: _side(False),
    100: _side(False),
    101: _side(False),
    102: _side(False),
    103: _side(False),
    104: _side(False),
})


# ----- reply encoders ----------------------------------------------------------------------------------------
def error_message(req_id: int, code: int, text: str, advanced_json: str = "") -> bytes:
    return encode((ERR_MSG, 2, req_id, code, text, advanced_json))


def server_hello(connection_time: str, version: int = SERVER_VERSION) -> bytes:
    return encode((version, connection_time))


def managed_accounts(accounts: Sequence[str]) -> bytes:
    return encode((MANAGED_ACCTS, 1, ",".join(accounts)))


def next_valid_id(order_id: int) -> bytes:
    return encode((NEXT_VALID_ID, 1, order_id))


def current_time(epoch_seconds: int) -> bytes:
    return encode((CURRENT_TIME, 1, epoch_seconds))


def tick_price(req_id: int, tick_type: int, price: object, size: object, attr_mask: int = 0) -> bytes:
    return encode((TICK_PRICE, 6, req_id, tick_type, price, size, attr_mask))


def tick_size(req_id: int, tick_type: int, size: object) -> bytes:
    return encode((TICK_SIZE, 6, req_id, tick_type, size))


def tick_string(req_id: int, tick_type: int, value: str) -> bytes:
    return encode((TICK_STRING, 6, req_id, tick_type, value))


def tick_generic(req_id: int, tick_type: int, value: object) -> bytes:
    return encode((TICK_GENERIC, 6, req_id, tick_type, value))


def tick_req_params(req_id: int, min_tick: object, bbo_exchange: str, snapshot_permissions: int) -> bytes:
    return encode((TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, snapshot_permissions))


def market_data_type(req_id: int, data_type: int) -> bytes:
    return encode((MARKET_DATA_TYPE, 1, req_id, data_type))


def tick_snapshot_end(req_id: int) -> bytes:
    return encode((TICK_SNAPSHOT_END, 1, req_id))


@dataclass(frozen=True)
class ContractRecord:
    """What CONTRACT_DATA / contract fields of other replies need about one instrument."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    market_name: str = ""
    min_tick: object = "0.01"
    order_types: str = ""
    valid_exchanges: str = ""
    long_name: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    time_zone: str = ""
    trading_hours: str = ""
    liquid_hours: str = ""
    market_rule_ids: str = ""
    stock_type: str = "COMMON"
    min_size: object = "1"
    size_increment: object = "1"
    suggested_size_increment: object = "1"
    sec_ids: tuple = ()


def contract_data(req_id: int, c: ContractRecord) -> bytes:
    fields: list[object] = [
        CONTRACT_DATA, req_id, c.symbol, c.sec_type, "", "0", "", c.exchange, c.currency, c.local_symbol,
        c.market_name, c.trading_class, c.con_id, c.min_tick, "", c.order_types, c.valid_exchanges, 1, 0,
        c.long_name, c.primary_exchange, "", c.industry, c.category, c.subcategory, c.time_zone,
        c.trading_hours, c.liquid_hours, "", "", len(c.sec_ids),
    ]
    for tag, value in c.sec_ids:
        fields += [tag, value]
    fields += [1, "", "", c.market_rule_ids, "", c.stock_type, c.min_size, c.size_increment,
               c.suggested_size_increment]
    return encode(fields)


def contract_data_end(req_id: int) -> bytes:
    return encode((CONTRACT_DATA_END, 1, req_id))


def market_rule(rule_id: int, rows: Sequence[tuple[object, object]]) -> bytes:
    fields: list[object] = [MARKET_RULE, rule_id, len(rows)]
    for low, inc in rows:
        fields += [low, inc]
    return encode(fields)


def historical_data(req_id: int, start: str, end: str,
                    bars: Sequence[tuple[str, object, object, object, object, object, object, object]]) -> bytes:
    fields: list[object] = [HISTORICAL_DATA, req_id, start, end, len(bars)]
    for bar in bars:
        fields.extend(bar)
    return encode(fields)


def historical_data_update(req_id: int, bar_count: int, date: str, open_: object, close: object, high: object,
                           low: object, wap: object, volume: object) -> bytes:
    return encode((HISTORICAL_DATA_UPDATE, req_id, bar_count, date, open_, close, high, low, wap, volume))


def _contract12(c: ContractRecord, exchange: str) -> list[object]:
    # conId, symbol, secType, lastTrade, strike, right, multiplier, exchange, currency, localSymbol, tradingClass
    return [c.con_id, c.symbol, c.sec_type, "", "0", "", "", exchange, c.currency, c.local_symbol, c.trading_class]


def position_data(account: str, c: ContractRecord, position: object, avg_cost: object) -> bytes:
    # TWS leaves the exchange of a position empty (see tests/sim/golden/position_1.txt); clients qualify by conId
    return encode([POSITION_DATA, 3, account, c.con_id, c.symbol, c.sec_type, "", "0.0", "", "", "",
                   c.currency, c.local_symbol, c.trading_class, position, avg_cost])


def position_multi(req_id: int, account: str, c: ContractRecord, position: object, avg_cost: object,
                   model_code: str = "") -> bytes:
    return encode([POSITION_MULTI, 1, req_id, account, c.con_id, c.symbol, c.sec_type, "", "0.0", "", "", "",
                   c.currency, c.local_symbol, c.trading_class, position, avg_cost, model_code])


def position_multi_end(req_id: int) -> bytes:
    return encode((POSITION_MULTI_END, 1, req_id))


def symbol_samples(req_id: int, rows: Sequence[ContractRecord]) -> bytes:
    """SYMBOL_SAMPLES at 176: per row conId, symbol, secType, primaryExchange, currency, derivative sec
    types (none), description, issuerId."""
    fields: list[object] = [SYMBOL_SAMPLES, req_id, len(rows)]
    for c in rows:
        fields += [c.con_id, c.symbol, c.sec_type, c.primary_exchange, c.currency, 0, c.long_name, ""]
    return encode(fields)


def head_timestamp(req_id: int, timestamp: str) -> bytes:
    return encode((HEAD_TIMESTAMP, req_id, timestamp))


def position_end() -> bytes:
    return encode((POSITION_END, 1))


def portfolio_value(c: ContractRecord, position: object, market_price: object, market_value: object,
                    average_cost: object, unrealized: object, realized: object, account: str) -> bytes:
    return encode([PORTFOLIO_VALUE, 8, c.con_id, c.symbol, c.sec_type, "", "0", "", "", c.primary_exchange,
                   c.currency, c.local_symbol, c.trading_class, position, market_price, market_value,
                   average_cost, unrealized, realized, account])


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return encode((ACCT_VALUE, 2, key, value, currency, account))


def account_update_time(hh_mm: str) -> bytes:
    return encode((ACCT_UPDATE_TIME, 1, hh_mm))


def account_download_end(account: str) -> bytes:
    return encode((ACCT_DOWNLOAD_END, 1, account))


def account_update_multi(req_id: int, account: str, model_code: str, key: str, value: str, currency: str) -> bytes:
    return encode((ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency))


def account_update_multi_end(req_id: int) -> bytes:
    return encode((ACCOUNT_UPDATE_MULTI_END, 1, req_id))


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    return encode((ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency))


def account_summary_end(req_id: int) -> bytes:
    return encode((ACCOUNT_SUMMARY_END, 1, req_id))


def pnl(req_id: int, daily: object, unrealized: object, realized: object) -> bytes:
    return encode((PNL, req_id, daily, unrealized, realized))


def pnl_single(req_id: int, pos: object, daily: object, unrealized: object, realized: object,
               value: object) -> bytes:
    return encode((PNL_SINGLE, req_id, pos, daily, unrealized, realized, value))


def open_order_end() -> bytes:
    return encode((OPEN_ORDER_END, 1))


def completed_orders_end() -> bytes:
    return encode((COMPLETED_ORDERS_END,))


def execution_data_end(req_id: int) -> bytes:
    return encode((EXECUTION_DATA_END, 1, req_id))


def order_status(order_id: int, status: str, filled: object, remaining: object, avg_fill_price: object,
                 perm_id: int, parent_id: int, last_fill_price: object, client_id: int, why_held: str = "",
                 mkt_cap_price: object = 0) -> bytes:
    return encode((ORDER_STATUS, order_id, status, filled, remaining, avg_fill_price, perm_id, parent_id,
                   last_fill_price, client_id, why_held, mkt_cap_price))


@dataclass
class OrderEcho:
    """The order fields OPEN_ORDER / COMPLETED_ORDER carry, in the practice exchange's terms."""

    order_id: int
    client_id: int
    perm_id: int
    action: str
    total_qty: object
    order_type: str
    lmt_price: object
    aux_price: object
    tif: str
    account: str
    order_ref: str = ""
    oca_group: str = ""
    outside_rth: bool = False
    parent_id: int = 0
    status: str = "Submitted"
    what_if: bool = False
    margins: dict | None = None  # what-if numbers, keys as in Accounts.what_if
    filled: object = 0
    completed_time: str = ""
    completed_status: str = ""
    trail_stop_price: object = None
    good_till_date: str = ""
    good_after_time: str = ""
    open_close: str = ""
    origin: int = 0
    hidden: bool = False
    oca_type: int = 0
    all_or_none: bool = False
    warning_text: str = ""
    commission: object = None  # commission booked so far (set once the order has fills), in its currency
    commission_currency: str = ""
    wire: dict = field(default_factory=dict)


def _price_or_unset(value: object) -> object:
    return UNSET_DOUBLE_TEXT if value is None else value


def _margin_fields(o: OrderEcho) -> list[object]:
    m = o.margins
    if not m:
        # TWS sends these as unset doubles outside what-if replies; after a fill it fills in the commission
        if o.commission is not None:
            return [UNSET_DOUBLE_TEXT] * 9 + [o.commission, "", "", o.commission_currency]
        return [UNSET_DOUBLE_TEXT] * 9 + ["", "", "", ""]
    return [m.get("init_before", ""), m.get("maint_before", ""), m.get("equity_before", ""),
            m.get("init_change", ""), m.get("maint_change", ""), m.get("equity_change", ""),
            m.get("init_after", ""), m.get("maint_after", ""), m.get("equity_after", ""),
            m.get("commission", UNSET_DOUBLE_TEXT), m.get("min_commission", UNSET_DOUBLE_TEXT),
            m.get("max_commission", UNSET_DOUBLE_TEXT), m.get("commission_currency", "")]


def open_order(c: ContractRecord, o: OrderEcho) -> bytes:
    """OPEN_ORDER at 176: orderId, contract, the order fields ending with the 5 PEG fields.

    Defaults mirror a recorded TWS message (tests/sim/golden/open_order_1.txt): right "?", deltaNeutralOrderType
    "None" followed by its 8 fields, adjustedOrderType "None", unset doubles where TWS sends them.
    """
    w = o.wire
    fields: list[object] = [OPEN_ORDER, o.order_id, c.con_id, c.symbol, c.sec_type, "", "0", "?", "", c.exchange,
                            c.currency, c.local_symbol, c.trading_class]
    fields += [
        o.action, o.total_qty, o.order_type, "0.0" if o.lmt_price is None else o.lmt_price,
        "0.0" if o.aux_price is None else o.aux_price, o.tif, o.oca_group, o.account, o.open_close, o.origin,
        o.order_ref, o.client_id, o.perm_id, o.outside_rth, o.hidden, w.get("discretionaryAmt") or 0,
        o.good_after_time, "",  # sharesAllocation (deprecated)
        w.get("faGroup", ""), w.get("faMethod", ""), w.get("faPercentage", ""), "",  # faProfile
        w.get("modelCode", ""), o.good_till_date, w.get("rule80A", ""), "",  # percentOffset
        w.get("settlingFirm", ""), w.get("shortSaleSlot", 0), w.get("designatedLocation", ""),
        w.get("exemptCode", -1), w.get("auctionStrategy", 0),
        "", "", "", "", "",  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
        w.get("displaySize") or UNSET_INT,
        w.get("blockOrder", False), w.get("sweepToFill", False), o.all_or_none, "",  # minQty
        o.oca_type or 3, False, False, "",  # ocaType, eTradeOnly, firmQuoteOnly, nbboPriceCap
        o.parent_id, w.get("triggerMethod", 0), "", 0,  # parentId, triggerMethod, volatility, volatilityType
        "None", "", 0, "", "", "", "?", 0, 0, "",  # deltaNeutral order type, aux price and its 8 fields
        0, 0,  # continuousUpdate, referencePriceType
        "" if o.trail_stop_price is None else o.trail_stop_price, "",  # trailStopPrice, trailingPercent
        "", "",  # basisPoints, basisPointsType
        "", 0, 0, 0,  # comboLegsDescrip, combo legs, order combo legs, smart combo params
        UNSET_INT, UNSET_INT, "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        False, w.get("clearingAccount", ""), w.get("clearingIntent") or "IB", w.get("notHeld", False),
        False,  # deltaNeutralContract present
        "",  # algoStrategy
        w.get("solicited", False), o.what_if, o.status,
    ]
    fields += _margin_fields(o)
    fields += [o.warning_text, False, False]  # warningText, randomizeSize, randomizePrice
    fields += [0]  # conditions
    fields += [
        "None", UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT if o.trail_stop_price is None else o.trail_stop_price,
        UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT, 0,  # adjusted order fields
        "", "", "",  # softDollarTier name, value, displayName
        0, True, False, False, False,  # cashQty, dontUseAutoPriceForHedge, isOms, discUpToLimit, priceMgmt
        "", "", False,  # duration, postToAts, autoCancelParent
        "", "", "", "", "",  # PEG BEST/MID: minTradeQty, minCompeteSize, competeAgainstBestOffset, mid offsets
    ]
    return encode(fields)


def completed_order(c: ContractRecord, o: OrderEcho) -> bytes:
    """COMPLETED_ORDER at 176: like OPEN_ORDER without orderId/clientId, ending with the completion fields."""
    w = o.wire
    lmt = _price_or_unset(o.lmt_price) if o.lmt_price is not None else "0"
    aux = _price_or_unset(o.aux_price) if o.aux_price is not None else "0"
    fields: list[object] = [COMPLETED_ORDER]
    fields += _contract12(c, c.exchange)
    fields += [
        o.action, o.total_qty, o.order_type, lmt, aux, o.tif, o.oca_group, o.account, o.open_close, o.origin,
        o.order_ref, o.perm_id, o.outside_rth, o.hidden, w.get("discretionaryAmt") or 0, o.good_after_time,
        w.get("faGroup", ""), w.get("faMethod", ""), w.get("faPercentage", ""), "",  # faProfile
        w.get("modelCode", ""), o.good_till_date, w.get("rule80A", ""), "", w.get("settlingFirm", ""),
        w.get("shortSaleSlot", 0), w.get("designatedLocation", ""), w.get("exemptCode", -1),
        "", "", "", "", "",  # startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
        UNSET_INT if not w.get("displaySize") else w["displaySize"],
        w.get("sweepToFill", False), o.all_or_none, "", o.oca_type or 3,  # minQty, ocaType
        w.get("triggerMethod", 0), "", 0, "", "",  # triggerMethod, volatility, volType, dnOrderType, dnAux
        0, 0, _price_or_unset(o.trail_stop_price) if o.trail_stop_price is not None else "", "",
        "", 0, 0, 0,  # comboLegsDescrip, combo legs, order combo legs, smart combo params
        "", "", "",  # scale
        "",  # hedgeType
        w.get("clearingAccount", ""), w.get("clearingIntent", "IB") or "IB", w.get("notHeld", False),
        False, "",  # deltaNeutralContract present, algoStrategy
        w.get("solicited", False), o.status, False, False,  # solicited, status, randomizeSize, randomizePrice
        0,  # conditions
        UNSET_DOUBLE_TEXT if o.trail_stop_price is None else o.trail_stop_price, UNSET_DOUBLE_TEXT,
        UNSET_DOUBLE_TEXT, False, False,  # trailStopPrice, lmtPriceOffset, cashQty, dontUseAutoPrice, isOms
        "", o.filled, 0, False, "", False, False, UNSET_INT,  # autoCancelDate..parentPermId
        o.completed_time, o.completed_status,
        UNSET_INT, UNSET_INT, UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT,  # PEG BEST/MID
    ]
    return encode(fields)


@dataclass(frozen=True)
class ExecutionEcho:
    req_id: int
    order_id: int
    exec_id: str
    time: str  # "YYYYMMDD HH:MM:SS Zone"
    account: str
    exchange: str
    side: str
    shares: object
    price: object
    perm_id: int
    client_id: int
    cum_qty: object
    avg_price: object
    order_ref: str
    last_liquidity: int = 2  # 1 added, 2 removed liquidity


def execution_data(c: ContractRecord, e: ExecutionEcho) -> bytes:
    fields: list[object] = [EXECUTION_DATA, e.req_id, e.order_id]
    fields += [c.con_id, c.symbol, c.sec_type, "", "0.0", "", "", c.exchange, c.currency, c.local_symbol,
               c.trading_class]
    fields += [e.exec_id, e.time, e.account, e.exchange, e.side, e.shares, e.price, e.perm_id, e.client_id, 0,
               e.cum_qty, e.avg_price, e.order_ref, "", "", "", e.last_liquidity]
    return encode(fields)


def commission_report(exec_id: str, commission: object, currency: str, realized_pnl: object | None) -> bytes:
    return encode((COMMISSION_REPORT, 1, exec_id, commission, currency,
                   UNSET_DOUBLE_TEXT if realized_pnl is None else realized_pnl, UNSET_DOUBLE_TEXT, ""))


def tws_time(moment: datetime, zone_name: str) -> str:
    """'YYYYMMDD HH:MM:SS Zone' in that zone (the execution / bar time format ib_async reads)."""
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(zone_name))
    return local.strftime("%Y%m%d %H:%M:%S") + " " + zone_name


# ----- side-request replies ----------------------------------------------------------------------------------
def receive_fa(fa_data_type: int, xml: str) -> bytes:
    return encode((RECEIVE_FA, 1, fa_data_type, xml))


def replace_fa_end(req_id: int, text: str) -> bytes:
    return encode((REPLACE_FA_END, req_id, text))


def scanner_parameters(xml: str) -> bytes:
    return encode((SCANNER_PARAMETERS, 1, xml))


def scanner_data_empty(req_id: int) -> bytes:
    """SCANNER_DATA with no rows: clients take it as the end of the scan."""
    return encode((SCANNER_DATA, 3, req_id, 0))


def real_time_bar(req_id: int, epoch: int, open_: object, high: object, low: object, close: object,
                  volume: object, wap: object, count: int) -> bytes:
    return encode((REAL_TIME_BARS, 3, req_id, epoch, open_, high, low, close, volume, wap, count))


def display_group_list(req_id: int, groups: str) -> bytes:
    return encode((DISPLAY_GROUP_LIST, 1, req_id, groups))


def display_group_updated(req_id: int, contract_info: str) -> bytes:
    return encode((DISPLAY_GROUP_UPDATED, 1, req_id, contract_info))


def sec_def_opt_params_end(req_id: int) -> bytes:
    return encode((SECURITY_DEFINITION_OPTION_PARAMETER_END, req_id))


def soft_dollar_tiers(req_id: int) -> bytes:
    return encode((SOFT_DOLLAR_TIERS, req_id, 0))


def family_codes(rows: Sequence[tuple[str, str]]) -> bytes:
    fields: list[object] = [FAMILY_CODES, len(rows)]
    for account, code in rows:
        fields += [account, code]
    return encode(fields)


def mkt_depth_exchanges(rows: Sequence[tuple[str, str, str, str, int]]) -> bytes:
    fields: list[object] = [MKT_DEPTH_EXCHANGES, len(rows)]
    for row in rows:
        fields += list(row)
    return encode(fields)


def smart_components(req_id: int, rows: Sequence[tuple[int, str, str]]) -> bytes:
    fields: list[object] = [SMART_COMPONENTS, req_id, len(rows)]
    for row in rows:
        fields += list(row)
    return encode(fields)


def news_providers(rows: Sequence[tuple[str, str]]) -> bytes:
    fields: list[object] = [NEWS_PROVIDERS, len(rows)]
    for code, name in rows:
        fields += [code, name]
    return encode(fields)


def histogram_data(req_id: int, rows: Sequence[tuple[object, int]]) -> bytes:
    fields: list[object] = [HISTOGRAM_DATA, req_id, len(rows)]
    for price, count in rows:
        fields += [price, count]
    return encode(fields)


def historical_ticks_midpoint(req_id: int, rows: Sequence[tuple[int, object, object]], done: bool) -> bytes:
    fields: list[object] = [HISTORICAL_TICKS, req_id, len(rows)]
    for epoch, price, size in rows:
        fields += [epoch, "", price, size]
    return encode(fields + [done])


def historical_ticks_bid_ask(req_id: int, rows: Sequence[tuple[int, object, object, object, object]],
                             done: bool) -> bytes:
    fields: list[object] = [HISTORICAL_TICKS_BID_ASK, req_id, len(rows)]
    for epoch, bid, ask, bid_size, ask_size in rows:
        fields += [epoch, 0, bid, ask, bid_size, ask_size]
    return encode(fields + [done])


def historical_ticks_last(req_id: int, rows: Sequence[tuple[int, object, object, str]], done: bool) -> bytes:
    fields: list[object] = [HISTORICAL_TICKS_LAST, req_id, len(rows)]
    for epoch, price, size, exchange in rows:
        fields += [epoch, 0, price, size, exchange, ""]
    return encode(fields + [done])


def tick_by_tick_last(req_id: int, tick_type: int, epoch: int, price: object, size: object, exchange: str) -> bytes:
    """tickType 1 (Last) or 2 (AllLast)."""
    return encode((TICK_BY_TICK, req_id, tick_type, epoch, price, size, 0, exchange, ""))


def tick_by_tick_bid_ask(req_id: int, epoch: int, bid: object, ask: object, bid_size: object,
                         ask_size: object) -> bytes:
    return encode((TICK_BY_TICK, req_id, 3, epoch, bid, ask, bid_size, ask_size, 0))


def tick_by_tick_midpoint(req_id: int, epoch: int, mid: object) -> bytes:
    return encode((TICK_BY_TICK, req_id, 4, epoch, mid))


def user_info(req_id: int, white_branding_id: str = "") -> bytes:
    return encode((USER_INFO, req_id, white_branding_id))
