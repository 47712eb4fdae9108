"""Tickets: a message left for a callback when nobody can answer (outside service hours, or
no agent online), and the satisfaction question asked when an agent hands a chat back.

A ticket is opened the moment a person was wanted and nobody could answer — before the
shopper leaves a number — so nothing is dropped even if they never do. A callback number
typed in chat is an unverified hint that only agents see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.models import Conversation, Message
from bot.models.handoff import Csat, Ticket

# A mainland mobile number, or 7-15 digits with optional +, spaces and dashes.
PHONE = re.compile(r"(?<![\d+])(\+?\d[\d \-]{5,18}\d)(?!\d)")
MAX_NOTE = 2000
CSAT_PAYLOAD = re.compile(r'^/csat_score\{"csat_score": ?"([1-5])"\}$')
CSAT_SKIP = "/csat_skip"


def csat_payload(score: int) -> str:
    """The payload of a rating button (the same as utter_ask_csat's in domain.yml)."""
    return f'/csat_score{{"csat_score":"{score}"}}'


CSAT_COMMENT_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class TicketView:
    id: int
    conversation_id: str
    customer_id: int | None
    reason: str
    state: str
    callback_phone: str | None
    note: str | None
    created_at: datetime
    resolution: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "reason": self.reason,
            "state": self.state,
            "callback_phone": self.callback_phone,
            "note": self.note,
            "created_at": self.created_at.isoformat(),
            "resolution": self.resolution,
        }


def _view(t: Ticket) -> TicketView:
    return TicketView(
        t.id,
        t.conversation_id,
        t.customer_id,
        t.reason,
        t.state,
        t.callback_phone,
        t.note,
        t.created_at,
        t.resolution,
    )


def find_phone(text: str) -> str | None:
    """The callback number in a message, normalised to digits (and a leading +)."""
    match = PHONE.search(text)
    if match is None:
        return None
    raw = match.group(1)
    digits = re.sub(r"[^\d]", "", raw)
    if not 7 <= len(digits) <= 15:
        return None
    return ("+" if raw.startswith("+") else "") + digits


def open_ticket_of(*, session: Session, conversation_id: str) -> TicketView | None:
    """The conversation's open ticket, if any."""
    existing = session.scalars(
        select(Ticket)
        .where(Ticket.conversation_id == conversation_id, Ticket.state == "open")
        .order_by(Ticket.id.desc())
        .limit(1)
    ).first()
    return _view(existing) if existing else None


def open_ticket(
    *, session: Session, conversation_id: str, reason: str, clock: Clock = utcnow
) -> TicketView:
    """The conversation's open ticket, opened now if there is none."""
    existing = open_ticket_of(session=session, conversation_id=conversation_id)
    if existing is not None:
        return existing
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    now = clock()
    ticket = Ticket(
        conversation_id=conversation_id,
        customer_id=conversation.customer_id,
        reason=reason,
        state="open",
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    return _view(ticket)


def awaiting_callback(*, session: Session, conversation_id: str) -> TicketView | None:
    """The conversation's open ticket that has no callback number yet."""
    ticket = session.scalars(
        select(Ticket)
        .where(
            Ticket.conversation_id == conversation_id,
            Ticket.state == "open",
            Ticket.callback_phone.is_(None),
        )
        .order_by(Ticket.id.desc())
        .limit(1)
    ).first()
    return _view(ticket) if ticket else None


def answers_callback_offer(*, session: Session, conversation_id: str, message_id: int) -> bool:
    """Whether shopper message ``message_id`` answers the offer to leave a number: the
    conversation has a ticket waiting for one, and the offer is the last thing said to the
    shopper (so an order number typed later for the bot is not taken for a phone)."""
    ticket = awaiting_callback(session=session, conversation_id=conversation_id)
    if ticket is None:
        return False
    previous = session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.id < message_id,
            Message.role != "shopper",
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    return (
        previous is not None
        and previous.role == "system"
        and previous.created_at >= ticket.created_at
    )


def leave_callback(
    *,
    session: Session,
    conversation_id: str,
    phone: str,
    note: str | None = None,
    clock: Clock = utcnow,
) -> TicketView:
    """Add the shopper's callback number (and message) to the conversation's open ticket,
    opening one if the shopper fills the form without being asked."""
    normalised = find_phone(phone)
    if normalised is None:
        raise InvalidInput("a callback number has 7 to 15 digits")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters")
    view = open_ticket(
        session=session, conversation_id=conversation_id, reason="callback", clock=clock
    )
    ticket = session.get(Ticket, view.id)
    assert ticket is not None
    ticket.callback_phone = normalised
    if note and note.strip():
        ticket.note = f"{ticket.note}\n{note.strip()}" if ticket.note else note.strip()
    ticket.updated_at = clock()
    session.flush()
    return _view(ticket)


def list_tickets(
    *, session: Session, state: str | None = None, conversation_id: str | None = None
) -> list[TicketView]:
    """Tickets, oldest first (open ones are the callbacks still to make)."""
    query = select(Ticket).order_by(Ticket.created_at, Ticket.id).limit(500)
    if state is not None:
        query = query.where(Ticket.state == state)
    if conversation_id is not None:
        query = query.where(Ticket.conversation_id == conversation_id)
    return [_view(t) for t in session.scalars(query)]


def close_ticket(
    *,
    session: Session,
    ticket_id: int,
    agent_id: int,
    resolution: str | None = None,
    clock: Clock = utcnow,
) -> TicketView:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket")
    if ticket.state != "done":
        now = clock()
        ticket.state, ticket.closed_at, ticket.closed_by, ticket.updated_at = (
            "done",
            now,
            agent_id,
            now,
        )
        ticket.resolution = (resolution or "")[:500] or None
        session.flush()
    return _view(ticket)


# --- satisfaction ---------------------------------------------------------------------------


def ask_csat(
    *,
    session: Session,
    conversation_id: str,
    handoff_id: int | None,
    agent_id: int | None,
    clock: Clock = utcnow,
) -> int:
    csat = Csat(
        conversation_id=conversation_id,
        handoff_id=handoff_id,
        agent_id=agent_id,
        state="asked",
        asked_at=clock(),
    )
    session.add(csat)
    session.flush()
    return csat.id


def _latest_csat(session: Session, conversation_id: str) -> Csat | None:
    return session.scalars(
        select(Csat).where(Csat.conversation_id == conversation_id).order_by(Csat.id.desc())
    ).first()


def csat_answer(
    *,
    session: Session,
    conversation_id: str,
    text: str,
    payload: str | None,
    clock: Clock = utcnow,
) -> str | None:
    """Record a shopper message that answers the satisfaction question: a score button,
    "skip", or — right after a score — the optional comment. Returns what it was (score,
    skipped, comment) or None when the message is not an answer."""
    csat = _latest_csat(session, conversation_id)
    if csat is None or csat.state == "done":
        return None
    now = clock()
    match = CSAT_PAYLOAD.match(payload or "")
    if match and csat.state == "asked":
        csat.score, csat.state, csat.answered_at = int(match.group(1)), "scored", now
        return "score"
    if csat.state != "scored":
        return None
    if payload == CSAT_SKIP:
        csat.state = "done"
        return "skipped"
    if payload is None and text.strip() and now - (csat.answered_at or now) < CSAT_COMMENT_WINDOW:
        csat.comment, csat.state = text.strip()[:MAX_NOTE], "done"
        return "comment"
    csat.state = "done"  # the shopper moved on: no comment
    return None


def csat_of(*, session: Session, conversation_id: str) -> dict[str, Any] | None:
    csat = _latest_csat(session, conversation_id)
    if csat is None:
        return None
    return {
        "score": csat.score,
        "comment": csat.comment,
        "state": csat.state,
        "agent_id": csat.agent_id,
        "asked_at": csat.asked_at.isoformat(),
    }
