"""Customer 360: one customer's profile, computed from the tables every contact writes.

Nothing here is stored twice: identity, contact history, intents, open issues,
satisfaction, sentiment, value, scores, tags, orders, conversations and the outcome
timeline are read with a handful of queries, each one walking an existing index by
customer (``customer.external_id``, ``ix_conversation_customer`` then the per-conversation
indexes of message, ticket and csat, ``ix_order_customer_placed``,
``ix_service_request_customer_created``, ``customer_tag``'s unique key,
``ix_outcome_customer_created``, ``customer_rfm``'s key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, cast, func, select
from sqlalchemy.orm import Session

from bot.errors import NotFound
from bot.models import (
    Conversation,
    Customer,
    Message,
    Order,
    Outcome,
    ServiceRequest,
    Shipment,
)
from bot.models.crm import PURCHASED_ORDER_STATUSES, CustomerRfm, CustomerTag
from bot.models.handoff import Csat, Ticket
from bot.services.returns import OPEN_REQUEST

RECENT_INTENTS = 10
SENTIMENT_WINDOW = 10
LATEST_ORDERS = 10
LATEST_CONVERSATIONS = 10
TIMELINE = 50


@dataclass(frozen=True)
class Rfm:
    r: int
    f: int
    m: int
    computed_at: datetime


@dataclass(frozen=True)
class OpenIssue:
    kind: str  # return | exchange | ticket
    ref: str  # the service request's number, or the ticket's id
    status: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Satisfaction:
    average: float | None
    count: int


@dataclass(frozen=True)
class SentimentTrend:
    """Average sentiment of the latest scored shopper messages and of the ones before;
    ``change`` is recent minus previous (positive: getting happier)."""

    recent: float | None
    previous: float | None
    change: float | None


@dataclass(frozen=True)
class TagView:
    tag: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class OrderSummary:
    order_number: str
    status: str
    total_fen: int
    placed_at: datetime
    shipment_status: str | None
    carrier: str | None
    tracking_number: str | None
    estimated_at: datetime | None


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    state: str
    language: str
    started_at: datetime
    last_message_at: datetime
    last_intent: str | None


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    at: datetime
    detail: dict[str, Any]
    order_number: str | None


@dataclass(frozen=True)
class Profile:
    id: int
    external_id: str
    name: str
    language: str
    membership_level: str
    points: int
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    conversations: int
    preferred_language: str
    recent_intents: tuple[str, ...]
    open_issues: tuple[OpenIssue, ...]
    satisfaction: Satisfaction
    sentiment: SentimentTrend
    lifetime_value_fen: int
    rfm: Rfm | None
    tags: tuple[TagView, ...]
    latest_orders: tuple[OrderSummary, ...]
    latest_conversations: tuple[ConversationSummary, ...]
    timeline: tuple[TimelineEntry, ...]


def _mean(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _identity_query() -> Any:
    """The customer row with every single-valued derived field as a correlated subquery."""
    mine = Conversation.customer_id == Customer.id
    first_contact = select(func.min(Conversation.created_at)).where(mine).scalar_subquery()
    last_contact = select(func.max(Conversation.last_message_at)).where(mine).scalar_subquery()
    conversations = select(func.count(Conversation.id)).where(mine).scalar_subquery()
    # Most used conversation language; a tie goes to the more recently used one.
    top_language = (
        select(Conversation.language)
        .where(mine)
        .group_by(Conversation.language)
        .order_by(
            func.count().desc(),
            func.max(Conversation.last_message_at).desc(),
            Conversation.language,
        )
        .limit(1)
        .scalar_subquery()
    )
    value = (
        select(func.coalesce(func.sum(Order.total_fen), 0))
        .where(Order.customer_id == Customer.id, Order.status.in_(PURCHASED_ORDER_STATUSES))
        .scalar_subquery()
    )
    scored = and_(mine, Csat.conversation_id == Conversation.id, Csat.score.is_not(None))
    csat_avg = select(cast(func.avg(Csat.score), Float)).where(scored).scalar_subquery()
    csat_count = select(func.count(Csat.id)).where(scored).scalar_subquery()
    return select(
        Customer.id,
        Customer.external_id,
        Customer.name,
        Customer.language,
        Customer.membership_level,
        Customer.points,
        first_contact,
        last_contact,
        conversations,
        top_language,
        value,
        csat_avg,
        csat_count,
        CustomerRfm.r_score,
        CustomerRfm.f_score,
        CustomerRfm.m_score,
        CustomerRfm.computed_at,
    ).outerjoin(CustomerRfm, CustomerRfm.customer_id == Customer.id)


def customer_360(
    *, session: Session, customer_id: int | None = None, external_id: str | None = None
) -> Profile:
    """The profile of the customer with this id (or the store's ``external_id``: give
    exactly one). Raises NotFound for an unknown customer."""
    if (customer_id is None) == (external_id is None):
        raise ValueError("give exactly one of customer_id and external_id")
    query = _identity_query()
    query = query.where(
        Customer.id == customer_id
        if customer_id is not None
        else Customer.external_id == external_id
    )
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"no customer {customer_id if customer_id is not None else external_id}")
    (cid, ext, name, language, level, points, first, last, count, top, value) = row[:11]
    csat_avg, csat_count, r, f, m, rfm_at = row[11:]
    conversation_ids = select(Conversation.id).where(Conversation.customer_id == cid)
    shopper = and_(Message.conversation_id.in_(conversation_ids), Message.role == "shopper")

    intents = session.scalars(
        select(Message.intent)
        .where(shopper, Message.intent.is_not(None))
        .group_by(Message.intent)
        .order_by(func.max(Message.created_at).desc(), func.max(Message.id).desc())
        .limit(RECENT_INTENTS)
    ).all()

    ranked = (
        select(
            Message.sentiment,
            func.row_number()
            .over(order_by=(Message.created_at.desc(), Message.id.desc()))
            .label("n"),
        )
        .where(shopper, Message.sentiment.is_not(None))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(2 * SENTIMENT_WINDOW)
        .subquery()
    )
    recent, previous = session.execute(
        select(
            cast(func.avg(ranked.c.sentiment).filter(ranked.c.n <= SENTIMENT_WINDOW), Float),
            cast(func.avg(ranked.c.sentiment).filter(ranked.c.n > SENTIMENT_WINDOW), Float),
        )
    ).one()
    recent, previous = _mean(recent), _mean(previous)

    issues = [
        OpenIssue(kind, number, status, reason, at)
        for kind, number, status, reason, at in session.execute(
            select(
                ServiceRequest.kind,
                ServiceRequest.number,
                ServiceRequest.status,
                ServiceRequest.reason,
                ServiceRequest.created_at,
            ).where(ServiceRequest.customer_id == cid, ServiceRequest.status.in_(OPEN_REQUEST))
        )
    ]
    # By conversation, not ticket.customer_id: a ticket left anonymously belongs to the
    # customer once a store login merged its conversation.
    issues += [
        OpenIssue("ticket", str(tid), state, reason, at)
        for tid, state, reason, at in session.execute(
            select(Ticket.id, Ticket.state, Ticket.reason, Ticket.created_at)
            .join(Conversation, Conversation.id == Ticket.conversation_id)
            .where(Conversation.customer_id == cid, Ticket.state == "open")
        )
    ]
    issues.sort(key=lambda i: (i.created_at, i.ref), reverse=True)

    tags = tuple(
        TagView(*t)
        for t in session.execute(
            select(CustomerTag.tag, CustomerTag.source, CustomerTag.created_at)
            .where(CustomerTag.customer_id == cid)
            .order_by(CustomerTag.tag)
        )
    )

    orders = tuple(
        OrderSummary(*o)
        for o in session.execute(
            select(
                Order.order_number,
                Order.status,
                Order.total_fen,
                Order.placed_at,
                Shipment.status,
                Shipment.carrier,
                Shipment.tracking_number,
                Shipment.estimated_at,
            )
            .outerjoin(Shipment, Shipment.order_id == Order.id)
            .where(Order.customer_id == cid)
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(LATEST_ORDERS)
        )
    )

    last_intent = (
        select(Message.intent)
        .where(
            Message.conversation_id == Conversation.id,
            Message.role == "shopper",
            Message.intent.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    conversations = tuple(
        ConversationSummary(*c)
        for c in session.execute(
            select(
                Conversation.id,
                Conversation.state,
                Conversation.language,
                Conversation.created_at,
                Conversation.last_message_at,
                last_intent,
            )
            .where(Conversation.customer_id == cid)
            .order_by(Conversation.last_message_at.desc(), Conversation.id)
            .limit(LATEST_CONVERSATIONS)
        )
    )

    timeline = tuple(
        TimelineEntry(kind, at, detail or {}, number)
        for kind, at, detail, number in session.execute(
            select(Outcome.kind, Outcome.created_at, Outcome.detail, Order.order_number)
            .outerjoin(Order, Order.id == Outcome.order_id)
            .where(Outcome.customer_id == cid)
            .order_by(Outcome.created_at.desc(), Outcome.id.desc())
            .limit(TIMELINE)
        )
    )

    return Profile(
        id=cid,
        external_id=ext,
        name=name,
        language=language,
        membership_level=level,
        points=points,
        first_contact_at=first,
        last_contact_at=last,
        conversations=count,
        preferred_language=top or language,
        recent_intents=tuple(intents),  # type: ignore[arg-type]
        open_issues=tuple(issues),
        satisfaction=Satisfaction(_mean(csat_avg), csat_count),
        sentiment=SentimentTrend(
            recent,
            previous,
            None if recent is None or previous is None else round(recent - previous, 4),
        ),
        lifetime_value_fen=int(value),
        rfm=None if r is None else Rfm(r, f, m, rfm_at),
        tags=tags,
        latest_orders=orders,
        latest_conversations=conversations,
        timeline=timeline,
    )
