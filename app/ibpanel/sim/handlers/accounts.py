"""Accounts: positions, account updates (single and multi), account summary, PnL, and the live
pushes after fills and price moves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim.calendars import UTC
from ibpanel.sim.handlers.contracts import TEXT_NO_SECURITY
from ibpanel.sim.handlers.orders import _num

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession


TEXT_SUMMARY_LIMIT = "Error processing request.-'bm' : cause - Maximum number of account summary requests exceeded"
MAX_ACCOUNT_SUMMARIES = 2  # concurrent reqAccountSummary subscriptions TWS allows per client


class AccountHandlers:
    """SimServer's accounts part (mixed into SimServer; state lives on the server)."""

    # ----- accounts ---------------------------------------------------------------------------------------
    def _known_account(self, session: ClientSession, account: str, req_id: int) -> bool:
        if account in self.config.accounts:
            return True
        session.send(P.error_message(req_id, 321, f"Error validating request: account {account!r} is not one "
                                                  f"of {','.join(self.config.accounts)}"))
        return False

    def _on_positions(self, session: ClientSession, args: tuple) -> None:
        session.positions_subscribed = True
        for account in self.config.accounts:
            for message in self._position_messages(account, only_held=False):
                session.send(message)
        session.send(P.position_end())

    def _on_cancel_positions(self, session: ClientSession, args: tuple) -> None:
        session.positions_subscribed = False

    def _on_positions_multi(self, session: ClientSession, args: tuple) -> None:
        req_id, account, model = args
        accounts = self._multi_accounts(account)
        if accounts is None:
            self._known_account(session, account, req_id)
            session.send(P.position_multi_end(req_id))  # 321 alone leaves ib_async waiting
            return
        for acct in accounts:
            for pos in self.accounts.positions(acct):
                inst = self.book.by_con_id(pos.con_id)
                if inst is not None:
                    session.send(P.position_multi(req_id, acct, self._record(inst), _num(pos.quantity),
                                                  _num(pos.avg_cost), model))
        session.send(P.position_multi_end(req_id))

    def _on_nothing_running(self, session: ClientSession, args: tuple) -> None:
        """Cancels of requests that are answered at once: nothing keeps running, nothing to send."""

    def _on_managed_accounts(self, session: ClientSession, args: tuple) -> None:
        session.send(P.managed_accounts(self.config.accounts))

    def _position_messages(self, account: str, only_held: bool = False) -> list[bytes]:
        out = []
        held = set()
        for pos in self.accounts.positions(account):
            inst = self.book.by_con_id(pos.con_id)
            if inst is None or (only_held and pos.quantity == 0):
                continue
            held.add(pos.con_id)
            out.append(P.position_data(account, self._record(inst), _num(pos.quantity), _num(pos.avg_cost)))
        previously = self._sent_positions.get(account, set())
        if not only_held:
            for con_id in previously - held:  # a closed position is reported once with quantity 0
                inst = self.book.by_con_id(con_id)
                if inst is not None:
                    out.append(P.position_data(account, self._record(inst), 0, 0))
        self._sent_positions[account] = held | (previously if only_held else set())
        return out

    def _values_to_send(self, key: tuple, account: str, changed_only: bool) -> list[tuple[str, str, str]]:
        """The account's (key, value, currency) rows for the subscription ``key``, remembered as sent.

        ``changed_only`` (live pushes): only the rows that differ from what this subscription was last
        sent. After a subscription's full download, an account value comes again when it changes (a quiet
        market: nothing; moving prices: the few values that follow them). TWS refreshes its account window
        every three minutes unless a position changes; this exchange pushes every ``account_push_seconds``
        while prices move, so it leaves out what a client already has.
        """
        values = list(self.accounts.account_values(account))
        if not changed_only:
            self._sent_values[key] = {(name, currency): value for name, value, currency in values}
            return values
        last = self._sent_values.setdefault(key, {})
        changed = [row for row in values if last.get((row[0], row[2])) != row[1]]
        for name, value, currency in changed:
            last[(name, currency)] = value
        return changed

    def _portfolio_messages(self, session: ClientSession, account: str) -> list[bytes]:
        out = []
        held = set()
        for inst, position, price, value, avg_cost, unrealized, realized in self.accounts.portfolio(account):
            held.add(inst.con_id)
            out.append(P.portfolio_value(self._record(inst), _num(position), _num(price), _num(value),
                                         _num(avg_cost), _num(unrealized), _num(realized), account))
        key = (id(session), account)
        for con_id in self._sent_portfolio.get(key, set()) - held:
            inst = self.book.by_con_id(con_id)
            if inst is not None:
                out.append(P.portfolio_value(self._record(inst), 0, 0, 0, 0, 0, 0, account))
        self._sent_portfolio[key] = held
        return out

    def _on_account_updates(self, session: ClientSession, args: tuple) -> None:
        subscribe, account = args
        if not subscribe:
            session.account_updates = None
            return
        account = account or self.config.accounts[0]
        if not self._known_account(session, account, -1):
            session.send(P.account_download_end(account))  # 321 alone leaves ib_async waiting
            return
        session.account_updates = account
        self._send_account_download(session, account, end=True)

    def _send_account_download(self, session: ClientSession, account: str, end: bool,
                               changed_only: bool = False) -> None:
        for name, value, currency in self._values_to_send((id(session), "account", account), account, changed_only):
            session.send(P.account_value(name, value, currency, account))
        for message in self._portfolio_messages(session, account):
            session.send(message)
        session.send(P.account_update_time(datetime.now(UTC).strftime("%H:%M")))
        if end:
            session.send(P.account_download_end(account))

    def _on_account_updates_multi(self, session: ClientSession, args: tuple) -> None:
        req_id, account, _model, _ledger = args
        accounts = self._multi_accounts(account)
        if accounts is None:
            self._known_account(session, account, req_id)
            session.send(P.account_update_multi_end(req_id))  # 321 alone leaves ib_async waiting
            return
        session.multi_subs[req_id] = account
        self._send_multi(session, req_id, accounts)
        session.send(P.account_update_multi_end(req_id))

    def _multi_accounts(self, account: str) -> list[str] | None:
        if account in ("", "All"):
            return list(self.config.accounts)
        return [account] if account in self.config.accounts else None

    def _send_multi(self, session: ClientSession, req_id: int, accounts: Iterable[str],
                    changed_only: bool = False) -> None:
        for acct in accounts:
            for name, value, currency in self._values_to_send((id(session), "multi", req_id, acct), acct, changed_only):
                session.send(P.account_update_multi(req_id, acct, "", name, value, currency))

    def _on_cancel_account_updates_multi(self, session: ClientSession, args: tuple) -> None:
        session.multi_subs.pop(args[0], None)
        for key in [k for k in self._sent_values if k[:3] == (id(session), "multi", args[0])]:
            del self._sent_values[key]

    def _on_account_summary(self, session: ClientSession, args: tuple) -> None:
        req_id, _group, tags = args
        if req_id not in session.summary_subs and len(session.summary_subs) >= MAX_ACCOUNT_SUMMARIES:
            session.send(P.error_message(req_id, 322, TEXT_SUMMARY_LIMIT))
            return
        wanted = tuple(t.strip() for t in tags.split(",") if t.strip())
        session.summary_subs[req_id] = wanted
        for account in self.config.accounts:
            for tag, value, currency in self.accounts.summary(account, wanted):
                session.send(P.account_summary(req_id, account, tag, value, currency))
        session.send(P.account_summary_end(req_id))

    def _on_cancel_account_summary(self, session: ClientSession, args: tuple) -> None:
        session.summary_subs.pop(args[0], None)

    def _on_pnl(self, session: ClientSession, args: tuple) -> None:
        req_id, account, _model = args
        if not self._known_account(session, account, req_id):
            return
        session.pnl_subs[req_id] = account
        self._send_pnl(session, req_id, account)

    def _send_pnl(self, session: ClientSession, req_id: int, account: str) -> None:
        daily, unrealized, realized = self.accounts.pnl(account)
        session.send(P.pnl(req_id, _num(daily), _num(unrealized), _num(realized)))

    def _on_cancel_pnl(self, session: ClientSession, args: tuple) -> None:
        session.pnl_subs.pop(args[0], None)

    def _on_pnl_single(self, session: ClientSession, args: tuple) -> None:
        req_id, account, _model, con_id = args
        if not self._known_account(session, account, req_id):
            return
        if self.book.by_con_id(con_id) is None:
            session.send(P.error_message(req_id, 200, TEXT_NO_SECURITY))
            return
        session.pnl_single_subs[req_id] = (account, con_id)
        self._send_pnl_single(session, req_id, account, con_id)

    def _send_pnl_single(self, session: ClientSession, req_id: int, account: str, con_id: int) -> None:
        pos, daily, unrealized, realized, value = self.accounts.pnl_single(account, con_id)
        session.send(P.pnl_single(req_id, _num(pos), _num(daily), _num(unrealized), _num(realized), _num(value)))

    def _on_cancel_pnl_single(self, session: ClientSession, args: tuple) -> None:
        session.pnl_single_subs.pop(args[0], None)

    def _flush_accounts(self) -> None:
        """After fills: positions, account values and portfolio of the touched accounts, to subscribers."""
        self._account_flush_scheduled = False
        accounts, self._dirty_accounts = self._dirty_accounts, set()
        for account in accounts:
            position_messages = None
            for session in self.started_sessions():
                if session.positions_subscribed:
                    if position_messages is None:
                        position_messages = self._position_messages(account)
                    for message in position_messages:
                        session.send(message)
                if session.account_updates == account:
                    self._send_account_download(session, account, end=False)
                for req_id, acct in session.multi_subs.items():
                    if acct in ("", "All", account):
                        self._send_multi(session, req_id, [account])
                for req_id, acct in session.pnl_subs.items():
                    if acct == account:
                        self._send_pnl(session, req_id, account)
                for req_id, (acct, con_id) in session.pnl_single_subs.items():
                    if acct == account:
                        self._send_pnl_single(session, req_id, acct, con_id)

    def _push_live_accounts(self) -> None:
        """Prices moved: values of accounts that hold something change, so subscribers get them again."""
        holding = {a for a in self.config.accounts if any(p.quantity != 0 for p in self.accounts.positions(a))}
        for session in self.started_sessions():
            if session.account_updates in holding:
                self._send_account_download(session, session.account_updates, end=False, changed_only=True)
            for req_id, acct in session.multi_subs.items():
                self._send_multi(session, req_id, [a for a in (self._multi_accounts(acct) or []) if a in holding],
                                 changed_only=True)
            for req_id, acct in session.pnl_subs.items():
                self._send_pnl(session, req_id, acct)
            for req_id, (acct, con_id) in session.pnl_single_subs.items():
                self._send_pnl_single(session, req_id, acct, con_id)
