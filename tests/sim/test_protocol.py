"""The wire codec: framing, field text, version greeting, typed request decoding, reply layouts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.sim import protocol as P


def test_frames_reassemble_from_any_chunking():
    messages = [P.encode([1, 6, 7, "x"]), P.encode([49, 1]), P.encode(["a" * 1000])]
    stream = b"".join(messages)
    for step in (1, 3, 7, 64, len(stream)):
        buf = P.FrameBuffer()
        out = []
        for i in range(0, len(stream), step):
            out += buf.feed(stream[i:i + step])
        assert [P.split_fields(p) for p in out] == [["1", "6", "7", "x"], ["49", "1"], ["a" * 1000]]
        assert buf.pending() == 0


def test_absurd_length_prefix_is_a_protocol_error():
    buf = P.FrameBuffer()
    with pytest.raises(P.ProtocolError, match="exceeds"):
        buf.feed((P.MAX_MESSAGE_BYTES + 1).to_bytes(4, "big") + b"x")


def test_field_text_follows_tws_conventions():
    assert P.field_text(None) == ""
    assert P.field_text(True) == "1" and P.field_text(False) == "0"
    assert P.field_text(Decimal("1E+2")) == "100"
    assert P.field_text(Decimal("230.15")) == "230.15"
    assert P.field_text(P.UNSET_DOUBLE) == "1.7976931348623157E308"
    assert P.field_text(Decimal("Infinity")) == "1.7976931348623157E308"
    assert P.field_text(0.5) == "0.5"


def test_non_ascii_text_is_escaped_not_dropped():
    payload = P.encode_payload(["Caf\u00e9"])
    assert payload == b"Caf\\xe9\0"
    assert payload.decode("ascii")


def test_version_greeting():
    assert P.parse_version_range("v157..178") == (157, 178, "")
    assert P.parse_version_range("v100..226 +PACEAPI") == (100, 226, "+PACEAPI")
    assert P.parse_version_range("v176") == (176, 176, "")
    with pytest.raises(P.ProtocolError):
        P.parse_version_range("hello")
    with pytest.raises(P.ProtocolError):
        P.parse_version_range("vX..Y")


def test_decode_requests():
    req = P.decode_request(["71", "2", "7", ""])
    assert req.name == "START_API" and req.args == P.StartApi(7, "")
    md = P.decode_request(["1", "11", "5", "265598", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "",
                           "0", "233", "1", "0", ""])
    assert md.args.req_id == 5 and md.args.contract.con_id == 265598 and md.args.snapshot
    assert P.decode_request(["999", "1"]).name == "UNKNOWN_999"
    with pytest.raises(P.ProtocolError, match="REQ_MKT_DATA"):
        P.decode_request(["1", "11", "notanumber"])
    with pytest.raises(P.ProtocolError, match="ended"):
        P.decode_request(["9", "8", "3"])
    with pytest.raises(P.ProtocolError):
        P.decode_request([])


def _place_order_fields(**over) -> list[str]:
    """A PLACE_ORDER as ib_async 2.1 lays it out at server version 176 (115 fields for a plain stock order)."""
    f = ["3", "12", "265598", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "", "", "",
         "BUY", "100", "LMT", "230.5", "", "GTC", "oca1", "DU111111", "", "0", "my-ref", "1", "0", "0", "0",
         "0", "0", "1", "0"]
    f += ["", "0", "", "", "", "", "", ""]  # sharesAllocation .. faProfile
    f += ["", "0", "", "-1", "0", "", "", "0", "", "", "0", "0", "", "0", "", "", "", "", "", "0", "", "", "",
          ""]  # modelCode .. deltaNeutralAuxPrice
    f += ["0", "0", "", "", "", "", ""]  # continuousUpdate .. scalePriceIncrement
    f += ["", "", "", ""]  # scaleTable, activeStart, activeStop, hedgeType
    f += ["0", "", "", "0", "0"]  # optOut, clearingAccount, clearingIntent, notHeld, dnc
    f += [""]  # algoStrategy
    f += ["", "0", "", "0", "0", "0"]  # algoId, whatIf, misc options, solicited, randomize x2
    f += ["0"]  # conditions
    f += ["", "", "", "", "", "", "0", "", "", "", "", "", "", "", "", "0", "0", "0", "0"]
    f += ["", "", "0", "", ""]  # duration, postToAts, autoCancelParent, advancedErrorOverride, manualOrderTime
    for k, v in over.items():
        f[int(k[1:])] = v
    return f


def test_place_order_decodes_into_a_typed_request():
    fields = _place_order_fields()
    assert len(fields) == 115
    req = P.decode_request(fields).args
    assert isinstance(req, P.PlaceOrderRequest)
    assert (req.order_id, req.action, req.total_qty, req.order_type, req.lmt_price) == (
        12, "BUY", Decimal(100), "LMT", Decimal("230.5"))
    assert (req.tif, req.oca_group, req.account, req.order_ref, req.transmit, req.outside_rth) == (
        "GTC", "oca1", "DU111111", "my-ref", True, True)
    assert req.aux_price is None and not req.what_if


def test_place_order_with_a_condition_is_read_past():
    fields = _place_order_fields()
    at = 90  # the conditions count: after the 6 algoId .. randomizePrice fields
    fields[at:at + 1] = ["1", "1", "a", "1", "250.0", "265598", "SMART", "0", "0", "0"]
    req = P.decode_request(fields).args
    assert fields[at - 6:at] == ["", "0", "", "0", "0", "0"]
    assert req.conditions == 1 and req.order_id == 12 and req.cash_qty is None


def test_reply_field_counts():
    c = P.ContractRecord(265598, "AAPL", "STK", "SMART", "NASDAQ", "USD", "AAPL", "NMS")
    assert len(P.split_fields(P.portfolio_value(c, 1, 2, 3, 4, 5, 6, "DU1")[4:])) == 20
    assert len(P.split_fields(P.position_data("DU1", c, 1, 2)[4:])) == 16
    assert len(P.split_fields(P.order_status(1, "Submitted", 0, 1, 0, 5, 0, 0, 1)[4:])) == 12
    assert len(P.split_fields(P.tick_price(1, 1, "1.5", "100")[4:])) == 7
    assert len(P.split_fields(P.commission_report("e", 1, "USD", None)[4:])) == 8
    echo = P.OrderEcho(1, 2, 3, "BUY", 1, "LMT", "1.5", None, "DAY", "DU1")
    assert len(P.split_fields(P.open_order(c, echo)[4:])) == 136
    completed = P.split_fields(P.completed_order(c, echo)[4:])
    assert completed[0] == "101" and completed[-7] == ""  # completedTime, then status and 5 PEG fields
