"""The TWS wire format at server version 176: framing, the field codec, version negotiation, field reading.

Wire format: every message after the client's ``API\\0`` greeting is a 4-byte big-endian length followed by
ASCII fields, each terminated by NUL; the first field is the message id. Nothing in this module does I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

from ibpanel.sim.protocol.messages import COMPLETED_ORDER, CONTRACT_DATA, ERR_MSG, OPEN_ORDER

SERVER_VERSION = 176
# the oldest server version the practice exchange speaks: a client whose range tops out between this and
# SERVER_VERSION is answered at its own maximum (see ``for_version``), as TWS negotiates down
MIN_SERVER_VERSION = 151
UNSET_INT = 2147483647
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"
MAX_MESSAGE_BYTES = 1 << 24  # TWS itself refuses longer messages; a bigger length prefix means a broken stream
GREETING = b"API\0"

_LENGTH = struct.Struct(">I")
_pack_length = _LENGTH.pack


class ProtocolError(ValueError):
    """A message that cannot be read: the text says which message and field, for the request log."""


# ----- field codec -------------------------------------------------------------------------------------------
def field_text(value: object) -> str:
    """One field as TWS writes it: None -> empty, bools 0/1, Decimals without exponent, unset double as TWS."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if kind is bool:
        return "1" if value else "0"
    if kind is Decimal:
        if not value.is_finite():  # type: ignore[union-attr]
            return UNSET_DOUBLE_TEXT
        return format(value, "f")
    if kind is float:
        if value >= UNSET_DOUBLE:  # type: ignore[operator]
            return UNSET_DOUBLE_TEXT
        return repr(value)
    return str(value)


def encode_payload(fields: Iterable[object]) -> bytes:
    """Fields -> payload bytes (no length prefix). Non-ASCII text is sent as backslash escapes."""
    texts = [field_text(f) for f in fields]
    if not texts:
        return b""
    return ("\0".join(texts) + "\0").encode("ascii", "backslashreplace")


def encode(fields: Iterable[object]) -> bytes:
    """Fields -> one framed message (length prefix + payload)."""
    payload = encode_payload(fields)
    return _pack_length(len(payload)) + payload


def frame(payload: bytes) -> bytes:
    """Add the 4-byte length prefix to a payload."""
    return _pack_length(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """Payload bytes -> field strings. Bytes that are not ASCII become escapes instead of failing."""
    text = payload.decode("ascii", "backslashreplace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


class FrameBuffer:
    """Reassembles length-prefixed messages from arbitrary TCP chunks."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add received bytes; return every complete payload. ProtocolError for an absurd length prefix."""
        data = self._data
        data += chunk
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while end - pos >= 4:
            (size,) = _LENGTH.unpack_from(data, pos)
            if size > MAX_MESSAGE_BYTES:
                data.clear()
                raise ProtocolError(f"message length {size} exceeds {MAX_MESSAGE_BYTES} bytes: the stream is broken")
            if end - pos - 4 < size:
                break
            out.append(bytes(data[pos + 4:pos + 4 + size]))
            pos += 4 + size
        if pos:
            del data[:pos]
        return out

    def pending(self) -> int:
        return len(self._data)


def parse_version_range(text: str) -> tuple[int, int, str]:
    """The client's "v157..178 +opts" greeting -> (min, max, options). ProtocolError when unreadable."""
    body = text.strip()
    if not body.startswith("v"):
        raise ProtocolError(f"greeting {text[:40]!r} does not start with 'v<min>..<max>'")
    version_part, _, options = body[1:].partition(" ")
    lo_text, sep, hi_text = version_part.partition("..")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        raise ProtocolError(f"greeting {text[:40]!r} has no readable version range") from None
    return lo, hi, options


def negotiate_version(low: int, high: int) -> int | None:
    """The server version for a client declaring ``low..high``: the highest both sides speak, else None."""
    version = min(high, SERVER_VERSION)
    if version < max(low, MIN_SERVER_VERSION):
        return None
    return version


_ERR_MSG, _CONTRACT_DATA, _OPEN_ORDER, _COMPLETED_ORDER = (
    str(msg_id).encode() for msg_id in (ERR_MSG, CONTRACT_DATA, OPEN_ORDER, COMPLETED_ORDER))
_REWRITTEN = (_ERR_MSG, _CONTRACT_DATA, _OPEN_ORDER, _COMPLETED_ORDER)  # the replies older versions read differently


def for_version(message: bytes, version: int) -> bytes:
    """A framed message encoded at SERVER_VERSION, rewritten for an older negotiated ``version``.

    Between 151 and 176 only the tails of a few messages change: ERR_MSG gained advancedOrderRejectJson (166);
    CONTRACT_DATA lost its version field and mdSizeMultiplier and gained the size rules (164; 163 had one
    sizeMinTick field) after stockType (152); OPEN_ORDER gained duration (158), postToAts (160), autoCancelParent (162) and the
    PEG BEST/MID fields (170); COMPLETED_ORDER the PEG BEST/MID fields (170). Everything else is unchanged.
    """
    if version >= SERVER_VERSION:
        return message
    head = message[4:8]
    msg_id = head[:head.find(b"\0")] if b"\0" in head else b""
    if msg_id not in _REWRITTEN:
        return message
    fields = message[4:].decode("ascii").split("\0")[:-1]
    if msg_id == _ERR_MSG:
        if version < 166:
            fields = fields[:5]  # without advancedOrderRejectJson
    elif msg_id == _CONTRACT_DATA and version < 164:
        sizes = fields[-3:]
        fields = fields[:-3]
        if version < 152:
            fields = fields[:-1]  # stockType
        if version == 163:
            fields.append(sizes[1])  # sizeMinTick
        fields.insert(14, "1")  # mdSizeMultiplier, after minTick
        fields.insert(1, "8")  # the message version field of older servers
    elif msg_id == _OPEN_ORDER:
        drop = (5 if version < 170 else 0) + (version < 162) + (version < 160) + (version < 158)
        fields = fields[:len(fields) - drop]
    elif msg_id == _COMPLETED_ORDER and version < 170:
        fields = fields[:-5]
    return encode(fields)


# ----- typed requests ----------------------------------------------------------------------------------------
class FieldReader:
    """Sequential typed reads over one request's fields; errors name the message and the field."""

    __slots__ = ("fields", "pos", "name")

    def __init__(self, fields: Sequence[str], name: str, start: int = 1):
        self.fields = fields
        self.pos = start
        self.name = name

    def _next(self, what: str) -> str:
        if self.pos >= len(self.fields):
            raise ProtocolError(f"{self.name}: message ended before field {self.pos} ({what})")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def text(self, what: str = "") -> str:
        return self._next(what)

    def int(self, what: str = "", default: int = 0) -> int:
        raw = self._next(what)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            pass
        try:  # some clients send whole numbers as "5.0"
            as_float = float(raw)
            if as_float == int(as_float):
                return int(as_float)
        except (ValueError, OverflowError):
            pass
        raise ProtocolError(f"{self.name}: field {self.pos - 1} ({what}) {raw[:30]!r} is not an integer")

    def bool(self, what: str = "") -> bool:
        raw = self._next(what)
        if raw in ("", "0", "false", "False"):
            return False
        if raw in ("1", "true", "True"):
            return True
        try:
            return int(float(raw)) != 0
        except (ValueError, OverflowError):
            raise ProtocolError(f"{self.name}: field {self.pos - 1} ({what}) {raw[:30]!r} is not a boolean") from None

    def decimal(self, what: str = "") -> Decimal | None:
        """A number; empty or the 'unset' markers -> None."""
        raw = self._next(what)
        if raw == "" or raw == UNSET_DOUBLE_TEXT or raw == str(UNSET_INT) or raw == "1.7976931348623157e+308":
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ProtocolError(f"{self.name}: field {self.pos - 1} ({what}) {raw[:30]!r} is not a number") from None
        if not value.is_finite():
            return None
        return value

    def skip(self, count: int, what: str = "") -> None:
        if self.pos + count > len(self.fields):
            raise ProtocolError(f"{self.name}: message ended inside {what or 'skipped fields'}")
        self.pos += count

    def remaining(self) -> int:
        return len(self.fields) - self.pos


def length_text(size: int) -> str:
    """The 4-byte length prefix as latin-1 text (the server's reply queues hold text)."""
    return _pack_length(size).decode("latin-1")


LENGTH_TEXTS = [length_text(n) for n in range(4096)]  # the prefixes of short messages, precomputed
