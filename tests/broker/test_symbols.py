"""Symbol parsing: every spelling users type, the market hint, junk, and the contract cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibpanel.broker.exceptions import SymbolError
from ibpanel.broker.models import Instrument, Market
from ibpanel.broker.symbols import (
    ACCEPTED_FORMS,
    ContractCache,
    SymbolSpec,
    choose_primary_exchange,
    instrument_from_spec,
    parse_symbol,
    spec_of,
)

US = SymbolSpec(Market.US, "AAPL", "SMART", "USD")
BRK = SymbolSpec(Market.US, "BRK B", "SMART", "USD")
TENCENT = SymbolSpec(Market.HK, "700", "SEHK", "HKD")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("AAPL", US), ("aapl", US), ("  AAPL ", US), ("US:aapl", US),
        ("BRK.B", BRK), ("brk b", BRK), ("BRK-B", BRK), ("brk/b", BRK), ("BRK  B", BRK), ("BRK B", BRK),
        ("0700.HK", TENCENT), ("00700", TENCENT), ("700", TENCENT), ("HK:700", TENCENT),
        ("700.hk", TENCENT), ("hk:0700", TENCENT), ("HK700", TENCENT), ("SEHK:700", TENCENT), ("000700", TENCENT),
    ],
)
def test_accepted_spellings(text, expected):
    assert parse_symbol(text) == expected


def test_hk_code_is_sent_without_leading_zeros_and_shown_padded():
    spec = parse_symbol("5")
    assert (spec.symbol, spec.exchange, spec.currency, spec.display) == ("5", "SEHK", "HKD", "0005.HK")
    assert parse_symbol("09988").symbol == "9988"
    assert parse_symbol("99999").display == "99999.HK"


@pytest.mark.parametrize("hint", [Market.HK, "HK", "HShare", "hshare"])
def test_market_hint_hk(hint):
    assert parse_symbol("700", hint) == TENCENT


@pytest.mark.parametrize("hint", [Market.US, "US", "USStock"])
def test_market_hint_us(hint):
    assert parse_symbol("brk.b", hint) == BRK


def test_digits_with_market_us_is_refused_with_advice():
    with pytest.raises(SymbolError) as info:
        parse_symbol("700", "USStock")
    assert "Hong Kong" in info.value.message and "US" in info.value.message
    assert info.value.advice


def test_letters_with_market_hk_is_refused_with_advice():
    with pytest.raises(SymbolError) as info:
        parse_symbol("AAPL", Market.HK)
    assert "Hong Kong" in info.value.message
    assert "700" in info.value.advice


def test_unknown_market_type_is_a_symbol_error():
    with pytest.raises(SymbolError) as info:
        parse_symbol("AAPL", "Crypto")
    assert "USStock" in info.value.advice


def test_empty_market_hint_means_detect():
    assert parse_symbol("AAPL", "") == US


@pytest.mark.parametrize(
    "junk",
    ["", "   ", "$$$", "AAPL!!", "12345678", "0", "00000", "100000", "ABCDEFG", "HK:ABC", "HK:", "700.US",
     "BRK.BBB", "A B C", "x" * 40, "腾讯", "AAPL\n;DROP", "１２３"],
)
def test_junk_names_the_accepted_forms(junk):
    with pytest.raises(SymbolError) as info:
        parse_symbol(junk)
    assert info.value.advice == ACCEPTED_FORMS
    assert "AAPL" in str(info.value) and "0700.HK" in str(info.value)


def test_non_text_is_a_symbol_error():
    with pytest.raises(SymbolError):
        parse_symbol(700)  # type: ignore[arg-type]


# --- properties -----------------------------------------------------------------------------------

hk_codes = st.integers(min_value=1, max_value=99999)


def hk_spellings(code: int) -> list[str]:
    padded4, padded5 = f"{code:04d}", f"{code:05d}"
    return [str(code), padded4, padded5, f"{padded4}.HK", f"{code}.hk", f"HK:{code}", f"hk:{padded5}",
            f" {padded5}.HK ", f"HK {code}", f"SEHK:{code}"]


@given(hk_codes, st.data())
def test_every_hk_spelling_gives_the_same_spec(code, data):
    spelling = data.draw(st.sampled_from(hk_spellings(code)))
    spec = parse_symbol(spelling)
    assert spec == SymbolSpec(Market.HK, str(code), "SEHK", "HKD")
    assert parse_symbol(spelling, "HShare") == spec


us_roots = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5)
us_classes = st.one_of(st.none(), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=2))


@given(us_roots, us_classes, st.sampled_from([".", " ", "-", "/"]), st.booleans())
def test_us_spellings_agree(root, share_class, sep, lower):
    text = root + (sep + share_class if share_class else "")
    spec = parse_symbol(text.lower() if lower else text)
    assert spec.market is Market.US and spec.exchange == "SMART" and spec.currency == "USD"
    assert spec.symbol == (f"{root} {share_class}" if share_class else root)


@given(st.one_of(hk_codes.map(str), st.tuples(us_roots, us_classes).map(lambda t: t[0] + (" " + t[1] if t[1] else ""))))
def test_display_form_round_trips(text):
    spec = parse_symbol(text)
    assert parse_symbol(spec.display) == spec
    assert parse_symbol(spec.display, spec.market) == spec
    assert instrument_from_spec(spec).display == spec.display


near_valid = st.text(alphabet="0123456789ABHKSUabhkus.:-/ $!\t", max_size=14)


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=40), near_valid),
       st.sampled_from([None, "US", "HK", "USStock", "HShare", Market.US, Market.HK]))
def test_random_text_raises_only_symbol_error(text, hint):
    try:
        spec = parse_symbol(text, hint)
    except SymbolError as exc:
        assert exc.message and exc.advice
    else:
        assert spec.market in (Market.US, Market.HK)
        assert parse_symbol(spec.display) == spec


# --- cache and ambiguity ----------------------------------------------------------------------------


def test_cache_by_spec_and_con_id():
    cache = ContractCache()
    spec = parse_symbol("0700.HK")
    assert cache.get(spec) is None
    inst = Instrument("700", Market.HK, "SEHK", "HKD", con_id=12345, board_lot=100, lot_source="fallback table")
    cache.put(spec, inst)
    assert cache.get(parse_symbol("HK:700")) is inst
    assert cache.by_con_id(12345) is inst
    assert cache.by_con_id(1) is None
    assert spec_of(inst) == spec
    cache.clear()
    assert cache.get(spec) is None and cache.by_con_id(12345) is None


def test_cache_without_con_id_is_found_by_spec_only():
    cache = ContractCache()
    inst = Instrument("BRK B", Market.US, "SMART", "USD")
    cache.put(parse_symbol("brk.b"), inst)
    assert cache.get(parse_symbol("BRK-B")) is inst


def test_ambiguous_us_ticker_resolved_by_primary_exchange():
    assert choose_primary_exchange(["VALUE", "PINK", "NYSE", "NASDAQ"]) == 3
    assert choose_primary_exchange(["PINK", "ARCA"]) == 1
    assert choose_primary_exchange(["PINK", None]) == 0  # nothing preferred: the first, never a refusal
    assert choose_primary_exchange([]) is None
