"""The command line parses every documented form into the options the front ends read."""

from __future__ import annotations

import csv

import pytest
from ibpanel.cli import main, parse_args


def _serve_args(*argv: str):
    return parse_args(["serve", *argv])


def test_serve_defaults_bind_loopback_port_5000():
    args = _serve_args()
    assert (args.command, args.api_host, args.api_port, args.demo) == ("serve", "127.0.0.1", 5000, False)


def test_serve_port_zero_and_host_aliases_are_honoured():
    args = _serve_args("--demo", "--host", "0.0.0.0", "--port", "0", "--api-token", "x" * 20)
    assert (args.api_host, args.api_port, args.demo, args.api_token) == ("0.0.0.0", 0, True, "x" * 20)


def test_gui_options():
    args = parse_args(["--demo", "--screenshot", "out.png", "--tab", "quotes", "--profile", "work"])
    assert (args.command, args.demo, args.screenshot, args.tab, args.profile) == (None, True, "out.png", "quotes", "work")
    assert args.api is False and args.smoke_test is False


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "99999"],
        ["serve", "--api-port", "-1"],
        ["--tws-port", "70000"],
        ["--tws-port", "0"],
        ["--tws-port", "seven"],
    ],
)
def test_out_of_range_ports_stop_at_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "port" in err and "65535" in err


def test_practice_exchange_refuses_bad_account_ids_and_ports(capsys):
    from ibpanel.sim.cli import build_parser as sim_parser

    for argv in (["--accounts", "DU1,,U2 ,bad id"], ["--port", "65536"]):
        with pytest.raises(SystemExit):
            sim_parser().parse_args(argv)
    assert "not an account id" in capsys.readouterr().err
    assert sim_parser().parse_args(["--accounts", "DU1, U2", "--port", "0"]).accounts == ("DU1", "U2")


def test_journal_export_writes_every_entry_as_csv(tmp_path, capsys):
    from decimal import Decimal

    from ibpanel.broker.journal import OrderJournal, default_journal_path
    from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderType, Side

    assert main(["journal", "export", str(tmp_path / "none.csv")]) == 1
    assert "no order journal yet" in capsys.readouterr().err

    journal = OrderJournal(default_journal_path("default"))
    aapl = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
    ids = [
        journal.record_intent(OrderRequest("AAPL", Side.BUY, Decimal(qty), OrderType.LMT, limit_price=Decimal("200.01")), aapl, "DU111111")
        for qty in (10, 20)
    ]
    journal.mark_not_sent(ids[1], "refused by the test")
    journal.close()

    out = tmp_path / "journal.csv"
    assert main(["journal", "export", str(out)]) == 0
    assert "wrote 2 journal entries" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(row["journal_id"] for row in rows) == sorted(ids)
    assert {row["quantity"] for row in rows} == {"10", "20"}
    assert main(["journal", "export", "--practice", str(tmp_path / "practice.csv")]) == 1  # none written yet
    assert "journal-practice" in capsys.readouterr().err


def test_reset_practice_forgets_the_practice_account_only(tmp_path, capsys):
    from ibpanel.cli import reset_practice
    from ibpanel.paths import practice_state_path

    state = practice_state_path("default")
    state.write_text("{}", encoding="utf-8")
    journal = state.with_name("journal-practice.sqlite3")
    journal.write_bytes(b"kept")
    reset_practice("default")
    assert not state.exists() and journal.exists()
    assert "starts over" in capsys.readouterr().out
    assert parse_args(["--demo", "--reset-practice"]).reset_practice
    assert parse_args(["serve", "--demo", "--reset-practice"]).reset_practice
