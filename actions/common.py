"""What every action needs: who the shopper is, their language, and a database session.

The customer id is read from the latest message's metadata on every run — set by the
gateway from a verified store login — never from a slot that NLU could fill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from bot.db import session_scope

T = TypeVar("T")


def customer_id(tracker: Tracker) -> int | None:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    value = metadata.get("customer_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def language(tracker: Tracker) -> str:
    return "en" if tracker.get_slot("language") == "en" else "zh"


def message_id(tracker: Tracker) -> str | None:
    value = (tracker.latest_message or {}).get("message_id")
    return value if isinstance(value, str) else None


async def in_session(work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in a worker thread inside one committed unit of work, so the
    action server's event loop never waits on the database."""

    def run() -> T:
        with session_scope() as session:
            return work(session)

    return await asyncio.to_thread(run)


def first_entity(tracker: Tracker, name: str) -> Any:
    return next(tracker.get_latest_entity_values(name), None)
