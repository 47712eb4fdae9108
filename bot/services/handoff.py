"""Human handoff: who owns a conversation, the queue, assignment and agents' availability.

A conversation moves bot → queued → agent → bot (hand-back) or closed, and back from queued
to bot when the shopper cancels. Every move is one conditional ``UPDATE … WHERE state = …``,
so two workers (or an agent and the shopper) racing for the same conversation cannot both
win, and a bot reply still in flight is dropped by ``conversations.record_turn``'s own
``WHERE state = 'bot'``. Only the gateway calls these functions.

The queue is ordered by ``Handoff.sort_at``: the time of the request, moved earlier by
``vip_head_start_seconds`` for VIP customers — VIPs first, yet a long wait still wins.
Outside service hours, or with no agent online, a request becomes a ticket instead
(bot.services.tickets): nothing is dropped.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, KefuError, NotFound
from bot.models import Conversation, Customer, Message, Staff
from bot.models.handoff import AGENT_STATUSES, DISPOSITIONS, AgentMessage, AgentStatus, Handoff
from bot.services import tickets
from bot.services.conversations import MessageView, history
from bot.settings import Settings

# Intents that mean "something is wrong with my order": a VIP with one gets a person.
PROBLEM_INTENTS = frozenset(
    {
        "shipping_delay",
        "cancel_order",
        "modify_order",
        "return_refund",
        "exchange",
        "payment_issue",
        "complaint",
    }
)
RECENT_HANDLED = 20  # handling times the wait estimate averages
MAX_AGENT_MESSAGE = 2000


class HandoffConflict(KefuError):
    """The conversation is not in a state that allows this (someone else got there first)."""

    code = "conflict"


class NotAnAgent(KefuError):
    code = "forbidden"


class AgentUnavailable(HandoffConflict):
    """The agent a conversation should go to is not online or has no room."""


@dataclass(frozen=True)
class HandoffStatus:
    """What the shopper's widget shows: who answers and, while waiting, the place in line."""

    conversation_id: str
    state: str  # bot | queued | agent | closed | offline (bot, with a ticket to complete)
    position: int | None = None
    eta_seconds: int | None = None
    agent_name: str | None = None
    ticket_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"state": self.state}
        if self.state == "queued":
            data.update(position=self.position, eta_seconds=self.eta_seconds)
        elif self.state == "agent":
            data["agent"] = {"name": self.agent_name}
        elif self.state == "offline":
            data["ticket_id"] = self.ticket_id
        return data


@dataclass(frozen=True)
class Requested:
    """The result of asking for a person: ``kind`` is queued, ticket or unchanged."""

    kind: str
    conversation_id: str
    handoff_id: int | None = None
    ticket_id: int | None = None


@dataclass(frozen=True)
class Assignment:
    conversation_id: str
    handoff_id: int
    agent_id: int
    agent_name: str


@dataclass(frozen=True)
class QueueEntry:
    conversation_id: str
    handoff_id: int
    position: int
    reason: str
    vip: bool
    customer_name: str | None
    membership_level: str | None
    language: str
    requested_at: datetime
    waited_seconds: int
    last_message: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "handoff_id": self.handoff_id,
            "position": self.position,
            "reason": self.reason,
            "vip": self.vip,
            "customer": {"name": self.customer_name, "membership_level": self.membership_level}
            if self.customer_name
            else None,
            "language": self.language,
            "requested_at": self.requested_at.isoformat(),
            "waited_seconds": self.waited_seconds,
            "last_message": self.last_message,
        }


@dataclass(frozen=True)
class AgentView:
    staff_id: int
    name: str
    status: str
    capacity: int
    load: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.staff_id,
            "name": self.name,
            "status": self.status,
            "capacity": self.capacity,
            "load": self.load,
        }


def _rowcount(result: Any) -> int:
    return cast("CursorResult[Any]", result).rowcount


# --- service hours and availability -------------------------------------------------------


def _parse_hours(spec: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in spec.split("-"))
    except ValueError as exc:
        raise InvalidInput(f"service hours must be HH:MM-HH:MM, not {spec!r}") from exc
    return start, end


def in_service_hours(settings: Settings, now: datetime) -> bool:
    """Whether ``now`` is inside the service hours, in the store's time zone."""
    start, end = _parse_hours(settings.service_hours)
    local = now.astimezone(ZoneInfo(settings.store_timezone)).time().replace(tzinfo=None)
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # past midnight


def online_agents(session: Session) -> int:
    return session.scalar(select(func.count()).where(AgentStatus.status == "online")) or 0


def can_answer(session: Session, settings: Settings, now: datetime) -> bool:
    """Someone can answer now: inside service hours with at least one agent online."""
    return in_service_hours(settings, now) and online_agents(session) > 0


# --- requests, the queue and assignment ---------------------------------------------------


def turn_trigger(
    *,
    session: Session,
    message_id: int,
    intent: str | None,
    requested: str | None,
    strong_negative: bool,
    settings: Settings,
) -> str | None:
    """The reason this turn should bring in a person, if any.

    ``requested`` is the bot's own ``{"kefu": {"handoff": reason}}`` (the shopper asked, a
    complaint, the second misunderstanding…). The gateway adds what it sees itself: a
    complaint in strongly negative words, two misunderstandings in a row, and a VIP customer
    with a problem.
    """
    if requested:
        return requested
    if intent == "complaint" and strong_negative:
        return "angry_complaint"
    message = session.get(Message, message_id)
    if message is None:
        return None
    if intent == "nlu_fallback":
        previous = session.scalar(
            select(Message.intent)
            .where(
                Message.conversation_id == message.conversation_id,
                Message.role == "shopper",
                Message.id < message.id,
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
        if previous == "nlu_fallback":
            return "fallback"
    if intent in PROBLEM_INTENTS:
        level = session.scalar(
            select(Customer.membership_level)
            .join(Conversation, Conversation.customer_id == Customer.id)
            .where(Conversation.id == message.conversation_id)
        )
        if level in settings.vip_levels:
            return "vip"
    return None


def request_human(
    *,
    session: Session,
    conversation_id: str,
    reason: str,
    settings: Settings,
    clock: Clock = utcnow,
) -> Requested:
    """Ask for a person: queue the conversation, or — when nobody can answer — open a
    ticket for a callback. Unchanged if a person already has it or it is waiting."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    now = clock()
    if conversation.state != "bot":
        return Requested("unchanged", conversation_id)
    if not can_answer(session, settings, now):
        existing = tickets.open_ticket_of(session=session, conversation_id=conversation_id)
        if existing is not None and reason != "requested":
            # Already offered: say it again only when the shopper asks again, not on every
            # failed turn of an outage.
            return Requested("unchanged", conversation_id, ticket_id=existing.id)
        ticket = tickets.open_ticket(
            session=session, conversation_id=conversation_id, reason=reason, clock=clock
        )
        session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(needs_human=True, flag_reason=conversation.flag_reason or f"handoff:{reason}")
        )
        return Requested("ticket", conversation_id, ticket_id=ticket.id)
    moved = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state == "bot")
        .values(state="queued", needs_human=True)
    )
    if not _rowcount(moved):
        return Requested("unchanged", conversation_id)
    level = (
        session.scalar(
            select(Customer.membership_level).where(Customer.id == conversation.customer_id)
        )
        if conversation.customer_id
        else None
    )
    vip = level in settings.vip_levels
    handoff = Handoff(
        conversation_id=conversation_id,
        reason=reason,
        state="queued",
        vip=vip,
        requested_at=now,
        sort_at=now - timedelta(seconds=settings.vip_head_start_seconds) if vip else now,
    )
    session.add(handoff)
    session.flush()
    return Requested("queued", conversation_id, handoff_id=handoff.id)


def _live_handoff(session: Session, conversation_id: str) -> Handoff | None:
    return session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.state != "ended")
        .order_by(Handoff.id.desc())
        .limit(1)
    ).first()


def queue(*, session: Session, clock: Clock = utcnow) -> list[QueueEntry]:
    """Conversations waiting for an agent, first to be served first."""
    now = clock()
    rows = session.execute(
        select(Handoff, Conversation, Customer)
        .join(Conversation, Conversation.id == Handoff.conversation_id)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(Handoff.state == "queued")
        .order_by(Handoff.sort_at, Handoff.id)
    ).all()
    entries = []
    for position, (handoff, conversation, customer) in enumerate(rows, start=1):
        last = session.scalar(
            select(Message.text)
            .where(Message.conversation_id == conversation.id, Message.role == "shopper")
            .order_by(Message.id.desc())
            .limit(1)
        )
        entries.append(
            QueueEntry(
                conversation_id=conversation.id,
                handoff_id=handoff.id,
                position=position,
                reason=handoff.reason,
                vip=handoff.vip,
                customer_name=customer.name if customer else None,
                membership_level=customer.membership_level if customer else None,
                language=conversation.language,
                requested_at=handoff.requested_at,
                waited_seconds=max(0, int((now - handoff.requested_at).total_seconds())),
                last_message=last[:200] if last else None,
            )
        )
    return entries


def average_handling_seconds(*, session: Session, settings: Settings) -> float:
    """Mean time an agent spent on each of the last few conversations they finished."""
    rows = session.execute(
        select(Handoff.assigned_at, Handoff.ended_at)
        .where(
            Handoff.ended_at.is_not(None),
            Handoff.assigned_at.is_not(None),
            Handoff.outcome != "reassigned",  # half a stay, not a handling time
        )
        .order_by(Handoff.ended_at.desc())
        .limit(RECENT_HANDLED)
    ).all()
    spans = [(end - start).total_seconds() for start, end in rows if end and start]
    return sum(spans) / len(spans) if spans else float(settings.handoff_default_handle_seconds)


def eta_seconds(*, session: Session, position: int, settings: Settings) -> int:
    """Estimated wait for the ``position``-th in line: as many rounds of the recent average
    handling time as the online agents' capacity needs to reach them."""
    capacity = (
        session.scalar(
            select(func.coalesce(func.sum(AgentStatus.capacity), 0)).where(
                AgentStatus.status == "online"
            )
        )
        or 0
    )
    rounds = math.ceil(position / max(1, int(capacity)))
    return int(rounds * average_handling_seconds(session=session, settings=settings))


def status(
    *, session: Session, conversation_id: str, settings: Settings, clock: Clock = utcnow
) -> HandoffStatus:
    """The conversation's handoff state as the shopper sees it."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    if conversation.state == "queued":
        handoff = _live_handoff(session, conversation_id)
        position = 1
        if handoff is not None:
            position += (
                session.scalar(
                    select(func.count()).where(
                        Handoff.state == "queued",
                        (Handoff.sort_at < handoff.sort_at)
                        | ((Handoff.sort_at == handoff.sort_at) & (Handoff.id < handoff.id)),
                    )
                )
                or 0
            )
        return HandoffStatus(
            conversation_id,
            "queued",
            position=position,
            eta_seconds=eta_seconds(session=session, position=position, settings=settings),
        )
    if conversation.state == "agent":
        handoff = _live_handoff(session, conversation_id)
        staff = session.get(Staff, handoff.agent_id) if handoff and handoff.agent_id else None
        return HandoffStatus(conversation_id, "agent", agent_name=staff.name if staff else None)
    if conversation.state == "bot":
        ticket = tickets.awaiting_callback(session=session, conversation_id=conversation_id)
        if ticket is not None:
            return HandoffStatus(conversation_id, "offline", ticket_id=ticket.id)
    return HandoffStatus(conversation_id, conversation.state)


def _load(session: Session, agent_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).where(Handoff.agent_id == agent_id, Handoff.state == "assigned")
        )
        or 0
    )


def _assign(session: Session, handoff: Handoff, staff: Staff, now: datetime) -> Assignment | None:
    moved = session.execute(
        update(Conversation)
        .where(Conversation.id == handoff.conversation_id, Conversation.state == "queued")
        .values(state="agent")
    )
    if not _rowcount(moved):
        return None
    taken = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff.id, Handoff.state == "queued")
        .values(state="assigned", agent_id=staff.id, assigned_at=now)
    )
    if not _rowcount(taken):
        raise HandoffConflict("the conversation was taken meanwhile")
    return Assignment(handoff.conversation_id, handoff.id, staff.id, staff.name)


def auto_assign(*, session: Session, clock: Clock = utcnow) -> list[Assignment]:
    """Give waiting conversations, first in line first, to the least-loaded online agent
    with room, until nobody waits or nobody has room."""
    now = clock()
    done: list[Assignment] = []
    waiting = list(
        session.scalars(
            select(Handoff).where(Handoff.state == "queued").order_by(Handoff.sort_at, Handoff.id)
        )
    )
    if not waiting:
        return done
    agents = session.execute(
        select(AgentStatus, Staff)
        .join(Staff, Staff.id == AgentStatus.staff_id)
        .where(AgentStatus.status == "online", Staff.active.is_(True))
    ).all()
    loads = {status.staff_id: _load(session, status.staff_id) for status, _ in agents}
    for handoff in waiting:
        room = [
            (loads[s.staff_id], s.staff_id, staff)
            for s, staff in agents
            if loads[s.staff_id] < s.capacity
        ]
        if not room:
            break
        _, staff_id, staff = min(room, key=lambda r: (r[0], r[1]))
        assignment = _assign(session, handoff, staff, now)
        if assignment is not None:
            loads[staff_id] += 1
            done.append(assignment)
    return done


def _agent(session: Session, agent_id: int) -> Staff:
    staff = session.get(Staff, agent_id)
    if staff is None or not staff.active:
        raise NotAnAgent("no such agent")
    return staff


def claim(
    *, session: Session, conversation_id: str, agent_id: int, clock: Clock = utcnow
) -> Assignment:
    """An agent takes a conversation: one waiting in the queue, or one the bot is serving
    (a takeover: the bot falls silent at once, a reply in flight is dropped)."""
    staff = _agent(session, agent_id)
    now = clock()
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    if conversation.state == "queued":
        handoff = _live_handoff(session, conversation_id)
        if handoff is not None and handoff.state == "queued":
            assignment = _assign(session, handoff, staff, now)
            if assignment is not None:
                return assignment
        raise HandoffConflict("the conversation was taken meanwhile")
    if conversation.state == "bot":
        moved = session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.state == "bot")
            .values(state="agent", needs_human=True, flag_reason="handoff:takeover")
        )
        if _rowcount(moved):
            handoff = Handoff(
                conversation_id=conversation_id,
                reason="takeover",
                state="assigned",
                vip=False,
                requested_at=now,
                sort_at=now,
                agent_id=staff.id,
                assigned_at=now,
            )
            session.add(handoff)
            session.flush()
            return Assignment(conversation_id, handoff.id, staff.id, staff.name)
    raise HandoffConflict(f"the conversation is {conversation.state}, not claimable")


@dataclass(frozen=True)
class Reassignment:
    """A conversation moved from one agent to another: the new stay and who had it."""

    assignment: Assignment
    from_agent_id: int


def reassign(
    *,
    session: Session,
    conversation_id: str,
    to_agent_id: int,
    settings: Settings,
    clock: Clock = utcnow,
) -> Reassignment:
    """Move a conversation an agent has to another agent, who must be online with room
    (their capacity not reached). The first agent's stay ends (outcome ``reassigned``) and
    a new one starts for the second, so each agent's response figures count their own
    stay; the request's reason, VIP mark and place in line carry over."""
    target = _agent(session, to_agent_id)
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    handoff = _live_handoff(session, conversation_id)
    if conversation.state != "agent" or handoff is None or handoff.state != "assigned":
        raise HandoffConflict("only a conversation an agent has can be reassigned")
    if handoff.agent_id == target.id:
        raise InvalidInput(f"the conversation is already {target.name}'s")
    record = session.get(AgentStatus, target.id)
    if record is None or record.status != "online":
        raise AgentUnavailable(f"{target.name} is {record.status if record else 'offline'}")
    load = _load(session, target.id)
    if load >= record.capacity:
        raise AgentUnavailable(f"{target.name} is full ({load} of {record.capacity})")
    from_agent = handoff.agent_id
    assert from_agent is not None
    now = clock()
    ended = session.execute(
        update(Handoff)
        .where(
            Handoff.id == handoff.id, Handoff.state == "assigned", Handoff.agent_id == from_agent
        )
        .values(state="ended", outcome="reassigned", ended_at=now)
    )
    if not _rowcount(ended):
        raise HandoffConflict("the conversation changed meanwhile")
    moved = Handoff(
        conversation_id=conversation_id,
        reason=handoff.reason,
        state="assigned",
        vip=handoff.vip,
        requested_at=handoff.requested_at,
        sort_at=handoff.sort_at,
        agent_id=target.id,
        assigned_at=now,
    )
    session.add(moved)
    session.flush()
    return Reassignment(Assignment(conversation_id, moved.id, target.id, target.name), from_agent)


def _owned(session: Session, conversation_id: str, agent_id: int) -> Handoff:
    handoff = _live_handoff(session, conversation_id)
    if handoff is None or handoff.state != "assigned" or handoff.agent_id != agent_id:
        raise HandoffConflict("this conversation is not yours")
    return handoff


def send_agent_message(
    *, session: Session, conversation_id: str, agent_id: int, text: str, clock: Clock = utcnow
) -> MessageView:
    """Store an agent's message in a conversation the agent owns."""
    text = text.strip()
    if not text or len(text) > MAX_AGENT_MESSAGE:
        raise InvalidInput(f"a message has 1 to {MAX_AGENT_MESSAGE} characters")
    staff = _agent(session, agent_id)
    _owned(session, conversation_id, agent_id)
    now = clock()
    # The state check and the insert share a transaction: a hand-back that lands first
    # makes this fail rather than post into a bot conversation.
    touched = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state == "agent")
        .values(last_message_at=now)
    )
    if not _rowcount(touched):
        raise HandoffConflict("the conversation is no longer with an agent")
    message = Message(
        uid=_new_uid(),
        conversation_id=conversation_id,
        role="agent",
        text=text,
        status="done",
        created_at=now,
    )
    session.add(message)
    session.flush()
    session.add(AgentMessage(message_id=message.id, staff_id=staff.id))
    return _message_view(message, author=staff.name)


def hand_back(
    *, session: Session, conversation_id: str, agent_id: int, clock: Clock = utcnow
) -> Handoff:
    """The agent returns the conversation to the bot (which then asks for satisfaction)."""
    handoff = _owned(session, conversation_id, agent_id)
    now = clock()
    moved = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state == "agent")
        .values(state="bot", needs_human=False, last_message_at=now)
    )
    if not _rowcount(moved):
        raise HandoffConflict("the conversation is no longer with an agent")
    handoff.state, handoff.outcome, handoff.ended_at = "ended", "handed_back", now
    session.flush()
    return handoff


def close(
    *,
    session: Session,
    conversation_id: str,
    agent_id: int,
    disposition: str,
    clock: Clock = utcnow,
) -> Handoff:
    """End the conversation with a disposition: one the agent owns, or one still waiting."""
    if disposition not in DISPOSITIONS:
        raise InvalidInput(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    staff = _agent(session, agent_id)
    handoff = _live_handoff(session, conversation_id)
    if handoff is None or (handoff.state == "assigned" and handoff.agent_id != agent_id):
        raise HandoffConflict("this conversation is not yours")
    now = clock()
    moved = session.execute(
        update(Conversation)
        .where(
            Conversation.id == conversation_id,
            Conversation.state == ("agent" if handoff.state == "assigned" else "queued"),
        )
        .values(state="closed", needs_human=False, last_message_at=now)
    )
    if not _rowcount(moved):
        raise HandoffConflict("the conversation changed meanwhile")
    handoff.state, handoff.outcome, handoff.ended_at = "ended", "closed", now
    handoff.disposition = disposition
    handoff.agent_id = handoff.agent_id or staff.id
    handoff.assigned_at = handoff.assigned_at or now
    session.flush()
    return handoff


def cancel(*, session: Session, conversation_id: str, clock: Clock = utcnow) -> bool:
    """The shopper stops waiting and goes back to the bot. False if not waiting."""
    now = clock()
    moved = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state == "queued")
        .values(state="bot", needs_human=False, last_message_at=now)
    )
    if not _rowcount(moved):
        return False
    session.execute(
        update(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.state == "queued")
        .values(state="ended", outcome="cancelled", ended_at=now)
    )
    return True


def reopen(*, session: Session, conversation_id: str) -> bool:
    """A shopper wrote into a closed conversation: the bot serves it again."""
    moved = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state == "closed")
        .values(state="bot")
    )
    return bool(_rowcount(moved))


def owner(*, session: Session, conversation_id: str) -> int | None:
    """The agent who owns the conversation now, if any."""
    handoff = _live_handoff(session, conversation_id)
    return handoff.agent_id if handoff is not None and handoff.state == "assigned" else None


# --- agents -------------------------------------------------------------------------------


def agent_view(*, session: Session, agent_id: int, settings: Settings) -> AgentView:
    staff = _agent(session, agent_id)
    record = session.get(AgentStatus, agent_id)
    return AgentView(
        staff.id,
        staff.name,
        record.status if record else "offline",
        record.capacity if record else settings.agent_capacity,
        _load(session, agent_id),
    )


def set_status(
    *,
    session: Session,
    agent_id: int,
    status: str,
    settings: Settings,
    capacity: int | None = None,
    clock: Clock = utcnow,
) -> list[str]:
    """Set an agent's availability; going offline returns the agent's conversations to the
    front of the queue (their original place). Returns those conversations' ids."""
    if status not in AGENT_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(AGENT_STATUSES)}")
    if capacity is not None and not 0 <= capacity <= 50:
        raise InvalidInput("capacity must be between 0 and 50")
    _agent(session, agent_id)
    now = clock()
    record = session.get(AgentStatus, agent_id)
    if record is None:
        record = AgentStatus(
            staff_id=agent_id, status=status, capacity=settings.agent_capacity, updated_at=now
        )
        session.add(record)
    record.status, record.updated_at = status, now
    if capacity is not None:
        record.capacity = capacity
    session.flush()
    if status != "offline":
        return []
    returned: list[str] = []
    for handoff in session.scalars(
        select(Handoff).where(Handoff.agent_id == agent_id, Handoff.state == "assigned")
    ):
        moved = session.execute(
            update(Conversation)
            .where(Conversation.id == handoff.conversation_id, Conversation.state == "agent")
            .values(state="queued")
        )
        if _rowcount(moved):
            handoff.state, handoff.agent_id, handoff.assigned_at = "queued", None, None
            returned.append(handoff.conversation_id)
    session.flush()
    return returned


def agent_conversations(*, session: Session, agent_id: int) -> list[str]:
    """Ids of the conversations the agent owns now, oldest assignment first."""
    return list(
        session.scalars(
            select(Handoff.conversation_id)
            .where(Handoff.agent_id == agent_id, Handoff.state == "assigned")
            .order_by(Handoff.assigned_at)
        )
    )


def live_conversations(
    *, session: Session, states: tuple[str, ...], since: datetime, limit: int = 100
) -> list[dict[str, Any]]:
    """Conversations active since ``since`` in these states, latest first: what agents
    watch to take over from the bot (flagged ones first in the console's eyes)."""
    rows = session.execute(
        select(Conversation, Customer)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(Conversation.state.in_(states), Conversation.last_message_at >= since)
        .order_by(Conversation.last_message_at.desc())
        .limit(limit)
    ).all()
    found = []
    for conversation, customer in rows:
        last = session.scalar(
            select(Message.text)
            .where(Message.conversation_id == conversation.id, Message.role == "shopper")
            .order_by(Message.id.desc())
            .limit(1)
        )
        found.append(
            {
                "conversation_id": conversation.id,
                "state": conversation.state,
                "language": conversation.language,
                "needs_human": conversation.needs_human,
                "flag_reason": conversation.flag_reason,
                "last_message_at": conversation.last_message_at.isoformat(),
                "last_message": last[:200] if last else None,
                "customer": {"name": customer.name, "membership_level": customer.membership_level}
                if customer
                else None,
            }
        )
    return found


def conversation_detail(
    *, session: Session, conversation_id: str, settings: Settings, clock: Clock = utcnow
) -> dict[str, Any]:
    """What an agent sees of a conversation: the shopper, the whole transcript (the bot's
    part too), the handoff and any tickets."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    customer = session.get(Customer, conversation.customer_id) if conversation.customer_id else None
    handoff = _live_handoff(session, conversation_id)
    return {
        "conversation_id": conversation_id,
        "state": conversation.state,
        "language": conversation.language,
        "flag_reason": conversation.flag_reason,
        "customer": {
            "id": customer.external_id,
            "name": customer.name,
            "membership_level": customer.membership_level,
        }
        if customer
        else None,
        "handoff": {
            "id": handoff.id,
            "reason": handoff.reason,
            "state": handoff.state,
            "vip": handoff.vip,
            "agent_id": handoff.agent_id,
            "requested_at": handoff.requested_at.isoformat(),
        }
        if handoff
        else None,
        "status": status(
            session=session, conversation_id=conversation_id, settings=settings, clock=clock
        ).to_dict(),
        "messages": [
            m.to_dict() for m in history(session=session, conversation_id=conversation_id)
        ],
        "tickets": [
            t.to_dict()
            for t in tickets.list_tickets(session=session, conversation_id=conversation_id)
        ],
    }


# --- messages the gateway itself writes ---------------------------------------------------


def _new_uid() -> str:
    return secrets.token_hex(16)


def _message_view(message: Message, author: str | None = None) -> MessageView:
    return MessageView(
        id=message.id,
        role=message.role,
        text=message.text,
        created_at=message.created_at,
        buttons=message.buttons,
        author=author,
    )


def add_system_message(
    *, session: Session, conversation_id: str, text: str, clock: Clock = utcnow
) -> MessageView:
    """A gateway notice in the transcript (waiting, an agent joined, back to the bot)."""
    message = Message(
        uid=_new_uid(),
        conversation_id=conversation_id,
        role="system",
        text=text,
        status="done",
        created_at=clock(),
    )
    session.add(message)
    session.flush()
    return _message_view(message)


def record_bot_replies(
    *,
    session: Session,
    conversation_id: str,
    replies: list[tuple[str, list[dict[str, Any]] | None]],
    clock: Clock = utcnow,
) -> list[MessageView]:
    """Store bot replies that answer no shopper message (the hand-back turn), under the same
    ``WHERE state = 'bot'`` guard as every bot reply."""
    now = clock()
    owned = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state == "bot")
        .values(last_message_at=now)
    )
    if not _rowcount(owned):
        return []
    stored = []
    for text, buttons in replies:
        message = Message(
            uid=_new_uid(),
            conversation_id=conversation_id,
            role="bot",
            text=text,
            buttons=buttons or None,
            status="done",
            created_at=now,
        )
        session.add(message)
        stored.append(message)
    session.flush()
    return [_message_view(m) for m in stored]
