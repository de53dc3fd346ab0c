"""The ticket's sizing row and presets (the view half; the arithmetic is ``broker.sizing``).

Size by shares (type the quantity), by money ("10000" = that much of the stock's currency) or by risk
("0.5" = 0.5 % of the account's net liquidation lost if the stop-loss is hit). Money and risk write the
computed quantity, rounded down to whole board lots, into the Quantity field, and the line beside it
says how it was computed: the quantity sent is the one on screen. Typing a quantity by hand switches
back to shares. Presets (settings key ``ticket/presets``: market "US" / "HK" or a symbol -> preset dict)
fill in the quantity, order type, time in force, limit and attached prices from the current quote.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton

from ibpanel.broker.draft import OrderDraft, default_quantity
from ibpanel.broker.models import Side
from ibpanel.broker.rules import fallback_tick_table, is_hk_etf
from ibpanel.broker.sizing import (
    SizingError,
    TicketPreset,
    parse_decimal,
    preset_for,
    quantity_for_money,
    quantity_for_risk,
)

PRESETS_KEY = "ticket/presets"
SIZE_MODES = (("shares", "shares"), ("money", "money"), ("risk", "risk % of net liq."))


class TicketSizing:
    """Mixin for ``TicketTab``: the "Size by" row, and the Apply / Save preset buttons (the form places them)."""

    def _build_sizing(self, add) -> None:
        self.size_mode_combo = self._control(QComboBox(), "sizeMode", "Size by")
        for label, mode in ((text, key) for key, text in SIZE_MODES):
            self.size_mode_combo.addItem(label, mode)
        self.size_edit = self._control(QLineEdit(), "sizeAmount", "Size amount")
        self.size_edit.setPlaceholderText("e.g. 10000 or 0.5")
        self.size_label = self._control(QLabel(""), "sizeLabel", "Computed quantity")
        self.size_mode_combo.currentIndexChanged.connect(lambda _i: self.apply_sizing())
        self.size_edit.textChanged.connect(lambda _t: self.apply_sizing())
        add("size", "Size by", self.size_mode_combo, self.size_edit, self.size_label)
        self.apply_preset_button = self._control(QPushButton("Apply preset"), "applyPreset", "Apply preset")
        self.apply_preset_button.setToolTip("Fill in the preset of this symbol, else of its market (US / HK)")
        self.apply_preset_button.clicked.connect(lambda: self.apply_preset())
        self.save_preset_button = self._control(QPushButton("Save preset"), "savePreset", "Save preset")
        self.save_preset_button.setToolTip("Remember this ticket's quantity, type, time in force and price offsets "
                                           "for every stock of this market")
        self.save_preset_button.clicked.connect(lambda: self.save_preset())

    def size_mode(self) -> str:
        return str(self.size_mode_combo.currentData() or "shares")

    def sized_quantity(self, draft: OrderDraft) -> tuple[int | None, str]:
        """The quantity money / risk sizing gives for ``draft`` now, and the line that explains it."""
        mode, text = self.size_mode(), self.size_edit.text().strip()
        instrument = draft.instrument
        if mode == "shares" or not text:
            return None, ""
        if instrument is None:
            return None, "Type a symbol first."
        quote = self.quote
        bid, ask, last = (quote.bid, quote.ask, quote.last) if quote else (None, None, None)
        price = draft.reference_price(bid, ask, last)
        lot = max(1, instrument.board_lot)
        try:
            amount = parse_decimal(text)
            if price is None:
                raise SizingError("There is no price to size by yet: wait for a quote or type a limit price.")
            if mode == "money":
                shares = quantity_for_money(amount, price, lot)
                how = f"{instrument.currency} {amount:,} / {price}"
            else:
                stop = draft.price_value("stop_price") if draft.needs("stop_price") else None
                stop = draft._distance("stop_loss") or stop or draft.initial_stop(last)
                trail = draft._distance("stop_loss_trail")
                if stop is None and trail is not None:
                    stop = price - trail if draft.side is Side.BUY else price + trail
                if stop is None:
                    raise SizingError("Risk sizing needs a stop: fill in a stop-loss (Attached) or a stop price.")
                summary = self.broker.account_summary(draft.account or None)
                if summary is None or summary.net_liquidation is None:
                    raise SizingError("The account's net liquidation is not known yet: wait a moment.")
                if summary.base_currency and summary.base_currency != instrument.currency:
                    raise SizingError(f"The account is in {summary.base_currency} and {instrument.display} trades in "
                                      f"{instrument.currency}: size it by money or by shares.")
                net = Decimal(str(summary.net_liquidation))
                shares = quantity_for_risk(net, amount, price, stop, lot)
                how = f"{amount}% of {net:,.0f} / {abs(price - stop)} a share to the stop {stop}"
        except SizingError as exc:
            return None, str(exc)
        if shares == 0:
            return None, f"Less than one {'board lot' if lot > 1 else 'share'} ({how}): raise the amount."
        return shares, f"= {shares:,} shares ({how}, rounded down)"

    def apply_sizing(self) -> None:
        """Put the sized quantity in the Quantity field (money / risk modes); say how it was computed."""
        if self._rendering or self.size_mode() == "shares":
            self.size_label.setText("")
            return
        shares, line = self.sized_quantity(self.draft)
        self.size_label.setText(line)
        if shares is not None and self.draft.quantity != str(shares):
            self._sizing = True
            try:
                self._edit("quantity", quantity=str(shares))
            finally:
                self._sizing = False

    def quantity_typed(self, text: str) -> None:
        """A quantity typed by hand: sizing goes back to shares, so it never overwrites the trader's number."""
        if not self._rendering and not getattr(self, "_sizing", False) and self.size_mode() != "shares":
            self.size_mode_combo.setCurrentIndex(0)

    # --- presets ----------------------------------------------------------------------------------
    def presets(self) -> dict:
        stored = self.settings.get_json(PRESETS_KEY, {})
        return stored if isinstance(stored, dict) else {}

    def apply_preset(self) -> TicketPreset | None:
        """Fill in the preset for this symbol (else its market): quantity, type, TIF, limit and attached prices."""
        draft, instrument = self.draft, self.draft.instrument
        if instrument is None:
            self._show_issue("general", "Type a symbol first: presets are per market and per symbol.")
            return None
        preset = preset_for(self.presets(), instrument.market, instrument.display)
        quantity = preset.quantity or int(default_quantity(instrument))
        lot = max(1, instrument.board_lot)
        changes: dict = {"quantity": str(max(lot, quantity // lot * lot)), "order_type": preset.order_type,
                         "tif": preset.tif, "take_profit": "", "stop_loss": "", "stop_loss_trail": ""}
        quote = self.quote
        bid, ask, last = (quote.bid, quote.ask, quote.last) if quote else (None, None, None)
        reference = (ask if draft.side is Side.BUY else bid) or last
        if reference and draft.side is not None:
            table = fallback_tick_table(instrument.market, etf=is_hk_etf(instrument.symbol))
            for name, price in preset.prices(draft.side, Decimal(str(reference)), table).items():
                changes[name] = self.number_format.show(price)
        self._edit("order_type", **changes)
        self._touched.discard("order_type")
        return preset

    def save_preset(self, scope: str = "") -> TicketPreset | None:
        """Store this ticket as the preset of its market (or of ``scope``, a symbol): offsets as percents of the
        current reference price."""
        draft, instrument = self.draft, self.draft.instrument
        if instrument is None or draft.side is None:
            self._show_issue("general", "Choose a symbol and a side first: a preset keeps offsets from the market.")
            return None
        quote = self.quote
        bid, ask, last = (quote.bid, quote.ask, quote.last) if quote else (None, None, None)
        reference = (ask if draft.side is Side.BUY else bid) or last
        ref = Decimal(str(reference)) if reference else None

        def pct(value: Decimal | None, base: Decimal | None) -> Decimal:
            if value is None or not base:
                return Decimal(0)
            return (abs(value - base) / base * 100).quantize(Decimal("0.01"))

        limit = draft.price_value("limit_price")
        entry = limit or ref
        take_profit, stop_loss = draft._distance("take_profit"), draft._distance("stop_loss")
        trail = draft._distance("stop_loss_trail")
        attach = ("bracket" if take_profit and stop_loss else "take_profit" if take_profit else
                  "stop_loss" if stop_loss else "trailing_stop" if trail else "none")
        preset = TicketPreset(
            quantity=int(draft.quantity_value() or 0), order_type=draft.order_type, tif=draft.tif,
            limit_offset_pct=pct(limit, ref), take_profit_pct=pct(take_profit, entry),
            stop_loss_pct=pct(stop_loss, entry) if stop_loss else pct(entry - trail if trail and entry else None, entry),
            attach=attach)
        presets = self.presets()
        presets[scope or instrument.market.value] = preset.to_dict()
        self.settings.set_json(PRESETS_KEY, presets)
        self._set_result(f"Preset saved for {scope or instrument.market.value}.")
        return replace(preset)


async def sample_bracket(broker, symbol: str = "AAPL", quantity: int = 100) -> dict:
    """A ticket request for the --demo screenshot: a buy limit at the last trade with a take-profit 3 % above
    and a stop-loss 2 % below (on the tick), sized in whole shares; without a price, the plain ticket."""
    request: dict = {"symbol": symbol, "side": "BUY", "quantity": Decimal(quantity), "limit_price": None}
    try:
        instrument = await broker.resolve(symbol)
        quote = await broker.snapshot(instrument)
    except Exception:  # noqa: BLE001 - a screenshot without attached orders is still a screenshot
        return request
    last = quote.last or quote.bid or quote.close
    if not last:
        return request
    table = fallback_tick_table(instrument.market)
    price = table.round(Decimal(str(last)), "down")
    request.update(instrument=instrument, symbol=None, limit_price=price, tif="GTC",
                   take_profit=table.round(price * Decimal("1.03"), "up"),
                   stop_loss=table.round(price * Decimal("0.98"), "down"))
    return request
