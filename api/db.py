"""The database from async code: one helper every route module and the chat service share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from bot.db import run_with_retry

T = TypeVar("T")


async def in_db(work: Callable[[Session], T], *, factory: sessionmaker[Session] | None = None) -> T:
    """Run ``work`` in a worker thread, in a unit of work on the configured database (or
    ``factory``'s) — ``bot.db.run_with_retry``: committed on success, retried while the
    database is briefly unreachable. ``work`` must be safe to repeat, since a failed attempt
    has rolled back."""
    return await to_thread.run_sync(lambda: run_with_retry(work, factory=factory))
