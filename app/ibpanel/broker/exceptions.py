"""Exceptions the broker raises to its callers (UI and API). Each carries a plain message and advice."""

from __future__ import annotations

from ibpanel.broker.models import ConnectionFailure, ValidationIssue


class BrokerError(Exception):
    """Base: ``message`` says what happened in one sentence, ``advice`` what to do."""

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.message} {self.advice}".strip()


class NotConnected(BrokerError):
    def __init__(self, message: str = "Not connected to IBKR.", advice: str = "Connect to TWS / IB Gateway (or start a practice session) first.") -> None:
        super().__init__(message, advice)


class ConnectError(BrokerError):
    def __init__(self, failure: ConnectionFailure) -> None:
        super().__init__(failure.message, failure.advice)
        self.failure = failure


class SymbolError(BrokerError):
    """The text is not a symbol we accept, or IB has no such stock (error 200)."""


class OrderRejected(BrokerError):
    """Validation refused the order before anything was sent. ``issues`` has one entry per broken rule."""

    def __init__(self, issues: tuple[ValidationIssue, ...] | list[ValidationIssue]) -> None:
        self.issues = tuple(issues)
        first = self.issues[0].message if self.issues else "Order refused."
        super().__init__(first if len(self.issues) == 1 else " ".join(i.message for i in self.issues))


class OrderNotFound(BrokerError):
    pass


class NotCancellable(BrokerError):
    """The order is already filled, cancelled or otherwise done (IB error 161)."""


class BrokerTimeout(BrokerError):
    pass


class PacingLimit(BrokerTimeout):
    """IB refused requests for going over its 50 messages per second (error 100) while we waited."""


#: The one sentence for IB's pacing refusal (error 100), shared by the broker and the API.
PACING_MESSAGE = "IB pacing limit (error 100): too many requests per second — slow down and retry."


class ModifyRejected(OrderRejected):
    """TWS refused a change to a working order (e.g. 321, 201, 110, 104); the order keeps its previous
    terms. ``code`` is IB's error code and ``ib_text`` IB's own words; ``issues`` holds one entry
    (field = the first changed field, code "tws_refused")."""

    def __init__(self, issues: tuple[ValidationIssue, ...] | list[ValidationIssue], *, code: int,
                 ib_text: str = "", advice: str = "") -> None:
        super().__init__(issues)
        self.code = code
        self.ib_text = ib_text
        self.advice = advice


class OrdersBacklogged(BrokerError):
    """Orders already waiting to be sent would hold this one longer than the allowed wait; nothing was sent.
    ``retry_after`` is the number of whole seconds after which the backlog should have cleared."""

    def __init__(self, wait: float, bound: float) -> None:
        self.wait = wait
        self.bound = bound
        self.retry_after = max(1, int(wait - bound + 0.999))
        super().__init__(
            f"Orders are queued for sending: this one would wait about {wait:.1f} s (more than the {bound:g} s "
            "allowed), so it was not sent.",
            f"Send it again in {self.retry_after} s.")
