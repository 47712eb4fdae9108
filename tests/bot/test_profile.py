"""Customer 360: every derived field of a known history, exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import NotFound
from bot.models import (
    Conversation,
    Customer,
    Order,
    OrderItem,
    Outcome,
    ServiceRequest,
    Shipment,
    Variant,
)
from bot.models.crm import CustomerRfm, CustomerTag
from bot.models.handoff import Csat, Ticket
from bot.services.conversations import (
    Reply,
    TurnOutcome,
    record_inbound,
    record_turn,
    start_session,
)
from bot.services.profile import (
    ConversationSummary,
    OpenIssue,
    Satisfaction,
    SentimentTrend,
    TagView,
    customer_360,
)

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=timezone.utc)


def _customer(session: Session, external_id: str, language: str = "zh") -> Customer:
    customer = Customer(
        external_id=external_id,
        name="测试 Tester",
        language=language,
        membership_level="gold",
        points=120,
        created_at=T0,
    )
    session.add(customer)
    session.flush()
    return customer


def _conversation(session: Session, external_id: str, language: str, at: datetime) -> str:
    chat = start_session(
        session=session,
        visitor_id=None,
        customer_external_id=external_id,
        language=language,
        clock=lambda: at,
    )
    return chat.conversation_id


def _say(
    session: Session, cid: str, k: int, at: datetime, intent: str | None, sentiment: float | None
) -> None:
    inbound = record_inbound(
        session=session,
        conversation_id=cid,
        client_msg_id=f"m{k}",
        text=f"message {k}",
        sentiment=sentiment,
        clock=lambda: at,
    )
    record_turn(
        session=session,
        message_id=inbound.message.id,
        outcome=TurnOutcome(replies=[Reply("ok")], intent=intent),
        clock=lambda: at,
    )


def _close(session: Session, cid: str) -> None:
    conversation = session.get(Conversation, cid)
    assert conversation is not None
    conversation.state = "closed"
    session.flush()


def _order(
    session: Session, customer: Customer, n: int, status: str, total: int, at: datetime
) -> Order:
    order = Order(
        order_number=f"T360-{n:04d}",
        customer_id=customer.id,
        status=status,
        total_fen=total,
        phone="13800000000",
        address="test",
        placed_at=at,
    )
    session.add(order)
    session.flush()
    return order


@pytest.fixture
def known(session: Session) -> Customer:
    """22 shopper messages over three conversations (zh, en, en), orders, issues, ratings,
    scores, tags and outcomes."""
    customer = _customer(session, "C-T360")
    ext = customer.external_id
    # Intents cycle through 13 names; sentiments: -1 (too old to count), -0.5, then +0.5.
    plan = [
        (0, "zh", T0),
        (8, "en", T0 + timedelta(days=1)),
        (16, "en", T0 + timedelta(days=2)),
    ]
    cids = []
    for start, language, began in plan:
        cid = _conversation(session, ext, language, began)
        cids.append(cid)
        end = start + 8 if start < 16 else 22
        for k in range(start, end):
            sentiment = -1.0 if k < 2 else -0.5 if k < 12 else 0.5
            _say(session, cid, k, began + timedelta(minutes=k), f"intent_{k % 13}", sentiment)
        if start < 16:
            _close(session, cid)
    # A last message without NLU result or sentiment counts for nothing but contact.
    last_at = T0 + timedelta(days=2, hours=1)
    _say(session, cids[2], 22, last_at, None, None)

    variant = session.scalars(select(Variant).order_by(Variant.id).limit(1)).one()
    orders = [
        _order(session, customer, 1, "paid", 10_000, T0 - timedelta(days=6)),
        _order(session, customer, 2, "shipped", 20_000, T0 - timedelta(days=5)),
        _order(session, customer, 3, "delivered", 30_000, T0 - timedelta(days=4)),
        _order(session, customer, 4, "cancelled", 99_900, T0 - timedelta(days=3)),
        _order(session, customer, 5, "refunded", 5_000, T0 - timedelta(days=2)),
        _order(session, customer, 6, "pending_payment", 7_000, T0 - timedelta(days=1)),
    ]
    session.add(
        Shipment(
            order_id=orders[1].id, carrier="SF", tracking_number="SF1", status="in_transit",
            promised_at=T0, estimated_at=T0 + timedelta(days=1),
        )
    )  # fmt: skip
    item = OrderItem(
        order_id=orders[2].id, variant_id=variant.id, quantity=1, unit_price_fen=30_000
    )
    session.add(item)
    session.flush()
    for number, status, at in (("RT-T360-1", "requested", T0), ("RT-T360-2", "refunded", T0)):
        session.add(
            ServiceRequest(
                number=number, kind="return", status=status, reason="size",
                customer_id=customer.id, order_id=orders[2].id, order_item_id=item.id,
                message_id=f"sr-{number}", created_at=at, updated_at=at,
            )
        )  # fmt: skip
    for cid, state, at in ((cids[0], "done", T0), (cids[1], "open", T0 + timedelta(days=1))):
        session.add(
            Ticket(
                conversation_id=cid, customer_id=customer.id, reason="after_hours",
                state=state, created_at=at, updated_at=at,
            )
        )  # fmt: skip
    for cid, score in ((cids[0], 4), (cids[1], 5), (cids[2], None)):
        session.add(Csat(conversation_id=cid, score=score, asked_at=T0))
    session.add(
        CustomerRfm(
            customer_id=customer.id, last_order_at=T0, frequency=3, monetary_fen=60_000,
            r_score=3, f_score=4, m_score=5, computed_at=T0,
        )
    )  # fmt: skip
    session.add(CustomerTag(customer_id=customer.id, tag="vip", source="agent", created_at=T0))
    session.add(
        CustomerTag(customer_id=customer.id, tag="complainer", source="bot_rule", created_at=T0)
    )
    for i, (kind, order) in enumerate(
        (("delay_accepted", orders[1]), ("complaint_recorded", None), ("csat", None))
    ):
        session.add(
            Outcome(
                kind=kind, message_id=f"t360-{i}", conversation_id=cids[0],
                customer_id=customer.id, order_id=order.id if order else None,
                detail={"i": i}, created_at=T0 + timedelta(hours=i),
            )
        )  # fmt: skip
    session.flush()
    return customer


def test_identity_and_contact_history(session: Session, known: Customer) -> None:
    p = customer_360(session=session, customer_id=known.id)
    assert (p.id, p.external_id, p.name, p.language, p.membership_level, p.points) == (
        known.id,
        "C-T360",
        "测试 Tester",
        "zh",
        "gold",
        120,
    )
    assert p.first_contact_at == T0
    assert p.last_contact_at == T0 + timedelta(days=2, hours=1)
    assert p.conversations == 3
    assert p.preferred_language == "en"  # two conversations in English, one in Chinese
    assert customer_360(session=session, external_id="C-T360") == p


def test_intents_sentiment_and_satisfaction(session: Session, known: Customer) -> None:
    p = customer_360(session=session, customer_id=known.id)
    # Newest first, each once: messages 21..13 are intents 8..0, message 12 is intent 12.
    assert p.recent_intents == tuple(f"intent_{i}" for i in (8, 7, 6, 5, 4, 3, 2, 1, 0, 12))
    assert p.sentiment == SentimentTrend(recent=0.5, previous=-0.5, change=1.0)
    assert p.satisfaction == Satisfaction(average=4.5, count=2)


def test_issues_value_scores_and_tags(session: Session, known: Customer) -> None:
    p = customer_360(session=session, customer_id=known.id)
    ticket = session.scalars(
        select(Ticket).where(Ticket.customer_id == known.id, Ticket.state == "open")
    ).one()
    assert p.open_issues == (
        OpenIssue("ticket", str(ticket.id), "open", "after_hours", T0 + timedelta(days=1)),
        OpenIssue("return", "RT-T360-1", "requested", "size", T0),
    )
    assert p.lifetime_value_fen == 60_000  # paid + shipped + delivered
    assert p.rfm is not None and (p.rfm.r, p.rfm.f, p.rfm.m) == (3, 4, 5)
    assert p.tags == (TagView("complainer", "bot_rule", T0), TagView("vip", "agent", T0))


def test_orders_conversations_and_timeline(session: Session, known: Customer) -> None:
    p = customer_360(session=session, customer_id=known.id)
    assert [o.order_number for o in p.latest_orders] == [f"T360-{n:04d}" for n in range(6, 0, -1)]
    shipped = p.latest_orders[4]
    assert (shipped.status, shipped.shipment_status, shipped.carrier) == (
        "shipped",
        "in_transit",
        "SF",
    )
    assert p.latest_orders[0].shipment_status is None
    cids = [c.id for c in p.latest_conversations]
    assert p.latest_conversations == (
        ConversationSummary(
            cids[0],
            "bot",
            "en",
            T0 + timedelta(days=2),
            T0 + timedelta(days=2, hours=1),
            "intent_8",
        ),
        ConversationSummary(
            cids[1],
            "closed",
            "en",
            T0 + timedelta(days=1),
            T0 + timedelta(days=1, minutes=15),
            "intent_2",
        ),
        ConversationSummary(cids[2], "closed", "zh", T0, T0 + timedelta(minutes=7), "intent_7"),
    )
    assert [(t.kind, t.at, t.detail, t.order_number) for t in p.timeline] == [
        ("csat", T0 + timedelta(hours=2), {"i": 2}, None),
        ("complaint_recorded", T0 + timedelta(hours=1), {"i": 1}, None),
        ("delay_accepted", T0, {"i": 0}, "T360-0002"),
    ]


def test_a_customer_who_never_wrote(session: Session) -> None:
    customer = _customer(session, "C-T360-NEW", language="en")
    p = customer_360(session=session, customer_id=customer.id)
    assert (p.first_contact_at, p.last_contact_at, p.conversations) == (None, None, 0)
    assert p.preferred_language == "en"
    assert p.recent_intents == () and p.open_issues == () and p.tags == ()
    assert p.sentiment == SentimentTrend(None, None, None)
    assert p.satisfaction == Satisfaction(None, 0)
    assert (p.lifetime_value_fen, p.rfm) == (0, None)
    assert p.latest_orders == () and p.latest_conversations == () and p.timeline == ()


def test_an_unknown_customer_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        customer_360(session=session, external_id="C-NOBODY")
    with pytest.raises(NotFound):
        customer_360(session=session, customer_id=-1)
