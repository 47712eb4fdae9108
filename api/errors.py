"""Domain errors to HTTP answers, in one place. Bodies are ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from bot.errors import (
    BatchTooLarge,
    ConversationBusy,
    IngestError,
    InvalidInput,
    InvalidToken,
    KefuError,
    MessageTooLong,
    NotFound,
    RateLimited,
)

STATUS: list[tuple[type[KefuError], int]] = [
    (MessageTooLong, 413),
    (BatchTooLarge, 413),
    (InvalidInput, 422),
    (InvalidToken, 401),
    (NotFound, 404),
    (ConversationBusy, 429),
    (RateLimited, 429),
]

LIMIT_MESSAGES = {
    "messages": "too many messages in a minute; nothing was stored, try again in {wait} s",
    "conversations": "too many new conversations; try again in {wait} s",
    "sockets": "too many open chat connections from this address",
}


def status_for(exc: KefuError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def error_body(exc: KefuError) -> dict[str, dict[str, Any]]:
    body: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, MessageTooLong):
        body["message"] = f"message longer than {exc} characters; nothing was stored"
    elif isinstance(exc, RateLimited):
        body["message"] = LIMIT_MESSAGES.get(exc.what, "too many requests").format(
            wait=exc.retry_after
        )
        body.update(limit=exc.what, retry_after=exc.retry_after)
    elif isinstance(exc, IngestError):
        body.update(message=str(exc), problems=exc.problems)
    elif isinstance(exc, BatchTooLarge):
        body.update(message=str(exc), limit=exc.limit, size=exc.size)
    else:
        body["message"] = str(exc) or exc.code
    return {"error": body}


STORAGE_UNAVAILABLE = {
    "code": "storage_unavailable",
    "message": "messages cannot be stored right now; nothing was lost, please retry",
}


async def _kefu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KefuError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(error_body(exc), status_code=status_for(exc), headers=headers)


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    # Raised only after bot.db.run_with_retry gave up; the client retries with the same
    # client message id, which is idempotent.
    return JSONResponse(
        {"error": STORAGE_UNAVAILABLE}, status_code=503, headers={"Retry-After": "2"}
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(KefuError, _kefu_error)
    app.add_exception_handler(OperationalError, _storage_error)
