"""Reply encoders: the server's messages with exact field lists (ib_async unpacks fixed tuples for several
messages and ibapi drops a message whose field count is wrong, so every encoder builds an exact list).

Encoders here are written for this project; only the field orders are taken from ib_async 2.1 and IB's
official client at server version 176.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ibpanel.sim.protocol.codec import SERVER_VERSION, UNSET_DOUBLE_TEXT, UNSET_INT, encode
from ibpanel.sim.protocol.messages import (
    ACCOUNT_SUMMARY,
    ACCOUNT_SUMMARY_END,
    ACCOUNT_UPDATE_MULTI,
    ACCOUNT_UPDATE_MULTI_END,
    ACCT_DOWNLOAD_END,
    ACCT_UPDATE_TIME,
    ACCT_VALUE,
    COMMISSION_REPORT,
    COMPLETED_ORDER,
    COMPLETED_ORDERS_END,
    CONTRACT_DATA,
    CONTRACT_DATA_END,
    CURRENT_TIME,
    ERR_MSG,
    EXECUTION_DATA,
    EXECUTION_DATA_END,
    HEAD_TIMESTAMP,
    HISTORICAL_DATA,
    HISTORICAL_DATA_UPDATE,
    MANAGED_ACCTS,
    MARKET_DATA_TYPE,
    MARKET_RULE,
    NEXT_VALID_ID,
    OPEN_ORDER,
    OPEN_ORDER_END,
    ORDER_STATUS,
    PNL,
    PNL_SINGLE,
    PORTFOLIO_VALUE,
    POSITION_DATA,
    POSITION_END,
    POSITION_MULTI,
    POSITION_MULTI_END,
    SYMBOL_SAMPLES,
    TICK_GENERIC,
    TICK_PRICE,
    TICK_REQ_PARAMS,
    TICK_SIZE,
    TICK_SNAPSHOT_END,
    TICK_STRING,
)


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
