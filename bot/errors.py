"""Domain errors raised by bot/ services; the API and the actions map them to answers."""

from __future__ import annotations


class KefuError(Exception):
    """Base of every domain error. ``code`` is stable and safe to show to clients."""

    code = "error"


class NotFound(KefuError):
    code = "not_found"


class OrderNotFound(NotFound):
    """No order with that number, or not one this shopper may see (never says which)."""

    code = "order_not_found"


class VerificationFailed(KefuError):
    """The phone digits given do not match the order."""

    code = "verification_failed"


class InvalidInput(KefuError):
    code = "invalid_input"


class MessageTooLong(InvalidInput):
    code = "message_too_long"


class InvalidToken(KefuError):
    code = "invalid_token"


class ConversationBusy(KefuError):
    """Too many turns of one conversation are waiting."""

    code = "conversation_busy"


class RateLimited(KefuError):
    """A limit of the public chat was reached; ``retry_after`` says when to try again."""

    code = "rate_limited"

    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = max(1, int(retry_after + 0.999))
