"""Error catalog, connection failure wording (with the correct port table) and paper/live classification."""

from __future__ import annotations

import pytest
from ibpanel.broker.ib_codes import (
    CATALOG,
    ORDER_WARNING_CODES,
    STANDARD_PORTS,
    classify_paper,
    connection_failure,
    describe,
    describe_port,
    is_order_warning,
)
from ibpanel.broker.models import FailureKind

REQUIRED = [100, 101, 103, 110, 161, 162, 200, 201, 202, 321, 326, 354, 502, 504, 1100, 1101, 1102, 2103, 2104,
            2105, 2106, 2107, 2108, 2157, 2158, 10089, 10167, 10168, 10197]


@pytest.mark.parametrize("code", REQUIRED)
def test_catalog_covers_the_listed_codes(code):
    info = describe(code, "IB text")
    assert info.known and info.code == code
    assert info.message and info.message != "IB text"
    assert info.severity in ("info", "warning", "error")
    if info.severity == "error":
        assert info.advice, f"{code}: an error must say what to do"


def test_every_catalog_entry_is_well_formed():
    for code, entry in CATALOG.items():
        assert entry.message.endswith("."), code
        assert entry.severity in ("info", "warning", "error"), code
        assert not entry.advice or entry.advice.rstrip(")").endswith((".", "!")), code


@pytest.mark.parametrize("code", sorted(ORDER_WARNING_CODES) + [2100, 2150, 2199])
def test_order_warning_flag_matches_ib_async(code):
    assert describe(code).order_warning and is_order_warning(code)


@pytest.mark.parametrize("code", [103, 200, 201, 202, 326, 502, 2200, 2099, 10168])
def test_other_codes_are_not_order_warnings(code):
    assert not describe(code).order_warning


def test_ib_text_is_kept_where_it_carries_the_reason():
    info = describe(201, "Order rejected - reason: Insufficient buying power")
    assert "Insufficient buying power" in info.message
    assert info.ib_text == "Order rejected - reason: Insufficient buying power"
    readonly = describe(321, "Error validating request:-'bN' : cause - The API interface is currently in Read-Only mode.")
    assert "Read-Only" in readonly.advice and "Read-Only mode" in readonly.message


def test_farm_ok_is_info_and_loss_is_error():
    assert describe(2104, "Market data farm connection is OK:usfarm").severity == "info"
    assert describe(1100).severity == "error"
    assert describe(1102).severity == "info"
    assert describe(2103).severity == "warning"


def test_unknown_code_gets_ib_text_and_generic_advice():
    info = describe(31337, "Something odd happened")
    assert not info.known
    assert info.message == "Something odd happened" and info.advice
    assert describe(2198, "").severity == "warning"
    assert describe(31337).message == "IB message 31337."
    assert describe("junk").code == -1  # type: ignore[arg-type]


def test_502_names_the_ports_the_right_way_round():
    advice = describe(502).advice
    assert "7497 paper / 7496 live" in advice and "4002 paper / 4001 live" in advice


# --- connection failures ------------------------------------------------------------------------------


def test_standard_port_table():
    assert STANDARD_PORTS == {7497: ("TWS", True), 7496: ("TWS", False), 4002: ("IB Gateway", True),
                              4001: ("IB Gateway", False)}
    assert describe_port(7497) == "port 7497 is TWS's paper port"
    assert describe_port(4001) == "port 4001 is IB Gateway's live port"
    assert "not a standard" in describe_port(5000)


def test_nothing_listening_names_ports_and_offers_practice():
    failure = connection_failure(FailureKind.NOTHING_LISTENING, "127.0.0.1", 7496, 1, "Connection refused")
    assert failure.kind is FailureKind.NOTHING_LISTENING
    assert "127.0.0.1:7496" in failure.message and "Connection refused" in failure.message
    assert "TWS uses 7497 (paper) / 7496 (live)" in failure.advice
    assert "IB Gateway uses 4002 (paper) / 4001 (live)" in failure.advice
    assert "port 7496 is TWS's live port" in failure.advice
    assert "practice exchange" in failure.advice
    assert failure.suggested_client_id is None


def test_os_error_text_stays_out_of_the_message_but_is_kept():
    raw = "[Errno 111] Connect call failed ('127.0.0.1', 1)"
    failure = connection_failure(FailureKind.NOTHING_LISTENING, "127.0.0.1", 1, 1, raw)
    assert "Errno" not in failure.message and "Connect call failed" not in failure.message
    assert failure.message.startswith("Nothing is listening on 127.0.0.1:1") and "\n" not in failure.message
    assert failure.detail == raw  # for the log
    plain = connection_failure(FailureKind.TIMEOUT, "127.0.0.1", 7497, 1, "no answer within 4 s")
    assert "(no answer within 4 s)" in plain.message  # plain words still say why


def test_each_kind_has_its_own_plain_words():
    failures = {kind: connection_failure(kind, "localhost", 4002, 7) for kind in FailureKind}
    messages = [f.message for f in failures.values()]
    assert len(set(messages)) == len(messages)
    assert all(f.message and f.advice for f in failures.values())
    assert "Enable ActiveX and Socket Clients" in failures[FailureKind.HANDSHAKE_CLOSED].advice
    assert "in time" in failures[FailureKind.TIMEOUT].message


def test_client_id_in_use_offers_the_next_id():
    failure = connection_failure(FailureKind.CLIENT_ID_IN_USE, "127.0.0.1", 7497, 7)
    assert failure.suggested_client_id == 8
    assert "326" in failure.message and "client ID 8" in failure.advice
    probed = connection_failure(FailureKind.CLIENT_ID_IN_USE, "127.0.0.1", 7497, 7, suggested_client_id=11)
    assert probed.suggested_client_id == 11 and "client ID 11" in probed.advice


# --- paper or live ----------------------------------------------------------------------------------------


def test_paper_accounts_on_paper_port():
    is_paper, reason = classify_paper(["DU111111", "DU222222"], 7497)
    assert is_paper is True
    assert "DU111111" in reason and "paper" in reason and "7497" in reason


def test_live_account_wins_over_paper_port():
    is_paper, reason = classify_paper(["U1234567"], 7497)
    assert is_paper is False
    assert "U1234567" in reason and "LIVE" in reason and "7497" in reason


def test_any_live_account_makes_it_live():
    assert classify_paper(["DU111111", "U7654321"], 4002)[0] is False


def test_paper_accounts_on_live_port_trust_accounts_and_say_so():
    is_paper, reason = classify_paper(["DU111111"], 7496)
    assert is_paper is True
    assert "7496" in reason and "account ids win" in reason


def test_unknown_prefix_is_live():
    assert classify_paper(["F1234567"], 4002)[0] is False


def test_without_accounts_the_port_decides():
    assert classify_paper([], 4002) == (True, "no account ids yet; port 4002 is IB Gateway's paper port")
    assert classify_paper([""], 4001)[0] is False
    is_paper, reason = classify_paper([], 5555)
    assert is_paper is None and "treated as live" in reason


def test_simulator_port_with_paper_accounts():
    is_paper, reason = classify_paper(["DU111111"], 54321)
    assert is_paper is True and "54321" in reason
