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


class IngestError(InvalidInput):
    """Records of a store-data batch that cannot be taken; nothing of the batch was written.

    ``problems`` holds one entry per problem: the record's index in the batch, its id when
    known, the field (a dotted path inside the record) and a message."""

    code = "invalid_records"

    def __init__(
        self, problems: list[dict[str, object]], *, total: int | None = None, records: int = 0
    ) -> None:
        total = len(problems) if total is None else total
        where = f"in {records} record(s)" if records else "with the batch"
        super().__init__(f"{total} problem(s) {where}; nothing of the batch was written")
        self.problems = problems
        self.total = total


class BatchTooLarge(InvalidInput):
    """A store-data batch with more records than one request may carry."""

    code = "batch_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"a batch holds at most {limit} records and this one has {size}: send it in "
            "smaller batches; nothing was written"
        )
        self.size = size
        self.limit = limit


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


class OrderNotCancellable(KefuError):
    """The order has shipped, been delivered or is already closed."""

    code = "order_not_cancellable"

    def __init__(self, order_number: str, status: str) -> None:
        super().__init__(order_number)
        self.order_number = order_number
        self.status = status


class OrderNotModifiable(KefuError):
    """The order has left the warehouse (or is closed): its address cannot change."""

    code = "order_not_modifiable"

    def __init__(self, order_number: str, status: str) -> None:
        super().__init__(order_number)
        self.order_number = order_number
        self.status = status


class NotEligible(KefuError):
    """A return or exchange the store's policy does not allow; ``reason`` says why."""

    code = "not_eligible"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
