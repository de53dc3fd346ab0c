"""Reply encoders for the side requests (FA, scanner, real-time bars, display groups, news, ticks...):
answered as an empty or fixed practice account would be, see sim/side_requests.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from ibpanel.sim.protocol.codec import encode
from ibpanel.sim.protocol.messages import (
    DISPLAY_GROUP_LIST,
    DISPLAY_GROUP_UPDATED,
    FAMILY_CODES,
    HISTOGRAM_DATA,
    HISTORICAL_TICKS,
    HISTORICAL_TICKS_BID_ASK,
    HISTORICAL_TICKS_LAST,
    MKT_DEPTH_EXCHANGES,
    NEWS_PROVIDERS,
    REAL_TIME_BARS,
    RECEIVE_FA,
    REPLACE_FA_END,
    SCANNER_DATA,
    SCANNER_PARAMETERS,
    SECURITY_DEFINITION_OPTION_PARAMETER_END,
    SMART_COMPONENTS,
    SOFT_DOLLAR_TIERS,
    TICK_BY_TICK,
    USER_INFO,
)


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
