"""What every action needs: who the shopper is, their language, and a database session.

The customer id is read from the latest message's metadata on every run — set by the
gateway from a verified store login — never from a slot that NLU could fill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.formatting import format_date, format_money
from bot.labels import label
from bot.services.outcomes import Turn
from bot.settings import get_settings

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
    action server's event loop never waits on the database.

    Two runs of one retried message can race; the loser's outcome row breaks the unique
    (message id, kind) constraint and rolls back. It runs once more and then finds what the
    winner recorded (services replay first), so the message still acts once."""

    def run() -> T:
        try:
            with session_scope() as session:
                return work(session)
        except IntegrityError:
            with session_scope() as session:
                return work(session)

    return await asyncio.to_thread(run)


def first_entity(tracker: Tracker, name: str) -> Any:
    return next(tracker.get_latest_entity_values(name), None)


def conversation_turn(tracker: Tracker) -> Turn | None:
    """The idempotency key of this run: the Rasa message id, with the verified customer.

    None when there is no message id (nothing may be changed without one)."""
    mid = message_id(tracker)
    if mid is None:
        return None
    return Turn(message_id=mid, customer_id=customer_id(tracker), conversation_id=tracker.sender_id)


def latest_text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "")


def page_product_id(tracker: Tracker) -> str | None:
    """The store's id of the product page the shopper is on (gateway metadata ``page``)."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    page = metadata.get("page") if isinstance(metadata, dict) else None
    value = page.get("product_id") if isinstance(page, dict) else None
    return value if isinstance(value, str) and value else None


def pending(value: str | None, detail: dict[str, Any] | None = None) -> list[EventType]:
    """Remember (or forget, with None) the question the shopper is about to answer."""
    return [SlotSet("pending", value), SlotSet("pending_detail", detail if value else None)]


def pending_detail(tracker: Tracker) -> dict[str, Any]:
    value = tracker.get_slot("pending_detail")
    return value if isinstance(value, dict) else {}


def money(fen: int | None) -> str:
    return format_money(fen or 0)


def date(dt: datetime | None, lang: str) -> str:
    return format_date(dt, lang, get_settings().store_timezone)


def item_text(name_zh: str, name_en: str, colour: str, size: str, lang: str) -> str:
    name = name_en if lang == "en" else name_zh
    return f"{name} {label('colour', colour, lang)}/{size}"


def joined(parts: list[str], lang: str) -> str:
    return (", " if lang == "en" else "、").join(parts)
