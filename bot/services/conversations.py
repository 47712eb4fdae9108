"""Conversations and their messages: the gateway's durable record.

A shopper message is stored (idempotent on the client's message id) before anything acts on
it; the turn's result and the bot's replies are stored together afterwards. Replies are
stored only while the bot owns the conversation — an atomic ``UPDATE … WHERE state = 'bot'``
in the same transaction — so a reply in flight when a human takes over is dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from bot.clock import Clock, utcnow
from bot.db import insert_or_ignore
from bot.errors import InvalidToken, NotFound, RateLimited
from bot.models import Conversation, Customer, Message, Staff, Visitor
from bot.models.handoff import AgentMessage, Ticket
from bot.models.service import Outcome
from bot.services import tags
from bot.settings import get_settings


@dataclass(frozen=True)
class ChatSession:
    visitor_id: str
    conversation_id: str
    customer_id: int | None
    customer_name: str | None
    language: str
    # True when this call started the conversation (the chat's limits count those).
    created: bool = False


@dataclass(frozen=True)
class MessageView:
    id: int
    role: str
    text: str
    created_at: datetime
    client_msg_id: str | None = None
    buttons: list[dict[str, Any]] | None = None
    status: str = "done"
    author: str | None = None  # an agent message's agent

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
        }
        if self.client_msg_id:
            data["client_id"] = self.client_msg_id
        if self.buttons:
            data["buttons"] = self.buttons
        if self.author:
            data["author"] = self.author
        return data


@dataclass(frozen=True)
class Inbound:
    message: MessageView
    uid: str
    duplicate: bool


@dataclass(frozen=True)
class TurnInput:
    """What the gateway needs to send one stored shopper message to the engine."""

    message_id: int
    uid: str
    conversation_id: str
    text: str
    payload: str | None
    customer_id: int | None
    language: str
    sentiment: float | None
    state: str
    status: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: list[dict[str, Any]] | None = None


@dataclass
class TurnOutcome:
    """The engine's answer to one turn, as the gateway stores it."""

    replies: list[Reply]
    intent: str | None = None
    confidence: float | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    language: str | None = None
    latency_ms: int | None = None
    failure: str | None = None
    # Why the conversation needs a person, when the turn went fine but asked for one.
    flag: str | None = None


def _view(m: Message) -> MessageView:
    return MessageView(
        id=m.id,
        role=m.role,
        text=m.text,
        created_at=m.created_at,
        client_msg_id=m.client_msg_id,
        buttons=m.buttons,
        status=m.status,
    )


def _new_id() -> str:
    return secrets.token_hex(16)


# The turn path writes with table statements (no ORM unit of work); objects of the same rows
# that the caller's session already holds are expired, so they are read again when used.
_MESSAGES = cast(Table, Message.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
_TURN_FIELDS = (
    "status", "failure", "intent", "confidence", "entities", "actions", "language", "latency_ms"
)  # fmt: skip


def _expire_loaded(session: Session, model: type[Any], key: Any, fields: list[str]) -> None:
    loaded = session.identity_map.get(identity_key(model, key))
    if loaded is not None:
        session.expire(loaded, fields)


StoredHook = Callable[[Session, MessageView, str], None]
_STORED_HOOKS: list[StoredHook] = []


def register_stored_hook(hook: StoredHook) -> None:
    """Call ``hook(session, message, conversation_id)`` in the same transaction whenever a
    shopper message is stored here (with a table statement, which ORM flush events do not
    see) — e.g. to index it for search (``bot.search``)."""
    if hook not in _STORED_HOOKS:
        _STORED_HOOKS.append(hook)


# Built once, run with bind parameters: this is every shopper message's path.
_TOUCH = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("conversation_id"))
    .values(last_message_at=bindparam("now"))
)
_FIND = select(_MESSAGES.c.id).where(
    _MESSAGES.c.conversation_id == bindparam("conversation_id"),
    _MESSAGES.c.client_msg_id == bindparam("client_msg_id"),
)
_RECORD = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("message_id"), _MESSAGES.c.status == "pending")
    .values({field: bindparam(field) for field in _TURN_FIELDS})
    .returning(_MESSAGES.c.conversation_id)
)
_REPLY = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)


_INBOUND_ROW = {
    "uid": bindparam("uid"),
    "conversation_id": bindparam("conversation_id"),
    "role": "shopper",
    "client_msg_id": bindparam("client_msg_id"),
    "text": bindparam("text"),
    "payload": bindparam("payload"),
    "status": "pending",
    "sentiment": bindparam("sentiment"),
    "created_at": bindparam("created_at"),
}
# The shopper message unless its client id is stored already, returning its id.
_INBOUND = {
    d: insert_or_ignore(
        d, _MESSAGES, _INBOUND_ROW, keys=["conversation_id", "client_msg_id"]
    ).returning(_MESSAGES.c.id)
    for d in ("postgresql", "sqlite")
}
_owned_updates: dict[frozenset[str], Any] = {}


def _owned_update(fields: frozenset[str]) -> Any:
    """UPDATE the conversation's ``fields`` while the bot owns it, returning its customer."""
    if fields not in _owned_updates:
        _owned_updates[fields] = (
            update(_CONVERSATIONS)
            .where(
                _CONVERSATIONS.c.id == bindparam("conversation_id"),
                _CONVERSATIONS.c.state == "bot",
            )
            .values({f: bindparam(f"v_{f}") for f in sorted(fields)})
            .returning(_CONVERSATIONS.c.customer_id)
        )
    return _owned_updates[fields]


def start_session(
    *,
    session: Session,
    visitor_id: str | None,
    customer_external_id: str | None = None,
    language: str = "zh",
    allow_new: bool = True,
    clock: Clock = utcnow,
) -> ChatSession:
    """Find or create the visitor and its open conversation.

    ``allow_new=False`` resumes an open conversation but refuses (``RateLimited``) to start
    one: the caller's limit on new conversations is reached.

    A verified customer (``customer_external_id`` comes from a checked store token) is linked
    to the visitor and merges the visitor's anonymous conversations. An anonymous session
    never continues a logged-in conversation, so a shared browser does not leak orders.
    """
    now = clock()
    visitor = session.get(Visitor, visitor_id) if visitor_id else None
    if visitor is None:
        visitor = Visitor(id=_new_id(), created_at=now)
        session.add(visitor)
    visitor.last_seen_at = now

    customer: Customer | None = None
    if customer_external_id is not None:
        customer = session.scalars(
            select(Customer).where(Customer.external_id == customer_external_id)
        ).first()
        if customer is None:
            raise InvalidToken("the store token names a customer Kefu does not know")
        visitor.customer_id = customer.id
        session.flush()
        _merge_anonymous(session, visitor.id, customer.id, clock)

    customer_id = customer.id if customer else None
    conversation = session.scalars(
        select(Conversation)
        .where(
            Conversation.visitor_id == visitor.id,
            Conversation.state != "closed",
            Conversation.customer_id.is_(None)
            if customer_id is None
            else Conversation.customer_id == customer_id,
        )
        .order_by(Conversation.last_message_at.desc())
        .limit(1)
    ).first()
    if conversation is not None and close_idle(
        session=session, conversation_ids=[conversation.id], clock=clock
    ):
        conversation = None  # it had ended: a new visit is a new conversation
    created = conversation is None
    if conversation is None:
        if not allow_new:
            raise RateLimited("conversations", 60)
        lang = language if language in ("zh", "en") else (customer.language if customer else "zh")
        conversation = Conversation(
            id=_new_id(),
            visitor_id=visitor.id,
            customer_id=customer_id,
            state="bot",
            language=lang,
            created_at=now,
            last_message_at=now,
        )
        session.add(conversation)
    session.flush()
    return ChatSession(
        visitor_id=visitor.id,
        conversation_id=conversation.id,
        customer_id=customer_id,
        customer_name=customer.name if customer else None,
        language=conversation.language,
        created=created,
    )


def close_idle(
    *,
    session: Session,
    conversation_ids: list[str] | None = None,
    idle_minutes: int | None = None,
    clock: Clock = utcnow,
) -> int:
    """End the bot's conversations (all, or these) with no message for ``idle_minutes``
    (``KEFU_CONVERSATION_IDLE_MINUTES``) and no turn waiting; returns how many. A
    conversation queued for or with a person is never ended here, and writing into an ended
    conversation opens it again (``api.turns``), so nothing a shopper sends is lost."""
    minutes = get_settings().conversation_idle_minutes if idle_minutes is None else idle_minutes
    pending = exists().where(
        Message.conversation_id == Conversation.id, Message.status == "pending"
    )
    query = update(Conversation).where(
        Conversation.state == "bot",
        Conversation.last_message_at < clock() - timedelta(minutes=minutes),
        ~pending,
    )
    if conversation_ids is not None:
        if not conversation_ids:
            return 0
        query = query.where(Conversation.id.in_(conversation_ids))
    result = cast("CursorResult[Any]", session.execute(query.values(state="closed")))
    return int(result.rowcount or 0)


def _merge_anonymous(session: Session, visitor_id: str, customer_id: int, clock: Clock) -> None:
    """The visitor's anonymous history becomes the customer's: its conversations, and what
    happened in them (outcomes such as a complaint, callback tickets); then the customer's
    turn tags catch up (``tags.apply_turn_rules``). A typed phone number never does this —
    only a verified store login reaches here."""
    anonymous = list(
        session.scalars(
            select(Conversation.id).where(
                Conversation.visitor_id == visitor_id, Conversation.customer_id.is_(None)
            )
        )
    )
    if not anonymous:
        return
    for table, key, owner in (
        (Conversation, Conversation.id, Conversation.customer_id),
        (Outcome, Outcome.conversation_id, Outcome.customer_id),
        (Ticket, Ticket.conversation_id, Ticket.customer_id),
    ):
        session.execute(
            update(table).where(key.in_(anonymous), owner.is_(None)).values(customer_id=customer_id)
        )
    tags.apply_turn_rules(session=session, customer_id=customer_id, clock=clock)


def find_inbound(*, session: Session, conversation_id: str, client_msg_id: str) -> Inbound | None:
    """The shopper message already stored under this client message id, if any."""
    found = session.connection().scalar(
        _FIND, {"conversation_id": conversation_id, "client_msg_id": client_msg_id}
    )  # a plain id first: nearly every message is new, and that answer costs no ORM load
    existing = session.get(Message, found) if found is not None else None
    return Inbound(_view(existing), existing.uid, duplicate=True) if existing else None


def record_inbound(
    *,
    session: Session,
    conversation_id: str,
    client_msg_id: str,
    text: str,
    payload: str | None = None,
    sentiment: float | None = None,
    clock: Clock = utcnow,
) -> Inbound:
    """Store a shopper message once per client message id; a repeat returns the first.

    Two statements for a new message: the conversation's row is updated (and so locked),
    then the message is inserted unless its client id is stored already (ON CONFLICT DO
    NOTHING) — a repeat, or the same message racing in on another connection, then finds
    the first one. Hooks (``register_stored_hook``) see the new message in the transaction."""
    now = clock()
    session.flush()  # the table statements below do not autoflush the caller's changes
    touched = session.connection().execute(_TOUCH, {"conversation_id": conversation_id, "now": now})
    if not touched.rowcount:
        raise NotFound("conversation")
    _expire_loaded(session, Conversation, conversation_id, ["last_message_at"])
    uid = _new_id()
    conn = session.connection()
    new_id = conn.scalar(
        _INBOUND[conn.dialect.name],
        {
            "uid": uid,
            "conversation_id": conversation_id,
            "client_msg_id": client_msg_id,
            "text": text,
            "payload": payload,
            "sentiment": sentiment,
            "created_at": now,
        },
    )
    if new_id is None:  # this client id is stored already: the first one stands
        existing = find_inbound(
            session=session, conversation_id=conversation_id, client_msg_id=client_msg_id
        )
        assert existing is not None
        return existing
    view = MessageView(
        id=new_id,
        role="shopper",
        text=text,
        created_at=now,
        client_msg_id=client_msg_id,
        status="pending",
    )
    for hook in list(_STORED_HOOKS):
        hook(session, view, conversation_id)
    return Inbound(view, uid, duplicate=False)


def turn_input(*, session: Session, message_id: int) -> TurnInput:
    """Everything needed to send the stored shopper message ``message_id`` to the engine."""
    row = session.execute(
        select(Message, Conversation)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id == message_id)
    ).first()
    if row is None:
        raise NotFound("message")
    message, conversation = row
    return TurnInput(
        message_id=message.id,
        uid=message.uid,
        conversation_id=conversation.id,
        text=message.text,
        payload=message.payload,
        customer_id=conversation.customer_id,
        language=conversation.language,
        sentiment=message.sentiment,
        state=conversation.state,
        status=message.status,
    )


def pending_messages(*, session: Session) -> list[tuple[str, int]]:
    """(conversation id, message id) of shopper messages whose turn never finished, in order."""
    rows = session.execute(
        select(Message.conversation_id, Message.id)
        .where(Message.status == "pending")
        .order_by(Message.id)
    )
    return [(r[0], r[1]) for r in rows]


def record_turn(
    *, session: Session, message_id: int, outcome: TurnOutcome, clock: Clock = utcnow
) -> list[MessageView]:
    """Store a turn's NLU result and replies; returns the replies actually stored.

    Replies are kept only if the bot still owns the conversation at this moment. A turn is
    recorded once: a retry of one already recorded stores nothing. Three statements for a
    turn (the message, the conversation, the replies), a fourth when a tag rule names this
    turn's intent — plain SQL, as this runs for every message a shopper sends.
    """
    now = clock()
    session.flush()  # the table statements below do not autoflush the caller's changes
    conn = session.connection()
    recorded = conn.execute(
        _RECORD,
        {
            "message_id": message_id,
            "status": "failed" if outcome.failure else "done",
            "failure": outcome.failure,
            "intent": outcome.intent,
            "confidence": outcome.confidence,
            "entities": outcome.entities,
            "actions": outcome.actions,
            "language": outcome.language,
            "latency_ms": outcome.latency_ms,
        },
    ).first()
    if recorded is None:
        if session.get(Message, message_id) is None:
            raise NotFound("message")
        return []  # already recorded (a retry after a commit that did land)
    conversation_id = recorded[0]
    _expire_loaded(session, Message, message_id, list(_TURN_FIELDS))

    values: dict[str, Any] = {"last_message_at": now}
    if outcome.language in ("zh", "en"):
        values["language"] = outcome.language
    if outcome.failure or outcome.flag:
        values.update(needs_human=True, flag_reason=outcome.failure or outcome.flag)
    owned = conn.execute(
        _owned_update(frozenset(values)),
        {"conversation_id": conversation_id, **{f"v_{k}": v for k, v in values.items()}},
    ).first()
    _expire_loaded(session, Conversation, conversation_id, list(values))
    if owned is None:
        return []
    rows = [
        {
            "uid": _new_id(),
            "conversation_id": conversation_id,
            "role": "bot",
            "client_msg_id": None,
            "text": reply.text,
            "buttons": reply.buttons or None,
            "reply_to_id": message_id,
            "status": "done",
            "created_at": now,
        }
        for reply in outcome.replies
    ]
    stored: list[MessageView] = []
    if rows:  # bot replies are not in the search index, so no ORM flush is needed
        ids = conn.execute(_REPLY, rows).scalars()
        stored = [
            MessageView(id=i, role="bot", text=r["text"], created_at=now, buttons=r["buttons"])
            for i, r in zip(ids, rows, strict=True)
        ]
    customer_id = owned[0]
    if customer_id is not None and outcome.intent:
        tags.apply_turn_rules(
            session=session, customer_id=customer_id, intent=outcome.intent, clock=clock
        )
    return stored


def history(
    *, session: Session, conversation_id: str, after_id: int = 0, limit: int = 200
) -> list[MessageView]:
    """Messages of a conversation after ``after_id``, oldest first: the next ``limit`` of them
    when catching up after an id, the latest ``limit`` when starting from the beginning."""
    query = select(Message).where(Message.conversation_id == conversation_id, Message.id > after_id)
    if after_id:
        rows = list(session.scalars(query.order_by(Message.id).limit(limit)))
    else:
        rows = list(session.scalars(query.order_by(Message.id.desc()).limit(limit)))[::-1]
    views = [_view(m) for m in rows]
    agent_ids = [v.id for v in views if v.role == "agent"]
    if not agent_ids:
        return views
    rows_ = session.execute(
        select(AgentMessage.message_id, Staff.name)
        .join(Staff, Staff.id == AgentMessage.staff_id)
        .where(AgentMessage.message_id.in_(agent_ids))
    )
    names = {message_id: name for message_id, name in rows_}
    return [replace(v, author=names.get(v.id)) if v.role == "agent" else v for v in views]


def offered_payloads(*, session: Session, conversation_id: str) -> set[str]:
    """Button payloads the bot offered since the shopper's last message."""
    rows = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())
        .limit(10)
    )
    payloads: set[str] = set()
    for m in rows:
        if m.role == "shopper":
            break
        for button in m.buttons or []:
            if isinstance(button.get("payload"), str):
                payloads.add(button["payload"])
    return payloads
