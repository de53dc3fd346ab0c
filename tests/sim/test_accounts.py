"""Unit and property tests of the practice exchange's paper accounts, commissions and margin."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibpanel.sim.accounts import Accounts
from ibpanel.sim.market import PracticeMarket

from tests.helpers import FakeClock

UTC = timezone.utc


@pytest.fixture
def market(book, rules):
    return PracticeMarket(book, rules, seed=1, clock=FakeClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC)))


@pytest.fixture
def accounts(market):
    return Accounts(["DU111111", "DU222222"], market)


def inst(book, symbol):
    return book.find(symbol)[0]


def values(accounts, account="DU111111"):
    return {(k, c): v for k, v, c in accounts.account_values(account)}


# ----- commissions -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("qty,price,expected", [
    (100, "230.00", "1.00"),     # 0.50 per-share fee lifted to the USD 1.00 minimum
    (1000, "230.00", "5.00"),    # 1000 x 0.005
    (10000, "0.05", "5.00"),     # 50.00 per share capped at 1% of USD 500
])
def test_us_fixed_commission(accounts, book, qty, price, expected):
    assert accounts.commission(inst(book, "AAPL"), D(qty), D(price)) == (D(expected), "USD")


def test_hk_fixed_commission_includes_exchange_and_clearing_fees_and_adds_stamp_duty_and_levies(accounts, book):
    # 100 x 600 = 60,000: 0.08% = 48.00 (SEHK trading fee and CCASS included), stamp 60 (0.1% rounded up),
    # SFC 1.62, AFRC 0.09
    assert accounts.commission(inst(book, "700"), D(100), D("600.0")) == (D("109.71"), "HKD")
    # 1000 x 5.80 = 5,800: 4.64 -> HKD 18 minimum, stamp 5.8 -> 6, SFC 0.16, AFRC 0.01
    assert accounts.commission(inst(book, "1398"), D(1000), D("5.80")) == (D("24.17"), "HKD")
    names = [name for name, _ in accounts.costs.breakdown(inst(book, "700"), D(100), D("600.0"))]
    assert names == ["commission", "stamp duty", "SFC transaction levy", "AFRC transaction levy"]


def test_plans_reproduce_ibs_published_hong_kong_example(book):
    """IB's example: 1,000 x HKD 50 costs HKD 40 fixed; tiered 25 + exchange + clearing (2.00)."""
    from ibpanel.sim.accounts import CostModel

    hk = inst(book, "700")
    fixed = dict(CostModel.load(plan="fixed").breakdown(hk, D(1000), D(50)))
    tiered = dict(CostModel.load(plan="tiered").breakdown(hk, D(1000), D(50)))
    assert fixed["commission"] == D("40.00") and "SEHK trading fee" not in fixed
    assert tiered["commission"] == D("25.00") and tiered["CCASS settlement fee"] == D("2.00")
    # 0.00565% x 50,000 + HKD 0.50 (IB's example shows 3.00 at the pre-2023 0.005%)
    assert tiered["SEHK trading fee"] + tiered["SEHK trading tariff"] == D("3.33")
    # the regulatory fees and stamp duty are the same under both plans
    for name in ("stamp duty", "SFC transaction levy", "AFRC transaction levy"):
        assert fixed[name] == tiered[name]


def test_us_tiered_commission_per_share_with_its_minimum_and_cap(book):
    from ibpanel.sim.accounts import CostModel

    tiered = CostModel.load(plan="tiered")
    aapl = inst(book, "AAPL")
    assert tiered.breakdown(aapl, D(1000), D(230))[0] == ("commission", D("3.50"))
    assert tiered.breakdown(aapl, D(10), D(230))[0] == ("commission", D("0.35"))
    assert tiered.breakdown(aapl, D(10000), D("0.01"))[0] == ("commission", D("1.00"))  # 1% of USD 100


def test_every_commission_row_names_its_source_and_date():
    from ibpanel.paths import resource_path

    data = json.loads(resource_path("sim", "commissions.json").read_text())
    assert data["as_of"] and data["sources"] and "verify" in data["verify"].lower()
    for market in data["markets"].values():
        for plan in market["plans"].values():
            for row in [plan["commission"], *plan["third_party"]]:
                assert row["source"] and row["as_of"], row


# ----- fills, positions, P&L -------------------------------------------------------------------------------

def test_opening_fill_folds_commission_into_average_cost(accounts, book):
    aapl = inst(book, "AAPL")
    assert accounts.apply_fill("DU111111", aapl, "BUY", D(100), D("10.00"), D("1.00")) == 0
    (pos,) = accounts.positions("DU111111")
    assert pos.quantity == 100 and pos.avg_cost == D("10.01")
    assert accounts.cash("DU111111")["USD"] == D(1_000_000) - D("1001.00")
    assert accounts.positions("DU222222") == []


def test_closing_fill_realizes_net_of_commission(accounts, book):
    aapl = inst(book, "AAPL")
    accounts.apply_fill("DU111111", aapl, "BUY", D(100), D("10.00"), D("1.00"))
    realized = accounts.apply_fill("DU111111", aapl, "SELL", D(100), D("11.00"), D("1.00"))
    assert realized == D(100) * (D("11.00") - D("10.01")) - 1
    (pos,) = accounts.positions("DU111111")  # a closed position is still reported, at zero
    assert pos.quantity == 0 and pos.realized_pnl == realized
    assert accounts.cash("DU111111")["USD"] == D(1_000_000) + realized


def test_a_fill_that_flips_the_position_splits_the_commission(accounts, book):
    aapl = inst(book, "AAPL")
    accounts.apply_fill("DU111111", aapl, "BUY", D(100), D("10.00"), D("0"))
    realized = accounts.apply_fill("DU111111", aapl, "SELL", D(150), D("12.00"), D("3.00"))
    assert realized == D(200) - D(2)  # 100 closed at +2 each, 2/3 of the commission
    (pos,) = accounts.positions("DU111111")
    assert pos.quantity == -50 and pos.avg_cost == D("11.98")  # proceeds net of the other 1.00, per share


def test_short_then_cover(accounts, book):
    aapl = inst(book, "AAPL")
    accounts.apply_fill("DU111111", aapl, "SELL", D(10), D("100.00"), D("1.00"))
    realized = accounts.apply_fill("DU111111", aapl, "BUY", D(10), D("90.00"), D("1.00"))
    assert realized == D(10) * (D("99.90") - D("90.00")) - 1


def test_bad_fills_and_unknown_accounts_are_refused(accounts, book):
    aapl = inst(book, "AAPL")
    with pytest.raises(ValueError, match="positive"):
        accounts.apply_fill("DU111111", aapl, "BUY", D(0), D(1), D(0))
    with pytest.raises(ValueError, match="BUY or SELL"):
        accounts.apply_fill("DU111111", aapl, "HOLD", D(1), D(1), D(0))
    with pytest.raises(KeyError, match="DU999999"):
        accounts.positions("DU999999")
    with pytest.raises(ValueError, match="account id"):
        Accounts([], accounts.market)


def test_portfolio_and_pnl_move_with_prices(accounts, book, market):
    aapl = inst(book, "AAPL")
    tencent = inst(book, "700")
    accounts.apply_fill("DU111111", aapl, "BUY", D(100), market.top(aapl.con_id).ask, D("1.00"))
    accounts.apply_fill("DU111111", tencent, "BUY", D(200), market.top(tencent.con_id).ask, D("226.20"))
    seen = set()
    for _ in range(30):
        market.advance()
        rows = {row[0].symbol: row for row in accounts.portfolio("DU111111")}
        _inst, position, price, value, avg_cost, unrealized, _realized = rows["AAPL"]
        assert price == market.top(aapl.con_id).last and value == position * price
        assert unrealized == (value - position * avg_cost).quantize(D("0.01"))
        seen.add(unrealized)
    assert len(seen) > 1  # unrealized P&L followed the market
    daily, unrealized, realized = accounts.pnl("DU111111")
    rate = accounts.costs.rate("HKD")
    total_unrealized = sum(r[5] * (rate if r[0].currency == "HKD" else 1) for r in accounts.portfolio("DU111111"))
    assert abs(unrealized - total_unrealized) <= D("0.02") and realized == 0
    pos, day, unr, rea, value = accounts.pnl_single("DU111111", aapl.con_id)
    assert pos == 100 and value == (100 * market.top(aapl.con_id).last).quantize(D("0.01"))
    assert accounts.pnl_single("DU111111", 42) == (0, 0, 0, 0, 0)


def test_account_values_are_the_tws_set_and_add_up(accounts, book, market):
    tencent = inst(book, "700")
    accounts.apply_fill("DU111111", tencent, "BUY", D(100), D("600.0"), D("113.10"))
    v = values(accounts)
    for key in ("NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds", "ExcessLiquidity",
                "GrossPositionValue", "InitMarginReq", "MaintMarginReq", "EquityWithLoanValue"):
        assert (key, "USD") in v, key
    for ccy in ("USD", "HKD", "BASE"):
        for key in ("CashBalance", "ExchangeRate", "UnrealizedPnL", "RealizedPnL", "NetLiquidationByCurrency"):
            assert (key, ccy) in v, (key, ccy)
    assert v[("AccountType", "")] == "INDIVIDUAL" and v[("AccountCode", "")] == "DU111111"
    rate = D(v[("ExchangeRate", "HKD")])
    assert abs(rate * D("7.8") - 1) < D("0.000001")
    hkd_cash = D(v[("CashBalance", "HKD")])
    assert hkd_cash == D(1_000_000) - D(60_000) - D("113.10")
    stock_base = 100 * market.top(tencent.con_id).last * rate
    cash_base = D(v[("CashBalance", "USD")]) + hkd_cash * rate
    assert abs(D(v[("NetLiquidation", "USD")]) - (cash_base + stock_base)) <= D("0.01")
    assert abs(D(v[("InitMarginReq", "USD")]) - stock_base / 2) <= D("0.01")  # HK 50% initial
    assert D(v[("BuyingPower", "USD")]) == 4 * D(v[("AvailableFunds", "USD")])


def test_what_if_reports_reg_t_margin_and_commission(accounts, book, market):
    aapl = inst(book, "AAPL")
    price = market.top(aapl.con_id).last
    w = accounts.what_if("DU111111", aapl, "BUY", D(100), price)
    assert w["init_before"] == 0 and w["init_change"] == (100 * price / 2).quantize(D("0.01"))
    assert w["maint_change"] == (100 * price / 4).quantize(D("0.01"))
    assert w["commission"] == D("1.00") and w["commission_currency"] == "USD"
    assert w["equity_change"] == -w["commission"]
    assert w["init_after"] == w["init_before"] + w["init_change"]
    short = accounts.what_if("DU111111", aapl, "SELL", D(100), price)
    assert short["maint_change"] == (100 * price * D("0.30")).quantize(D("0.01"))


def test_summary_answers_tags_and_ledgers(accounts):
    rows = accounts.summary("DU111111", ["NetLiquidation", "BuyingPower", "NoSuchTag", "AccountType"])
    assert [r[0] for r in rows] == ["NetLiquidation", "BuyingPower", "AccountType"]
    base = accounts.summary("DU111111", ["$LEDGER"])
    assert {c for _, _, c in base} == {"BASE"} and ("CashBalance" in {k for k, _, _ in base})
    every = accounts.summary("DU111111", ["$LEDGER:ALL"])
    assert {c for _, _, c in every} == {"BASE", "USD", "HKD"}
    assert {c for _, _, c in accounts.summary("DU111111", ["$LEDGER:HKD"])} == {"HKD"}


def test_starting_cash_is_configurable(market):
    accounts = Accounts(["DU333333"], market, starting_cash={"USD": D(50_000)})
    assert accounts.cash("DU333333") == {"USD": D(50_000), "HKD": D(0)}
    assert values(accounts, "DU333333")[("NetLiquidation", "USD")] == "50000.00"


def test_state_round_trip(accounts, book, market):
    aapl = inst(book, "AAPL")
    accounts.apply_fill("DU111111", aapl, "BUY", D(7), D("230.01"), D("1.00"))
    saved = json.loads(json.dumps(accounts.to_dict()))
    restored = Accounts(["DU111111"], market)
    restored.load_dict(saved)
    assert restored.ids() == ["DU111111", "DU222222"]  # saved accounts come back
    assert restored.positions("DU111111") == accounts.positions("DU111111")
    assert restored.account_values("DU111111") == accounts.account_values("DU111111")


# ----- property: cash and positions stay consistent -------------------------------------------------------

fills = st.lists(
    st.tuples(st.sampled_from(["AAPL", "700", "PNNY"]), st.sampled_from(["BUY", "SELL"]),
              st.integers(1, 20), st.integers(1, 400), st.integers(0, 300)),
    min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(fills=fills)
def test_cash_and_positions_stay_consistent_after_any_fills(book, rules, fills):
    market = PracticeMarket(book, rules, seed=1, clock=FakeClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC)))
    accounts = Accounts(["DU111111"], market)
    start = accounts.cash("DU111111")
    signed_qty: dict[int, D] = {}
    flows = {"USD": D(0), "HKD": D(0)}
    for symbol, side, lots, price_steps, commission_cents in fills:
        i = inst(book, symbol)
        qty = D(lots * i.board_lot)
        # anywhere from 1/200 to twice the reference price, on the tick
        raw = i.ref_price * price_steps / 200
        price = max(rules.round_to_tick(i.market_rule_id, raw), rules.increment(i.market_rule_id, D(0)))
        commission = D(commission_cents) / 100
        accounts.apply_fill("DU111111", i, side, qty, price, commission)
        sign = 1 if side == "BUY" else -1
        signed_qty[i.con_id] = signed_qty.get(i.con_id, D(0)) + sign * qty
        flows[i.currency] -= sign * qty * price + commission
    cash = accounts.cash("DU111111")
    positions = {p.con_id: p for p in accounts.positions("DU111111")}
    for con_id, qty in signed_qty.items():
        assert positions[con_id].quantity == qty
    for ccy in ("USD", "HKD"):
        assert cash[ccy] - start[ccy] == flows[ccy]
        # cash moved by exactly realized P&L minus the cost basis still held
        held = [p for p in accounts._accounts["DU111111"].positions.values()
                if book.by_con_id(p.con_id).currency == ccy]
        identity = sum((p.realized_pnl - p.quantity * p.avg_cost for p in held), D(0))
        assert abs((cash[ccy] - start[ccy]) - identity) < D("0.000001")
