"""Erasure of a customer everywhere Kefu keeps their data (the right to erasure, PIPL art. 47,
GDPR art. 17): our tables and Rasa's tracker store.

Rules:

- **Only closed conversations** (a bot chat quiet for ``KEFU_CONVERSATION_IDLE_MINUTES``
  counts as ended and is closed first). If any of the customer's conversations is live (the bot,
  the queue or an agent has it) or still has a shopper message waiting for its turn, nothing
  is erased and ``ConversationsLive`` says how many: the admin closes them and asks again.
  All or nothing, so a customer is never left half erased.
- **Under the conversation's lock.** The conversations are locked in the database first
  (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the write lock),
  and that transaction stays open while Rasa's trackers are deleted and our rows go: a turn
  of one of these conversations would have to store its message or its replies, and waits.
  On the Rasa side each tracker is deleted whole, under Rasa's own lock for that sender
  (``engine/channel.py``, ``POST /webhooks/kefu/privacy``). If anything fails, our
  transaction rolls back; a retry finds the same conversations (deleting a tracker twice is
  harmless). The database is the lock rather than the gateway's per-conversation turn queue
  (``api.turns.TurnQueue``) because that queue lives in one API worker only, while every
  turn, in any worker, stores its message and its replies in these rows; and a closed
  conversation without a pending message has no turn queued or in flight anywhere.
- **Every table, found from the metadata.** A row goes when its table has a
  ``conversation_id`` among the customer's conversations or a ``customer_id`` of the
  customer, or when it points (by foreign key) at a row that goes — so agent notes, review
  labels and any table added later are covered without changing this module. Modules that
  keep derived data outside the metadata (e.g. a full-text index) register a hook with
  ``register_transcript_hook``.
- **What stays.** The customer row stays as an anonymised tombstone (name, phone and e-mail
  cleared; ``external_id`` kept, it is the store's key, and the store erases on its side):
  the store's orders point at it and stay for its accounting, stripped of phone, address and
  note. The audit trail stays: it holds codes and counts, never the data. A row another
  customer still needs (a shared browser's ``visitor`` with someone else's conversations) is
  unlinked from the customer instead of deleted.

Every erasure is audit-logged (``erasure``) with counts only, in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import httpx
from sqlalchemy import (
    JSON,
    ColumnElement,
    Table,
    delete,
    exists,
    false,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import KefuError
from bot.models import Base, Conversation, Customer, Message
from bot.services import audit
from bot.services.conversations import close_idle

# The same derivation as engine.channel.privacy_token (the engine cannot import bot/).
ENGINE_TOKEN_CONTEXT = b"kefu.engine.privacy.v1"
# Tables that are kept and handled on their own (the tombstone, the store's orders, the trail).
KEPT = frozenset({"customer", "order", "audit_event"})
ANONYMISED: dict[str, dict[str, Any]] = {
    "customer": {"name": "", "phone": None, "email": None},
    "order": {"phone": "", "address": "", "note": None},
}

TranscriptHook = Callable[[Session, Sequence[str]], None]
_TRANSCRIPT_HOOKS: list[TranscriptHook] = []


def count_rows(result: Any) -> int:
    """Rows a DML statement touched (``session.execute`` is typed as returning a Result)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def register_transcript_hook(hook: TranscriptHook) -> None:
    """Call ``hook(session, conversation_ids)`` before those conversations' transcripts are
    erased or blanked (by erasure or retention), in the same transaction — for derived data
    the metadata does not show, e.g. a full-text index kept outside the ORM tables."""
    if hook not in _TRANSCRIPT_HOOKS:
        _TRANSCRIPT_HOOKS.append(hook)


def run_transcript_hooks(session: Session, conversation_ids: Sequence[str]) -> None:
    for hook in list(_TRANSCRIPT_HOOKS):
        hook(session, conversation_ids)


class ConversationsLive(KefuError):
    """Some of the customer's conversations are not closed: nothing was erased."""

    code = "conversations_live"

    def __init__(self, live: int) -> None:
        super().__init__(
            f"{live} conversation(s) of this customer are still open or waiting for a turn; "
            "close them first (nothing was erased)"
        )
        self.live = live


class TrackerStoreUnavailable(KefuError):
    """Rasa's tracker store could not be read or erased (nothing of ours was changed)."""

    code = "tracker_store_unavailable"


# --- Rasa's tracker store, through the engine channel --------------------------------------


def engine_token(secret_key: str) -> str:
    """The bearer token of the engine's privacy route, derived from ``KEFU_SECRET_KEY``."""
    return hmac.new(secret_key.encode(), ENGINE_TOKEN_CONTEXT, hashlib.sha256).hexdigest()


class Trackers(Protocol):
    """Reads and deletes whole Rasa trackers by sender (= conversation id)."""

    def export(self, senders: Sequence[str]) -> dict[str, list[dict[str, Any]]]: ...

    def erase(self, senders: Sequence[str]) -> int: ...


class EngineTrackers:
    """``Trackers`` through every Rasa server's ``/webhooks/kefu/privacy`` route. A sender
    is sent to every server: whichever holds the tracker answers, so a change of the hash
    ring never leaves a tracker behind."""

    BATCH = 200

    def __init__(
        self,
        urls: Sequence[str],
        *,
        token: str,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.token = token
        self.timeout = timeout
        self.transport = transport

    @classmethod
    def from_settings(cls, settings: Any) -> EngineTrackers:
        return cls(settings.rasa_urls, token=engine_token(settings.secret_key))

    def _call(self, op: str, senders: Sequence[str]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
            for start in range(0, len(senders), self.BATCH):
                body = {"op": op, "senders": list(senders[start : start + self.BATCH])}
                for url in self.urls:
                    try:
                        response = client.post(
                            f"{url}/webhooks/kefu/privacy", json=body, headers=headers
                        )
                    except httpx.HTTPError as exc:
                        raise TrackerStoreUnavailable(f"engine unreachable ({op})") from exc
                    if response.status_code != 200:
                        raise TrackerStoreUnavailable(
                            f"engine refused the tracker {op} (HTTP {response.status_code})"
                        )
                    try:
                        data = response.json()
                    except ValueError as exc:
                        raise TrackerStoreUnavailable(f"bad engine answer ({op})") from exc
                    if not isinstance(data, dict):
                        raise TrackerStoreUnavailable(f"bad engine answer ({op})")
                    answers.append(data)
        return answers

    def export(self, senders: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {s: [] for s in senders}
        if not senders:
            return found
        for answer in self._call("export", senders):
            for sender, events in (answer.get("trackers") or {}).items():
                if sender in found and isinstance(events, list) and events:
                    found[sender] = found[sender] or events
        return found

    def erase(self, senders: Sequence[str]) -> int:
        if not senders:
            return 0
        return sum(
            int(n)
            for answer in self._call("erase", senders)
            for n in (answer.get("erased") or {}).values()
            if isinstance(n, int)
        )


# --- which rows belong to a customer -------------------------------------------------------


@dataclass(frozen=True)
class ConversationState:
    id: str
    state: str
    pending: bool

    @property
    def live(self) -> bool:
        return self.state != "closed" or self.pending


def customer_conversations(*, session: Session, customer_id: int) -> list[ConversationState]:
    """The customer's conversations (those the export shows: a login merges the browser's
    earlier anonymous ones into them), with whether each is live. Anonymous conversations a
    shared browser had after the customer logged out are not provably theirs: they stay."""
    pending = exists().where(
        Message.conversation_id == Conversation.id, Message.status == "pending"
    )
    rows = session.execute(
        select(Conversation.id, Conversation.state, pending)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.created_at, Conversation.id)
    ).all()
    return [ConversationState(r[0], r[1], bool(r[2])) for r in rows]


def compact_search_indexes(session: Session) -> None:
    """SQLite's FTS5 keeps a deleted row's words in its segments until they are merged: an
    ``optimize`` rewrites every FTS5 index without them (PostgreSQL's tsvector columns go
    with their rows)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    names = session.scalars(
        text(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND lower(sql) LIKE 'create virtual table%using fts5%'"
        )
    ).all()
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        # The name comes from sqlite_master, quoted as an identifier.
        optimize = f"INSERT INTO {quoted}({quoted}) VALUES ('optimize')"  # noqa: S608
        session.execute(text(optimize))


def _owned(customer_id: int, conversation_ids: Sequence[str]) -> dict[str, ColumnElement[bool]]:
    """For every table that holds rows of this customer: the condition selecting them.

    A row is the customer's when its ``conversation_id`` is one of theirs or its
    ``customer_id`` is theirs. A table without a ``customer_id`` column also takes the rows
    that point (by foreign key) at a selected row of a table whose selected rows all go —
    the conversations, and tables like ``message`` that only hang off them. (A row with its
    own ``customer_id`` says whose it is; a ``visitor`` may be unlinked instead of deleted,
    so nothing follows it.)"""
    conditions: dict[str, ColumnElement[bool]] = {}
    all_go: set[str] = set()
    for table in Base.metadata.sorted_tables:  # parents before children
        if table.name in KEPT:
            continue
        parts: list[ColumnElement[bool]] = []
        if table.name == "conversation":
            parts.append(table.c.id.in_(conversation_ids) if conversation_ids else false())
        else:
            if "conversation_id" in table.c and conversation_ids:
                parts.append(table.c.conversation_id.in_(conversation_ids))
            if "customer_id" in table.c:
                parts.append(table.c.customer_id == customer_id)
            else:
                for fk in table.foreign_keys:
                    parent = fk.column.table
                    if parent is table or parent.name not in all_go:
                        continue
                    chosen = select(fk.column).where(conditions[parent.name])
                    parts.append(fk.parent.in_(chosen.scalar_subquery()))
        if parts:
            conditions[table.name] = or_(*parts)
            if table.name == "conversation" or "customer_id" not in table.c:
                all_go.add(table.name)
    return conditions


def _referenced_elsewhere(table: Table) -> ColumnElement[bool]:
    """Rows of ``table`` that a row of another table still points at."""
    checks: list[ColumnElement[bool]] = []
    for other in Base.metadata.sorted_tables:
        if other is table:
            continue
        for fk in other.foreign_keys:
            if fk.column.table is table:
                checks.append(exists().where(fk.parent == fk.column))
    return or_(*checks) if checks else false()


@dataclass
class ErasureReport:
    customer_id: int
    conversations: int
    tracker_events: int
    deleted: dict[str, int] = field(default_factory=dict)
    unlinked: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "conversations": self.conversations,
            "tracker_events": self.tracker_events,
            "deleted": dict(sorted(self.deleted.items())),
            "unlinked": dict(sorted(self.unlinked.items())),
            "anonymised": dict(sorted(self.anonymised.items())),
        }


def _lock_conversations(session: Session, conversation_ids: Iterable[str]) -> None:
    ids = list(conversation_ids)
    if ids:
        session.execute(
            select(Conversation.id).where(Conversation.id.in_(ids)).with_for_update()
        ).all()


def erase_customer(
    *,
    session: Session,
    customer_id: int,
    trackers: Trackers,
    actor: str = "staff",
    staff_id: int | None = None,
    clock: Clock = utcnow,
) -> ErasureReport:
    """Erase everything about ``customer_id`` (``KeyError`` if there is no such customer;
    ``ConversationsLive`` if a conversation is not closed; ``TrackerStoreUnavailable`` if
    Rasa's trackers cannot be deleted). The caller commits; on any error it rolls back and
    nothing of ours has changed."""
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise KeyError(customer_id)
    found = customer_conversations(session=session, customer_id=customer_id)
    _lock_conversations(session, (c.id for c in found))
    # A chat the bot served that has been quiet past the idle time has ended: end it now.
    close_idle(session=session, conversation_ids=[c.id for c in found], clock=clock)
    # Read again under the lock: a turn that got in first is now visible.
    found = customer_conversations(session=session, customer_id=customer_id)
    live = [c for c in found if c.live]
    if live:
        raise ConversationsLive(len(live))
    conversation_ids = [c.id for c in found]

    if session.get_bind().dialect.name == "sqlite":
        # Deleted rows' bytes are overwritten, not left in free pages of the file.
        session.execute(text("PRAGMA secure_delete = ON"))
    tracker_events = trackers.erase(conversation_ids)
    run_transcript_hooks(session, conversation_ids)

    tables = dict(Base.metadata.tables)
    conditions = _owned(customer_id, conversation_ids)
    report = ErasureReport(customer_id, len(conversation_ids), tracker_events)
    for table in reversed(Base.metadata.sorted_tables):  # children before parents
        condition = conditions.get(table.name)
        if condition is None:
            continue
        referenced = _referenced_elsewhere(table)
        removed = count_rows(session.execute(delete(table).where(condition, ~referenced)))
        if removed:
            report.deleted[table.name] = removed
        if "customer_id" in table.c and table.c.customer_id.nullable:
            kept = count_rows(
                session.execute(
                    update(table).where(table.c.customer_id == customer_id).values(customer_id=None)
                )
            )
            if kept:
                report.unlinked[table.name] = kept
    for name, values in ANONYMISED.items():
        table = tables[name]
        key = table.c.id if name == "customer" else table.c.customer_id
        changed = session.execute(update(table).where(key == customer_id).values(**values))
        report.anonymised[name] = count_rows(changed)
    compact_search_indexes(session)
    session.expire_all()
    audit.record(
        session=session,
        actor=actor,
        staff_id=staff_id,
        action="erasure",
        customer_id=customer_id,
        detail={
            "conversations": report.conversations,
            "tracker_events": report.tracker_events,
            "rows": sum(report.deleted.values()),
            "orders_kept": report.anonymised.get("order", 0),
        },
        clock=clock,
    )
    session.flush()
    return report


def text_columns(table: Table) -> list[str]:
    """Columns of ``table`` that can hold free text (used by the canary test and retention)."""
    names = []
    for column in table.columns:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = object
        if python_type is str or isinstance(column.type, JSON):
            names.append(column.name)
    return names


__all__ = [
    "ConversationState",
    "ConversationsLive",
    "EngineTrackers",
    "ErasureReport",
    "TrackerStoreUnavailable",
    "Trackers",
    "customer_conversations",
    "engine_token",
    "erase_customer",
    "register_transcript_hook",
]
