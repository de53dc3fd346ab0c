"""Request dispatch of the practice exchange: the one registry (message id -> handler), pacing,
the freeze fault and the fair per-client queues for expensive requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim import side_requests
from ibpanel.sim.handlers.accounts import AccountHandlers
from ibpanel.sim.handlers.connection import ConnectionHandlers
from ibpanel.sim.handlers.contracts import ContractHandlers
from ibpanel.sim.handlers.history import HistoryHandlers
from ibpanel.sim.handlers.market_data import MarketDataHandlers
from ibpanel.sim.handlers.orders import OrderHandlers
from ibpanel.sim.protocol import RequestId as R

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession

log = logging.getLogger("ibpanel.sim")


PACING_LIMIT = 50  # client messages per second TWS accepts
PACING_DISCONNECT = 2 * PACING_LIMIT  # a client this far over the limit is cut off, as TWS eventually does
# requests that cost real work (contract search, bar generation): queued per client and served in turn;
# their cancels wait behind them, everything else (orders first) is served at once
QUEUED_REQUESTS = frozenset(int(r) for r in (R.REQ_CONTRACT_DATA, R.REQ_HISTORICAL_DATA, R.REQ_MATCHING_SYMBOLS,
                                              R.REQ_HEAD_TIMESTAMP, R.REQ_HISTOGRAM_DATA, R.REQ_HISTORICAL_TICKS))
QUEUED_CANCELS = frozenset(int(r) for r in (R.CANCEL_HISTORICAL_DATA, R.CANCEL_HISTOGRAM_DATA, R.CANCEL_HEAD_TIMESTAMP))
SERVICE_SLICE_SECONDS = 0.02  # one service turn serves every waiting client, for about this long in all
QUEUE_PAUSE_AT = 2000  # a client with this many requests waiting is not read until its queue drains
QUEUE_RESUME_AT = 200
TEXT_PACING = "Max rate of messages per second has been exceeded:max=50 rcvd={count}"

_MKT_DATA_HEAD = b"%d\0" % R.REQ_MKT_DATA  # how a REQ_MKT_DATA payload starts


def _message_id(payload: bytes) -> int:
    """The message id of a request payload (its first field), -1 when unreadable."""
    head = payload[:payload.find(b"\0")] if b"\0" in payload[:8] else payload[:8]
    return int(head) if head.isdigit() else -1


class RequestDispatch:
    """SimServer's dispatch part (mixed into SimServer; state lives on the server)."""

    # ----- fairness ---------------------------------------------------------------------------------------
    def enqueue(self, session: ClientSession, payload: bytes) -> None:
        """Queue an expensive request; queues are served round-robin, one request per client per pass, so a
        flood from one client delays another client's request by a few requests, not by the whole flood."""
        session.queue.append(payload)
        if session not in self._waiting:
            self._waiting.append(session)
        if len(session.queue) >= QUEUE_PAUSE_AT and not session.reading_paused and session.transport:
            session.reading_paused = True
            session.transport.pause_reading()
        if not self._service_scheduled:
            self._service_scheduled = True
            self.loop.call_soon(self._serve_queues)

    def _serve_queues(self) -> None:
        """One service turn: a request from each waiting client in turn, until the slice is used up; then the
        loop runs (other sockets are read, replies are written) before the next turn."""
        self._service_scheduled = False
        deadline = time.monotonic() + SERVICE_SLICE_SECONDS
        waiting = self._waiting
        while waiting:
            session = waiting.popleft()
            if session.closed or not session.queue:
                continue
            self.handle_message(session, session.queue.popleft())
            if session.queue:
                waiting.append(session)
            if session.reading_paused and len(session.queue) <= QUEUE_RESUME_AT and not session.closed:
                session.reading_paused = False
                session.transport.resume_reading()
            if time.monotonic() >= deadline:
                break
        if waiting:
            self._service_scheduled = True
            self.loop.call_soon(self._serve_queues)

    # ----- dispatch ---------------------------------------------------------------------------------------
    def set_frozen(self, frozen: bool) -> None:
        log.info("fault: %s", "frozen (nothing answered, sockets open)" if frozen else "thawed")
        self.faults.frozen = frozen
        if frozen:
            return
        held, self._held = self._held, []
        for session, payload in held:
            if not session.closed:
                self.handle_message(session, payload)
        for session in list(self.sessions):
            session.schedule_flush()

    def _serve_late(self, session: ClientSession, payload: bytes) -> None:
        if not session.closed:
            self.handle_message(session, payload, late=True)

    def handle_message(self, session: ClientSession, payload: bytes, *, late: bool = False) -> None:
        if self.faults.frozen:
            self._held.append((session, payload))  # unread, as by a hung TWS
            return
        if not late and self.faults.market_data_delay > 0 and payload.startswith(_MKT_DATA_HEAD):
            self.loop.call_later(self.faults.market_data_delay, self._serve_late, session, payload)
            return
        fields = P.split_fields(payload)
        try:
            request = P.decode_request(fields)
        except P.ProtocolError as exc:
            self.stats.add("MALFORMED")
            log.warning("client %s sent a malformed message (%s); ignored", session.describe(), exc)
            session.send(P.error_message(-1, 320, f"Error reading request: {exc}"))
            return
        self.stats.add(request.name)
        if self.config.log_requests:
            log.info("client %s -> %s %s", session.describe(), request.name, ",".join(fields[1:])[:300])
        if self.faults.pacing and not self._within_pacing(session):
            return
        if session.client_id is None and request.msg_id != R.START_API:
            log.warning("client %s sent %s before START_API; ignored", session.describe(), request.name)
            return
        handler = HANDLERS.get(request.msg_id)
        if handler is None:
            log.warning("client %s: %s is not supported by the practice exchange", session.describe(),
                        request.name)
            # every message id a client knows has a handler; an unknown id has no readable reqId
            session.send(P.error_message(-1, 321, f"Error validating request: {request.name} is not "
                                                  "supported by the practice exchange"))
            return
        try:
            handler(self, session, request.args)
        except P.ProtocolError as exc:
            log.warning("client %s: %s", session.describe(), exc)
            session.send(P.error_message(-1, 320, f"Error reading request: {exc}"))
        except Exception:  # log and keep serving: one bad request must not stop the exchange
            log.exception("client %s: error while handling %s", session.describe(), request.name)
            session.send(P.error_message(-1, 320, f"Error processing request {request.name}"))

    def _within_pacing(self, session: ClientSession) -> bool:
        now = time.monotonic()
        times = session.message_times
        times.append(now)
        while times and now - times[0] > 1.0:
            times.popleft()
        count = len(times)
        if count <= PACING_LIMIT:
            return True
        session.send(P.error_message(-1, 100, TEXT_PACING.format(count=count)))
        if count > PACING_DISCONNECT:
            log.warning("client %s sent %d messages in one second; disconnecting", session.describe(), count)
            session.close()
        return False


# ----- the registry: every request id a client can send -> the function that answers it ---------------------
# A handler is called as handler(server, session, args); args is what protocol/requests.py decoded.
HANDLERS: dict[int, Callable] = {int(msg_id): handler for msg_id, handler in {
    R.START_API: ConnectionHandlers._on_start_api,
    R.REQ_MKT_DATA: MarketDataHandlers._on_market_data,
    R.CANCEL_MKT_DATA: MarketDataHandlers._on_cancel_market_data,
    R.PLACE_ORDER: OrderHandlers._on_place_order,
    R.CANCEL_ORDER: OrderHandlers._on_cancel_order,
    R.REQ_OPEN_ORDERS: OrderHandlers._on_open_orders,
    R.REQ_ACCT_DATA: AccountHandlers._on_account_updates,
    R.REQ_EXECUTIONS: OrderHandlers._on_executions,
    R.REQ_IDS: OrderHandlers._on_req_ids,
    R.REQ_CONTRACT_DATA: ContractHandlers._on_contract_details,
    R.REQ_AUTO_OPEN_ORDERS: OrderHandlers._on_auto_open_orders,
    R.REQ_ALL_OPEN_ORDERS: OrderHandlers._on_all_open_orders,
    R.REQ_HISTORICAL_DATA: HistoryHandlers._on_historical_data,
    R.CANCEL_HISTORICAL_DATA: HistoryHandlers._on_cancel_historical,
    R.REQ_CURRENT_TIME: ConnectionHandlers._on_current_time,
    R.REQ_GLOBAL_CANCEL: OrderHandlers._on_global_cancel,
    R.REQ_MARKET_DATA_TYPE: MarketDataHandlers._on_market_data_type,
    R.REQ_POSITIONS: AccountHandlers._on_positions,
    R.REQ_ACCOUNT_SUMMARY: AccountHandlers._on_account_summary,
    R.CANCEL_ACCOUNT_SUMMARY: AccountHandlers._on_cancel_account_summary,
    R.CANCEL_POSITIONS: AccountHandlers._on_cancel_positions,
    R.REQ_ACCOUNT_UPDATES_MULTI: AccountHandlers._on_account_updates_multi,
    R.CANCEL_ACCOUNT_UPDATES_MULTI: AccountHandlers._on_cancel_account_updates_multi,
    R.REQ_MARKET_RULE: ContractHandlers._on_market_rule,
    R.REQ_PNL: AccountHandlers._on_pnl,
    R.CANCEL_PNL: AccountHandlers._on_cancel_pnl,
    R.REQ_PNL_SINGLE: AccountHandlers._on_pnl_single,
    R.CANCEL_PNL_SINGLE: AccountHandlers._on_cancel_pnl_single,
    R.REQ_COMPLETED_ORDERS: OrderHandlers._on_completed_orders,
    R.REQ_MANAGED_ACCTS: AccountHandlers._on_managed_accounts,
    R.REQ_POSITIONS_MULTI: AccountHandlers._on_positions_multi,
    R.CANCEL_POSITIONS_MULTI: AccountHandlers._on_nothing_running,
    R.CANCEL_HEAD_TIMESTAMP: AccountHandlers._on_nothing_running,
    R.REQ_MATCHING_SYMBOLS: ContractHandlers._on_matching_symbols,
    R.REQ_HEAD_TIMESTAMP: HistoryHandlers._on_head_timestamp,
    # side requests (sim/side_requests.py): answered as TWS answers an account without that permission
    R.REQ_MKT_DEPTH: side_requests.on_market_depth,
    R.CANCEL_MKT_DEPTH: side_requests.on_nothing,
    R.REQ_NEWS_BULLETINS: side_requests.on_nothing,
    R.CANCEL_NEWS_BULLETINS: side_requests.on_nothing,
    R.SET_SERVER_LOGLEVEL: side_requests.on_nothing,
    R.REQ_FA: side_requests.on_request_fa,
    R.REPLACE_FA: side_requests.on_replace_fa,
    R.EXERCISE_OPTIONS: side_requests.on_no_options,
    R.REQ_SCANNER_SUBSCRIPTION: side_requests.on_scanner_subscription,
    R.CANCEL_SCANNER_SUBSCRIPTION: side_requests.on_nothing,
    R.REQ_SCANNER_PARAMETERS: side_requests.on_scanner_parameters,
    R.REQ_REAL_TIME_BARS: side_requests.on_real_time_bars,
    R.CANCEL_REAL_TIME_BARS: side_requests.on_cancel_real_time_bars,
    R.REQ_FUNDAMENTAL_DATA: side_requests.on_fundamentals,
    R.CANCEL_FUNDAMENTAL_DATA: side_requests.on_nothing,
    R.REQ_CALC_IMPLIED_VOLAT: side_requests.on_no_options,
    R.REQ_CALC_OPTION_PRICE: side_requests.on_no_options,
    R.CANCEL_CALC_IMPLIED_VOLAT: side_requests.on_nothing,
    R.CANCEL_CALC_OPTION_PRICE: side_requests.on_nothing,
    R.VERIFY_REQUEST: side_requests.on_verification,
    R.VERIFY_MESSAGE: side_requests.on_verification,
    R.QUERY_DISPLAY_GROUPS: side_requests.on_query_display_groups,
    R.SUBSCRIBE_TO_GROUP_EVENTS: side_requests.on_subscribe_group_events,
    R.UPDATE_DISPLAY_GROUP: side_requests.on_update_display_group,
    R.UNSUBSCRIBE_FROM_GROUP_EVENTS: side_requests.on_unsubscribe_group_events,
    R.VERIFY_AND_AUTH_REQUEST: side_requests.on_verification,
    R.VERIFY_AND_AUTH_MESSAGE: side_requests.on_verification,
    R.REQ_SEC_DEF_OPT_PARAMS: side_requests.on_sec_def_opt_params,
    R.REQ_SOFT_DOLLAR_TIERS: side_requests.on_soft_dollar_tiers,
    R.REQ_FAMILY_CODES: side_requests.on_family_codes,
    R.REQ_MKT_DEPTH_EXCHANGES: side_requests.on_depth_exchanges,
    R.REQ_SMART_COMPONENTS: side_requests.on_smart_components,
    R.REQ_NEWS_ARTICLE: side_requests.on_news,
    R.REQ_NEWS_PROVIDERS: side_requests.on_news_providers,
    R.REQ_HISTORICAL_NEWS: side_requests.on_news,
    R.REQ_HISTOGRAM_DATA: side_requests.on_histogram,
    R.CANCEL_HISTOGRAM_DATA: side_requests.on_nothing,
    R.REQ_HISTORICAL_TICKS: side_requests.on_historical_ticks,
    R.REQ_TICK_BY_TICK_DATA: side_requests.on_tick_by_tick,
    R.CANCEL_TICK_BY_TICK_DATA: side_requests.on_cancel_tick_by_tick,
    R.REQ_WSH_META_DATA: side_requests.on_wall_street_horizon,
    R.CANCEL_WSH_META_DATA: side_requests.on_nothing,
    R.REQ_WSH_EVENT_DATA: side_requests.on_wall_street_horizon,
    R.CANCEL_WSH_EVENT_DATA: side_requests.on_nothing,
    R.REQ_USER_INFO: side_requests.on_user_info,
}.items()}
