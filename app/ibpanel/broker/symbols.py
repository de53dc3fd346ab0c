"""What the user types -> the stock IB should look up (US on SMART/USD, HK on SEHK/HKD).

Accepted spellings (case and surrounding spaces do not matter):

* US: ``AAPL``, ``BRK.B``, ``BRK B``, ``BRK-B``, ``BRK/B``, ``US:AAPL``.
  IB spells share classes with a space, so every class separator becomes ``"BRK B"``.
* HK: ``700``, ``00700``, ``0700.HK``, ``700.hk``, ``HK:700``, ``HK700``, ``SEHK:700``.
  A bare number is always an HK stock code (never a conId). IB wants the code without
  leading zeros (``"700"``).

``parse_symbol`` raises :class:`~ibpanel.broker.exceptions.SymbolError` (and nothing else) for
anything it does not accept; the message names the accepted forms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ibpanel.broker.exceptions import SymbolError
from ibpanel.broker.models import Instrument, Market

ACCEPTED_FORMS = (
    "Type a US ticker (AAPL, BRK.B or BRK B) or a Hong Kong stock code "
    "(700, 00700, 0700.HK or HK:700); a bare number is read as a Hong Kong code."
)

# HK codes run 1..99999; five digits plus up to a few padding zeros is the longest sane spelling.
_HK_MAX_CODE = 99999
_HK_RE = re.compile(r"^(?:(?:SEHK|HKEX|HK)\s*[:.]?\s*)?(?P<code>[0-9]{1,6})(?:\s*\.\s*HK)?$")
# US: 1-5 letter root, optional share class of 1-2 letters after ".", "-", "/", or a space.
_US_RE = re.compile(r"^(?:US\s*:\s*)?(?P<root>[A-Z]{1,5})(?:\s*[.\-/ ]\s*(?P<cls>[A-Z]{1,2}))?$")
_MAX_INPUT = 24

_US_EXCHANGE, _US_CURRENCY = "SMART", "USD"
_HK_EXCHANGE, _HK_CURRENCY = "SEHK", "HKD"


@dataclass(frozen=True)
class SymbolSpec:
    """A parsed, not yet qualified, stock: what to ask IB's contract details for."""

    market: Market
    symbol: str  # IB spelling: "AAPL", "BRK B", "700"
    exchange: str  # "SMART" | "SEHK"
    currency: str  # "USD" | "HKD"

    @property
    def display(self) -> str:
        """Our display form ("BRK.B", "0700.HK"); ``parse_symbol(spec.display) == spec``."""
        if self.market is Market.HK:
            return f"{int(self.symbol):04d}.HK"
        return self.symbol.replace(" ", ".")

    @property
    def key(self) -> str:
        """Cache key: market and IB spelling."""
        return f"{self.market.value}:{self.symbol}"


def _coerce_market(market: Market | str | None) -> Market | None:
    if market is None or isinstance(market, Market):
        return market
    if not market.strip():
        return None
    try:
        return Market.from_market_type(market)
    except ValueError as exc:
        raise SymbolError(f"Unknown market {market!r}.", "Use marketType USStock (US) or HShare (Hong Kong).") from exc


def us_spec(symbol: str) -> SymbolSpec:
    return SymbolSpec(Market.US, symbol, _US_EXCHANGE, _US_CURRENCY)


def hk_spec(code: int) -> SymbolSpec:
    return SymbolSpec(Market.HK, str(code), _HK_EXCHANGE, _HK_CURRENCY)


def _junk(text: str, why: str = "") -> SymbolError:
    shown = text if len(text) <= _MAX_INPUT else text[:_MAX_INPUT] + "..."
    what = f"{shown!r} is not a symbol we understand" if shown.strip() else "The symbol is empty"
    return SymbolError(f"{what}{': ' + why if why else ''}.", ACCEPTED_FORMS)


def parse_symbol(text: str, market: Market | str | None = None) -> SymbolSpec:
    """Parse what the user typed. ``market`` (Market, "US"/"HK", "USStock"/"HShare") forces the market.

    Raises SymbolError for empty, too long or malformed text, an HK code out of range (0 or above
    99999), or text that contradicts the market hint (digits with market US, letters with HK).
    """
    if not isinstance(text, str):
        raise _junk(repr(text), "expected text")
    forced = _coerce_market(market)
    raw = text.strip()
    if not raw:
        raise _junk("")
    if len(raw) > _MAX_INPUT:
        raise _junk(raw, f"longer than {_MAX_INPUT} characters")
    if not raw.isascii():
        raise _junk(raw, "use plain letters and digits")
    norm = " ".join(raw.upper().split())  # collapse inner whitespace, "brk  b" -> "BRK B"

    hk = _HK_RE.match(norm)
    if hk:
        code = int(hk.group("code"))
        if not 1 <= code <= _HK_MAX_CODE:
            raise _junk(raw, f"Hong Kong stock codes run from 1 to {_HK_MAX_CODE}")
        if forced is Market.US:
            raise SymbolError(
                f"{raw!r} is a Hong Kong stock code, but the market is set to US.",
                "Type a US ticker such as AAPL, or choose the Hong Kong market (HShare).",
            )
        return hk_spec(code)

    us = _US_RE.match(norm)
    if us:
        if forced is Market.HK:
            raise SymbolError(
                f"{raw!r} looks like a US ticker, but the market is set to Hong Kong.",
                "Type a Hong Kong stock code such as 700 or 0700.HK, or choose the US market (USStock).",
            )
        root, share_class = us.group("root"), us.group("cls")
        return us_spec(f"{root} {share_class}" if share_class else root)

    if norm.startswith(("HK:", "HK ", "SEHK")) or norm.endswith(".HK"):
        raise _junk(raw, "a Hong Kong code is 1 to 5 digits")
    raise _junk(raw)


def spec_of(instrument: Instrument) -> SymbolSpec:
    """The spec an instrument was (or would have been) parsed from."""
    return SymbolSpec(instrument.market, instrument.symbol, instrument.exchange, instrument.currency)


def instrument_from_spec(spec: SymbolSpec, **details: object) -> Instrument:
    """An Instrument for ``spec``; ``details`` fills the optional fields (con_id, primary_exchange, ...)."""
    return Instrument(symbol=spec.symbol, market=spec.market, exchange=spec.exchange,
                      currency=spec.currency, **details)  # type: ignore[arg-type]


# US listing venues in the order we prefer when IB returns several stocks for one SMART ticker.
US_PRIMARY_PREFERENCE: tuple[str, ...] = ("NASDAQ", "NYSE", "ARCA", "AMEX", "BATS", "IEX")


def choose_primary_exchange(primary_exchanges: Sequence[str | None]) -> int | None:
    """Index of the candidate to use when a US ticker matches several contracts.

    Picks the first candidate listed on a main US exchange (NASDAQ, NYSE, ARCA, AMEX, BATS, IEX, in
    that order); ``None`` when there are no candidates. Never rejects: ambiguity is resolved.
    """
    if not primary_exchanges:
        return None
    ranked = [
        (US_PRIMARY_PREFERENCE.index(ex.upper()) if ex and ex.upper() in US_PRIMARY_PREFERENCE else 99, i)
        for i, ex in enumerate(primary_exchanges)
    ]
    return min(ranked)[1]


class ContractCache:
    """Qualified instruments by spec and by conId, so each stock is qualified once per session."""

    def __init__(self) -> None:
        self._by_key: dict[str, Instrument] = {}
        self._by_con_id: dict[int, Instrument] = {}

    def get(self, spec: SymbolSpec) -> Instrument | None:
        return self._by_key.get(spec.key)

    def put(self, spec: SymbolSpec, instrument: Instrument) -> None:
        """Remember ``instrument`` for ``spec`` (and for its own IB spelling, and its conId when known)."""
        self._by_key[spec.key] = instrument
        self._by_key[spec_of(instrument).key] = instrument
        if instrument.con_id:
            self._by_con_id[instrument.con_id] = instrument

    def by_con_id(self, con_id: int) -> Instrument | None:
        return self._by_con_id.get(con_id)

    def clear(self) -> None:
        self._by_key.clear()
        self._by_con_id.clear()
