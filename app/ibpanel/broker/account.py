"""Account state: values per account and currency, positions with real market value, fills, daily P&L.

ib_async keeps the raw rows; this module turns them into our models and coalesces bursts (TWS
sends dozens of ACCT_VALUE rows per update) into one ``account_changed`` / ``positions_changed``
emit per loop turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, datetime, timezone

from ib_async import IB

from ibpanel.broker import journal as journal_mod
from ibpanel.broker.convert import (
    account_summary,
    account_value,
    dec,
    fill_model,
    num,
    position_from_portfolio,
    position_from_position,
)
from ibpanel.broker.models import AccountSummary, Fill, Instrument, Market, PnL, Position
from ibpanel.broker.rules import zone

log = logging.getLogger(__name__)


_EXCHANGE_ZONE = {Market.US: "America/New_York", Market.HK: "Asia/Hong_Kong"}


def session_day(moment: datetime, instrument: Instrument) -> date:
    """The trading day ``moment`` falls on at the instrument's exchange (UTC where no time zone data)."""
    try:
        return moment.astimezone(zone(_EXCHANGE_ZONE.get(instrument.market, "UTC"))).date()
    except Exception:  # noqa: BLE001 - no tz database (Windows without tzdata): the UTC day
        return moment.astimezone(timezone.utc).date()


class AccountBook:
    """Emits through the callbacks given; ``selected()`` names the account the views show."""

    def __init__(
        self,
        ib: IB,
        journal: journal_mod.OrderJournal,
        *,
        instrument_for: Callable[[object], Instrument],
        price_of: Callable[[Instrument], float | None],
        selected: Callable[[], str | None],
        on_account: Callable[[AccountSummary], None],
        on_positions: Callable[[tuple[Position, ...]], None],
        on_fill: Callable[[Fill], None],
        on_pnl: Callable[[PnL], None],
        watch_price: Callable[[Instrument], None] | None = None,
    ) -> None:
        self.ib = ib
        self.journal = journal
        self._instrument_for = instrument_for
        self._price_of = price_of
        self._selected = selected
        self._on_account = on_account
        self._on_positions = on_positions
        self._on_fill = on_fill
        self._on_pnl = on_pnl
        # TWS streams portfolio prices for one account at a time: other accounts' holdings are priced
        # from quotes this asks for (idempotent per instrument)
        self._watch_price = watch_price or (lambda instrument: None)
        self._fills: dict[str, Fill] = {}
        # (account, conId) -> TWS's last portfolio row of a position closed to 0 (ib_async drops those rows)
        self._closed: dict[tuple[str, int], object] = {}
        self._pnl: dict[str, PnL] = {}
        self._pnl_requested: set[str] = set()
        # (account, conId) -> IB's single-position P&L (reqPnLSingle), one subscription per held position
        self._pnl_single: dict[tuple[str, int], object] = {}
        self._pnl_single_requested: set[tuple[str, int]] = set()
        self._dirty_account = False
        self._dirty_positions = False
        self._flush_scheduled = False
        ib.accountValueEvent += self._on_account_value
        ib.updatePortfolioEvent += self._on_portfolio
        ib.positionEvent += self._on_position
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.pnlEvent += self._on_pnl_event
        ib.pnlSingleEvent += self._on_pnl_single

    # --- queries -------------------------------------------------------------------------------
    def summary(self, account: str | None) -> AccountSummary | None:
        account = account or self._selected()
        if not account:
            return None
        rows = [account_value(v) for v in self.ib.accountValues(account)]
        if not rows:
            return None
        pnl = self._pnl.get(account)
        return account_summary(account, rows, pnl.daily if pnl else None)

    def positions(self, account: str | None, closed_today: bool = False) -> tuple[Position, ...]:
        """Positions of ``account`` (None or "": the selected one).

        ``closed_today``: also the positions closed to 0 in this session (a fill of today), with their
        realized P&L, as TWS keeps them until the next session.

        The position stream (reqPositions, pushed on every change) is the truth for quantity and
        average cost; the portfolio stream adds market price, market value and P&L. When the two
        disagree (the portfolio update trails a fill) the value is recomputed from the quantity.
        """
        account = account or self._selected()
        streamed = self._selected()
        items = {(item.account, item.contract.conId): item for item in self.ib.portfolio(account or "")}
        out = []
        for pos in self.ib.positions(account or ""):
            instrument = self._instrument_for(pos.contract)
            item = items.get((pos.account, pos.contract.conId))
            live = pos.account == streamed  # another account's portfolio rows stopped when TWS switched streams
            if live and item is not None and dec(item.position) == dec(pos.position):
                out.append(position_from_portfolio(item, instrument))
                continue
            price = num(item.marketPrice) if item is not None and live else None
            if price is None:
                price = self._price_of(instrument)
            if price is None and item is not None:
                price = num(item.marketPrice)  # an older portfolio price beats showing none
            if price is None and dec(pos.position):
                self._watch_price(instrument)  # no price yet (e.g. a position opened elsewhere): ask for quotes
            position = position_from_position(pos, instrument, price)
            if item is not None:
                position = replace(position, realized_pnl=num(item.realizedPNL))
            out.append(position)
        held = [self._with_single_pnl(p) for p in out if p.quantity != 0]
        if closed_today:
            held += self._closed_today(account, {p.instrument.con_id for p in held})
        return tuple(held)

    def _with_single_pnl(self, position: Position) -> Position:
        """Daily and unrealized P&L from IB's single-position P&L (base currency), when it is for the quantity
        held now (a report that trails a fill is for the old quantity: none is shown until the next)."""
        single = self._pnl_single.get((position.account, position.instrument.con_id or 0))
        if single is None or dec(getattr(single, "position", None)) != position.quantity:
            return position
        return replace(position, daily_pnl=num(single.dailyPnL),  # type: ignore[attr-defined]
                       single_unrealized_pnl=num(single.unrealizedPnL))  # type: ignore[attr-defined]

    def pnl_single(self, account: str, con_id: int) -> tuple[float | None, float | None] | None:
        """(daily, unrealized) of one position as IB last reported it; None before the first report."""
        single = self._pnl_single.get((account, con_id))
        if single is None:
            return None
        return num(single.dailyPnL), num(single.unrealizedPnL)  # type: ignore[attr-defined]

    def _want_pnl_single(self, account: str, con_id: int) -> None:
        key = (account, con_id)
        if not account or not con_id or key in self._pnl_single_requested:
            return
        try:
            self.ib.reqPnLSingle(account, "", con_id)  # sends the request; updates arrive as pnlSingleEvent
            self._pnl_single_requested.add(key)
        except Exception:  # noqa: BLE001 - P&L is optional; TWS may refuse it
            log.debug("reqPnLSingle failed for %s %s", account, con_id, exc_info=True)

    def _drop_pnl_single(self, account: str, con_id: int) -> None:
        """A position closed: its P&L stream stops (TWS counts these subscriptions)."""
        key = (account, con_id)
        if key not in self._pnl_single_requested:
            return
        self._pnl_single_requested.discard(key)
        self._pnl_single.pop(key, None)
        try:
            self.ib.cancelPnLSingle(account, "", con_id)
        except Exception:  # noqa: BLE001 - already gone with the connection
            log.debug("cancelPnLSingle failed for %s %s", account, con_id, exc_info=True)

    def _on_pnl_single(self, single: object) -> None:
        key = (getattr(single, "account", ""), getattr(single, "conId", 0))
        self._pnl_single[key] = single
        self._dirty_positions = True
        self._schedule()

    def _closed_today(self, account: str | None, held: set[int | None]) -> list[Position]:
        out = []
        for (owner, con_id), item in self._closed.items():
            if owner != account or con_id in held:
                continue
            instrument = self._instrument_for(item.contract)  # type: ignore[attr-defined]
            today = session_day(datetime.now(timezone.utc), instrument)
            if any(f.account == owner and f.instrument.con_id == con_id and session_day(f.time, instrument) == today
                   for f in self._fills.values()):
                # nothing is held: no average cost to show (TWS sends 0)
                out.append(replace(position_from_portfolio(item, instrument), avg_cost=None))
        return out

    def fills(self) -> tuple[Fill, ...]:
        return tuple(sorted(self._fills.values(), key=lambda f: f.time))

    def pnl(self, account: str | None) -> PnL | None:
        return self._pnl.get(account or self._selected() or "")

    # --- ib_async events -----------------------------------------------------------------------
    def _schedule(self) -> None:
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self._flush)
        except RuntimeError:  # no running loop (shutdown): flush now
            self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._dirty_account:
            self._dirty_account = False
            summary = self.summary(None)
            if summary is not None:
                self._on_account(summary)
        if self._dirty_positions:
            self._dirty_positions = False
            self._on_positions(self.positions(None, closed_today=True))

    def _on_account_value(self, value: object) -> None:
        if getattr(value, "account", None) == self._selected():
            self._dirty_account = True
            self._schedule()

    def _on_portfolio(self, item: object) -> None:
        key = (getattr(item, "account", ""), getattr(getattr(item, "contract", None), "conId", 0))
        if dec(getattr(item, "position", None)) == 0:
            self._closed[key] = item
        else:
            self._closed.pop(key, None)
        self._dirty_positions = True
        self._schedule()

    def _on_position(self, position: object) -> None:
        account, con_id = getattr(position, "account", ""), getattr(getattr(position, "contract", None), "conId", 0)
        if dec(getattr(position, "position", 0)):
            self._want_pnl_single(account, con_id)
        else:
            self._drop_pnl_single(account, con_id)
        if getattr(position, "account", None) != self._selected() and dec(getattr(position, "position", 0)):
            self._watch_price(self._instrument_for(position.contract))  # type: ignore[attr-defined]
        self._dirty_positions = True
        self._schedule()

    def _watch_other_accounts(self) -> None:
        """Quotes for every holding of an account TWS does not stream the portfolio of."""
        selected = self._selected()
        for pos in self.ib.positions(""):
            if pos.account != selected and dec(pos.position):
                self._watch_price(self._instrument_for(pos.contract))

    def _record_fill(self, fill: object) -> Fill:
        model = fill_model(fill, self._instrument_for(fill.contract))  # type: ignore[attr-defined]
        parsed = journal_mod.parse_order_ref(fill.execution.orderRef or "")  # type: ignore[attr-defined]
        if parsed:
            journal_id, leg = parsed
            execution = fill.execution  # type: ignore[attr-defined]
            mismatch = self._fill_mismatch(journal_id, fill, leg)
            if mismatch:
                log.warning("execution %s carries orderRef %s but %s: not recorded as its fill",
                            execution.execId, execution.orderRef, mismatch)
                return model
            try:
                if leg:  # bracket child: its fills belong to the leg, not to the entry order
                    self.journal.update_leg(journal_id, leg, filled=dec(fill.execution.cumQty))  # type: ignore[attr-defined]
                else:
                    self.journal.add_fill(journal_id, model.exec_id, model.quantity, model.price, model.time)
                if model.commission is not None:
                    self.journal.add_commission(model.exec_id, model.commission, model.commission_currency or "")
            except Exception:  # noqa: BLE001 - never lose the live fill over a journal error
                log.exception("journal fill write failed")
        return model

    def _fill_mismatch(self, journal_id: str, fill: object, leg: str | None) -> str:
        try:
            return self.journal.fill_mismatch(journal_id, int(getattr(fill.contract, "conId", 0) or 0),  # type: ignore[attr-defined]
                                              str(fill.execution.side or ""), leg)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a journal that cannot answer does not get the fill either
            log.exception("journal fill check failed")
            return "the journal could not be read"

    def _on_exec(self, trade: object, fill: object) -> None:
        model = self._record_fill(fill)
        if self._fills.get(model.exec_id) != model:
            self._fills[model.exec_id] = model
            self._on_fill(model)

    def _on_commission(self, trade: object, fill: object, report: object) -> None:
        self._on_exec(trade, fill)

    def _on_pnl_event(self, pnl: object) -> None:
        model = PnL(account=pnl.account, daily=num(pnl.dailyPnL),  # type: ignore[attr-defined]
                    unrealized=num(pnl.unrealizedPnL), realized=num(pnl.realizedPnL))  # type: ignore[attr-defined]
        if self._pnl.get(model.account) == model:
            return
        self._pnl[model.account] = model
        self._on_pnl(model)
        if model.account == self._selected():
            self._dirty_account = True  # daily P&L is part of the summary
            self._schedule()

    def forget_fills(self) -> None:
        self._fills.clear()
        self._closed.clear()
        self._pnl.clear()
        self._pnl_single.clear()

    # --- connection changes --------------------------------------------------------------------
    def resync(self, accounts: tuple[str, ...]) -> None:
        """After (re)connect: fills from ib_async's execution sync, P&L streams, one fresh emit."""
        for fill in self.ib.fills():
            model = self._record_fill(fill)
            if self._fills.get(model.exec_id) != model:
                self._fills[model.exec_id] = model
                self._on_fill(model)
        self._pnl_requested.clear()
        self._pnl_single_requested.clear()  # a new connection has none of the old subscriptions
        for pos in self.ib.positions(""):
            if dec(pos.position):
                self._want_pnl_single(pos.account, pos.contract.conId)
        for account in accounts:
            try:
                self.ib.reqPnL(account)
                self._pnl_requested.add(account)
            except Exception:  # noqa: BLE001 - P&L is optional; TWS may refuse it
                log.debug("reqPnL failed for %s", account, exc_info=True)
        self._watch_other_accounts()
        self._dirty_account = self._dirty_positions = True
        self._flush()

    async def select(self, account: str, requested: Awaitable[None] | None = None) -> None:
        """Switch the portfolio stream (TWS streams one account at a time) to ``account``; ``requested``: its
        download when the request is already on its way (asked for at connect), to wait for instead."""
        try:
            await asyncio.wait_for(requested or self.ib.reqAccountUpdatesAsync(account), 8)
        except asyncio.TimeoutError:
            log.warning("account updates for %s timed out", account)
        except Exception:  # noqa: BLE001 - TWS refused (error already shown as a notice)
            log.warning("account updates for %s failed", account, exc_info=True)
        self._watch_other_accounts()  # the account streamed before is now priced from quotes
        self._dirty_account = self._dirty_positions = True
        self._flush()
