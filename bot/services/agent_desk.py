"""The agent's desk: what the console shows about one conversation and what agents add to it.

- ``summary``: why a person was asked for and what happened before — the intents so far,
  the order concerned, what the bot already tried — derived from the stored NLU result and
  actions of each shopper turn (nothing is stored twice).
- ``placeholder_values``: what a canned response's ``{placeholders}`` are filled with.
- private notes, conversation tags and customer tags (source ``agent``), and the
  satisfaction question sent when an agent closes a chat.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.labels import label
from bot.models import Conversation, Customer, Message, Order, Shipment, Staff
from bot.models.console import AgentNote, ConversationTag
from bot.models.crm import CustomerTag
from bot.models.handoff import Handoff, Ticket
from bot.services import tickets
from bot.services.orders import extract_order_number

AGENT_SOURCE = "agent"
MAX_NOTE = 2000
TAG = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff:.\-]{0,63}$")
# Rasa's bookkeeping, not something the bot tried for the shopper.
HOUSEKEEPING_ACTIONS = frozenset(
    {"action_listen", "action_session_start", "action_restart", "action_unlikely_intent"}
)
CSAT_QUESTION = (
    "请问您对本次服务满意吗？（1 分很不满意，5 分非常满意）",
    "How satisfied were you with our help today? (1 = not at all, 5 = very)",
)


@dataclass(frozen=True)
class IntentSeen:
    intent: str
    count: int
    last_confidence: float | None


@dataclass(frozen=True)
class OrderConcerned:
    order_number: str
    status: str
    shipment_status: str | None
    delay_reason: str | None
    how: str  # mentioned (an order number in the chat) | latest (the customer's latest order)


@dataclass(frozen=True)
class Summary:
    reason: str | None  # the handoff's reason (requested, fallback, vip, takeover, …)
    intents: tuple[IntentSeen, ...]
    order: OrderConcerned | None
    tried: tuple[str, ...]  # the bot's actions, in the order first tried
    failed_turns: int
    fallbacks: int
    shopper_messages: int
    started_at: datetime | None = None


@dataclass(frozen=True)
class NoteView:
    id: int
    author: str
    text: str
    created_at: datetime


def _conversation(session: Session, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    return conversation


def _order_view(session: Session, order: Order, how: str) -> OrderConcerned:
    shipment = session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    return OrderConcerned(
        order.order_number,
        order.status,
        shipment.status if shipment else None,
        shipment.delay_reason if shipment and shipment.delivered_at is None else None,
        how,
    )


def order_concerned(*, session: Session, conversation_id: str) -> OrderConcerned | None:
    """The order the conversation is about: the last order number the shopper gave (an
    ``order_number`` entity, or one written in the text) that exists — and is theirs, when
    the shopper is logged in — else the customer's latest order."""
    conversation = _conversation(session, conversation_id)
    rows = session.execute(
        select(Message.entities, Message.text)
        .where(Message.conversation_id == conversation_id, Message.role == "shopper")
        .order_by(Message.id.desc())
        .limit(200)
    ).all()
    for entities, text in rows:
        numbers = [
            str(e.get("value"))
            for e in entities or []
            if isinstance(e, dict) and e.get("entity") == "order_number" and e.get("value")
        ]
        written = extract_order_number(text)
        for number in [*numbers, *([written] if written else [])]:
            order = session.scalar(select(Order).where(Order.order_number == number))
            if order is not None and conversation.customer_id in (None, order.customer_id):
                return _order_view(session, order, "mentioned")
    if conversation.customer_id is None:
        return None
    latest = session.scalar(
        select(Order)
        .where(Order.customer_id == conversation.customer_id)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(1)
    )
    return _order_view(session, latest, "latest") if latest is not None else None


def summary(*, session: Session, conversation_id: str) -> Summary:
    """Why a person was asked for, and what happened before: for the agent taking over."""
    conversation = _conversation(session, conversation_id)
    handoff = session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id)
        .order_by(Handoff.id.desc())
        .limit(1)
    ).first()
    reason = handoff.reason if handoff is not None else None
    if reason is None:  # nobody could answer: the request became a ticket
        reason = session.scalar(
            select(Ticket.reason)
            .where(Ticket.conversation_id == conversation_id)
            .order_by(Ticket.id.desc())
            .limit(1)
        )
    if reason is None and conversation.flag_reason:
        reason = conversation.flag_reason.removeprefix("handoff:")
    turns = session.execute(
        select(Message.intent, Message.confidence, Message.actions, Message.status, Message.failure)
        .where(Message.conversation_id == conversation_id, Message.role == "shopper")
        .order_by(Message.id)
    ).all()
    counts: dict[str, int] = {}
    confidence: dict[str, float | None] = {}
    tried: list[str] = []
    failed = fallbacks = 0
    for intent, conf, actions, status, failure in turns:
        if intent:
            counts[intent] = counts.get(intent, 0) + 1
            confidence[intent] = conf
            fallbacks += intent == "nlu_fallback"
        if failure or status == "failed":
            failed += 1
        for action in actions or []:
            if (
                isinstance(action, str)
                and action not in HOUSEKEEPING_ACTIONS
                and action not in tried
            ):
                tried.append(action)
    return Summary(
        reason=reason,
        intents=tuple(IntentSeen(i, n, confidence[i]) for i, n in counts.items()),
        order=order_concerned(session=session, conversation_id=conversation_id),
        tried=tuple(tried),
        failed_turns=failed,
        fallbacks=fallbacks,
        shopper_messages=len(turns),
        started_at=conversation.created_at,
    )


def turn_understanding(*, session: Session, conversation_id: str) -> dict[int, dict[str, Any]]:
    """The bot's understanding of each shopper turn, by message id: intent, confidence,
    entities, the actions it ran and any failure."""
    rows = session.execute(
        select(
            Message.id,
            Message.intent,
            Message.confidence,
            Message.entities,
            Message.actions,
            Message.failure,
        ).where(Message.conversation_id == conversation_id, Message.role == "shopper")
    ).all()
    return {
        mid: {
            "intent": intent,
            "confidence": confidence,
            "entities": [
                {"entity": str(e.get("entity")), "value": str(e.get("value"))}
                for e in entities or []
                if isinstance(e, dict)
            ],
            "actions": [a for a in actions or [] if a not in HOUSEKEEPING_ACTIONS],
            "failure": failure,
        }
        for mid, intent, confidence, entities, actions, failure in rows
        if intent or failure
    }


def live_handoff_id(*, session: Session, conversation_id: str) -> int | None:
    """The conversation's handoff still in progress (queued or assigned), if any."""
    return session.scalar(
        select(Handoff.id)
        .where(Handoff.conversation_id == conversation_id, Handoff.state != "ended")
        .order_by(Handoff.id.desc())
        .limit(1)
    )


def placeholder_values(
    *, session: Session, conversation_id: str, agent_id: int | None, language: str
) -> dict[str, str | None]:
    """What canned responses' placeholders are filled with for this conversation: the
    customer's name, the order concerned and its delay reason (in ``language``), and the
    agent's name. A value the conversation does not have is None (rendered as a marker)."""
    conversation = _conversation(session, conversation_id)
    customer = session.get(Customer, conversation.customer_id) if conversation.customer_id else None
    order = order_concerned(session=session, conversation_id=conversation_id)
    agent = session.get(Staff, agent_id) if agent_id is not None else None
    lang = "en" if language == "en" else "zh"
    return {
        "name": customer.name if customer else None,
        "order_no": order.order_number if order else None,
        "delay_reason": label("delay_reason", order.delay_reason, lang)
        if order and order.delay_reason
        else None,
        "agent_name": agent.name if agent else None,
    }


# --- notes --------------------------------------------------------------------------------


def add_note(
    *, session: Session, conversation_id: str, staff_id: int, text: str, clock: Clock = utcnow
) -> NoteView:
    """A private note on the conversation (never sent to the shopper)."""
    _conversation(session, conversation_id)
    text = text.strip()
    if not text or len(text) > MAX_NOTE:
        raise InvalidInput(f"a note has 1 to {MAX_NOTE} characters")
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("staff")
    note = AgentNote(
        conversation_id=conversation_id, staff_id=staff_id, text=text, created_at=clock()
    )
    session.add(note)
    session.flush()
    return NoteView(note.id, staff.name, note.text, note.created_at)


def notes(*, session: Session, conversation_id: str) -> list[NoteView]:
    rows = session.execute(
        select(AgentNote, Staff.name)
        .join(Staff, Staff.id == AgentNote.staff_id)
        .where(AgentNote.conversation_id == conversation_id)
        .order_by(AgentNote.id)
    ).all()
    return [NoteView(n.id, name, n.text, n.created_at) for n, name in rows]


# --- tags ---------------------------------------------------------------------------------


def _tag(text: str) -> str:
    tag = text.strip().lower()
    if not TAG.match(tag):
        raise InvalidInput(
            "a tag is 1 to 64 letters, digits, Chinese characters, '_', '-', ':' or '.'"
        )
    return tag


def conversation_tags(*, session: Session, conversation_id: str) -> list[str]:
    return list(
        session.scalars(
            select(ConversationTag.tag)
            .where(ConversationTag.conversation_id == conversation_id)
            .order_by(ConversationTag.id)
        )
    )


def tag_conversation(
    *, session: Session, conversation_id: str, tag: str, staff_id: int, clock: Clock = utcnow
) -> str:
    """Put a tag on the conversation (once; tagging again changes nothing)."""
    _conversation(session, conversation_id)
    tag = _tag(tag)
    if tag in conversation_tags(session=session, conversation_id=conversation_id):
        return tag
    try:
        with session.begin_nested():
            session.add(
                ConversationTag(
                    conversation_id=conversation_id, tag=tag, staff_id=staff_id, created_at=clock()
                )
            )
    except IntegrityError:
        pass  # tagged meanwhile by someone else: the same result
    return tag


def untag_conversation(*, session: Session, conversation_id: str, tag: str) -> None:
    session.execute(
        delete(ConversationTag).where(
            ConversationTag.conversation_id == conversation_id,
            ConversationTag.tag == tag.strip().lower(),
        )
    )


def tag_customer(*, session: Session, conversation_id: str, tag: str, clock: Clock = utcnow) -> str:
    """Tag the conversation's customer with source ``agent`` (rule recomputes never remove
    it). A tag the customer already has, from any source, stays as it is."""
    conversation = _conversation(session, conversation_id)
    if conversation.customer_id is None:
        raise InvalidInput("an anonymous visitor has no customer profile to tag")
    tag = _tag(tag)
    exists = session.scalar(
        select(CustomerTag.id).where(
            CustomerTag.customer_id == conversation.customer_id, CustomerTag.tag == tag
        )
    )
    if exists is None:
        try:
            with session.begin_nested():
                session.add(
                    CustomerTag(
                        customer_id=conversation.customer_id,
                        tag=tag,
                        source=AGENT_SOURCE,
                        created_at=clock(),
                    )
                )
        except IntegrityError:
            pass
    return tag


def untag_customer(*, session: Session, conversation_id: str, tag: str) -> bool:
    """Remove a tag an agent put on the conversation's customer (the bot's rule tags are
    the rules' to change). False when there was no such agent tag."""
    conversation = _conversation(session, conversation_id)
    if conversation.customer_id is None:
        return False
    result = session.execute(
        delete(CustomerTag).where(
            CustomerTag.customer_id == conversation.customer_id,
            CustomerTag.tag == tag.strip().lower(),
            CustomerTag.source == AGENT_SOURCE,
        )
    )
    return bool(getattr(result, "rowcount", 0))


# --- satisfaction -------------------------------------------------------------------------


def ask_satisfaction(
    *,
    session: Session,
    conversation_id: str,
    agent_id: int,
    handoff_id: int | None,
    clock: Clock = utcnow,
) -> dict[str, Any]:
    """Put the satisfaction question (rating buttons 1–5) to the shopper of a conversation
    the agent just closed. The shopper's answer reopens the chat with the bot, whose
    gateway records it (bot.services.tickets.csat_answer). Returns the stored message."""
    conversation = _conversation(session, conversation_id)
    if conversation.state != "closed":
        raise InvalidInput("the satisfaction question is sent when the chat is closed")
    tickets.ask_csat(
        session=session,
        conversation_id=conversation_id,
        handoff_id=handoff_id,
        agent_id=agent_id,
        clock=clock,
    )
    zh, en = CSAT_QUESTION
    message = Message(
        uid=secrets.token_hex(16),
        conversation_id=conversation_id,
        role="bot",
        text=en if conversation.language == "en" else zh,
        buttons=[{"title": str(n), "payload": tickets.csat_payload(n)} for n in range(1, 6)],
        status="done",
        created_at=clock(),
    )
    session.add(message)
    session.flush()
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "buttons": message.buttons,
        "created_at": message.created_at.isoformat(),
    }
