"""Quotes tab display (QA F16, P1): change with the price's decimals, no "-0.00", and flashing cells
whose text stays readable against the flash colour, on the real tab streaming from the practice exchange."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import Instrument, Market
from ibpanel.ui import formatting as fmt
from ibpanel.ui.quotes_tab import DOWN_FLASH, DOWN_FLASH_DARK, UP_FLASH, UP_FLASH_DARK, QuotesTab
from ibpanel.ui.table_model import readable_text_colour
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

AAPL = Instrument("AAPL", Market.US, "SMART", "USD", con_id=265598)
TENCENT = Instrument("700", Market.HK, "SEHK", "HKD", con_id=9001, board_lot=100)
PENNY_HK = Instrument("1234", Market.HK, "SEHK", "HKD", con_id=9002, board_lot=1000)


def _luminance(colour: QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def _contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_change_uses_the_price_decimals_of_the_instrument():
    assert fmt.format_change(-0.04, AAPL, 230.02) == "-0.04"  # US >= $1: cents, not -0.0400
    assert fmt.format_change(0.0001, AAPL, 0.5123) == "+0.0001"  # US sub-dollar: 4 decimals
    assert fmt.format_change(0.2, TENCENT, 298.2) == "+0.20"  # HK 200-500 band: tick 0.20 -> 2 decimals
    assert fmt.format_change(0.0, TENCENT, 298.0) == "+0.00"  # not 0.000
    assert fmt.format_change(0.005, PENNY_HK, 0.305) == "+0.005"  # HK 0.25-0.50 band: tick 0.005
    assert fmt.format_change(-0.001, AAPL, 230.0) == "+0.00"  # rounds to zero: no minus sign
    assert fmt.format_change(None, AAPL, 230.0) == ""
    assert fmt.format_percent(-0.004, signed=True) == "+0.00%"  # BRK.B -0.01 on 490: not "-0.00%"
    assert fmt.format_percent(-0.01, signed=True) == "-0.01%"


def test_money_that_rounds_to_zero_carries_no_minus_sign():
    assert fmt.format_pnl(-0.004) == "+0.00" and fmt.format_pnl(-0.005001) == "-0.01"
    assert fmt.format_pnl(-1_234.5) == "-1,234.50" and fmt.format_pnl(0.0) == "+0.00"
    assert fmt.format_money(-0.0001) == "0.00" and fmt.format_money(-0.0001, 4) == "-0.0001"
    assert fmt.format_money(-1_000_000.0) == "-1,000,000.00"
    assert fmt.format_percent(-0.001) == "0.00%" and fmt.format_percent(-10.0) == "-10.00%"


def test_streamed_change_and_flashing_cells_stay_readable(qtbot, broker, sim, ui_settings):
    sim.set_quote_interval(0.05)
    ui_settings.set_json("quotes/watchlist", ["AAPL", "700", "BRK.B"])
    tab = QuotesTab(broker, ui_settings)
    qtbot.addWidget(tab)
    # a dark palette: the theme's own text is light, so a light flash behind it would hide the number
    palette = tab.view.palette()
    palette.setColor(QPalette.ColorRole.Text, QColor("#f0f0f0"))
    palette.setColor(QPalette.ColorRole.Base, QColor("#202020"))
    tab.view.setPalette(palette)
    tab.resize(1000, 700)
    tab.show()
    qtbot.waitUntil(lambda: len(tab.model) == 3 and tab.populated(), timeout=15000)

    def flashing_cell():
        tab.model.flush()
        for position in range(len(tab.model)):
            for column in (2, 3, 4):
                background = tab.model.data(tab.model.index(position, column), Qt.ItemDataRole.BackgroundRole)
                if background is not None:
                    return position, column, QColor(background)
        return None

    qtbot.waitUntil(lambda: flashing_cell() is not None, timeout=10000)
    position, column, background = flashing_cell()
    assert background in (UP_FLASH_DARK, DOWN_FLASH_DARK)  # deep tones on a dark theme, not a pale glare
    foreground = QColor(tab.model.data(tab.model.index(position, column), Qt.ItemDataRole.ForegroundRole))
    assert _contrast(foreground, background) >= 4.5  # WCAG AA for normal text
    for pale in (UP_FLASH, DOWN_FLASH):  # the light theme's flashes: light theme text would vanish on them,
        assert _contrast(palette.color(QPalette.ColorRole.Text), pale) < 4.5
        assert _contrast(readable_text_colour(pale), pale) >= 4.5  # the model's choice does not
    # once the flash is over the cell goes back to the palette's own colours
    sim.set_quote_interval(5.0)  # calm the stream so the flash can run out
    qtbot.waitUntil(lambda: tab.model.data(tab.model.index(position, column),
                                           Qt.ItemDataRole.BackgroundRole) is None, timeout=5000)
    assert tab.model.data(tab.model.index(position, column), Qt.ItemDataRole.ForegroundRole) is None

    # every change shown has the decimals of its price band and never reads "-0.00"
    qtbot.waitUntil(lambda: all(q.last is not None and q.close is not None for q in tab.model.rows()), timeout=10000)
    tab.model.flush()
    for position in range(len(tab.model)):
        quote = tab.model.row(position)
        shown = tab.model.data(tab.model.index(position, 5))
        expected_decimals = fmt.price_decimals(quote.instrument, quote.last)
        assert shown[0] in "+-" and len(shown.split(".")[1]) == expected_decimals, (quote.instrument.display, shown)
        assert Decimal(shown.replace(",", "")) == round(Decimal(str(quote.change)), expected_decimals) or shown == "+0.00"
        assert not shown.startswith("-0.00") or Decimal(shown) != 0
        percent = tab.model.data(tab.model.index(position, 6))
        assert percent != "-0.00%"
        percent_colour = tab.model.data(tab.model.index(position, 6), Qt.ItemDataRole.ForegroundRole)
        assert (percent_colour is None) == (percent == "+0.00%")  # a zero shown is not painted red / green
    tab.shutdown()


def test_chart_draws_candles_for_the_bars_with_the_live_price_on_top(qtbot, broker, sim, ui_settings):
    sim.set_quote_interval(0.05)
    ui_settings.set_json("quotes/watchlist", ["AAPL"])
    tab = QuotesTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.resize(1000, 700)
    tab.show()
    qtbot.waitUntil(lambda: len(tab.model) == 1 and tab.populated(), timeout=15000)
    tab.view.selectRow(0)
    chart = tab.chart
    qtbot.waitUntil(lambda: chart.point_count()[0] > 10 and chart.point_count()[1] >= 2, timeout=10000)
    candles = chart.candles
    bars = chart.bars
    assert len(candles) == len(bars) == chart.point_count()[0]
    assert list(candles.open) == [b.open for b in bars] and list(candles.close) == [b.close for b in bars]
    assert all(lo <= min(o, c) and hi >= max(o, c)
               for o, hi, lo, c in zip(candles.open, candles.high, candles.low, candles.close, strict=True))
    assert any(c > o for o, c in zip(candles.open, candles.close, strict=True))  # both colours are drawn
    assert any(c < o for o, c in zip(candles.open, candles.close, strict=True))
    bounds = candles.boundingRect()
    assert bounds.top() <= min(candles.low) and bounds.bottom() >= max(candles.high)
    assert bounds.left() < candles.x[0] < candles.x[-1] < bounds.right()
    assert 0 < candles.body_width() < float(candles.x[1] - candles.x[0])  # a gap between neighbours
    assert not candles.picture.isNull()
    assert chart.live_curve.zValue() > candles.zValue()  # the live price is drawn over the candles
    assert chart.last_line.isVisible()

    picture = candles.picture
    redraws = chart.redraws
    qtbot.waitUntil(lambda: chart.redraws > redraws, timeout=5000)  # live ticks redraw ...
    assert candles.picture is picture  # ... without re-drawing the candles
    chart.bar_size_combo.setCurrentText("1 hour")
    qtbot.waitUntil(lambda: candles.picture is not picture and len(candles) == len(chart.bars), timeout=10000)
    tab.shutdown()
