"""Property tests: any field list survives encode/decode; random, malformed and truncated byte streams
never crash the server (it keeps serving a well-behaved client afterwards)."""

from __future__ import annotations

import asyncio
import logging
import socket
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import IB
from ibpanel.sim import protocol as P

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(120)

# what a field may hold on the wire: printable ASCII without NUL
field_text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=40)


@given(st.lists(field_text, max_size=60), st.integers(min_value=1, max_value=50))
def test_any_field_list_survives_encode_decode(fields, chunk):
    stream = P.encode(fields) + P.encode(["49", "1"])
    buf = P.FrameBuffer()
    payloads = []
    for i in range(0, len(stream), chunk):
        payloads += buf.feed(stream[i:i + chunk])
    assert [P.split_fields(p) for p in payloads] == [fields, ["49", "1"]]


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-10**9, max_value=10**9))
def test_decimals_survive_as_text(value):
    assert Decimal(P.field_text(value)) == value


@given(st.text(max_size=30))
def test_any_text_encodes_as_ascii(text):
    payload = P.encode_payload([text])
    payload.decode("ascii")  # never raises
    assert payload.count(b"\0") == 1 + text.count("\0")


@given(st.lists(field_text, min_size=1, max_size=40))
def test_decoding_any_fields_raises_only_protocol_errors(fields):
    try:
        P.decode_request(fields)
    except P.ProtocolError:
        pass


def _started_socket(port: int, client_id: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    version = b"v100..200"
    sock.sendall(b"API\0" + len(version).to_bytes(4, "big") + version)
    sock.recv(4096)  # server version + time
    sock.sendall(P.encode(["71", "2", str(client_id), ""]))
    return sock


def _wait_until_idle(sim) -> None:
    wait_until(lambda: not sim.server.sessions, interval=0.002)


known_ids = st.sampled_from(sorted(P.IN_NAMES))
# tokens that get a message past the first checks, so the handlers themselves see odd combinations
meaningful = st.sampled_from(["0", "1", "2", "-1", "3", "8", "11", "265598", "1000700", "AAPL", "700", "STK", "SMART",
                              "SEHK", "USD", "HKD", "DU111111", "DU222222", "All", "1.5", "100", "BUY", "SELL",
                              "MKT", "LMT", "STP", "GTC", "IOC", "1 D", "1 min", "TRADES", "NetLiquidation", "",
                              "1e400", "nan", "-5", "99999999999999999999"])
field_value = st.one_of(meaningful, meaningful, field_text)
request_fields = st.tuples(known_ids, st.lists(field_value, max_size=120)).map(lambda t: [str(t[0]), *t[1]])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(request_fields, min_size=1, max_size=5), raw_tail=st.binary(max_size=64),
       cut=st.integers(min_value=0, max_value=4000))
def test_malformed_and_truncated_streams_never_crash_the_server(sim, caplog, messages, raw_tail, cut):
    caplog.set_level(logging.ERROR, logger="ibpanel.sim")
    stream = b"".join(P.encode(m) for m in messages) + raw_tail
    sock = _started_socket(sim.port, 77)
    try:
        sock.sendall(stream[:cut] if cut < len(stream) else stream)
    except OSError:
        pass  # the server may close a connection that sent garbage; that is allowed
    finally:
        sock.close()
    _wait_until_idle(sim)  # every byte handled before looking at the log
    bugs = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bugs, [r.getMessage() for r in bugs]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes_before_the_handshake(sim, raw):
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    try:
        sock.sendall(raw)
    except OSError:
        pass
    finally:
        sock.close()
    _wait_until_idle(sim)


def test_server_still_serves_after_garbage(sim, caplog):
    caplog.set_level(logging.ERROR, logger="ibpanel.sim")
    for junk in (b"GET / HTTP/1.1\r\n\r\n", b"API\0\xff\xff\xff\xff", b"API\0" + P.encode(["v1..5"])):
        s = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
        s.sendall(junk)
        s.close()
    sock = _started_socket(sim.port, 78)
    sock.sendall(P.encode(["1", "11", "x"]) + P.encode(["12345"]) + P.encode(["3", "1"]))

    async def main():
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=79, timeout=5)
        try:
            return await ib.reqCurrentTimeAsync()
        finally:
            ib.disconnect()

    assert asyncio.run(main()) is not None
    sock.settimeout(2)
    data = b""
    try:
        while b"Error reading request" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    sock.close()
    assert b"320" in data and b"Error reading request" in data  # malformed requests are answered
    assert sim.stats.count("MALFORMED") >= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
