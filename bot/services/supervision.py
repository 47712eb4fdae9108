"""Supervision: the live bot conversations with their warning flags, and each agent's
status, load and response figures for a day.

Flags of an open conversation (state ``bot``, or ``queued`` — no person has it yet):

- ``low_confidence``: one of its last ``supervision_recent_turns`` (3) shopper turns was
  understood with an NLU confidence under ``supervision_low_confidence`` (0.85);
- ``repeated_fallback``: two or more shopper turns of the conversation were not understood
  (intent ``nlu_fallback``) or were out of scope (``out_of_scope``), in a row or not;
- ``negative``: one of the last ``supervision_recent_turns`` shopper turns scored at or under
  ``bot.sentiment.NEGATIVE_THRESHOLD`` (-0.25);
- ``vip``: the customer's membership level is one of ``vip_levels``, or they carry the tag
  ``vip``.

Agent figures (``agent_stats``) for a period — by default the current day from midnight in
the store's time zone (``store_timezone``, Asia/Shanghai) — count the *stays* that began in
it: a handoff row assigned to the agent, ``assigned_at`` inside the period (a claim, an
automatic assignment, a take-over or a reassignment each start one; a reassignment ends the
first agent's stay and starts the second's).

- **first response time** of a stay = the agent's first message in the conversation at or
  after ``assigned_at`` (and before the stay ended) − ``assigned_at``; the median and the
  mean are over the stays that have one;
- **30-second response rate** = stays answered within 30 s ÷ stays that are *settled*: those
  answered, plus those held 30 s or more without an answer (still open, or ended unanswered)
  — a missed one. A stay younger than 30 s without an answer, or one that ended unanswered
  within 30 s (reassigned or returned to the queue at once), is not counted yet / at all.
  ``None`` when nothing is settled;
- **load** = conversations the agent has now (stays not ended); **capacity** = the agent's
  own setting, else ``agent_capacity``.

A conversation returned to the queue when its agent goes offline loses that stay's agent
(``handoff.set_status``), so it does not count for them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.models import Conversation, Customer, Message, Staff
from bot.models.crm import CustomerTag
from bot.models.handoff import AgentMessage, AgentStatus, Handoff
from bot.sentiment import NEGATIVE_THRESHOLD
from bot.settings import Settings, get_settings

FALLBACK_INTENTS = ("nlu_fallback", "out_of_scope")
VIP_TAG = "vip"
RESPONSE_TARGET_SECONDS = 30
LIVE_STATES = ("bot", "queued")
FLAGS = ("low_confidence", "repeated_fallback", "negative", "vip")
SORTS = ("flags", "low_confidence", "repeated_fallback", "negative", "vip", "wait", "age", "idle")
AGENT_ROLES = ("agent", "supervisor")


@dataclass(frozen=True)
class LiveConversation:
    """An open conversation no person has yet, with what a supervisor watches for."""

    conversation_id: str
    state: str  # bot | queued
    language: str
    customer_id: str | None  # the store's id
    customer_name: str | None
    membership_level: str | None
    started_at: datetime
    last_message_at: datetime
    age_seconds: int  # since the conversation started
    idle_seconds: int  # since its last message
    wait_seconds: int | None  # queued: since the request for a person
    last_message: str | None  # the shopper's latest, at most 200 characters
    min_confidence: float | None  # over the recent shopper turns
    min_sentiment: float | None  # over the recent shopper turns
    fallbacks: int  # shopper turns not understood or out of scope, in the conversation
    vip: bool
    flags: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "state": self.state,
            "language": self.language,
            "customer": {
                "id": self.customer_id,
                "name": self.customer_name,
                "membership_level": self.membership_level,
            }
            if self.customer_id
            else None,
            "started_at": self.started_at.isoformat(),
            "last_message_at": self.last_message_at.isoformat(),
            "age_seconds": self.age_seconds,
            "idle_seconds": self.idle_seconds,
            "wait_seconds": self.wait_seconds,
            "last_message": self.last_message,
            "min_confidence": self.min_confidence,
            "min_sentiment": self.min_sentiment,
            "fallbacks": self.fallbacks,
            "vip": self.vip,
            "flags": list(self.flags),
        }


def live_conversations(
    *,
    session: Session,
    settings: Settings,
    since: datetime,
    states: tuple[str, ...] = LIVE_STATES,
    limit: int = 200,
    clock: Clock = utcnow,
) -> list[LiveConversation]:
    """Open conversations without a person (``states``) — the bot's active since ``since``,
    every one waiting in the queue however long it has been quiet — queued first, then
    latest first, at most ``limit``; each with its flags (see the module docstring)."""
    if not set(states) <= set(LIVE_STATES):
        raise InvalidInput(f"states must be among {', '.join(LIVE_STATES)}")
    now = clock()
    recent_turns = max(1, settings.supervision_recent_turns)
    rows = session.execute(
        select(Conversation, Customer)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(
            Conversation.state.in_(states),
            or_(Conversation.state == "queued", Conversation.last_message_at >= since),
        )
        .order_by(
            case((Conversation.state == "queued", 0), else_=1),
            Conversation.last_message_at.desc(),
            Conversation.id,
        )
        .limit(limit)
    ).all()
    if not rows:
        return []
    ids = [conversation.id for conversation, _ in rows]

    # The latest shopper turns of each conversation (rank 1 = the latest).
    ranked = (
        select(
            Message.conversation_id,
            Message.text,
            Message.confidence,
            Message.sentiment,
            func.row_number()
            .over(partition_by=Message.conversation_id, order_by=Message.id.desc())
            .label("rank"),
        )
        .where(Message.conversation_id.in_(ids), Message.role == "shopper")
        .subquery()
    )
    recent: dict[str, list[tuple[str, float | None, float | None]]] = {}
    for cid, text, confidence, sentiment, _rank in session.execute(
        select(ranked)
        .where(ranked.c.rank <= recent_turns)
        .order_by(ranked.c.conversation_id, ranked.c.rank)
    ):
        recent.setdefault(cid, []).append((text, confidence, sentiment))

    fallbacks = dict(
        session.execute(
            select(Message.conversation_id, func.count())
            .where(
                Message.conversation_id.in_(ids),
                Message.role == "shopper",
                Message.intent.in_(FALLBACK_INTENTS),
            )
            .group_by(Message.conversation_id)
        )
        .tuples()
        .all()
    )
    customer_ids = [customer.id for _, customer in rows if customer is not None]
    vip_tagged = (
        set(
            session.scalars(
                select(CustomerTag.customer_id).where(
                    CustomerTag.customer_id.in_(customer_ids), CustomerTag.tag == VIP_TAG
                )
            )
        )
        if customer_ids
        else set()
    )
    waiting_since = dict(
        session.execute(
            select(Handoff.conversation_id, func.min(Handoff.requested_at))
            .where(Handoff.conversation_id.in_(ids), Handoff.state == "queued")
            .group_by(Handoff.conversation_id)
        )
        .tuples()
        .all()
    )

    found = []
    for conversation, customer in rows:
        turns = recent.get(conversation.id, [])
        confidences = [c for _, c, _ in turns if c is not None]
        sentiments = [s for _, _, s in turns if s is not None]
        min_confidence = min(confidences) if confidences else None
        min_sentiment = min(sentiments) if sentiments else None
        count = int(fallbacks.get(conversation.id, 0))
        vip = customer is not None and (
            customer.membership_level in settings.vip_levels or customer.id in vip_tagged
        )
        flags = tuple(
            name
            for name, on in (
                (
                    "low_confidence",
                    min_confidence is not None
                    and min_confidence < settings.supervision_low_confidence,
                ),
                ("repeated_fallback", count >= 2),
                ("negative", min_sentiment is not None and min_sentiment <= NEGATIVE_THRESHOLD),
                ("vip", vip),
            )
            if on
        )
        requested = waiting_since.get(conversation.id)
        last_text = turns[0][0] if turns else None
        found.append(
            LiveConversation(
                conversation_id=conversation.id,
                state=conversation.state,
                language=conversation.language,
                customer_id=customer.external_id if customer else None,
                customer_name=customer.name if customer else None,
                membership_level=customer.membership_level if customer else None,
                started_at=conversation.created_at,
                last_message_at=conversation.last_message_at,
                age_seconds=_seconds(now - conversation.created_at),
                idle_seconds=_seconds(now - conversation.last_message_at),
                wait_seconds=_seconds(now - requested) if requested else None,
                last_message=last_text[:200] if last_text else None,
                min_confidence=min_confidence,
                min_sentiment=min_sentiment,
                fallbacks=count,
                vip=vip,
                flags=flags,
            )
        )
    return found


def sort_live(conversations: Iterable[LiveConversation], by: str) -> list[LiveConversation]:
    """Order for the supervisor: ``flags`` (most flags first, then the longest wait and the
    oldest), one flag (flagged first, worst first), or ``wait`` / ``age`` / ``idle``
    (longest first)."""
    if by not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")
    items = list(conversations)

    def key(c: LiveConversation) -> tuple[Any, ...]:
        wait, age = -(c.wait_seconds or 0), -c.age_seconds
        if by == "flags":
            return (-len(c.flags), wait, age)
        if by == "low_confidence":
            return ("low_confidence" not in c.flags, _or(c.min_confidence, 2.0), age)
        if by == "repeated_fallback":
            return ("repeated_fallback" not in c.flags, -c.fallbacks, age)
        if by == "negative":
            return ("negative" not in c.flags, _or(c.min_sentiment, 2.0), age)
        if by == "vip":
            return (not c.vip, -len(c.flags), age)
        if by == "wait":
            return (wait, age)
        if by == "age":
            return (age,)
        return (-c.idle_seconds, age)

    return sorted(items, key=key)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _seconds(span: timedelta) -> int:
    return max(0, int(span.total_seconds()))


# --- agents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentStats:
    """One agent's availability now and response figures for the period asked for."""

    staff_id: int
    name: str
    role: str
    status: str  # online | away | offline
    capacity: int
    load: int
    assigned: int  # stays that began in the period
    answered: int  # of those, with a first response
    first_response_median_seconds: float | None
    first_response_mean_seconds: float | None
    within_target: int  # answered within RESPONSE_TARGET_SECONDS
    settled: int  # answered, or held unanswered for RESPONSE_TARGET_SECONDS or more
    response_rate: float | None  # within_target / settled

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.staff_id,
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "capacity": self.capacity,
            "load": self.load,
            "assigned": self.assigned,
            "answered": self.answered,
            "first_response_median_seconds": self.first_response_median_seconds,
            "first_response_mean_seconds": self.first_response_mean_seconds,
            "within_30s": self.within_target,
            "settled": self.settled,
            "response_rate_30s": self.response_rate,
        }


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """Midnight to midnight of ``day`` in the time zone ``tz``, as aware datetimes (their
    UTC instants are what the database compares)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def first_agent_reply() -> Any:
    """The first response of a stay (a ``handoff`` row, correlated): the earliest message
    its agent wrote in the conversation from ``assigned_at`` until the stay ended. The one
    definition, used here and by the analytics dashboard."""
    return (
        select(func.min(Message.created_at))
        .join(AgentMessage, AgentMessage.message_id == Message.id)
        .where(
            Message.conversation_id == Handoff.conversation_id,
            AgentMessage.staff_id == Handoff.agent_id,
            Message.created_at >= Handoff.assigned_at,
            or_(Handoff.ended_at.is_(None), Message.created_at <= Handoff.ended_at),
        )
        .correlate(Handoff)
        .scalar_subquery()
    )


def agent_stats(
    session: Session,
    *,
    day: date | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    tz: str | None = None,
    clock: Clock = utcnow,
    settings: Settings | None = None,
    agent_ids: Iterable[int] | None = None,
    target_seconds: int = RESPONSE_TARGET_SECONDS,
) -> list[AgentStats]:
    """Every agent's status, capacity, load, first response time and response rate within
    ``target_seconds`` (30) for a period: ``start``–``end`` (aware datetimes), or the whole
    ``day`` in ``tz``, or — given neither — today in ``tz`` (default: the store's time zone)
    by ``clock``. Definitions are in the module docstring.

    Agents are active staff with the role agent or supervisor, and anyone else who has
    set a status; ``agent_ids`` narrows them. Ordered by name.
    """
    settings = settings or get_settings()
    zone_name = tz or settings.store_timezone
    now = clock()
    if (start is None) != (end is None):
        raise InvalidInput("give both start and end, or neither")
    if start is None or end is None:
        local_day = day or now.astimezone(ZoneInfo(zone_name)).date()
        start, end = day_bounds(local_day, zone_name)
    elif day is not None:
        raise InvalidInput("give a day or a start and end, not both")
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must carry a time zone")
    if end <= start:
        raise InvalidInput("end must be after start")

    query = (
        select(Staff, AgentStatus)
        .outerjoin(AgentStatus, AgentStatus.staff_id == Staff.id)
        .where(
            Staff.active.is_(True),
            or_(Staff.role.in_(AGENT_ROLES), AgentStatus.staff_id.is_not(None)),
        )
        .order_by(Staff.name, Staff.id)
    )
    if agent_ids is not None:
        query = query.where(Staff.id.in_(list(agent_ids)))
    people = session.execute(query).all()
    if not people:
        return []
    ids = [staff.id for staff, _ in people]

    loads = dict(
        session.execute(
            select(Handoff.agent_id, func.count())
            .where(Handoff.agent_id.in_(ids), Handoff.state == "assigned")
            .group_by(Handoff.agent_id)
        )
        .tuples()
        .all()
    )
    first_reply = first_agent_reply()
    stays: dict[int, list[tuple[datetime, datetime | None, datetime | None]]] = {}
    for agent_id, assigned_at, ended_at, replied_at in session.execute(
        select(Handoff.agent_id, Handoff.assigned_at, Handoff.ended_at, first_reply).where(
            Handoff.agent_id.in_(ids),
            and_(Handoff.assigned_at >= start, Handoff.assigned_at < end),
        )
    ):
        stays.setdefault(agent_id, []).append((assigned_at, ended_at, replied_at))

    found = []
    for staff, record in people:
        responses: list[float] = []
        within = settled = 0
        own = stays.get(staff.id, [])
        for assigned_at, ended_at, replied_at in own:
            if replied_at is not None:
                seconds = (replied_at - assigned_at).total_seconds()
                responses.append(seconds)
                settled += 1
                within += seconds <= target_seconds
            elif ((ended_at or now) - assigned_at).total_seconds() >= target_seconds:
                settled += 1  # missed
        found.append(
            AgentStats(
                staff_id=staff.id,
                name=staff.name,
                role=staff.role,
                status=record.status if record else "offline",
                capacity=record.capacity if record else settings.agent_capacity,
                load=int(loads.get(staff.id, 0)),
                assigned=len(own),
                answered=len(responses),
                first_response_median_seconds=statistics.median(responses) if responses else None,
                first_response_mean_seconds=statistics.fmean(responses) if responses else None,
                within_target=within,
                settled=settled,
                response_rate=within / settled if settled else None,
            )
        )
    return found


# --- watching one conversation ------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    role: str  # shopper | bot | agent | system
    text: str
    created_at: datetime
    author: str | None  # an agent message's agent
    intent: str | None
    confidence: float | None
    sentiment: float | None


@dataclass(frozen=True)
class Watched:
    conversation_id: str
    state: str
    language: str
    customer_name: str | None
    membership_level: str | None
    agent_name: str | None  # who has it, when an agent does
    lines: list[TranscriptLine]


def watch(*, session: Session, conversation_id: str, limit: int = 300) -> Watched:
    """A conversation's latest ``limit`` messages, oldest first, with each shopper turn's
    NLU result and sentiment: the supervisor's read-only view."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    customer = session.get(Customer, conversation.customer_id) if conversation.customer_id else None
    rows = session.execute(
        select(Message, Staff.name)
        .outerjoin(AgentMessage, AgentMessage.message_id == Message.id)
        .outerjoin(Staff, Staff.id == AgentMessage.staff_id)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())
        .limit(limit)
    ).all()
    owner = session.scalar(
        select(Staff.name)
        .join(Handoff, Handoff.agent_id == Staff.id)
        .where(Handoff.conversation_id == conversation_id, Handoff.state == "assigned")
        .order_by(Handoff.id.desc())
        .limit(1)
    )
    return Watched(
        conversation_id=conversation_id,
        state=conversation.state,
        language=conversation.language,
        customer_name=customer.name if customer else None,
        membership_level=customer.membership_level if customer else None,
        agent_name=owner,
        lines=[
            TranscriptLine(
                id=m.id,
                role=m.role,
                text=m.text,
                created_at=m.created_at,
                author=name,
                intent=m.intent,
                confidence=m.confidence,
                sentiment=m.sentiment,
            )
            for m, name in reversed(rows)
        ],
    )


@dataclass(frozen=True)
class AssignedConversation:
    """A conversation an agent has now: what a supervisor may reassign."""

    conversation_id: str
    agent_id: int
    agent_name: str
    customer_name: str | None
    assigned_at: datetime
    held_seconds: int


def assigned_conversations(
    *, session: Session, clock: Clock = utcnow
) -> list[AssignedConversation]:
    """Every conversation an agent has now, by agent and oldest assignment first."""
    now = clock()
    rows = session.execute(
        select(Handoff, Staff.name, Customer.name)
        .join(Staff, Staff.id == Handoff.agent_id)
        .join(Conversation, Conversation.id == Handoff.conversation_id)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(Handoff.state == "assigned")
        .order_by(Staff.name, Handoff.assigned_at, Handoff.id)
    ).all()
    return [
        AssignedConversation(
            conversation_id=h.conversation_id,
            agent_id=h.agent_id or 0,
            agent_name=agent_name,
            customer_name=customer_name,
            assigned_at=h.assigned_at or now,
            held_seconds=_seconds(now - (h.assigned_at or now)),
        )
        for h, agent_name, customer_name in rows
    ]
