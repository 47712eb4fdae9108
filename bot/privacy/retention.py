"""Retention: transcripts of closed conversations whose last activity is older than
``KEFU_RETENTION_DAYS`` (0 keeps them forever) are removed — ``python -m bot.cli retention``,
meant to run daily.

What goes: every message's text, button payload and entities (the NLU's extracted values),
the free text of every row hanging off the conversation (agent notes, ticket notes and
callback numbers, satisfaction comments, review labels … found from the metadata: the
``Text`` and JSON columns of tables with a ``conversation_id``, or pointing at a message), and
Rasa's whole tracker for the conversation. What stays: the rows themselves with their codes,
times and figures (intent, confidence, latency, outcome kinds), so the statistics of old
months do not change. Conversations that are not closed are never touched.

Idempotent: a conversation counts as done once none of its messages has text left, so a second
run finds nothing. Each batch deletes the trackers first, under the conversations' lock (see
``bot.privacy.erasure``), and blanks our rows in the same transaction; if the engine cannot be
reached nothing of ours changes and the next run retries. Audit-logged with counts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, Table, Text, exists, null, or_, select, update
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.models import Base, Conversation, Message
from bot.privacy.erasure import (
    Trackers,
    compact_search_indexes,
    count_rows,
    run_transcript_hooks,
)
from bot.services import audit
from bot.services.conversations import close_idle

BATCH = 200
# Short string columns that still hold personal data (the rest of String(n) are codes).
EXTRA_PERSONAL = {"ticket": ("callback_phone",), "message": ("payload",)}


@dataclass
class RetentionReport:
    days: int
    conversations: int = 0
    messages: int = 0
    rows: int = 0
    tracker_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "conversations": self.conversations,
            "messages": self.messages,
            "rows": self.rows,
            "tracker_events": self.tracker_events,
        }


def _has_text() -> Any:
    return exists().where(
        Message.conversation_id == Conversation.id,
        or_(Message.text != "", Message.payload.is_not(None), Message.entities.is_not(null())),
    )


def due(*, session: Session, days: int, clock: Clock = utcnow, limit: int = BATCH) -> list[str]:
    """Ids of closed conversations older than ``days`` that still have transcript text."""
    if days <= 0:
        return []
    cutoff = clock() - timedelta(days=days)
    return list(
        session.scalars(
            select(Conversation.id)
            .where(
                Conversation.state == "closed", Conversation.last_message_at < cutoff, _has_text()
            )
            .order_by(Conversation.last_message_at, Conversation.id)
            .limit(limit)
        )
    )


def _linked_tables() -> list[tuple[Table, Any]]:
    """(table, how its rows belong to a conversation) for every table holding transcript
    detail: a ``conversation_id`` column, or a foreign key to ``message``."""
    linked: list[tuple[Table, Any]] = []
    message = Base.metadata.tables["message"]
    for table in Base.metadata.sorted_tables:
        if table.name in ("conversation", "message"):
            continue
        if "conversation_id" in table.c:
            linked.append((table, table.c.conversation_id))
            continue
        for fk in table.foreign_keys:
            if fk.column.table is message:
                linked.append((table, fk.parent))
                break
    return linked


def _blank_values(table: Table) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key or column.foreign_keys:
            continue
        personal = column.name in EXTRA_PERSONAL.get(table.name, ())
        if isinstance(column.type, Text | JSON) or personal:
            if column.nullable:
                # SQL NULL (a JSON column would store a JSON ``null`` for None).
                values[column.name] = null()
            elif isinstance(column.type, JSON):
                values[column.name] = {} if column.name == "detail" else []
            else:
                values[column.name] = ""
    return values


def _blank(session: Session, conversation_ids: Sequence[str]) -> tuple[int, int]:
    messages = count_rows(
        session.execute(
            update(Message)
            .where(Message.conversation_id.in_(conversation_ids))
            .values(text="", payload=None, entities=null(), buttons=null())
        )
    )
    rows = 0
    message_ids = select(Message.id).where(Message.conversation_id.in_(conversation_ids))
    for table, key in _linked_tables():
        values = _blank_values(table)
        if not values:
            continue
        if key.name == "conversation_id":
            where = key.in_(conversation_ids)
        else:
            where = key.in_(message_ids.scalar_subquery())
        rows += count_rows(session.execute(update(table).where(where).values(**values)))
    return messages, rows


def apply_retention(
    *, session: Session, days: int, trackers: Trackers, clock: Clock = utcnow, batch: int = BATCH
) -> RetentionReport:
    """One batch: remove the transcripts of up to ``batch`` due conversations. The caller
    commits (and calls again while ``conversations == batch``; ``run`` does)."""
    report = RetentionReport(days)
    close_idle(session=session, clock=clock)  # bot chats long quiet have ended
    ids = due(session=session, days=days, clock=clock, limit=batch)
    if not ids:
        return report
    session.execute(select(Conversation.id).where(Conversation.id.in_(ids)).with_for_update()).all()
    # Under the lock: only what is still closed and due.
    ids = [i for i in due(session=session, days=days, clock=clock, limit=batch) if i in set(ids)]
    report.tracker_events = trackers.erase(ids)
    run_transcript_hooks(session, ids)
    report.messages, report.rows = _blank(session, ids)
    compact_search_indexes(session)
    report.conversations = len(ids)
    return report


def run(
    *, session_factory: Any, days: int, trackers: Trackers, clock: Clock = utcnow
) -> RetentionReport:
    """Every due conversation, batch by batch, each batch its own transaction; one audit
    event with the totals (none when there was nothing to do)."""
    from bot.db import run_with_retry

    total = RetentionReport(days)
    while True:
        part: RetentionReport = run_with_retry(
            lambda s: apply_retention(session=s, days=days, trackers=trackers, clock=clock),
            factory=session_factory,
        )
        total.conversations += part.conversations
        total.messages += part.messages
        total.rows += part.rows
        total.tracker_events += part.tracker_events
        if part.conversations < BATCH:
            break
    if total.conversations:

        def record(s: Session) -> None:
            audit.record(
                session=s,
                actor="system",
                action="retention",
                customer_id=None,
                detail=total.to_dict(),
                clock=clock,
            )

        run_with_retry(record, factory=session_factory)
    return total
