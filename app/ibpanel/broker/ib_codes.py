"""The catalogue of IB's message codes: code -> a plain message, what to do, a severity; connection
failures; paper vs live. (Python exceptions the broker raises are in ``exceptions.py``.)

Sources: the original module's troubleshooting table (TWS not running, wrong port, API not enabled,
clientId in use, bad symbol), docs/protocol.md's list, and IB's published message codes.
The TWS ports are TWS 7497 paper / 7496 live and IB Gateway 4002 paper / 4001 live (IB's own
error 502 text names them; the original module's README has the TWS pair swapped).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ibpanel.broker.models import ConnectionFailure, FailureKind

INFO, WARNING, ERROR = "info", "warning", "error"

# Codes ib_async does not treat as fatal for a live order (any other code cancels the Trade).
ORDER_WARNING_CODES: frozenset[int] = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})


def is_order_warning(code: int) -> bool:
    """True when ib_async keeps an order alive after this code (warnings and 2100-2199)."""
    return code in ORDER_WARNING_CODES or 2100 <= code <= 2199


@dataclass(frozen=True)
class ErrorInfo:
    """One IB message explained. ``message`` is our plain sentence; ``ib_text`` is IB's own text."""

    code: int
    message: str
    advice: str
    severity: str  # "info" | "warning" | "error"
    order_warning: bool  # True for codes ib_async treats as warnings on a live order
    ib_text: str = ""
    known: bool = True  # False when the code is not in our catalog


@dataclass(frozen=True)
class _Entry:
    message: str
    advice: str
    severity: str = ERROR
    with_ib_text: bool = False  # IB's text carries the specifics (the reason, the field): show it too


_CONNECT_ADVICE = (
    "In TWS / IB Gateway: Configure > API > Settings > tick 'Enable ActiveX and Socket Clients' and check the "
    "socket port (TWS 7497 paper / 7496 live, IB Gateway 4002 paper / 4001 live)."
)

CATALOG: dict[int, _Entry] = {
    # --- requests and orders -------------------------------------------------------------------------
    100: _Entry("Too many messages were sent to TWS (more than 50 per second).",
                "Slow down: fewer quote subscriptions or orders at once. TWS disconnects if it goes on."),
    101: _Entry("Too many market data lines are open (the account's limit, 100 by default).",
                "Close some quote subscriptions (watchlist rows, charts) or buy more lines (quote booster)."),
    102: _Entry("A market data request used an id that is already active.", "Retry; if it repeats, reconnect."),
    103: _Entry("Duplicate order id: TWS already has an order with this id.",
                "Reconnect so the panel gets a fresh order id; check the Orders tab before re-sending."),
    104: _Entry("This order is already filled and cannot be modified.", "Refresh the Orders tab.", WARNING),
    105: _Entry("The modification does not match the original order.",
                "Only price and quantity can be changed; cancel and place a new order for other changes.",
                WARNING, True),
    106: _Entry("TWS could not transmit the order.", "Check the order in TWS and the connection.", ERROR, True),
    109: _Entry("The price is outside the range TWS allows for this order (price percentage constraint).",
                "Use a price nearer the market, or change Presets > Precautions in TWS.", ERROR, True),
    110: _Entry("The price is not on the minimum tick for this stock.",
                "Round the price to a valid tick (the ticket's arrows step by the tick).", WARNING, True),
    111: _Entry("The time in force does not go with this order type.",
                "Choose DAY or GTC (IOC only for limit/market orders that must fill at once).", ERROR, True),
    135: _Entry("TWS cannot find this order.", "Refresh the Orders tab; it may be filled or cancelled already.",
                WARNING),
    136: _Entry("This order cannot be cancelled now.", "Wait for its status to settle and try again.", WARNING, True),
    161: _Entry("The order cannot be cancelled: it is already filled, cancelled or being cancelled.",
                "Refresh the Orders tab to see its final status.", WARNING),
    162: _Entry("Historical data request refused (pacing limit or no data for this period).",
                "Wait 15 seconds before asking for the same bars again; pick a shorter period or another "
                "bar size.", WARNING, True),
    165: _Entry("Historical data service message.", "", INFO, True),
    200: _Entry("IB has no stock matching this symbol.",
                "Check the symbol: US tickers like AAPL or BRK.B, Hong Kong codes like 700 or 0700.HK.", ERROR, True),
    201: _Entry("IB rejected the order.", "Read IB's reason below, fix the order and send it again.", ERROR, True),
    202: _Entry("The order was cancelled.", "", INFO, True),
    203: _Entry("This stock is not allowed for this account.",
                "Check the account's trading permissions (Client Portal > Settings > Trading Permissions).",
                ERROR, True),
    300: _Entry("TWS cannot find the market data request to cancel.", "", WARNING),
    309: _Entry("Too many market depth requests (3 at most).", "Close a depth window.", WARNING),
    317: _Entry("Market depth was reset.", "", INFO),
    320: _Entry("TWS could not read a request.", "Update the panel and TWS; reconnect.", ERROR, True),
    321: _Entry("TWS refused the request as invalid.",
                "If it says Read-Only: untick Configure > API > Settings > 'Read-Only API' in TWS to trade. If it "
                "is about the order size: HK stocks trade in whole board lots.", ERROR, True),
    322: _Entry("TWS could not process the request.", "Read IB's text below; reconnect if it repeats.", ERROR, True),
    326: _Entry("This client ID is already used by another program on the same TWS.",
                "Use another client ID (the next one is usually free) or close the other program."),
    329: _Entry("Order message from TWS.", "", WARNING, True),
    354: _Entry("The account has no live market data subscription for this stock.",
                "The panel falls back to delayed quotes (marked 'delayed'). Subscribe in Client Portal > "
                "Settings > Market Data Subscriptions for live quotes.", WARNING),
    366: _Entry("No historical data request found to cancel.", "", INFO),
    399: _Entry("Order warning from TWS.", "The order is still working; read IB's note below.", WARNING, True),
    404: _Entry("The order is held while TWS locates shares to borrow (short sale).",
                "Wait, or cancel it; HK short selling is allowed only for designated stocks.", WARNING, True),
    420: _Entry("Real-time bar request refused (pacing or permissions).", "Wait and retry.", WARNING, True),
    434: _Entry("The order size cannot be zero.", "Enter a positive quantity.", WARNING),
    492: _Entry("Order warning from TWS.", "", WARNING, True),
    # --- connection (client side) --------------------------------------------------------------------
    502: _Entry("Could not connect to TWS / IB Gateway.",
                "Start TWS or IB Gateway and log in. " + _CONNECT_ADVICE),
    503: _Entry("TWS is too old for this panel.", "Update TWS / IB Gateway to a current version."),
    504: _Entry("Not connected to TWS / IB Gateway.", "Connect first (Connection tab)."),
    507: _Entry("The connection to TWS broke (bad message length).", "Reconnect; if it repeats, restart TWS."),
    509: _Entry("The connection to TWS failed while reading.", "Reconnect; if it repeats, restart TWS.", ERROR, True),
    # --- TWS <-> IB servers --------------------------------------------------------------------------
    1100: _Entry("TWS lost its connection to IB's servers.",
                 "Nothing to do here: TWS reconnects by itself. Quotes are stale and orders cannot be sent "
                 "until it does; check TWS's own status bar.", ERROR),
    1101: _Entry("TWS is back online with IB's servers, but market data was lost.",
                 "The panel re-subscribes its quotes.", WARNING),
    1102: _Entry("TWS is back online with IB's servers; data was kept.", "", INFO),
    1300: _Entry("TWS changed its socket port.", "Reconnect using the new port (shown in IB's text).",
                 WARNING, True),
    # --- farms and system warnings (2100-2199) -------------------------------------------------------
    2100: _Entry("Account updates stopped (another program subscribed to a different account).", "", WARNING),
    2103: _Entry("A market data farm connection is broken.", "Quotes may pause; TWS reconnects by itself.", WARNING,
                 True),
    2104: _Entry("Market data farm connection is OK.", "", INFO, True),
    2105: _Entry("A historical data farm connection is broken.", "Charts may not load until TWS reconnects.",
                 WARNING, True),
    2106: _Entry("Historical data farm connection is OK.", "", INFO, True),
    2107: _Entry("Historical data farm is idle but available.", "", INFO, True),
    2108: _Entry("Market data farm is idle but available.", "", INFO, True),
    2109: _Entry("The 'outside regular trading hours' flag was ignored for this order.",
                 "The order works during regular hours only.", WARNING, True),
    2110: _Entry("TWS lost its connection to IB's servers; it will reconnect by itself.", "", WARNING),
    2119: _Entry("Market data farm is connecting.", "", INFO, True),
    2137: _Entry("Order warning: it may cross your own order on the other side.", "", WARNING, True),
    2157: _Entry("The security definition farm connection is broken.",
                 "Symbol look-ups may fail until TWS reconnects.", WARNING, True),
    2158: _Entry("Security definition farm connection is OK.", "", INFO, True),
    2168: _Entry("TWS ignored the order's 'eTradeOnly' attribute.", "", INFO),
    2169: _Entry("TWS ignored the order's 'firmQuoteOnly' attribute.", "", INFO),
    # --- market data permissions ---------------------------------------------------------------------
    10089: _Entry("Live quotes for this stock need an API market data subscription.",
                  "The panel shows delayed quotes instead; subscribe in Client Portal for live ones.", WARNING),
    10090: _Entry("Part of the requested market data is not subscribed.", "Some fields stay empty or delayed.",
                  WARNING),
    10147: _Entry("TWS does not know the order to cancel.", "Refresh the Orders tab.", WARNING),
    10148: _Entry("The order cannot be cancelled: it is already done.", "Refresh the Orders tab.", WARNING, True),
    10167: _Entry("Showing delayed market data (no live subscription).",
                  "Quotes are marked 'delayed'; subscribe in Client Portal for live ones.", INFO),
    10168: _Entry("Delayed market data is not enabled for this account.",
                  "Enable delayed data in TWS (Global Configuration > API > Settings) or subscribe for live "
                  "data.", WARNING),
    10182: _Entry("Live updates could not be requested (TWS disconnected from IB).", "Retry after TWS reconnects.",
                  WARNING),
    10197: _Entry("No market data: the same user is logged in elsewhere with live data (competing session).",
                  "Log out of the other session (mobile, web or another TWS), or use delayed data.", WARNING),
}

_GENERIC_ADVICE = "See IB's text; if it is about an order, check the Orders tab before sending it again."


def _default_severity(code: int) -> str:
    if 2100 <= code <= 2199:
        return WARNING
    return ERROR


_EMPTY_REASON = re.compile(r"\s*[-:]?\s*reason:\s*$", re.IGNORECASE)


def describe(code: int, ib_text: str = "") -> ErrorInfo:
    """Explain an IB code. Unknown codes get IB's own text as the message and generic advice."""
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = -1
    ib_text = (ib_text or "").strip()
    # "Order Canceled - reason:" with nothing after it: the head only restates the code
    restates_code = bool(_EMPTY_REASON.search(ib_text))
    ib_text = _EMPTY_REASON.sub("", ib_text)
    entry = CATALOG.get(code)
    if entry is None:
        message = ib_text or f"IB message {code}."
        return ErrorInfo(code, message, _GENERIC_ADVICE, _default_severity(code), is_order_warning(code), ib_text,
                         known=False)
    message = entry.message
    if entry.with_ib_text and ib_text and not restates_code and ib_text.rstrip(".") not in message:
        message = f"{message} IB says: {ib_text}"
    return ErrorInfo(code, message, entry.advice, entry.severity, is_order_warning(code), ib_text)


# --- ib_async's log lines -----------------------------------------------------------------------------

_IB_LOG_LINE = re.compile(r"^(?:Error|Warning) (-?\d+), reqId -?\d+: ?(.*)$", re.DOTALL)


class IbLogLevels(logging.Filter):
    """Logs ib_async's "Error <code>, reqId ...: <text>" lines at our catalog's severity.

    ib_async logs every code it does not call a warning at ERROR, so a normal cancel (202: "Order
    Canceled - reason:") printed as an error on the terminal. Informational codes go down to INFO
    (off the terminal, still in the log file); an empty "reason:" is dropped from the text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not isinstance(record.msg, str) or record.args:
            return True
        match = _IB_LOG_LINE.match(record.msg)
        if match is None:
            return True
        info = describe(int(match.group(1)), match.group(2))
        if info.severity == INFO:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg = f"IB {info.code}: {info.message}"
        return True


_LOG_FILTER = IbLogLevels()


def install_log_filter() -> None:
    """Put :class:`IbLogLevels` on ib_async's wrapper logger (once; safe to call again)."""
    logger = logging.getLogger("ib_async.wrapper")
    if _LOG_FILTER not in logger.filters:
        logger.addFilter(_LOG_FILTER)


# --- connection failures --------------------------------------------------------------------------------

# (program, paper?) by port, as IB's defaults set them.
STANDARD_PORTS: dict[int, tuple[str, bool]] = {
    7497: ("TWS", True),
    7496: ("TWS", False),
    4002: ("IB Gateway", True),
    4001: ("IB Gateway", False),
}
PORTS_SENTENCE = "TWS uses 7497 (paper) / 7496 (live); IB Gateway uses 4002 (paper) / 4001 (live)."
PRACTICE_OFFER = "No TWS at hand? Start the practice exchange (ibpanel --demo, or 'Practice' on the Connection tab)."


def describe_port(port: int) -> str:
    """ "port 7497 is TWS's paper port" / "port 5000 is not a standard TWS / Gateway port"."""
    known = STANDARD_PORTS.get(port)
    if known is None:
        return f"port {port} is not a standard TWS / IB Gateway port"
    program, paper = known
    return f"port {port} is {program}'s {'paper' if paper else 'live'} port"


_TECHNICAL_DETAIL = re.compile(r"\[(?:Errno|WinError) ?-?\d+\]|Connect call failed|Multiple exceptions|Traceback|\('\d")


def connection_failure(
    kind: FailureKind,
    host: str,
    port: int,
    client_id: int,
    detail: str = "",
    *,
    suggested_client_id: int | None = None,
) -> ConnectionFailure:
    """A plain message and advice for a failed connect. For CLIENT_ID_IN_USE the suggested id is
    ``suggested_client_id`` if given (e.g. a probed free id), else ``client_id + 1``."""
    where = f"{host}:{port}"
    detail = (detail or "").strip()
    # OS / Python wording ("[Errno 111] Connect call failed ('127.0.0.1', 1)") is for the log, not the trader
    extra = f" ({detail})" if detail and not _TECHNICAL_DETAIL.search(detail) else ""
    suggested = None
    if kind is FailureKind.NOTHING_LISTENING:
        message = f"Nothing is listening on {where}: TWS / IB Gateway is not running there, or uses another port{extra}."
        advice = (f"Start TWS or IB Gateway and log in, then check Configure > API > Settings > Socket port. "
                  f"{PORTS_SENTENCE} Here {describe_port(port)}. {PRACTICE_OFFER}")
    elif kind is FailureKind.HANDSHAKE_CLOSED:
        message = f"TWS / IB Gateway at {where} closed the connection during the API handshake{extra}."
        advice = ("Enable the API: Configure > API > Settings > tick 'Enable ActiveX and Socket Clients'. "
                  "Connecting from another computer? Add it under 'Trusted IPs' (or untick 'Allow connections "
                  "from localhost only'). Accept TWS's 'incoming connection' prompt if it shows one.")
    elif kind is FailureKind.CLIENT_ID_IN_USE:
        suggested = suggested_client_id if suggested_client_id is not None else client_id + 1
        message = f"Client ID {client_id} is already used by another program connected to {where} (error 326){extra}."
        advice = (f"Connect with client ID {suggested} instead, or close the other program. "
                  "Each program on one TWS needs its own client ID.")
    elif kind is FailureKind.TIMEOUT:
        message = f"TWS / IB Gateway at {where} accepted the connection but did not finish the handshake in time{extra}."
        advice = ("TWS may be logging in, busy, or waiting on a dialog (accept the incoming connection). Check "
                  "TWS, then retry, or raise the timeout. If another program uses the same client ID, pick "
                  "another one.")
    elif kind is FailureKind.UNKNOWN_ACCOUNT:
        message = f"The account asked for is not managed by the TWS login at {where}{extra}."
        advice = "Leave the account empty to choose one after connecting, or use one of the login's accounts."
    elif kind is FailureKind.NOT_CONNECTED:
        message = f"Not connected to IBKR{extra}."
        advice = f"Connect to TWS / IB Gateway first (Connection tab). {PRACTICE_OFFER}"
    else:
        message = f"Could not connect to {where}{extra or '.'}"
        if not message.endswith("."):
            message += "."
        advice = f"Check that TWS / IB Gateway is running and logged in. {PORTS_SENTENCE} {PRACTICE_OFFER}"
    return ConnectionFailure(kind=kind, message=message, advice=advice, suggested_client_id=suggested, detail=detail)


# --- paper or live ----------------------------------------------------------------------------------------

PAPER_PREFIXES = ("DU", "DF")  # paper individual (DU...) and paper advisor master (DF...) accounts


def _is_paper_account(account: str) -> bool:
    return account.upper().startswith(PAPER_PREFIXES)


def classify_paper(accounts: Sequence[str], port: int) -> tuple[bool | None, str]:
    """Is this a paper session? Returns (is_paper, the reason in words).

    Conservative: any account that is not paper (not DU / DF) makes the whole session live. Account ids
    decide over the port; a disagreement is said out loud. With no account ids the standard port
    decides; on a non-standard port with no ids the answer is None (unknown: treat as live).
    """
    ids = [a.strip() for a in accounts if a and a.strip()]
    port_info = STANDARD_PORTS.get(port)
    port_says_paper = None if port_info is None else port_info[1]
    port_words = describe_port(port)
    if ids:
        live = [a for a in ids if not _is_paper_account(a)]
        if live:
            reason = f"account{'s' if len(live) > 1 else ''} {', '.join(live)} {'are' if len(live) > 1 else 'is'} " \
                     f"live (no DU prefix)"
            if port_says_paper:
                reason += f"; {port_words}, but the account ids win: treated as LIVE"
            else:
                reason += f"; {port_words}"
            return False, reason
        reason = f"account{'s' if len(ids) > 1 else ''} {', '.join(ids)} {'are' if len(ids) > 1 else 'is'} paper (DU prefix)"
        if port_says_paper is False:
            reason += f"; {port_words}, but the account ids win: treated as paper"
        else:
            reason += f"; {port_words}"
        return True, reason
    if port_says_paper is None:
        return None, f"no account ids yet and {port_words}: unknown, treated as live"
    return port_says_paper, f"no account ids yet; {port_words}"
