"""Historical data: bars, keepUpToDate bars that follow the live price, head timestamps, HMDS pacing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ibpanel.sim import protocol as P
from ibpanel.sim.calendars import UTC
from ibpanel.sim.handlers.contracts import TEXT_NO_SECURITY
from ibpanel.sim.handlers.orders import _num
from ibpanel.sim.market import SimInstrument, parse_bar_size

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession


TEXT_HIST_PACING = "Historical Market Data Service error message:Historical data request pacing violation"
TEXT_HIST_NO_DATA = "Historical Market Data Service error message:HMDS query returned no data: {reason}"
LEGAL_BAR_SIZES = ("1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins", "5 mins",
                   "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
                   "1 day", "1 week", "1 month")
TEXT_BAD_BAR_SIZE = ("Error validating request.-'bP' : cause - Historical data bar size setting is invalid. "
                     "Legal ones are: " + ", ".join(LEGAL_BAR_SIZES))
LEGAL_WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST", "HISTORICAL_VOLATILITY",
                      "OPTION_IMPLIED_VOLATILITY", "REBATE_RATE", "FEE_RATE", "YIELD_BID", "YIELD_ASK",
                      "YIELD_BID_ASK", "YIELD_LAST", "SCHEDULE", "AGGTRADES")
TEXT_BAD_WHAT_TO_SHOW = "Error validating request.-'bP' : cause - Invalid whatToShow: {what}"
TEXT_END_WITH_UPDATES = "Error validating request.-'bP' : cause - End date not supported with live updates"


@dataclass
class _LiveBar:
    """The newest bar of a keepUpToDate historical request, kept moving with the live price."""

    inst: SimInstrument
    bar_seconds: int
    daily: bool
    format_date: int
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    seen_volume: int


def _bar_is_daily(bar_size: str) -> bool:
    unit = bar_size.strip().split()[-1].lower() if bar_size.strip() else ""
    return unit in ("day", "days", "week", "weeks", "month", "months")


def _parse_end_time(text: str, zone_name: str) -> datetime | None:
    """endDateTime of reqHistoricalData: "" (now), "YYYYMMDD HH:MM:SS [zone]", "YYYYMMDD-HH:MM:SS" (UTC)."""
    text = text.strip()
    if not text:
        return None
    if "-" in text and " " not in text:
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split(" ")
    parts = [p for p in parts if p]
    if len(parts) == 1 and len(parts[0]) == 8:
        return datetime.strptime(parts[0], "%Y%m%d").replace(tzinfo=ZoneInfo(zone_name))
    if len(parts) < 2:
        raise ValueError(f"end time {text!r} is not 'YYYYMMDD HH:MM:SS [zone]'")
    moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
    zone = parts[2] if len(parts) > 2 else zone_name
    try:
        tz = UTC if zone.upper() in ("UTC", "GMT") else ZoneInfo(zone)
    except Exception:
        raise ValueError(f"end time zone {zone!r} is unknown") from None
    return moment.replace(tzinfo=tz)


def _historical_request_problem(req: P.HistoricalDataRequest) -> str | None:
    """TWS's validation of a historical data request: the error text (code 321), or None."""
    bar = " ".join(req.bar_size.split()).lower()
    amount, _, unit = bar.partition(" ")
    plural = f"{amount} {unit}s"
    if bar not in LEGAL_BAR_SIZES and plural not in LEGAL_BAR_SIZES and bar not in ("1 sec", "1 mins"):
        return TEXT_BAD_BAR_SIZE
    what = req.what_to_show.strip().upper()
    if what and what not in LEGAL_WHAT_TO_SHOW:
        return TEXT_BAD_WHAT_TO_SHOW.format(what=req.what_to_show)
    if req.keep_up_to_date and req.end.strip():
        return TEXT_END_WITH_UPDATES
    return None


class HistoryHandlers:
    """SimServer's history part (mixed into SimServer; state lives on the server)."""

    # ----- historical data --------------------------------------------------------------------------------
    def _on_historical_data(self, session: ClientSession, req: P.HistoricalDataRequest) -> None:
        invalid = _historical_request_problem(req)
        if invalid is not None:
            session.send(P.error_message(req.req_id, 321, invalid))
            return
        inst = self.resolve(req.contract)
        if inst is None:
            session.send(P.error_message(req.req_id, 200, TEXT_NO_SECURITY))
            return
        if self.faults.pacing and self._historical_pacing_violated(session, req, inst):
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_PACING))
            return
        try:
            end = _parse_end_time(req.end, inst.time_zone)
        except ValueError as exc:
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_NO_DATA.format(reason=exc)))
            return
        try:
            bars = self.market.bars(inst.con_id, end, req.duration, req.bar_size, req.what_to_show or "TRADES",
                                    use_rth=req.use_rth)
        except ValueError as exc:
            # TWS answers some of these with 321, which ib_async treats as a warning and then waits forever;
            # 162 ends the request in every client
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_NO_DATA.format(reason=exc)))
            return
        if not bars:
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_NO_DATA.format(reason="no bars in range")))
            return
        zone = ZoneInfo(inst.time_zone)
        daily = _bar_is_daily(req.bar_size)
        rows = []
        for when, o, h, low, c, volume, wap, count in bars:
            if daily:
                label = when.astimezone(zone).strftime("%Y%m%d")
            elif req.format_date == 2:
                label = str(int(when.timestamp()))
            else:
                label = when.astimezone(zone).strftime("%Y%m%d %H:%M:%S") + " " + inst.time_zone
            rows.append((label, o, h, low, c, volume, wap, count))
        real_end = end or self.market.clock()
        start = bars[0][0]
        fmt = "%Y%m%d %H:%M:%S"
        session.send(P.historical_data(req.req_id, start.astimezone(zone).strftime(fmt) + " " + inst.time_zone,
                                       real_end.astimezone(zone).strftime(fmt) + " " + inst.time_zone, rows))
        if req.keep_up_to_date and end is None:
            when, o, h, low, c, volume, _wap, _count = bars[-1]
            top = self.market.top(inst.con_id)
            session.live_bars[req.req_id] = _LiveBar(
                inst=inst, bar_seconds=parse_bar_size(req.bar_size), daily=daily, format_date=req.format_date,
                start=when, open=o, high=h, low=low, close=c, volume=max(volume, 0), seen_volume=top.volume)

    def _historical_pacing_violated(self, session: ClientSession, req: P.HistoricalDataRequest,
                                    inst: SimInstrument) -> bool:
        now = time.monotonic()
        key = (inst.con_id, req.end, req.duration, req.bar_size, req.what_to_show)
        history = session.hist_requests
        while history and now - history[0][0] > 600:
            history.popleft()
        identical = any(k == key and now - t < 15 for t, k in history)
        same_contract = sum(1 for t, k in history if k[0] == inst.con_id and now - t < 2)
        history.append((now, key))
        return identical or same_contract >= 6 or len(history) > 60

    def _on_cancel_historical(self, session: ClientSession, args: tuple) -> None:
        session.live_bars.pop(args[0], None)

    def _push_live_bars(self) -> None:
        """keepUpToDate bar requests: the current bar follows the live last price (HISTORICAL_DATA_UPDATE)."""
        now = self.market.clock()  # the wall clock, or the replay clock when replaying
        for session in self.started_sessions():
            for req_id, bar in session.live_bars.items():
                top = self.market.top(bar.inst.con_id)
                if not bar.daily:
                    epoch = int(now.timestamp())
                    start = datetime.fromtimestamp(epoch - epoch % bar.bar_seconds, UTC)
                    if start > bar.start:  # a new bar opens at the last price
                        bar.start, bar.open, bar.high, bar.low, bar.volume = start, top.last, top.last, top.last, 0
                bar.close = top.last
                bar.high = max(bar.high, top.last)
                bar.low = min(bar.low, top.last)
                bar.volume += max(top.volume - bar.seen_volume, 0)
                bar.seen_volume = top.volume
                zone = ZoneInfo(bar.inst.time_zone)
                if bar.daily:
                    label = bar.start.astimezone(zone).strftime("%Y%m%d")
                elif bar.format_date == 2:
                    label = str(int(bar.start.timestamp()))
                else:
                    label = bar.start.astimezone(zone).strftime("%Y%m%d %H:%M:%S") + " " + bar.inst.time_zone
                session.send(P.historical_data_update(req_id, -1, label, _num(bar.open), _num(bar.close),
                                                      _num(bar.high), _num(bar.low), _num(bar.close), bar.volume))

    def _on_head_timestamp(self, session: ClientSession, args: tuple) -> None:
        req_id, spec, _expired, _rth, _what, format_date = args
        inst = self.resolve(spec)
        if inst is None:
            session.send(P.error_message(req_id, 200, TEXT_NO_SECURITY))
            return
        # the practice exchange's synthetic history reaches back as far as anyone asks; say five years
        first = (datetime.now(UTC) - timedelta(days=5 * 365)).replace(hour=0, minute=0, second=0, microsecond=0)
        text = str(int(first.timestamp())) if format_date == 2 else first.strftime("%Y%m%d-%H:%M:%S")
        session.send(P.head_timestamp(req_id, text))
