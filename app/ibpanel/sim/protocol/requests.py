"""Typed client requests and their decoders: fields of one message -> a ``Request`` (``decode_request``).

Field orders follow what ib_async 2.1 and IB's official client send at server version 176; the decoders are
written for this project. Message ids come from protocol/messages.py (``RequestId``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ibpanel.sim.protocol.codec import FieldReader, ProtocolError
from ibpanel.sim.protocol.messages import IN_NAMES
from ibpanel.sim.protocol.messages import RequestId as R


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


_DECODERS: dict[int, object] = {
    R.START_API: _d_start_api,
    R.REQ_MKT_DATA: _d_mkt_data,
    R.CANCEL_MKT_DATA: _versioned("i"),  # reqId
    R.PLACE_ORDER: _read_place_order,
    R.CANCEL_ORDER: _versioned("i", "s?"),  # orderId, manualCancelOrderTime
    R.REQ_OPEN_ORDERS: _versioned(),
    R.REQ_ACCT_DATA: _versioned("b", "s"),  # subscribe, account
    R.REQ_EXECUTIONS: _d_executions,
    R.REQ_IDS: _versioned("i"),  # numIds
    R.REQ_CONTRACT_DATA: _d_contract_data,
    R.REQ_AUTO_OPEN_ORDERS: _versioned("b"),
    R.REQ_ALL_OPEN_ORDERS: _versioned(),
    R.REQ_MANAGED_ACCTS: _versioned(),
    R.REQ_HISTORICAL_DATA: _d_historical,
    R.CANCEL_HISTORICAL_DATA: _versioned("i"),
    R.REQ_CURRENT_TIME: _versioned(),
    R.REQ_GLOBAL_CANCEL: _versioned(),
    R.REQ_MARKET_DATA_TYPE: _versioned("i"),  # market data type
    R.REQ_POSITIONS: _versioned(),
    R.REQ_ACCOUNT_SUMMARY: _versioned("i", "s", "s"),  # reqId, group, tags
    R.CANCEL_ACCOUNT_SUMMARY: _versioned("i"),
    R.CANCEL_POSITIONS: _versioned(),
    R.REQ_POSITIONS_MULTI: _versioned("i", "s", "s"),  # reqId, account, modelCode
    R.CANCEL_POSITIONS_MULTI: _versioned("i"),
    R.REQ_ACCOUNT_UPDATES_MULTI: _versioned("i", "s", "s", "b"),  # reqId, account, modelCode, ledgerAndNLV
    R.CANCEL_ACCOUNT_UPDATES_MULTI: _versioned("i"),
    R.REQ_MARKET_RULE: _plain("i"),  # marketRuleId
    R.REQ_PNL: _plain("i", "s", "s"),  # reqId, account, modelCode
    R.CANCEL_PNL: _plain("i"),
    R.REQ_PNL_SINGLE: _plain("i", "s", "s", "i"),  # reqId, account, modelCode, conId
    R.CANCEL_PNL_SINGLE: _plain("i"),
    R.REQ_COMPLETED_ORDERS: _plain("b"),  # apiOnly
    R.REQ_MATCHING_SYMBOLS: _plain("i", "s"),  # reqId, pattern
    R.REQ_HEAD_TIMESTAMP: lambda r: (r.int("reqId"), read_contract(r), r.bool("includeExpired"), r.bool("useRTH"),
                   r.text("whatToShow"), r.int("formatDate", default=1)),
    R.CANCEL_HEAD_TIMESTAMP: _plain("i"),  # cancel head timestamp: reqId
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
    R.REQ_MKT_DEPTH: _side(True, contract=True),  # reqMktDepth
    R.CANCEL_MKT_DEPTH: _side(True),  # cancelMktDepth
    R.REQ_NEWS_BULLETINS: _side(True, req_id=False),  # reqNewsBulletins(allMsgs)
    R.CANCEL_NEWS_BULLETINS: _side(True, req_id=False),
    R.SET_SERVER_LOGLEVEL: _side(True, req_id=False),  # setServerLogLevel
    R.REQ_FA: _side(True, req_id=False),  # requestFA(faDataType)
    R.REPLACE_FA: _replace_fa,
    R.EXERCISE_OPTIONS: _side(True, contract=True, primary=False),  # exerciseOptions
    R.REQ_SCANNER_SUBSCRIPTION: _side(False),  # reqScannerSubscription: no version field at this server version
    R.CANCEL_SCANNER_SUBSCRIPTION: _side(True),
    R.REQ_SCANNER_PARAMETERS: _side(True, req_id=False),
    R.REQ_REAL_TIME_BARS: _side(True, contract=True),  # reqRealTimeBars
    R.CANCEL_REAL_TIME_BARS: _side(True),
    R.REQ_FUNDAMENTAL_DATA: _side(True),  # reqFundamentalData (its contract has 7 fields: not needed)
    R.CANCEL_FUNDAMENTAL_DATA: _side(True),
    R.REQ_CALC_IMPLIED_VOLAT: _side(True, contract=True),
    R.REQ_CALC_OPTION_PRICE: _side(True, contract=True),
    R.CANCEL_CALC_IMPLIED_VOLAT: _side(True),
    R.CANCEL_CALC_OPTION_PRICE: _side(True),
    R.VERIFY_REQUEST: _side(True, req_id=False),
    R.VERIFY_MESSAGE: _side(True, req_id=False),
    R.QUERY_DISPLAY_GROUPS: _side(True),  # queryDisplayGroups
    R.SUBSCRIBE_TO_GROUP_EVENTS: _side(True),  # subscribeToGroupEvents
    R.UPDATE_DISPLAY_GROUP: _side(True),  # updateDisplayGroup
    R.UNSUBSCRIBE_FROM_GROUP_EVENTS: _side(True),
    R.VERIFY_AND_AUTH_REQUEST: _side(True, req_id=False),
    R.VERIFY_AND_AUTH_MESSAGE: _side(True, req_id=False),
    R.REQ_SEC_DEF_OPT_PARAMS: _side(False),  # reqSecDefOptParams: no version field
    R.REQ_SOFT_DOLLAR_TIERS: _side(False),
    R.REQ_FAMILY_CODES: _side(False, req_id=False),
    R.REQ_MKT_DEPTH_EXCHANGES: _side(False, req_id=False),
    R.REQ_SMART_COMPONENTS: _side(False),
    R.REQ_NEWS_ARTICLE: _side(False),
    R.REQ_NEWS_PROVIDERS: _side(False, req_id=False),
    R.REQ_HISTORICAL_NEWS: _side(False),
    R.REQ_HISTOGRAM_DATA: _side(False, contract=True),  # reqHistogramData
    R.CANCEL_HISTOGRAM_DATA: _side(False),
    R.REQ_HISTORICAL_TICKS: _side(False, contract=True),  # reqHistoricalTicks
    R.REQ_TICK_BY_TICK_DATA: _side(False, contract=True),  # reqTickByTickData
    R.CANCEL_TICK_BY_TICK_DATA: _side(False),
    R.REQ_WSH_META_DATA: _side(False),
    R.CANCEL_WSH_META_DATA: _side(False),
    R.REQ_WSH_EVENT_DATA: _side(False),
    R.CANCEL_WSH_EVENT_DATA: _side(False),
    R.REQ_USER_INFO: _side(False),
})
_DECODERS = {int(msg_id): decode for msg_id, decode in _DECODERS.items()}  # plain int keys: a cheaper lookup
