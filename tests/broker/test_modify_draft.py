"""The modify dialog's Qt-free draft: the boxes' text is read exactly, and only real changes are sent."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.draft import NumberFormat
from ibpanel.broker.models import Instrument, Market, OrderStatus, OrderView, Side
from ibpanel.broker.modify_draft import ModifyDraft

TENCENT = Instrument("700", Market.HK, "SEHK", "HKD", con_id=700, board_lot=100)
GERMAN = NumberFormat(decimal_point=",", group_separator=".")


def _order(limit: str | None = "290.20", stop: str | None = None, quantity: int = 300) -> OrderView:
    return OrderView(order_id=7, perm_id=70, client_id=1, journal_id="j7", account="DU1", instrument=TENCENT,
                     side=Side.BUY, quantity=Decimal(quantity), order_type="LMT",
                     limit_price=None if limit is None else Decimal(limit),
                     stop_price=None if stop is None else Decimal(stop), tif="DAY", outside_rth=False,
                     status=OrderStatus.SUBMITTED, remaining=Decimal(quantity))


def test_an_unchanged_order_shows_its_own_values_and_sends_nothing():
    draft = ModifyDraft.of(_order())
    assert (draft.quantity, draft.limit_price, draft.stop_price) == ("300", "290.20", "")
    assert draft.editable() == ("quantity", "limit_price")
    assert draft.changes() == {} and draft.problems() == []


def test_only_the_fields_that_differ_are_sent():
    draft = ModifyDraft.of(_order()).with_text("300", "290.40", "")
    assert draft.changes() == {"limit_price": Decimal("290.40")}
    draft = draft.with_text("1,000", "290.40", "")
    assert draft.changes() == {"quantity": Decimal(1000), "limit_price": Decimal("290.40")}


def test_a_fractional_or_unreadable_quantity_is_refused_never_reread():
    for text in ("1.5", "300.05", "", "abc"):
        draft = ModifyDraft.of(_order()).with_text(text, "290.20", "")
        assert draft.changes() == {}, text
        assert draft.problems() and draft.problems()[0].startswith("Quantity:"), text


def test_a_price_box_exists_only_where_the_order_has_that_price():
    draft = ModifyDraft.of(_order(limit=None, stop="280.00")).with_text("300", "999", "281.00")
    assert draft.editable() == ("quantity", "stop_price")
    assert draft.changes() == {"stop_price": Decimal("281.00")}  # the hidden limit box is never read


def test_the_locale_decimal_point_is_read_and_shown():
    draft = ModifyDraft.of(_order(), GERMAN)
    assert draft.limit_price == "290,20"
    assert draft.with_text("300", "290,40", "").changes() == {"limit_price": Decimal("290.40")}
    assert draft.with_text("300", "290.40", "").problems()  # "." groups thousands here: ambiguous, refused
