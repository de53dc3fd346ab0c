"""The connection to TWS / IB Gateway: connect, classify failures, watch the link, reconnect.

State machine (``ConnectionState``)::

    DISCONNECTED --connect()--> CONNECTING --ok--> CONNECTED <--1101/1102-- DEGRADED
         ^                          |fail                |  --1100-->  DEGRADED
         |                          v                    | socket lost (auto_reconnect)
         +------------------- DISCONNECTED               v
         +--disconnect()------------------------- RECONNECTING --ok--> CONNECTED

Failures are told apart, because each needs a different fix:

* nothing listening: the TCP connect is refused (TWS / Gateway not running, or wrong port);
* handshake closed: TWS accepted the socket and closed it without a word (API not enabled,
  or this host is not trusted);
* client id in use: error 326 before the socket closes; we probe upward for a free id;
* timeout: something answered but the handshake did not finish in time.

Reconnecting never re-sends an order: the owner's ``on_ready(reconnected=True)`` only
re-subscribes and re-reads state from TWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone

from ib_async import IB, StartupFetch, StartupFetchALL

from ibpanel.broker import ib_codes
from ibpanel.broker.exceptions import ConnectError
from ibpanel.broker.heartbeat import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Heartbeat
from ibpanel.broker.models import (
    ConnectionFailure,
    ConnectionParams,
    ConnectionState,
    ConnectionStatus,
    FailureKind,
)

log = logging.getLogger(__name__)

# How long the connect waits for TWS's current time (the connection time shown) before using our clock.
_CURRENT_TIME_TIMEOUT = 1.0
# TWS <-> IB server link: lost (1100, and 2110 "connectivity between TWS and server is broken"), back (1101/1102).
_LINK_LOST = frozenset({1100, 2110})
_LINK_BACK = frozenset({1101, 1102})
# ib_async's startup sync without the one account stream: the session asks for that itself, first (see
# ``_stream_account_first``), and a second request for the same stream would only repeat its download.
_STARTUP_FETCH = StartupFetchALL & ~StartupFetch.ACCOUNT_UPDATES
# Farm "connection is OK" notices: after a 2110 TWS often says only these when its servers are back.
_FARMS_OK = frozenset({2104, 2106, 2158})

#: How far upward we probe for a free client id after error 326.
CLIENT_ID_PROBE_SPAN = 8
# The version range ib_async itself announces; the probe speaks the same handshake.
_PROBE_VERSIONS = b"v157..178"


async def probe_client_id(host: str, port: int, client_id: int, timeout: float = 2.0) -> bool | None:
    """True if TWS accepts ``client_id`` right now, False if it answers 326 / closes, None if unsure.

    A bare handshake (no ib_async): version exchange, START_API, then wait for the first
    answer. The socket is closed straight after, so the id is free again for the real connect.
    """
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        payload = _PROBE_VERSIONS
        writer.write(b"API\0" + struct.pack(">I", len(payload)) + payload)
        await writer.drain()

        async def read_message() -> list[str]:
            size = struct.unpack(">I", await reader.readexactly(4))[0]
            body = await reader.readexactly(size)
            return body.decode("ascii", "replace").split("\0")[:-1]

        async def conversation() -> bool:
            await read_message()  # server version + connection time
            start = "\0".join(["71", "2", str(client_id), ""]) + "\0"
            writer.write(struct.pack(">I", len(start)) + start.encode())
            await writer.drain()
            while True:
                fields = await read_message()
                if fields and fields[0] in ("15", "9"):  # MANAGED_ACCTS / NEXT_VALID_ID: accepted
                    return True
                if fields and fields[0] == "4" and len(fields) > 3 and fields[3] == "326":
                    return False

        return await asyncio.wait_for(conversation(), timeout)
    except asyncio.IncompleteReadError:
        return False  # closed on us: in use
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Session:
    """Owns one ``ib_async.IB`` and its connection state. Not public: the Broker wraps it.

    ``on_status(ConnectionStatus)`` is called on every change; ``on_ready(reconnected)`` is awaited
    after each successful (re)connect, before CONNECTED is announced; ``on_lost()`` runs when the
    socket drops; ``on_data_lost()`` when TWS says market data subscriptions were lost (1101).
    """

    def __init__(
        self,
        ib: IB,
        *,
        backoff: tuple[float, float],
        on_status: Callable[[ConnectionStatus], None],
        on_ready: Callable[[bool], Awaitable[None]],
        on_lost: Callable[[], None],
        on_data_lost: Callable[[], None],
        heartbeat: tuple[float, float] = (HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT),
    ) -> None:
        self.ib = ib
        self._heartbeat = Heartbeat(
            ib, *heartbeat, is_stale=lambda: self._status.stale,
            on_stale=lambda reason: self._set(stale=True, stale_reason=reason),
            on_fresh=lambda: self._set(stale=False, stale_reason=""))
        self.backoff = backoff
        self._on_status = on_status
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._on_data_lost = on_data_lost
        self._status = ConnectionStatus()
        self._params: ConnectionParams | None = None
        self._attempting = False  # a connect attempt owns the socket: drops are its business
        self._reconnect_task: asyncio.Task | None = None
        self.tws_readonly = False  # TWS answered 321 "Read-Only" to an order request of ours
        self._aborted = False  # disconnect() was called while connect() was running
        self._degraded_by: int | None = None  # the code that made the state DEGRADED (1100 or 2110)
        # (account, its download) of the portfolio stream asked for at API start on this socket
        self._account_stream: tuple[str, Awaitable[None]] | None = None
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_error

    # --- state ---------------------------------------------------------------------------------
    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def connected(self) -> bool:
        """True when requests can be sent (CONNECTED or DEGRADED, and the socket is up)."""
        return self._status.connected and self.ib.isConnected()

    def _set(self, **changes: object) -> None:
        new = replace(self._status, **changes)  # type: ignore[arg-type]
        if new != self._status:
            self._status = new
            self._on_status(new)

    # --- connect / disconnect ------------------------------------------------------------------
    async def connect(self, params: ConnectionParams) -> ConnectionStatus:
        await self._stop_reconnect()
        self._hang_up()
        self._params = params
        self._set(
            state=ConnectionState.CONNECTING, params=params, failure=None, accounts=(), account=None,
            reconnect_attempt=0, next_retry_in=None, readonly=params.readonly, is_paper=None, paper_reason="",
        )
        self._aborted = False
        try:
            await self._attempt(params)
        except ConnectError as exc:
            failure = self._abort_failure(params) if self._aborted else exc.failure
            log.info("connect to %s:%s failed: %s%s", params.host, params.port, failure.message,
                     f" [{failure.detail}]" if failure.detail else "")
            self._set(state=ConnectionState.DISCONNECTED, failure=failure)
            raise ConnectError(failure) from exc
        managed = tuple(self.ib.managedAccounts())
        if params.account and params.account not in managed:
            # never fall back to another account silently: orders would go where the user did not say
            failure = ConnectionFailure(
                FailureKind.UNKNOWN_ACCOUNT, f"Account {params.account} is not managed by this TWS login.",
                f"Use one of {', '.join(managed)}, or leave the account empty to choose after connecting.")
            self._hang_up()
            self._set(state=ConnectionState.DISCONNECTED, failure=failure)
            raise ConnectError(failure)
        if not await self._finish(reconnected=False) or self._aborted:
            failure = self._abort_failure(params) if self._aborted else ib_codes.connection_failure(
                FailureKind.OTHER, params.host, params.port, params.client_id,
                "the connection dropped while reading the account state")
            self._hang_up()
            self._set(state=ConnectionState.DISCONNECTED, failure=failure)
            raise ConnectError(failure)
        return self._status

    @staticmethod
    def _abort_failure(params: ConnectionParams) -> ConnectionFailure:
        return ConnectionFailure(FailureKind.OTHER, f"Connecting to {params.host}:{params.port} was cancelled.",
                                 "Connect again when you are ready.")

    async def disconnect(self) -> None:
        if self._status.state is ConnectionState.CONNECTING:
            self._aborted = True  # the pending connect() raises "cancelled" instead of finishing
        await self._stop_reconnect()
        self._hang_up()
        self._set(state=ConnectionState.DISCONNECTED, reconnect_attempt=0, next_retry_in=None, stale=False,
                  stale_reason="")

    def _hang_up(self) -> None:
        self._heartbeat.stop()
        was_attempting, self._attempting = self._attempting, True  # our own hang-up is not a drop
        try:
            self.ib.disconnect()
        except Exception:  # noqa: BLE001 - half-open sockets make ib_async's stats call raise
            log.debug("ib.disconnect failed; closing the client directly", exc_info=True)
            with contextlib.suppress(Exception):
                self.ib.client.disconnect()
        finally:
            self._attempting = was_attempting
        if self.ib.client.connState != self.ib.client.DISCONNECTED:  # mid-handshake: ib.disconnect() skips it
            with contextlib.suppress(Exception):
                self.ib.client.disconnect()

    async def _finish(self, reconnected: bool) -> bool:
        """After the socket is ready: accounts, paper/live, the owner's resync, then CONNECTED (True)."""
        params = self._params
        assert params is not None
        self._set(
            **self._account_fields(params), readonly=params.readonly or self.tws_readonly,
            server_version=self.ib.client.serverVersion(),
            connection_time=await self._connection_time(),
        )
        try:
            await self._on_ready(reconnected)
        except Exception:  # noqa: BLE001 - a failed resync must not leave us claiming "connecting"
            log.exception("resync after connect failed")
        if self.ib.isConnected():
            self._degraded_by = None
            self._set(state=ConnectionState.CONNECTED, failure=None, reconnect_attempt=0, next_retry_in=None,
                      stale=False, stale_reason="")
            self._heartbeat.start()
            return True
        log.warning("connection dropped while resynchronising")
        return False

    def _account_fields(self, params: ConnectionParams) -> dict[str, object]:
        """Managed accounts, paper / live, and the account in use: the choice kept across reconnects, else the one
        asked for, else the first managed one; an asked-for account TWS does not manage gives None (connect()
        refuses it: never another one silently)."""
        accounts = tuple(self.ib.managedAccounts())
        account = (self._status.account if self._status.account in accounts
                   else (params.account if params.account in accounts else None) if params.account
                   else (accounts[0] if accounts else None))
        is_paper, reason = ib_codes.classify_paper(accounts, params.port)
        return {"accounts": accounts, "account": account, "is_paper": is_paper, "paper_reason": reason}

    def _stream_account_first(self, params: ConnectionParams) -> None:
        """At API start (managed accounts known, nothing else asked yet): choose the account and ask for its
        portfolio stream ahead of ib_async's startup sync (paced), so its values and portfolio fill the
        window while orders and executions are still being read."""
        self._account_stream = None
        fields = self._account_fields(params)
        account = fields["account"]
        if not isinstance(account, str):
            return
        self._set(**fields)
        self._account_stream = (account, self.ib.reqAccountUpdatesAsync(account))

    def take_account_stream(self, account: str) -> Awaitable[None] | None:
        """The download of ``account``'s stream if it was asked for at this connection's start (once)."""
        stream, self._account_stream = self._account_stream, None
        return stream[1] if stream is not None and stream[0] == account and self.ib.isConnected() else None

    async def _connection_time(self) -> str:
        """TWS's clock at connect, as TWS writes it ("20251124 12:00:00 UTC").

        ib_async drops the time TWS sends in the handshake, so ask TWS for its current time
        straight after; if it does not answer quickly, our own clock (same format) stands in.
        """
        when = None
        try:
            when = await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), _CURRENT_TIME_TIMEOUT)
        except Exception:  # noqa: BLE001 - a slow or refusing TWS must not hold up the connect
            log.debug("current time request failed; using the local clock", exc_info=True)
        if not isinstance(when, datetime):
            when = datetime.now(timezone.utc)
        return when.astimezone(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")

    def set_account(self, account: str) -> None:
        self._set(account=account)

    async def _attempt(self, params: ConnectionParams, probe: bool = True) -> None:
        """One connect; raises ConnectError with the failure kind told apart."""
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[str] = loop.create_future()
        codes: list[int] = []
        api_started: list[bool] = []

        def on_api_start() -> None:
            api_started.append(True)
            self._stream_account_first(params)

        def on_error(req_id: int, code: int, text: str, contract: object = None) -> None:
            codes.append(code)
            if code == 321 and req_id <= 0 and not self.tws_readonly:
                # TWS in Read-Only API mode never ends the open / completed order requests: end them here
                self.tws_readonly = True
                loop.call_soon(self._end_order_sync)

        def on_socket_closed(msg: str = "") -> None:
            if not closed.done():
                closed.set_result(msg)

        await self._socket_gone()
        self.tws_readonly = False
        self.ib.errorEvent += on_error
        self.ib.client.apiStart += on_api_start
        self.ib.client.conn.disconnected += on_socket_closed
        self._attempting = True
        task = asyncio.ensure_future(
            self.ib.connectAsync(
                params.host, params.port, params.client_id, timeout=params.timeout,
                # the account stream is asked for at API start, after checking the account is managed at all
                readonly=params.readonly, account="", fetchFields=_STARTUP_FETCH,
            )
        )
        try:
            done, _pending = await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
                if not self.ib.isConnected():
                    raise ConnectionError("socket closed while synchronising")
                return
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if api_started and 326 not in codes:
                raise ConnectError(ib_codes.connection_failure(
                    FailureKind.OTHER, params.host, params.port, params.client_id,
                    "TWS closed the connection while the account state was being read"))
            raise await self._closed_failure(params, codes, closed.result(), probe=probe)
        except ConnectError:
            self._hang_up()
            raise
        except asyncio.CancelledError:
            task.cancel()
            self._hang_up()
            raise
        except ConnectionRefusedError as exc:
            raise ConnectError(ib_codes.connection_failure(
                FailureKind.NOTHING_LISTENING, params.host, params.port, params.client_id, str(exc))) from exc
        except asyncio.TimeoutError as exc:
            self._hang_up()
            if 326 in codes:
                raise await self._closed_failure(params, codes, "", probe=probe) from exc
            raise ConnectError(ib_codes.connection_failure(
                FailureKind.TIMEOUT, params.host, params.port, params.client_id,
                f"no answer within {params.timeout:g} s")) from exc
        except OSError as exc:
            self._hang_up()
            kind = FailureKind.NOTHING_LISTENING if _is_refused(exc) else FailureKind.OTHER
            raise ConnectError(ib_codes.connection_failure(
                kind, params.host, params.port, params.client_id, str(exc))) from exc
        except Exception as exc:  # noqa: BLE001 - anything else is still a failed connect, said plainly
            self._hang_up()
            if 326 in codes:
                raise await self._closed_failure(params, codes, "", probe=probe) from exc
            raise ConnectError(ib_codes.connection_failure(
                FailureKind.OTHER, params.host, params.port, params.client_id, str(exc) or type(exc).__name__)) from exc
        finally:
            self._attempting = False
            self.ib.errorEvent -= on_error
            self.ib.client.apiStart -= on_api_start
            self.ib.client.conn.disconnected -= on_socket_closed

    def _end_order_sync(self) -> None:
        for key in ("openOrders", "completedOrders"):
            self.ib.wrapper._endReq(key)

    async def _socket_gone(self) -> None:
        """Wait until the previous socket has finished closing, so its close is not taken for this attempt's."""
        conn = self.ib.client.conn
        if conn.transport is None:
            return
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_closed(msg: str = "") -> None:
            if not gone.done():
                gone.set_result(None)

        conn.disconnected += on_closed
        try:
            conn.disconnect()
            await asyncio.wait_for(gone, 2.0)
        except asyncio.TimeoutError:
            log.warning("previous TWS socket did not close in time")
        finally:
            conn.disconnected -= on_closed

    async def _closed_failure(self, params: ConnectionParams, codes: list[int], detail: str,
                              probe: bool = True) -> ConnectError:
        if 326 not in codes:
            return ConnectError(ib_codes.connection_failure(
                FailureKind.HANDSHAKE_CLOSED, params.host, params.port, params.client_id, detail))
        suggested = await self.suggest_client_id(params) if probe else None
        failure = ib_codes.connection_failure(
            FailureKind.CLIENT_ID_IN_USE, params.host, params.port, params.client_id, detail,
            suggested_client_id=suggested)
        if suggested is None:  # no free id answered: do not promise one
            failure = replace(failure, suggested_client_id=None)
        return ConnectError(failure)

    async def suggest_client_id(self, params: ConnectionParams) -> int | None:
        """The next client id above ``params.client_id`` that TWS accepts, or None if none answered."""
        for candidate in range(params.client_id + 1, params.client_id + 1 + CLIENT_ID_PROBE_SPAN):
            free = await probe_client_id(params.host, params.port, candidate, timeout=min(params.timeout, 2.0))
            if free:
                return candidate
            if free is None:
                return None  # TWS stopped answering: better no suggestion than a wrong one
        return None

    # --- link watching and reconnect -----------------------------------------------------------
    def _on_error(self, req_id: int, code: int, text: str, contract: object = None) -> None:
        if code == 321 and "read-only" in (text or "").lower() and self._status.connected and not self.tws_readonly:
            self.tws_readonly = True  # TWS was switched to Read-Only API mode while we were connected
            self._set(readonly=True)
        if not self._status.connected:
            return
        if code in _LINK_LOST:
            if self._status.state is not ConnectionState.DEGRADED or code == 1100:
                self._degraded_by = code  # 1100 is the stronger word: only 1101/1102 clear it
            self._set(state=ConnectionState.DEGRADED)
        elif code in _LINK_BACK or (code in _FARMS_OK and self._degraded_by == 2110):
            if self._status.state is ConnectionState.DEGRADED:
                self._degraded_by = None
                self._set(state=ConnectionState.CONNECTED)
            if code == 1101:  # TWS is back but dropped our market data lines
                self._on_data_lost()

    def _on_disconnected(self) -> None:
        if self._attempting or self._params is None:
            return
        if self._status.state not in (ConnectionState.CONNECTED, ConnectionState.DEGRADED):
            return
        log.warning("connection to TWS lost")
        self._heartbeat.stop()
        self._on_lost()
        lost = ConnectionFailure(FailureKind.NOT_CONNECTED, "The connection to TWS / IB Gateway was lost.",
                                 "Reconnecting automatically." if self._params.auto_reconnect
                                 else "Connect again when TWS / IB Gateway is back.")
        if not self._params.auto_reconnect:
            self._set(state=ConnectionState.DISCONNECTED, failure=lost, stale=False, stale_reason="")
            return
        self._set(state=ConnectionState.RECONNECTING, failure=lost, reconnect_attempt=0, stale=False, stale_reason="")
        self._reconnect_task = asyncio.ensure_future(self._reconnect_loop())

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff from the first to the largest delay, with +-25% jitter so clients spread out."""
        first, largest = self.backoff
        base = min(largest, first * (2 ** max(attempt - 1, 0)))
        return max(0.0, base * random.uniform(0.75, 1.25))

    async def _reconnect_loop(self) -> None:
        params = self._params
        assert params is not None
        attempt = 0
        while True:
            attempt += 1
            delay = self.retry_delay(attempt)
            self._set(state=ConnectionState.RECONNECTING, reconnect_attempt=attempt, next_retry_in=delay)
            await asyncio.sleep(delay)
            self._set(next_retry_in=None)
            try:
                await self._attempt(params, probe=False)  # no id probing while TWS may still hold our old session
            except ConnectError as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc.failure.message)
                self._set(failure=exc.failure)
                continue
            if await self._finish(reconnected=True):
                self._reconnect_task = None
                return

    async def _stop_reconnect(self) -> None:
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _is_refused(exc: OSError) -> bool:
    import errno

    return isinstance(exc, ConnectionRefusedError) or exc.errno in (errno.ECONNREFUSED, 10061) or (
        "Connect call failed" in str(exc))
