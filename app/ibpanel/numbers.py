"""Decimal helpers shared by every package (broker, api, ui; sim may): no Qt, no ib_async, nothing of ours.

Prices and quantities are ``Decimal`` end to end. Floats (IB's wire, JSON) go through ``repr`` so
0.1 stays 0.1 rather than its binary neighbour.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """Decimal from user or IB input; floats go through ``repr`` so 0.1 stays 0.1.

    Raises TypeError for a bool and ValueError (saying what was given) for text that is not a finite number.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise TypeError("a price or quantity cannot be a bool")
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def decimal_or_none(value: object) -> Decimal | None:
    """A finite Decimal from a number or numeric text, or None (None, bools, text that is not a number, NaN)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def float_to_decimal(value: float) -> Decimal:
    """A wire float as Decimal without binary noise: whole numbers as integers (300.0 -> 300), others by repr.

    Raises InvalidOperation, ValueError or OverflowError for NaN and infinities.
    """
    return Decimal(repr(value)).normalize() if value != int(value) else Decimal(int(value))


def decimal_text(value: Decimal | float | int | str | None) -> str | None:
    """Plain text of a number for storage: never exponent notation ("1E+2" is written "100"); None stays None."""
    if value is None:
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a number") from exc
    return format(number.normalize(), "f") if number == number.to_integral_value() else format(number, "f")
