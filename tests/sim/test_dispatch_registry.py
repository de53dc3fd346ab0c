"""The practice exchange names every request id once (protocol/messages.py) and serves each one."""

from ibpanel.sim.dispatch import HANDLERS
from ibpanel.sim.protocol import IN_NAMES, RequestId, decode_request
from ibpanel.sim.protocol import requests as request_decoders


def test_every_request_id_of_the_table_has_one_decoder_and_one_handler_and_nothing_else_is_registered():
    ids = {int(member) for member in RequestId}
    assert set(IN_NAMES) == ids
    assert set(request_decoders._DECODERS) == ids
    assert set(HANDLERS) == ids
    assert all(callable(handler) for handler in HANDLERS.values())


def test_a_request_is_named_by_the_id_table_and_an_unknown_id_is_named_as_unknown():
    request = decode_request(["49", "1"])  # reqCurrentTime
    assert (request.msg_id, request.name) == (RequestId.REQ_CURRENT_TIME, "REQ_CURRENT_TIME")
    assert decode_request(["999"]).name == "UNKNOWN_999"
