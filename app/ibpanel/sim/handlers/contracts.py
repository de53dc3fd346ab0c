"""Contract requests: contract details, symbol search, market rules; instrument lookup for every area.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim.market import SimInstrument

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession


TEXT_NO_SECURITY = "No security definition has been found for the request"
TEXT_NO_EXCHANGE = "Error validating request.-'bW' : cause - Please enter exchange"
TEXT_NO_CURRENCY = "Error validating request.-'bW' : cause - Please enter currency"


def _replace_record(rec: P.ContractRecord, **changes) -> P.ContractRecord:
    from dataclasses import replace

    return replace(rec, **changes)


class ContractHandlers:
    """SimServer's contracts part (mixed into SimServer; state lives on the server)."""

    # ----- contracts --------------------------------------------------------------------------------------
    def _record(self, inst: SimInstrument) -> P.ContractRecord:
        rec = self._records.get(inst.con_id)
        if rec is None:
            rec = P.ContractRecord(
                con_id=inst.con_id, symbol=inst.symbol, sec_type=inst.sec_type, exchange=inst.exchange,
                primary_exchange=inst.primary_exchange, currency=inst.currency, local_symbol=inst.local_symbol,
                trading_class=inst.trading_class, market_name=inst.market_name or inst.trading_class,
                min_tick=inst.min_tick, order_types=inst.order_types, valid_exchanges=inst.valid_exchanges,
                long_name=inst.long_name, industry=inst.industry, category=inst.category,
                subcategory=inst.subcategory, time_zone=inst.time_zone, market_rule_ids=inst.market_rule_ids,
                stock_type=inst.stock_type, min_size=inst.min_size, size_increment=inst.size_increment,
                suggested_size_increment=inst.size_increment,
            )
            self._records[inst.con_id] = rec
        return rec

    def find_instruments(self, spec: P.ContractSpec) -> list[SimInstrument]:
        """IB's matching over the book; SMART with HKD (or an HK code) also finds SEHK stocks."""
        sec_type = spec.sec_type.upper()
        if sec_type and sec_type != "STK":
            return []
        symbol = spec.symbol or spec.local_symbol
        if not symbol and not spec.con_id:
            return []
        found = self.book.find(symbol, sec_type="STK", exchange=spec.exchange, currency=spec.currency,
                               primary_exchange=spec.primary_exchange, con_id=spec.con_id)
        if not found and spec.exchange.upper() == "SMART":
            found = [i for i in self.book.find(symbol, sec_type="STK", currency=spec.currency,
                                               primary_exchange=spec.primary_exchange, con_id=spec.con_id)
                     if i.exchange == "SEHK"]
        return found

    def resolve(self, spec: P.ContractSpec) -> SimInstrument | None:
        found = self.find_instruments(spec)
        return found[0] if len(found) == 1 else None

    def _on_contract_details(self, session: ClientSession, req: P.ContractDetailsRequest) -> None:
        found = self.find_instruments(req.contract)
        if not found:
            session.send(P.error_message(req.req_id, 200, TEXT_NO_SECURITY))
            return
        for inst in found:
            rec = self._record(inst)
            trading, liquid = self.market.trading_hours(inst.con_id)
            exchange = req.contract.exchange.upper() or inst.exchange
            if exchange != inst.exchange and exchange not in inst.valid_exchanges.split(","):
                exchange = inst.exchange
            rec = _replace_record(rec, exchange=exchange, trading_hours=trading, liquid_hours=liquid)
            session.send(P.contract_data(req.req_id, rec))
        session.send(P.contract_data_end(req.req_id))

    def _on_market_rule(self, session: ClientSession, args: tuple) -> None:
        (rule_id,) = args
        try:
            rows = self.rules.rows(rule_id)
        except KeyError:
            session.send(P.error_message(-1, 321, f"Error validating request: market rule {rule_id} is unknown"))
            return
        session.send(P.market_rule(rule_id, rows))

    def _on_matching_symbols(self, session: ClientSession, args: tuple) -> None:
        """Symbol search: symbols starting with the pattern first, then names containing it (16 at most)."""
        req_id, pattern = args
        wanted = pattern.strip().upper()
        rows: list[SimInstrument] = []
        if wanted:
            everything = self.book.all()
            rows = [i for i in everything if i.symbol.upper().startswith(wanted)]
            rows += [i for i in everything if wanted in i.long_name.upper() and i not in rows]
        session.send(P.symbol_samples(req_id, [self._record(i) for i in rows[:16]]))
