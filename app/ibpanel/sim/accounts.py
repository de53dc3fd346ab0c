"""Paper accounts of the practice exchange: cash per currency, positions, P&L, commissions and margin.

Costs, margin rates, FX and the default starting cash are data (resources/sim/commissions.json).
Money is ``Decimal`` throughout; account values are rendered as TWS renders them (plain decimal text).
Base currency USD; HKD converts at the fixed rate in the data file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.paths import resource_path
from ibpanel.sim.market import PracticeMarket, SimInstrument

ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass
class PositionState:
    """One holding. ``avg_cost`` is per share and includes commissions, as IB reports it."""

    con_id: int
    quantity: Decimal = ZERO  # signed: negative = short
    avg_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO  # cumulative, in the instrument's currency
    day: str = ""  # local trading day the day_* fields belong to (ISO date)
    day_start_quantity: Decimal = ZERO
    day_cash_flow: Decimal = ZERO  # sells - buys - commissions since the day started
    day_close: Decimal = ZERO  # the previous close the daily P&L is measured from


class _Account:
    def __init__(self, account_id: str, cash: dict[str, Decimal]):
        self.account_id = account_id
        self.cash: dict[str, Decimal] = dict(cash)
        self.positions: dict[int, PositionState] = {}


class CostModel:
    """Commissions, exchange charges, margin rates and FX from commissions.json."""

    def __init__(self, data: dict, plan: str | None = None):
        self.data = data
        self.markets = data["markets"]
        self.plan = plan or data.get("commission_plan", "fixed")
        for name, market in self.markets.items():
            if self.plan not in market["plans"]:
                raise ValueError(f"commissions.json has no {self.plan!r} plan for market {name}")
        fx = data["fx_to_base"]
        self.base_currency = fx["base"]
        self.fx = {ccy: Decimal(rate) for ccy, rate in fx["rates"].items()}
        self.starting_cash = {ccy: Decimal(v) for ccy, v in data.get("starting_cash", {}).items()}

    @classmethod
    def load(cls, path: Path | None = None, plan: str | None = None) -> CostModel:
        path = path or resource_path("sim", "commissions.json")
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), plan)

    def commission(self, inst: SimInstrument, qty: Decimal, price: Decimal) -> Decimal:
        """Broker commission plus the plan's third-party fees for one fill, in the instrument's currency."""
        return sum((amount for _name, amount in self.breakdown(inst, qty, price)), ZERO)

    def breakdown(self, inst: SimInstrument, qty: Decimal, price: Decimal) -> list[tuple[str, Decimal]]:
        """("commission", amount) then one (fee name, amount) per third-party fee, each rounded to the cent."""
        plan = self.markets[inst.market]["plans"][self.plan]
        qty = abs(Decimal(qty))
        value = qty * Decimal(price)
        c = plan["commission"]
        if "per_share" in c:
            broker = qty * Decimal(c["per_share"])
        else:
            broker = value * Decimal(c["fraction_of_value"])
        broker = max(broker, Decimal(c["minimum"]))
        if "maximum_fraction_of_value" in c:
            broker = min(broker, value * Decimal(c["maximum_fraction_of_value"]))
        broker = broker.quantize(CENT, rounding=ROUND_HALF_UP)
        out = [("commission", broker)]
        for fee in plan.get("third_party", []):
            if "per_share" in fee:
                amount = qty * Decimal(fee["per_share"])
            elif "per_order" in fee:
                amount = Decimal(fee["per_order"])
            elif "fraction_of_commission" in fee:
                amount = broker * Decimal(fee["fraction_of_commission"])
            else:
                amount = value * Decimal(fee["fraction_of_value"])
            if "minimum" in fee:
                amount = max(amount, Decimal(fee["minimum"]))
            if "maximum" in fee:
                amount = min(amount, Decimal(fee["maximum"]))
            if fee.get("round") == "up_to_dollar":
                amount = amount.to_integral_value(rounding=ROUND_CEILING)
            out.append((fee["name"], amount.quantize(CENT, rounding=ROUND_HALF_UP)))
        return out

    def margin_rates(self, inst: SimInstrument, short: bool) -> tuple[Decimal, Decimal]:
        """(initial, maintenance) fraction of position value."""
        m = self.markets[inst.market]["margin"]
        if short:
            return Decimal(m["short_initial"]), Decimal(m["short_maintenance"])
        return Decimal(m["long_initial"]), Decimal(m["long_maintenance"])

    def rate(self, currency: str) -> Decimal:
        try:
            return self.fx[currency]
        except KeyError:
            raise KeyError(f"no exchange rate for {currency} in commissions.json fx_to_base") from None


def _text(value: Decimal) -> str:
    """Money as TWS prints account values: plain decimal, two places."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):f}"


class Accounts:
    """Cash, positions and P&L of the paper accounts (DU...), valued with the live market.

    ``starting_cash`` (per currency) defaults to the data file's (USD 1,000,000 and HKD 1,000,000).
    Methods raise KeyError naming the account when an unknown account id is given.
    """

    def __init__(self, accounts: Sequence[str], market: PracticeMarket, starting_cash: dict[str, Decimal] | None = None,
                 base_currency: str = "USD", commissions_path: Path | None = None,
                 commission_plan: str | None = None):
        if not accounts:
            raise ValueError("at least one account id is needed, e.g. DU111111")
        self.market = market
        self.costs = CostModel.load(commissions_path, commission_plan)  # None: the data file's plan
        if base_currency != self.costs.base_currency:
            raise ValueError(f"base currency {base_currency} differs from the FX table's base "
                             f"{self.costs.base_currency} in commissions.json")
        self.base_currency = base_currency
        cash = starting_cash if starting_cash is not None else self.costs.starting_cash
        self.starting_cash = {ccy: Decimal(v) for ccy, v in cash.items()}
        for ccy in self.costs.fx:
            self.starting_cash.setdefault(ccy, ZERO)
        self._accounts = {acct: _Account(acct, self.starting_cash) for acct in accounts}

    # ----- basics -----------------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return list(self._accounts)

    def _acct(self, account: str) -> _Account:
        try:
            return self._accounts[account]
        except KeyError:
            raise KeyError(f"account {account!r} is not one of {', '.join(self._accounts)}") from None

    def commission(self, inst: SimInstrument, qty: Decimal, price: Decimal) -> tuple[Decimal, str]:
        """(amount, currency) of commission plus charges for a fill of ``qty`` at ``price``."""
        return self.costs.commission(inst, qty, price), inst.currency

    def cash(self, account: str) -> dict[str, Decimal]:
        return dict(self._acct(account).cash)

    # ----- fills ------------------------------------------------------------------------------------------
    def apply_fill(self, account: str, inst: SimInstrument, side: str, qty: Decimal, price: Decimal,
                   commission: Decimal) -> Decimal:
        """Book one fill; returns its realized P&L (instrument currency; 0 for an opening fill).

        Opening fills fold the commission into the average cost; closing fills subtract it from the
        realized P&L; a fill that flips the position splits the commission pro rata.
        """
        acct = self._acct(account)
        qty = Decimal(qty)
        price = Decimal(price)
        commission = Decimal(commission)
        if qty <= 0:
            raise ValueError(f"fill quantity must be positive, got {qty}")
        side = side.upper()
        if side not in ("BUY", "SELL", "BOT", "SLD"):
            raise ValueError(f"side must be BUY or SELL, got {side!r}")
        sign = Decimal(1) if side in ("BUY", "BOT") else Decimal(-1)
        pos = acct.positions.get(inst.con_id)
        if pos is None:
            pos = acct.positions[inst.con_id] = PositionState(inst.con_id)
        self._roll_day(pos, inst)
        ccy = inst.currency
        acct.cash[ccy] = acct.cash.get(ccy, ZERO) - sign * qty * price - commission
        pos.day_cash_flow += -sign * qty * price - commission

        realized = ZERO
        old = pos.quantity
        closing = ZERO
        if old != 0 and (old > 0) != (sign > 0):
            closing = min(abs(old), qty)
        opening = qty - closing
        if closing:
            close_comm = commission * closing / qty
            # long closed by a sale: (price - avg); short covered by a buy: (avg - price)
            direction = Decimal(1) if old > 0 else Decimal(-1)
            realized = direction * closing * (price - pos.avg_cost) - close_comm
            pos.quantity = old - direction * closing
            pos.realized_pnl += realized
            if pos.quantity == 0:
                pos.avg_cost = ZERO
        if opening:
            open_comm = commission * opening / qty
            held = abs(pos.quantity)
            # commission raises a long's cost basis and lowers a short's
            cost = held * pos.avg_cost + opening * price + sign * open_comm
            pos.quantity += sign * opening
            pos.avg_cost = cost / abs(pos.quantity)
        return realized

    def _roll_day(self, pos: PositionState, inst: SimInstrument) -> None:
        top = self.market.top(inst.con_id)
        day = _local_day(self.market, inst)
        if pos.day != day:
            pos.day = day
            pos.day_start_quantity = pos.quantity
            pos.day_cash_flow = ZERO
            pos.day_close = top.close

    # ----- reads ------------------------------------------------------------------------------------------
    def positions(self, account: str) -> list[PositionState]:
        """Every position the account held today, including ones closed to zero (TWS reports those too)."""
        return [PositionState(**{**vars(p), "avg_cost": tidy(p.avg_cost), "realized_pnl": tidy(p.realized_pnl)})
                for p in self._acct(account).positions.values()]

    def _mark(self, con_id: int) -> Decimal:
        return self.market.top(con_id).last

    def portfolio(self, account: str) -> list[tuple[SimInstrument, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]]:
        """(inst, position, market_price, market_value, average_cost, unrealized, realized) in instrument currency."""
        out = []
        for pos in self._acct(account).positions.values():
            inst = self.market.book.by_con_id(pos.con_id)
            if inst is None:
                continue
            price = self._mark(pos.con_id)
            value = pos.quantity * price
            unrealized = value - pos.quantity * pos.avg_cost
            out.append((inst, pos.quantity, price, _money(value), tidy(pos.avg_cost), _money(unrealized),
                        _money(pos.realized_pnl)))
        return out

    def _position_numbers(self, acct: _Account):
        """Per-position (inst, value, unrealized, realized, daily) in instrument currency."""
        for pos in acct.positions.values():
            inst = self.market.book.by_con_id(pos.con_id)
            if inst is None:
                continue
            top = self.market.top(pos.con_id)
            value = pos.quantity * top.last
            unrealized = value - pos.quantity * pos.avg_cost
            if pos.day == _local_day(self.market, inst):
                daily = value - pos.day_start_quantity * pos.day_close + pos.day_cash_flow
            else:  # no trade today: the day's move on the whole holding
                daily = pos.quantity * (top.last - top.close)
            yield inst, pos, value, unrealized, pos.realized_pnl, daily

    def pnl(self, account: str) -> tuple[Decimal, Decimal, Decimal]:
        """(daily, unrealized, realized) in the base currency."""
        daily = unrealized = realized = ZERO
        for inst, _pos, _value, unr, rea, day in self._position_numbers(self._acct(account)):
            fx = self.costs.rate(inst.currency)
            daily += day * fx
            unrealized += unr * fx
            realized += rea * fx
        return _money(daily), _money(unrealized), _money(realized)

    def pnl_single(self, account: str, con_id: int) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """(position, daily, unrealized, realized, value); money in the base currency."""
        for inst, pos, value, unr, rea, day in self._position_numbers(self._acct(account)):
            if pos.con_id == con_id:
                fx = self.costs.rate(inst.currency)
                return pos.quantity, _money(day * fx), _money(unr * fx), _money(rea * fx), _money(value * fx)
        return ZERO, ZERO, ZERO, ZERO, ZERO

    def _totals(self, account: str, extra: tuple[SimInstrument, Decimal, Decimal] | None = None) -> dict:
        """Account-level numbers in base currency, optionally as if ``extra`` (inst, signed qty, price) filled."""
        acct = self._acct(account)
        per_ccy: dict[str, dict[str, Decimal]] = {
            ccy: {"cash": cash, "stock": ZERO, "unrealized": ZERO, "realized": ZERO}
            for ccy, cash in acct.cash.items()
        }
        init = maint = gross = ZERO
        holdings: dict[int, tuple[SimInstrument, Decimal, Decimal]] = {}
        for inst, pos, value, unr, rea, _day in self._position_numbers(acct):
            bucket = per_ccy.setdefault(inst.currency, {"cash": ZERO, "stock": ZERO, "unrealized": ZERO,
                                                        "realized": ZERO})
            bucket["stock"] += value
            bucket["unrealized"] += unr
            bucket["realized"] += rea
            holdings[inst.con_id] = (inst, pos.quantity, self.market.top(inst.con_id).last)
        if extra is not None:
            inst, signed_qty, price = extra
            _i, held, mark = holdings.get(inst.con_id, (inst, ZERO, self.market.top(inst.con_id).last))
            holdings[inst.con_id] = (inst, held + signed_qty, mark)
            bucket = per_ccy.setdefault(inst.currency, {"cash": ZERO, "stock": ZERO, "unrealized": ZERO,
                                                        "realized": ZERO})
            # the trade itself is value-neutral at its price; only commission changes equity
            bucket["cash"] -= signed_qty * price
            bucket["stock"] += signed_qty * price
        for inst, qty, mark in holdings.values():
            value_base = abs(qty) * mark * self.costs.rate(inst.currency)
            ini, mnt = self.costs.margin_rates(inst, short=qty < 0)
            init += value_base * ini
            maint += value_base * mnt
            gross += value_base
        cash_base = sum((b["cash"] * self.costs.rate(c) for c, b in per_ccy.items()), ZERO)
        stock_base = sum((b["stock"] * self.costs.rate(c) for c, b in per_ccy.items()), ZERO)
        net_liq = cash_base + stock_base
        return {"per_ccy": per_ccy, "cash": cash_base, "stock": stock_base, "net_liq": net_liq, "gross": gross,
                "init": init, "maint": maint, "equity": net_liq}

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        """(key, value, currency) rows as TWS sends them in ACCT_VALUE: account-level keys in the base
        currency, ledger keys per currency plus a "BASE" row."""
        t = self._totals(account)
        base = self.base_currency
        available = _money(t["equity"] - t["init"])  # rounded first so BuyingPower is exactly 4x what is shown
        excess = _money(t["equity"] - t["maint"])
        net_liq = t["net_liq"]
        rows: list[tuple[str, str, str]] = [
            ("AccountCode", account, ""),
            ("AccountOrGroup", account, base),
            ("AccountReady", "true", ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("AccruedCash", "0.00", base),
            ("AvailableFunds", _text(available), base),
            ("BuyingPower", _text(max(available, ZERO) * 4), base),
            ("Cushion", f"{(excess / net_liq) if net_liq else ZERO:.6f}", ""),
            ("DayTradesRemaining", "-1", ""),
            ("EquityWithLoanValue", _text(t["equity"]), base),
            ("ExcessLiquidity", _text(excess), base),
            ("FullAvailableFunds", _text(available), base),
            ("FullExcessLiquidity", _text(excess), base),
            ("FullInitMarginReq", _text(t["init"]), base),
            ("FullMaintMarginReq", _text(t["maint"]), base),
            ("GrossPositionValue", _text(t["gross"]), base),
            ("InitMarginReq", _text(t["init"]), base),
            ("Leverage-S", f"{(t['gross'] / net_liq) if net_liq else ZERO:.2f}", ""),
            ("LookAheadAvailableFunds", _text(available), base),
            ("LookAheadExcessLiquidity", _text(excess), base),
            ("LookAheadInitMarginReq", _text(t["init"]), base),
            ("LookAheadMaintMarginReq", _text(t["maint"]), base),
            ("MaintMarginReq", _text(t["maint"]), base),
            ("NetLiquidation", _text(net_liq), base),
            ("PreviousDayEquityWithLoanValue", _text(t["equity"]), base),
            ("RegTEquity", _text(t["equity"]), base),
            ("RegTMargin", _text(t["init"]), base),
            ("SMA", _text(max(available, ZERO)), base),
            ("TotalCashValue", _text(t["cash"]), base),
        ]
        ledger_base = {"cash": ZERO, "stock": ZERO, "unrealized": ZERO, "realized": ZERO}
        for ccy in sorted(t["per_ccy"]):
            b = t["per_ccy"][ccy]
            rate = self.costs.rate(ccy)
            for k in ledger_base:
                ledger_base[k] += b[k] * rate
            rows += _ledger_rows(ccy, b, rate)
        rows += _ledger_rows("BASE", ledger_base, Decimal(1))
        rows.append(("RealCurrency", base, base))
        return rows

    def summary(self, account: str, tags: Sequence[str]) -> list[tuple[str, str, str]]:
        """(tag, value, currency) rows for reqAccountSummary. "$LEDGER" gives the BASE ledger rows,
        "$LEDGER:ALL" every currency's, "$LEDGER:HKD" one currency's; unknown tags are skipped."""
        values = self.account_values(account)
        by_key = {}
        for key, value, ccy in values:
            if ccy in ("", self.base_currency) and key not in by_key:
                by_key[key] = (key, value, ccy)
        ledger_keys = {"CashBalance", "TotalCashBalance", "NetLiquidationByCurrency", "StockMarketValue",
                       "UnrealizedPnL", "RealizedPnL", "ExchangeRate", "Currency", "AccruedCash"}
        out: list[tuple[str, str, str]] = []
        for raw in tags:
            tag = raw.strip()
            if not tag:
                continue
            if tag.startswith("$LEDGER"):
                which = tag.partition(":")[2].upper() or "BASE"
                out += [(k, v, c) for k, v, c in values
                        if k in ledger_keys and c != "" and (which == "ALL" or c == which)]
            elif tag in by_key:
                out.append(by_key[tag])
        return out

    def what_if(self, account: str, inst: SimInstrument, side: str, qty: Decimal, price: Decimal) -> dict:
        """Margin and commission preview of an order, base currency for margin/equity, as TWS's what-if.

        Keys: init_/maint_/equity_ before, change, after; commission, min_commission, max_commission
        (instrument currency) and "commission_currency" (str).
        """
        qty = Decimal(qty)
        price = Decimal(price)
        sign = Decimal(1) if side.upper() in ("BUY", "BOT") else Decimal(-1)
        before = self._totals(account)
        after = self._totals(account, (inst, sign * qty, price))
        commission = self.costs.commission(inst, qty, price)
        commission_base = commission * self.costs.rate(inst.currency)
        equity_after = after["equity"] - commission_base
        result: dict = {
            "init_before": _money(before["init"]), "init_after": _money(after["init"]),
            "maint_before": _money(before["maint"]), "maint_after": _money(after["maint"]),
            "equity_before": _money(before["equity"]), "equity_after": _money(equity_after),
            "commission": commission, "min_commission": commission, "max_commission": commission,
            "commission_currency": inst.currency,
        }
        for k in ("init", "maint", "equity"):
            result[f"{k}_change"] = result[f"{k}_after"] - result[f"{k}_before"]
        return result

    # ----- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "base_currency": self.base_currency,
            "accounts": {
                a.account_id: {
                    "cash": {c: str(v) for c, v in a.cash.items()},
                    "positions": [
                        {"con_id": p.con_id, "quantity": str(p.quantity), "avg_cost": str(p.avg_cost),
                         "realized_pnl": str(p.realized_pnl), "day": p.day,
                         "day_start_quantity": str(p.day_start_quantity), "day_cash_flow": str(p.day_cash_flow),
                         "day_close": str(p.day_close)}
                        for p in a.positions.values()
                    ],
                }
                for a in self._accounts.values()
            },
        }

    def load_dict(self, d: dict) -> None:
        """Restore saved accounts; accounts not configured now are added back, so no history is lost."""
        for account_id, saved in d.get("accounts", {}).items():
            acct = self._accounts.get(account_id)
            if acct is None:
                acct = self._accounts[account_id] = _Account(account_id, self.starting_cash)
            acct.cash = {c: Decimal(v) for c, v in saved.get("cash", {}).items()}
            acct.positions = {}
            for p in saved.get("positions", []):
                acct.positions[int(p["con_id"])] = PositionState(
                    con_id=int(p["con_id"]), quantity=Decimal(p["quantity"]), avg_cost=Decimal(p["avg_cost"]),
                    realized_pnl=Decimal(p.get("realized_pnl", "0")), day=p.get("day", ""),
                    day_start_quantity=Decimal(p.get("day_start_quantity", "0")),
                    day_cash_flow=Decimal(p.get("day_cash_flow", "0")),
                    day_close=Decimal(p.get("day_close", "0")))


def _ledger_rows(ccy: str, b: dict[str, Decimal], rate: Decimal) -> list[tuple[str, str, str]]:
    net = b["cash"] + b["stock"]
    return [
        ("CashBalance", _text(b["cash"]), ccy),
        ("Currency", ccy, ccy),
        ("ExchangeRate", f"{rate:f}", ccy),
        ("NetLiquidationByCurrency", _text(net), ccy),
        ("RealizedPnL", _text(b["realized"]), ccy),
        ("StockMarketValue", _text(b["stock"]), ccy),
        ("TotalCashBalance", _text(b["cash"]), ccy),
        ("UnrealizedPnL", _text(b["unrealized"]), ccy),
    ]


def tidy(value: Decimal) -> Decimal:
    """At most 8 decimals, no trailing zeros, never exponent notation (230, 230.5, 230.33333333)."""
    value = Decimal(value).quantize(Decimal("0.00000001"))
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _local_day(market: PracticeMarket, inst: SimInstrument) -> str:
    now: datetime = market.clock()
    day: date = now.astimezone(ZoneInfo(inst.time_zone)).date()
    return day.isoformat()
