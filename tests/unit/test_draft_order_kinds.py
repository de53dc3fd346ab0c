"""OrderDraft with trailing stops, GTD and attached orders: its problems, its request, its initial stop."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from ibpanel.broker.draft import OrderDraft, describe_request
from ibpanel.broker.models import Instrument, Market, OrderType, Side, TimeInForce

AAPL = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)


def test_a_trailing_draft_sends_its_amount_or_percent_and_shows_the_initial_stop():
    draft = OrderDraft.from_mapping({"instrument": AAPL, "side": "SELL", "quantity": 10, "order_type": "TRAIL",
                                     "trailing": "0.50"})
    assert draft.problems() == {}
    request = draft.to_request()
    assert (request.order_type, request.trailing_amount, request.trailing_percent, request.stop_price) == (
        OrderType.TRAIL, Decimal("0.50"), None, None)
    assert draft.initial_stop(200.0) == Decimal("199.50")
    percent = OrderDraft.from_mapping({"instrument": AAPL, "side": "BUY", "quantity": 10, "order_type": "TRAIL",
                                       "trailing": "1.5", "trail_percent": True})
    assert percent.to_request().trailing_percent == Decimal("1.5")
    assert percent.initial_stop(200.0) == Decimal("203.00")  # 3.00 above a buy's market
    assert "trailing 1.5%" in describe_request(percent.to_request(), AAPL)


def test_missing_trailing_offset_and_good_till_are_problems_and_unused_fields_are_not_sent():
    draft = OrderDraft.from_mapping({"instrument": AAPL, "side": "SELL", "quantity": 10, "order_type": "TRAIL LIMIT",
                                     "tif": "GTD"})
    assert set(draft.problems()) == {"trailing", "limit_offset", "good_till"}
    limit = OrderDraft.from_mapping({"instrument": AAPL, "side": "BUY", "quantity": 10, "limit_price": "190",
                                     "trailing": "0.5", "good_till": "20991231 16:00:00"})
    request = limit.to_request()  # a LMT DAY order: the trailing and good-till texts are not part of it
    assert (request.trailing_amount, request.good_till, request.tif) == (None, None, TimeInForce.DAY)


def test_attached_prices_go_into_the_request_and_two_stop_losses_are_refused():
    draft = OrderDraft.from_mapping({"instrument": AAPL, "side": "BUY", "quantity": 10, "limit_price": "190",
                                     "take_profit": "200", "stop_loss": "185"})
    request = draft.to_request()
    assert (request.take_profit, request.stop_loss, request.stop_loss_trail) == (Decimal("200.00"), Decimal("185.00"),
                                                                                 None)
    assert draft.attached() and "+ take-profit 200.00 + stop-loss 185.00" in describe_request(request, AAPL)
    both = replace(OrderDraft.from_mapping({"instrument": AAPL, "side": Side.BUY, "quantity": 10, "limit_price": "190",
                                            "stop_loss": "185", "stop_loss_trail": "2"}), take_profit="x")
    assert set(both.problems()) == {"stop_loss_trail", "take_profit"}
