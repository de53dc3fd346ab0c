"""Order journal: intent before send, orderRef round trip, status/fill/commission/error history,
reconcile (incl. after a kill -9 of a child process mid-order), CSV export."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ibpanel.broker.journal import (
    GONE,
    NEVER_REACHED_TWS,
    ORDER_REF_PREFIX,
    JournalError,
    OrderJournal,
    SeenOrder,
    default_journal_path,
    journal_id_from_order_ref,
    new_journal_id,
    order_ref,
    parse_order_ref,
)
from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderStatus, OrderType, Side, TimeInForce

TENCENT = Instrument("700", Market.HK, "SEHK", "HKD", con_id=1000700, board_lot=100, lot_source="fallback table")
AAPL = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)


def hk_buy(qty: str = "200", price: str = "388.2") -> OrderRequest:
    return OrderRequest("0700.HK", Side.BUY, Decimal(qty), OrderType.LMT, limit_price=Decimal(price))


@pytest.fixture
def journal(tmp_path):
    j = OrderJournal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


# --- ids and orderRef -----------------------------------------------------------------------------------


def test_order_ref_round_trip_and_length():
    jid = new_journal_id(datetime(2026, 11, 24, tzinfo=timezone.utc))
    assert jid.startswith("261124-") and len(jid) == 15
    ref = order_ref(jid)
    assert ref == ORDER_REF_PREFIX + jid and len(ref) <= 40
    assert journal_id_from_order_ref(ref) == jid
    assert parse_order_ref(order_ref(jid, "tp")) == (jid, "tp")
    assert journal_id_from_order_ref(order_ref(jid, "sl")) == jid


@pytest.mark.parametrize("ref", ["", "ibp:", "ibp:nonsense", "someone-else", "IBP:261124-abcdef01x", None])
def test_foreign_order_refs_are_not_ours(ref):
    assert journal_id_from_order_ref(ref) is None


@given(st.text(max_size=60))
def test_parse_order_ref_never_raises(text):
    parsed = parse_order_ref(text)
    assert parsed is None or order_ref(*parsed) == text.strip()


def test_default_path_is_in_the_profile_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path))
    assert default_journal_path() == tmp_path / "data" / "journal.sqlite3"
    assert default_journal_path("work") == tmp_path / "data" / "profiles" / "work" / "journal.sqlite3"
    assert default_journal_path("work").parent.is_dir()


# --- life of an entry -----------------------------------------------------------------------------------


def test_intent_is_committed_before_anything_is_sent(journal, tmp_path):
    jid = journal.record_intent(hk_buy(), TENCENT, "DU111111")
    # a second connection (another process would see the same) finds it at once: it is committed
    other = sqlite3.connect(str(tmp_path / "journal.sqlite3"))
    row = other.execute("SELECT status, symbol, ib_symbol, quantity, limit_price, account FROM orders "
                        "WHERE journal_id = ?", (jid,)).fetchone()
    other.close()
    assert row == ("Unconfirmed", "0700.HK", "700", "200", "388.2", "DU111111")
    assert journal.path.with_name("journal.sqlite3-wal").exists()  # WAL mode
    entry = journal.entry(jid)
    assert entry.status == OrderStatus.UNCONFIRMED.value and entry.order_id is None
    assert entry.created_at.tzinfo is not None
    assert [kind for _, kind, _ in journal.events(jid)] == ["intent"]
    assert "BUY 200 0700.HK LMT limit 388.2 DAY" in journal.events(jid)[0][2]


def test_full_life_sent_status_fills_commissions_errors(journal):
    jid = journal.record_intent(hk_buy("300"), TENCENT, None)
    journal.mark_sent(jid, order_id=17, client_id=3)
    assert journal.entry(jid).status == "Unconfirmed"  # sent is not acknowledged
    journal.update(jid, status="PreSubmitted", perm_id=900001)
    journal.update(jid, status="Submitted")
    journal.update(jid, status="Submitted")  # no change: no event
    t = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
    journal.add_commission("e2", 18.0, "HKD")  # commission before its fill
    journal.add_fill(jid, "e1", Decimal(100), 388.2, t)
    journal.add_fill(jid, "e1", Decimal(100), 388.2, t)  # duplicate execId ignored
    journal.add_fill(jid, "e2", Decimal(200), 388.4, t)
    journal.add_commission("e1", 18.0, "HKD")
    journal.add_commission("e1", 18.0, "HKD")  # repeated report: no new event
    journal.add_error(jid, 399, "Order will be placed at the open")
    journal.update(jid, status=OrderStatus.FILLED, filled=Decimal(300), avg_fill_price=388.3333)
    entry = journal.entry(jid)
    assert (entry.status, entry.order_id, entry.perm_id, entry.filled) == ("Filled", 17, 900001, "300")
    assert entry.avg_fill_price == pytest.approx(388.3333)
    assert entry.message == "399: Order will be placed at the open"
    kinds = [kind for _, kind, _ in journal.events(jid)]
    assert kinds == ["intent", "sent", "status", "status", "fill", "fill", "commission", "error", "status"]
    fills = journal.fills(jid)
    assert [(f[0], f[1], f[4]) for f in fills] == [("e1", Decimal(100), 18.0), ("e2", Decimal(200), 18.0)]
    assert journal.errors(jid)[0][1:] == (399, "Order will be placed at the open")
    assert journal.find_by_perm_id(900001) == jid
    assert journal.unsettled() == []


def test_fills_raise_filled_and_average(journal):
    jid = journal.record_intent(hk_buy("300"), TENCENT, None)
    t = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
    journal.add_fill(jid, "x1", Decimal(100), 10.0, t)
    journal.add_fill(jid, "x2", Decimal(200), 13.0, t)
    entry = journal.entry(jid)
    assert entry.filled == "300" and entry.avg_fill_price == pytest.approx(12.0)


def test_finished_order_does_not_go_back_to_working(journal):
    jid = journal.record_intent(hk_buy(), TENCENT, None)
    journal.update(jid, status="Cancelled")
    journal.update(jid, status="Submitted")  # a late, out-of-order status
    assert journal.entry(jid).status == "Cancelled"


def test_mark_not_sent(journal):
    jid = journal.record_intent(hk_buy(), TENCENT, None)
    journal.mark_not_sent(jid, "Not connected to IBKR.")
    entry = journal.entry(jid)
    assert (entry.status, entry.message) == ("NotSent", "Not connected to IBKR.")
    assert journal.unsettled() == []


def test_unknown_journal_id_is_an_error(journal):
    with pytest.raises(KeyError):
        journal.update("261124-00000000", status="Submitted")
    with pytest.raises(KeyError):
        journal.add_fill("261124-00000000", "e", Decimal(1), 1.0, datetime.now(timezone.utc))
    assert journal.entry("261124-00000000") is None


def test_entries_newest_first_and_unsettled(journal):
    first = journal.record_intent(hk_buy(), TENCENT, None)
    second = journal.record_intent(OrderRequest("AAPL", Side.SELL, Decimal(5), OrderType.MKT, tif=TimeInForce.GTC,
                                                source="api"), AAPL, "DU222222")
    journal.update(first, status="Submitted")
    assert [e.journal_id for e in journal.entries()] == [second, first]
    assert journal.entries(limit=1)[0].journal_id == second
    assert {e.journal_id for e in journal.unsettled()} == {first, second}
    assert journal.entry(second).source == "api" and journal.entry(second).tif == "GTC"


def test_bracket_legs_are_tracked_without_touching_the_parent(journal):
    jid = journal.record_intent(hk_buy(), TENCENT, None)
    changed = journal.reconcile([
        SeenOrder(jid, 20, 5001, "Filled", Decimal(200), 388.2),
        SeenOrder(jid, 21, 5002, "Submitted", leg="tp"),
        SeenOrder(jid, 22, 5003, "PreSubmitted", leg="sl"),
    ])
    assert [e.journal_id for e in changed] == [jid]
    assert journal.entry(jid).status == "Filled" and journal.entry(jid).order_id == 20
    kinds = [kind for _, kind, _ in journal.events(jid)]
    assert "leg:tp" in kinds and "leg:sl" in kinds
    assert journal.reconcile([SeenOrder(jid, 21, 5002, "Submitted", leg="tp")]) == []  # nothing new


# --- reconcile ----------------------------------------------------------------------------------------------


def test_reconcile_matches_by_journal_id_then_perm_id_and_settles_the_unknown(journal):
    acked = journal.record_intent(hk_buy(), TENCENT, None)
    by_perm = journal.record_intent(hk_buy(), TENCENT, None)
    lost = journal.record_intent(hk_buy(), TENCENT, None)
    journal.update(by_perm, perm_id=777, status="Submitted")
    changed = journal.reconcile([
        SeenOrder(acked, 31, 888, "Submitted", Decimal(0)),
        SeenOrder(None, 32, 777, "Filled", Decimal(200), 388.2),
        SeenOrder(None, 99, 999, "Submitted"),  # another program's order: ignored
        SeenOrder("261124-ffffffff", 98, 998, "Submitted"),  # not in this journal: ignored
    ])
    assert {e.journal_id for e in changed} == {acked, by_perm, lost}
    assert (journal.entry(acked).status, journal.entry(acked).order_id, journal.entry(acked).perm_id) == (
        "Submitted", 31, 888)
    assert journal.entry(by_perm).status == "Filled" and journal.entry(by_perm).filled == "200"
    assert journal.entry(lost).status == "NotSent" and journal.entry(lost).message == NEVER_REACHED_TWS
    assert journal.reconcile([SeenOrder(acked, 31, 888, "Submitted", Decimal(0))]) == []  # idempotent


def test_pending_submit_without_perm_id_counts_as_unacknowledged(journal):
    local_only = journal.record_intent(hk_buy(), TENCENT, None)
    acked = journal.record_intent(hk_buy(), TENCENT, None)
    journal.update(local_only, status="PendingSubmit", order_id=60)  # ib_async's status before TWS answered
    journal.update(acked, status="PendingSubmit", order_id=61, perm_id=6161)  # TWS gave it a permId
    changed = journal.reconcile([])
    assert [e.journal_id for e in changed] == [local_only]
    assert journal.entry(local_only).status == "NotSent"
    assert journal.entry(acked).status == "PendingSubmit"


def test_partial_sync_does_not_settle_unconfirmed(journal):
    jid = journal.record_intent(hk_buy(), TENCENT, None)
    assert journal.reconcile([], full_sync=False) == []
    assert journal.entry(jid).status == "Unconfirmed"


def test_reconcile_revives_not_sent_if_tws_reports_it_later(journal):
    jid = journal.record_intent(hk_buy(), TENCENT, None)
    journal.reconcile([])
    assert journal.entry(jid).status == "NotSent"
    journal.reconcile([SeenOrder(jid, 40, 4040, "Submitted")])
    assert journal.entry(jid).status == "Submitted"


def test_working_entry_tws_lists_nowhere_is_settled_only_for_the_logins_accounts(journal):
    """QA F32: a working order TWS neither lists as open nor completed is no longer "Submitted" forever;
    orders of accounts this login does not manage (another TWS, the practice exchange) are left alone."""
    mine = journal.record_intent(hk_buy(), TENCENT, "DU111111")
    other_login = journal.record_intent(hk_buy(), TENCENT, "U7654321")
    listed = journal.record_intent(hk_buy(), TENCENT, "DU111111")
    for n, jid in enumerate((mine, other_login, listed)):
        journal.mark_sent(jid, 70 + n, 1)
        journal.update(jid, status="Submitted", perm_id=7070 + n)
    seen = [SeenOrder(listed, 72, 7072, "Submitted")]
    assert journal.reconcile(seen) == []  # without the login's accounts silence proves nothing
    assert journal.reconcile(seen, full_sync=False, accounts=("DU111111",)) == []
    changed = journal.reconcile(seen, accounts=("DU111111", "DU222222"))
    assert [e.journal_id for e in changed] == [mine]
    entry = journal.entry(mine)
    assert entry.status == GONE and "no longer known to TWS" in entry.message and "UTC" in entry.message
    assert journal.entry(other_login).status == "Submitted" and journal.entry(listed).status == "Submitted"
    assert mine not in {e.journal_id for e in journal.unsettled()}
    journal.reconcile([SeenOrder(mine, 70, 7070, "Filled", Decimal(200), 388.2)], accounts=("DU111111",))
    assert journal.entry(mine).status == "Filled"  # TWS's word later overrides the guess


# --- kill -9 between intent and acknowledgement ------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from decimal import Decimal
    from ibpanel.broker.journal import OrderJournal, order_ref
    from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderType, Side

    journal = OrderJournal(sys.argv[1])
    inst = Instrument("700", Market.HK, "SEHK", "HKD", con_id=1000700)
    ids = []
    for price in ("388.2", "388.4"):
        request = OrderRequest("700", Side.BUY, Decimal(100), OrderType.LMT, limit_price=Decimal(price))
        ids.append(journal.record_intent(request, inst, "DU111111"))
    journal.mark_sent(ids[0], order_id=51, client_id=1)  # placeOrder called, no acknowledgement yet
    print(" ".join(ids), flush=True)
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))  # no close, no checkpoint, no atexit
    """
)


def test_kill_9_between_intent_and_ack_leaves_unconfirmed_then_reconcile_settles(tmp_path):
    path = tmp_path / "journal.sqlite3"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode != 0, "the child should have been killed"
    if sys.platform != "win32":
        assert proc.returncode == -9
    sent, never = proc.stdout.split()

    with OrderJournal(path) as journal:
        unsettled = {e.journal_id: e for e in journal.unsettled()}
        assert set(unsettled) == {sent, never}
        assert all(e.status == "Unconfirmed" for e in unsettled.values())
        assert unsettled[sent].order_id == 51
        # TWS lists the sent one (found through its orderRef), and not the other
        seen = [SeenOrder(journal_id_from_order_ref(order_ref(sent)), 51, 123456, "Submitted", Decimal(0))]
        changed = journal.reconcile(seen)
        assert {e.journal_id for e in changed} == {sent, never}
        assert journal.entry(sent).status == "Submitted" and journal.entry(sent).perm_id == 123456
        assert journal.entry(never).status == "NotSent"
        assert journal.entry(never).message == NEVER_REACHED_TWS
        assert journal.unsettled()[0].journal_id == sent
        assert [k for _, k, _ in journal.events(sent)] == ["intent", "sent", "reconcile"]


# --- export and reopen --------------------------------------------------------------------------------------


def test_export_csv(journal, tmp_path):
    jid = journal.record_intent(hk_buy(), TENCENT, "DU111111")
    journal.add_fill(jid, "e1", Decimal(200), 388.2, datetime(2026, 11, 24, 2, tzinfo=timezone.utc))
    journal.add_commission("e1", 18.0, "HKD")
    other = journal.record_intent(OrderRequest("AAPL", Side.SELL, Decimal(5), OrderType.MKT), AAPL, None)
    journal.add_error(other, 201, "=HYPERLINK(bad)")
    out = tmp_path / "export" / "journal.csv"
    assert journal.export_csv(out) == 2
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["journal_id"] for r in rows] == [jid, other]
    assert rows[0]["symbol"] == "0700.HK" and rows[0]["fills"] == "1" and rows[0]["commission"] == "18.0"
    assert rows[0]["commission_currency"] == "HKD" and rows[0]["filled"] == "200"
    assert rows[1]["message"] == "201: =HYPERLINK(bad)"  # starts with a digit: left alone
    assert rows[1]["limit_price"] == ""


def test_export_guards_formula_text(journal, tmp_path):
    jid = journal.record_intent(hk_buy(), TENCENT, None)
    journal.mark_not_sent(jid, "=cmd|' /C calc'!A0")
    out = tmp_path / "j.csv"
    journal.export_csv(out)
    with out.open(newline="", encoding="utf-8") as handle:
        assert next(csv.DictReader(handle))["message"].startswith("'=")


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "j.sqlite3"
    with OrderJournal(path) as journal:
        jid = journal.record_intent(hk_buy(), TENCENT, None)
        journal.update(jid, status="Submitted", perm_id=1)
    with OrderJournal(path) as journal:
        assert journal.entry(jid).status == "Submitted"
        assert len(journal.events(jid)) == 2


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "j.sqlite3"
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(JournalError, match="newer IB Panel") as info:
        OrderJournal(path)
    assert "another profile" in info.value.advice


def test_damaged_file_gets_a_plain_error(tmp_path):
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="cannot be opened") as info:
        OrderJournal(path)
    assert "move it aside" in info.value.advice
