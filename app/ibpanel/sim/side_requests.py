"""Requests beyond quotes, orders and accounts: option chains, scanners, news, FA, display groups, depth, ...

Every request a client can send gets an answer, so no client waits forever. The practice exchange answers
as TWS answers a paper account without the matching permission or data: an empty list with its end marker
where TWS sends a list, otherwise TWS's own error code with the request's id. ib_async treats 321 as a
warning and keeps waiting, so 321 is used only where nothing waits (verification messages).

Served with data:   real-time bars (5 s bars of the live price), tick-by-tick (Last, AllLast, BidAsk,
                    MidPoint), historical ticks (the live quote as one tick), histogram (from the bars),
                    FA groups/aliases (what replaceFA stored), display groups, family codes, user info,
                    smart components of the "9c0001" BBO exchange.
Served as empty:    scanner subscriptions, scanner parameters (no scan types), option-chain parameters (no
                    options listed), soft dollar tiers, market-depth exchanges, news providers.
Not available:      market depth 354; fundamentals 430; news articles and historical news 10276;
                    Wall Street Horizon 10089; option calculations and exercise 200 (no options listed);
                    API verification 321 (reqId -1: those messages have none).
Nothing to send:    cancels, news bulletins (no bulletins), server log level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P

if TYPE_CHECKING:
    from ibpanel.sim.market import SimInstrument
    from ibpanel.sim.server import ClientSession, SimServer

UTC = timezone.utc
TEXT_NO_SECURITY = "No security definition has been found for the request"
TEXT_DEPTH_NOT_SUBSCRIBED = "Requested market data is not subscribed."
TEXT_NO_FUNDAMENTALS = "We are sorry, but fundamentals data for the security specified is not available."
TEXT_NO_NEWS = "News feed is not allowed."
TEXT_NEEDS_SUBSCRIPTION = ("Requested market data requires additional subscription for API. See link in "
                           "'Market Data Connections' dialog for more details.")
TEXT_NO_VERIFICATION = "Error validating request.-'bN' : cause - API verification is not required on this connection"
TEXT_BAD_TBT_TYPE = "Error validating request.-'bN' : cause - Invalid tick-by-tick type: {kind}"
DISPLAY_GROUPS = "1|2|3|4|5|6|7"
SMART_COMPONENTS = ((0, "NYSE", "N"), (1, "ARCA", "P"), (2, "ISLAND", "Q"), (3, "BATS", "Z"), (4, "IEX", "V"))
SCANNER_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<ScanParameterResponse><InstrumentList/><LocationTree/>'
               '<ScanTypeList/><FilterList/></ScanParameterResponse>')
EMPTY_FA_XML = {1: '<?xml version="1.0" encoding="UTF-8"?>\n<ListOfGroups/>',
                3: '<?xml version="1.0" encoding="UTF-8"?>\n<ListOfAccountAliases/>'}
REAL_TIME_BAR_SECONDS = 5
TBT_TYPES = {"LAST": 1, "ALLLAST": 2, "BIDASK": 3, "MIDPOINT": 4}


@dataclass
class RealTimeBar:
    """One real-time bar line: the 5-second bar being built from the live last price."""

    inst: SimInstrument
    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    seen_volume: int
    count: int = 0


@dataclass
class TickByTickLine:
    inst: SimInstrument
    kind: int
    last: tuple = field(default_factory=tuple)


def _send_error(session: ClientSession, req_id: int, code: int, text: str) -> None:
    session.send(P.error_message(req_id, code, text))


def _resolve(server: SimServer, session: ClientSession, req: P.SideRequest) -> SimInstrument | None:
    inst = server.resolve(req.contract) if req.contract is not None else None
    if inst is None:
        _send_error(session, req.req_id, 200, TEXT_NO_SECURITY)
    return inst


# ----- answered "not available" ------------------------------------------------------------------------------
def on_market_depth(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    if _resolve(server, session, req) is not None:
        _send_error(session, req.req_id, 354, TEXT_DEPTH_NOT_SUBSCRIBED)


def on_fundamentals(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    _send_error(session, req.req_id, 430, TEXT_NO_FUNDAMENTALS)


def on_news(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    _send_error(session, req.req_id, 10276, TEXT_NO_NEWS)


def on_wall_street_horizon(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    _send_error(session, req.req_id, 10089, TEXT_NEEDS_SUBSCRIPTION)


def on_no_options(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    """Option calculations and exercise: the practice exchange lists no options."""
    _send_error(session, req.req_id, 200, TEXT_NO_SECURITY)


def on_verification(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    _send_error(session, -1, 321, TEXT_NO_VERIFICATION)


def on_nothing(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    """Cancels and subscriptions with nothing to report (news bulletins, server log level)."""


# ----- served as an empty list -------------------------------------------------------------------------------
def on_scanner_subscription(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.scanner_data_empty(req.req_id))


def on_scanner_parameters(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.scanner_parameters(SCANNER_XML))


def on_sec_def_opt_params(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.sec_def_opt_params_end(req.req_id))


def on_soft_dollar_tiers(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.soft_dollar_tiers(req.req_id))


def on_depth_exchanges(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.mkt_depth_exchanges([]))


def on_news_providers(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.news_providers([]))


# ----- served with data --------------------------------------------------------------------------------------
def on_family_codes(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.family_codes([(account, "") for account in server.config.accounts]))


def on_user_info(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.user_info(req.req_id, ""))


def on_smart_components(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    bbo = req.rest[0] if req.rest else ""
    session.send(P.smart_components(req.req_id, SMART_COMPONENTS if bbo == "9c0001" else ()))


def on_request_fa(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    fa_type = _int(req.rest[0] if req.rest else "1", 1)
    xml = server.fa_data.get(fa_type) or EMPTY_FA_XML.get(fa_type, EMPTY_FA_XML[1])
    session.send(P.receive_fa(fa_type, xml))


def on_replace_fa(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    fa_type = _int(req.rest[0], 1)
    server.fa_data[fa_type] = req.rest[1]
    session.send(P.replace_fa_end(req.req_id, "FA data replaced"))


def on_query_display_groups(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.send(P.display_group_list(req.req_id, DISPLAY_GROUPS))


def on_subscribe_group_events(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.display_groups[req.req_id] = ""
    session.send(P.display_group_updated(req.req_id, ""))


def on_update_display_group(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    info = req.rest[0] if req.rest else ""
    session.display_groups[req.req_id] = info
    session.send(P.display_group_updated(req.req_id, info))


def on_unsubscribe_group_events(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.display_groups.pop(req.req_id, None)


def on_histogram(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    """Volume at price over the period, from the same bars historical data serves."""
    inst = _resolve(server, session, req)
    if inst is None:
        return
    period = req.rest[2] if len(req.rest) > 2 else "1 day"
    amount, _, unit = period.strip().partition(" ")
    unit = unit.strip().lower().rstrip("s")
    duration = {"day": "D", "week": "W", "month": "M", "year": "Y"}.get(unit)
    if duration is None or not amount.isdigit():
        _send_error(session, req.req_id, 162, "Historical Market Data Service error message:"
                                              f"invalid histogram period {period!r} (e.g. '3 days', '1 week')")
        return
    try:
        bars = server.market.bars(inst.con_id, None, f"{amount} {duration}", "5 mins", "TRADES")
    except ValueError as exc:
        _send_error(session, req.req_id, 162, f"Historical Market Data Service error message:{exc}")
        return
    counts: dict[Decimal, int] = {}
    for bar in bars:
        counts[bar[4]] = counts.get(bar[4], 0) + max(int(bar[5]), 1)
    session.send(P.histogram_data(req.req_id, sorted(counts.items())))


def on_historical_ticks(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    """The live quote as one tick (a practice exchange keeps no tick history)."""
    inst = _resolve(server, session, req)
    if inst is None:
        return
    # rest: includeExpired, start, end, numberOfTicks, whatToShow, useRth, ignoreSize, misc
    what = (req.rest[4] if len(req.rest) > 4 else "").upper()
    top = server.market.top(inst.con_id)
    epoch = int(time.time())
    if what == "BID_ASK":
        session.send(P.historical_ticks_bid_ask(req.req_id, [(epoch, top.bid, top.ask, top.bid_size,
                                                              top.ask_size)], True))
    elif what == "TRADES":
        session.send(P.historical_ticks_last(req.req_id, [(epoch, top.last, top.last_size, inst.exchange)], True))
    elif what == "MIDPOINT":
        session.send(P.historical_ticks_midpoint(req.req_id, [(epoch, (top.bid + top.ask) / 2, 0)], True))
    else:
        _send_error(session, req.req_id, 162, "Historical Market Data Service error message:"
                                              f"whatToShow {what!r} is not TRADES, BID_ASK or MIDPOINT")


def on_real_time_bars(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    inst = _resolve(server, session, req)
    if inst is None:
        return
    top = server.market.top(inst.con_id)
    now = int(time.time())
    session.real_time_bars[req.req_id] = RealTimeBar(
        inst, now - now % REAL_TIME_BAR_SECONDS, top.last, top.last, top.last, top.last, 0, top.volume)


def on_cancel_real_time_bars(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.real_time_bars.pop(req.req_id, None)


def on_tick_by_tick(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    inst = _resolve(server, session, req)
    if inst is None:
        return
    kind_text = req.rest[0] if req.rest else ""
    kind = TBT_TYPES.get(kind_text.upper())
    if kind is None:
        _send_error(session, req.req_id, 321, TEXT_BAD_TBT_TYPE.format(kind=kind_text))
        return
    line = TickByTickLine(inst, kind)
    session.tick_by_tick[req.req_id] = line
    _send_tick_by_tick(server, session, req.req_id, line)


def on_cancel_tick_by_tick(server: SimServer, session: ClientSession, req: P.SideRequest) -> None:
    session.tick_by_tick.pop(req.req_id, None)


def _send_tick_by_tick(server: SimServer, session: ClientSession, req_id: int, line: TickByTickLine) -> None:
    top = server.market.top(line.inst.con_id)
    epoch = int(time.time())
    if line.kind in (1, 2):
        state = (top.last, top.last_size, top.volume)
        if state != line.last:
            session.send(P.tick_by_tick_last(req_id, line.kind, epoch, top.last, top.last_size, line.inst.exchange))
    elif line.kind == 3:
        state = (top.bid, top.ask, top.bid_size, top.ask_size)
        if state != line.last:
            session.send(P.tick_by_tick_bid_ask(req_id, epoch, top.bid, top.ask, top.bid_size, top.ask_size))
    else:
        state = ((top.bid + top.ask) / 2,)
        if state != line.last:
            session.send(P.tick_by_tick_midpoint(req_id, epoch, state[0]))
    line.last = state


def push_streams(server: SimServer, sessions) -> None:
    """One market step: tick-by-tick lines get what moved; real-time bars are sent as each 5 s bar closes."""
    now = int(time.time())
    for session in sessions:
        for req_id, line in list(session.tick_by_tick.items()):
            _send_tick_by_tick(server, session, req_id, line)
        for req_id, bar in list(session.real_time_bars.items()):
            top = server.market.top(bar.inst.con_id)
            start = now - now % REAL_TIME_BAR_SECONDS
            if start > bar.start:
                wap = (bar.high + bar.low + bar.close) / 3
                session.send(P.real_time_bar(req_id, bar.start, bar.open, bar.high, bar.low, bar.close,
                                             bar.volume, wap.quantize(bar.close) if bar.close else wap, bar.count))
                bar.start, bar.open, bar.high, bar.low, bar.volume, bar.count = (
                    start, top.last, top.last, top.last, 0, 0)
            moved = max(top.volume - bar.seen_volume, 0)
            if moved:
                bar.count += 1
            bar.volume += moved
            bar.seen_volume = top.volume
            bar.close = top.last
            bar.high = max(bar.high, top.last)
            bar.low = min(bar.low, top.last)


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


__all__ = ["push_streams"]
