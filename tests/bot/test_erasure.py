"""Erasure of a customer (bot/privacy/erasure.py), on SQLite and PostgreSQL: every table that
held their data is searched for the text they wrote afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.orm import Session

from bot.errors import KefuError
from bot.models import Base, Conversation, Customer, Message, Order, Visitor
from bot.models.crm import CustomerTag
from bot.models.handoff import Csat, Handoff, Ticket
from bot.models.privacy import AuditEvent, Consent
from bot.models.service import Outcome
from bot.privacy import erasure
from bot.privacy.erasure import ConversationsLive, TrackerStoreUnavailable, erase_customer
from bot.privacy.export import export_customer
from bot.services import conversations as conv
from bot.services import staff as staff_service
from bot.services.conversations import Reply, TurnOutcome
from tests.conftest import FIXED_NOW, fixed_clock


class FakeTrackers:
    """Rasa's tracker store as a dict: sender → events."""

    def __init__(self, fail: bool = False) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.erased: list[str] = []
        self.fail = fail

    def export(self, senders: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return {s: list(self.events.get(s, [])) for s in senders}

    def erase(self, senders: Sequence[str]) -> int:
        if self.fail:
            raise TrackerStoreUnavailable("engine unreachable (erase)")
        self.erased.extend(senders)
        return sum(len(self.events.pop(s, [])) for s in senders)


def new_customer(session: Session, name: str) -> Customer:
    customer = Customer(
        external_id=f"ER{secrets.token_hex(4)}",
        name=name,
        phone="13800001111",
        email="someone@example.com",
        created_at=FIXED_NOW,
    )
    session.add(customer)
    session.flush()
    order = Order(
        order_number=f"E{secrets.token_hex(5)}",
        customer_id=customer.id,
        status="paid",
        total_fen=9900,
        phone=customer.phone or "",
        address=f"{name}的地址 上海市徐汇区漕溪北路1号",
        placed_at=FIXED_NOW - timedelta(days=3),
        note=f"请给{name}打电话",
    )
    session.add(order)
    session.flush()
    return customer


def chat(
    session: Session,
    customer: Customer,
    canary: str,
    *,
    close: bool = True,
    trackers: FakeTrackers | None = None,
    at: Any = None,
) -> str:
    """A conversation of ``customer`` with ``canary`` in every place a shopper's words can
    land: messages, entities, a ticket, a note, a satisfaction comment, an outcome."""
    clock = (lambda: at) if at is not None else fixed_clock
    opened = conv.start_session(
        session=session,
        visitor_id=None,
        customer_external_id=customer.external_id,
        clock=clock,
    )
    cid = opened.conversation_id
    inbound = conv.record_inbound(
        session=session,
        conversation_id=cid,
        client_msg_id=f"c-{secrets.token_hex(3)}",
        text=f"我叫{canary}，电话 13911112222，邮箱 {canary}@mail.test",
        clock=clock,
    )
    conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=clock,
        outcome=TurnOutcome(
            replies=[Reply(f"好的 {canary}，马上为您查询")],
            intent="order_status",
            confidence=0.9,
            entities=[{"entity": "name", "value": canary}],
            language="zh",
            latency_ms=80,
        ),
    )
    now = clock()
    agent = staff_service.create_staff(
        session=session,
        email=f"er-{secrets.token_hex(4)}@kefu.test",
        name="Agent",
        role="agent",
        password="correct horse 1",
    )
    handoff = Handoff(
        conversation_id=cid, reason="asked", state="ended", requested_at=now, sort_at=now
    )
    session.add(handoff)
    session.flush()
    session.add_all(
        [
            Ticket(
                conversation_id=cid,
                customer_id=customer.id,
                reason="callback",
                callback_phone="13911112222",
                note=f"{canary} wants a call",
                created_at=now,
                updated_at=now,
            ),
            Csat(
                conversation_id=cid, handoff_id=handoff.id, comment=f"{canary} 很满意", asked_at=now
            ),
            Outcome(
                kind="note",
                message_id=f"uid-{inbound.message.id}",
                conversation_id=cid,
                customer_id=customer.id,
                detail={"text": f"{canary} note"},
                created_at=now,
            ),
            Consent(
                customer_id=customer.id,
                purpose="marketing",
                granted=True,
                version="2026-12",
                source="widget",
                recorded_at=now,
            ),
            CustomerTag(customer_id=customer.id, tag=f"t-{secrets.token_hex(3)}", created_at=now),
        ]
    )
    session.flush()
    # Tables other parts add (agent notes; review labels and the search index), if present.
    tables = Base.metadata.tables
    if "agent_note" in tables:
        session.execute(
            tables["agent_note"]
            .insert()
            .values(conversation_id=cid, staff_id=agent.id, text=f"{canary} VIP", created_at=now)
        )
    if "turn_label" in tables:
        session.execute(
            tables["turn_label"]
            .insert()
            .values(
                message_id=inbound.message.id,
                conversation_id=cid,
                status="relabelled",
                intent="inform",
                entities=[{"entity": "name", "value": canary}],
                labelled_at=now,
            )
        )
    indexed = "message_search" in tables and session.scalar(
        select(tables["message_search"].c.message_id).where(
            tables["message_search"].c.message_id == inbound.message.id
        )
    )
    if "message_search" in tables and not indexed and session.get_bind().dialect.name == "sqlite":
        session.execute(
            tables["message_search"]
            .insert()
            .values(
                message_id=inbound.message.id, conversation_id=cid, created_at=now, terms=canary
            )
        )
    if close:
        session.execute(update(Conversation).where(Conversation.id == cid).values(state="closed"))
    session.flush()
    if trackers is not None:
        trackers.events[cid] = [{"event": "user", "text": f"我叫{canary}"}]
    return cid


def canary_hits(session: Session, canary: str) -> list[str]:
    """table.column for every text/JSON value, in every table of the database (reflected,
    SQLite's FTS tables included), that contains ``canary``."""
    connection = session.connection()
    hits: list[str] = []
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    if connection.dialect.name == "sqlite":
        names |= set(
            connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            .scalars()
            .all()
        )
    for name in sorted(names):
        columns = [c["name"] for c in inspector.get_columns(name)] if name in names else []
        for column in columns:
            quoted = connection.dialect.identifier_preparer.quote
            value = f"lower(CAST({quoted(column)} AS TEXT))"  # tsvector and FTS lower-case
            sql = f"SELECT COUNT(*) FROM {quoted(name)} WHERE {value} LIKE :needle"  # noqa: S608
            found = connection.execute(text(sql), {"needle": f"%{canary.lower()}%"}).scalar()
            if found:
                hits.append(f"{name}.{column}")
    return hits


def test_erasure_removes_the_customer_from_every_table(session: Session) -> None:
    trackers = FakeTrackers()
    customer = new_customer(session, "CanaryName")
    canary = f"KANARI{secrets.token_hex(4)}"
    first = chat(session, customer, canary, trackers=trackers)
    second = chat(session, customer, canary, trackers=trackers)
    other = new_customer(session, "Other")
    other_canary = f"OTHER{secrets.token_hex(4)}"
    kept = chat(session, other, other_canary, close=False, trackers=trackers)
    assert canary_hits(session, canary)  # the probe sees it before

    report = erase_customer(
        session=session, customer_id=customer.id, trackers=trackers, actor="system"
    )

    assert sorted(trackers.erased) == sorted([first, second])
    assert report.conversations == 2 and report.tracker_events == 2
    assert report.deleted["message"] == 4 and report.deleted["conversation"] == 2
    for table in ("ticket", "csat", "outcome", "consent", "customer_tag", "handoff"):
        assert report.deleted.get(table), table
    for table in ("agent_note", "turn_label"):
        assert table not in Base.metadata.tables or report.deleted.get(table), table
    assert canary_hits(session, canary) == []
    assert canary_hits(session, "CanaryName") == []
    assert canary_hits(session, "someone@example.com") != []  # the other customer's
    # The tombstone and the store's orders stay, without personal data.
    tombstone = session.get(Customer, customer.id)
    assert tombstone is not None and tombstone.name == "" and tombstone.phone is None
    assert tombstone.email is None
    orders = session.scalars(select(Order).where(Order.customer_id == customer.id)).all()
    assert len(orders) == 1 and orders[0].phone == "" and orders[0].address == ""
    assert orders[0].note is None and orders[0].total_fen == 9900
    # Nothing of the other customer went.
    assert session.get(Conversation, kept) is not None
    assert trackers.events[kept]
    assert canary_hits(session, other_canary)
    # The audit trail: counts, no data.
    (event,) = session.scalars(
        select(AuditEvent).where(
            AuditEvent.customer_id == customer.id, AuditEvent.action == "erasure"
        )
    ).all()
    assert event.detail == {
        "conversations": 2,
        "tracker_events": 2,
        "rows": sum(report.deleted.values()),
        "orders_kept": 1,
    }
    # The export after erasure has nothing left to show.
    document = export_customer(session=session, customer_id=customer.id, trackers=trackers)
    assert document["conversations"] == [] and canary not in str(document)
    assert set(document["records"]) <= {"audit_event"}


def test_erasure_refuses_while_a_conversation_is_live(session: Session) -> None:
    trackers = FakeTrackers()
    customer = new_customer(session, "Live")
    closed = chat(session, customer, "LIVE1", trackers=trackers)
    live = chat(session, customer, "LIVE2", close=False, trackers=trackers)
    with pytest.raises(ConversationsLive) as refused:
        erase_customer(
            session=session,
            customer_id=customer.id,
            trackers=trackers,
            actor="system",
            clock=fixed_clock,
        )
    assert refused.value.live == 1 and "close them first" in str(refused.value)
    assert trackers.erased == []
    assert session.get(Conversation, closed) is not None and session.get(Conversation, live)

    # A closed conversation whose shopper message still waits for its turn counts as live.
    session.execute(update(Conversation).where(Conversation.id == live).values(state="closed"))
    session.execute(
        update(Message)
        .where(Message.conversation_id == live, Message.role == "shopper")
        .values(status="pending")
    )
    with pytest.raises(ConversationsLive):
        erase_customer(session=session, customer_id=customer.id, trackers=trackers, actor="system")


def test_a_bot_chat_quiet_past_the_idle_time_has_ended(session: Session) -> None:
    """Nobody closes a chat the bot alone served: past KEFU_CONVERSATION_IDLE_MINUTES of
    quiet it has ended, and erasure goes ahead (an hour after FIXED_NOW, 30 minutes idle)."""
    trackers = FakeTrackers()
    customer = new_customer(session, "Quiet")
    quiet = chat(session, customer, "QUIET1", close=False, trackers=trackers)
    later = FIXED_NOW + timedelta(hours=1)
    report = erase_customer(
        session=session,
        customer_id=customer.id,
        trackers=trackers,
        actor="system",
        clock=lambda: later,
    )
    assert report.conversations == 1 and quiet in trackers.erased
    assert session.get(Conversation, quiet) is None


def test_nothing_changes_when_rasas_trackers_cannot_be_erased(session: Session) -> None:
    customer = new_customer(session, "Unreachable")
    cid = chat(session, customer, "UNREACH")
    nested = session.begin_nested()
    with pytest.raises(TrackerStoreUnavailable):
        erase_customer(
            session=session,
            customer_id=customer.id,
            trackers=FakeTrackers(fail=True),
            actor="system",
        )
    nested.rollback()
    assert session.get(Conversation, cid) is not None
    assert canary_hits(session, "UNREACH")
    assert isinstance(TrackerStoreUnavailable("x"), KefuError)


def test_a_shared_browser_keeps_its_visitor_for_the_other_shopper(session: Session) -> None:
    customer = new_customer(session, "Shared")
    opened = conv.start_session(
        session=session,
        visitor_id=None,
        customer_external_id=customer.external_id,
        clock=fixed_clock,
    )
    session.execute(
        update(Conversation).where(Conversation.id == opened.conversation_id).values(state="closed")
    )
    # Logged out: the same browser's anonymous conversation is not the customer's.
    anonymous = conv.start_session(session=session, visitor_id=opened.visitor_id, clock=fixed_clock)
    assert anonymous.conversation_id != opened.conversation_id
    report = erase_customer(
        session=session, customer_id=customer.id, trackers=FakeTrackers(), actor="system"
    )
    assert report.conversations == 1
    visitor = session.get(Visitor, opened.visitor_id)
    assert visitor is not None and visitor.customer_id is None
    assert report.unlinked == {"visitor": 1}
    assert session.get(Conversation, anonymous.conversation_id) is not None


def test_a_visitor_of_the_customer_alone_is_deleted(session: Session) -> None:
    customer = new_customer(session, "Alone")
    cid = chat(session, customer, "ALONE")
    visitor_id = session.get(Conversation, cid).visitor_id  # type: ignore[union-attr]
    erase_customer(
        session=session, customer_id=customer.id, trackers=FakeTrackers(), actor="system"
    )
    assert session.get(Visitor, visitor_id) is None
    # The erased visitor's browser comes back: a new visitor, nothing of the old one.
    again = conv.start_session(session=session, visitor_id=visitor_id, clock=fixed_clock)
    assert again.visitor_id != visitor_id and again.customer_id is None


def test_every_table_with_customer_data_is_covered() -> None:
    """New tables are picked up from the metadata: each table with a conversation_id or
    customer_id column (or a key to one of those rows) has a condition, except the ones
    kept on purpose."""
    from bot.models import Base

    conditions = erasure._owned(1, ["x"])
    for table in Base.metadata.sorted_tables:
        direct = "conversation_id" in table.c or "customer_id" in table.c
        if direct and table.name not in erasure.KEPT:
            assert table.name in conditions, table.name
    for name in ("agent_note", "agent_message", "turn_label", "message_search"):
        if name in Base.metadata.tables:
            assert name in conditions, name


def test_unknown_customer(session: Session) -> None:
    with pytest.raises(KeyError):
        erase_customer(session=session, customer_id=10**9, trackers=FakeTrackers(), actor="system")
