"""Supervision services on SQLite and PostgreSQL: the live conversations' flags and their
order, every agent's figures for a day in the store's time zone (hand-built stays with known
answers), reassignment and a supervisor's take-over."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.errors import InvalidInput
from bot.models import Conversation, Customer, Message, Staff
from bot.models.crm import CustomerTag
from bot.models.handoff import AgentMessage, Handoff
from bot.services import conversations as conv
from bot.services import handoff, supervision
from bot.services.handoff import AgentUnavailable, HandoffConflict
from bot.settings import Settings

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)  # 14:00 in Shanghai
SETTINGS = Settings(secret_key="k", store_token_secret="s", environment="test")


def at(moment: datetime) -> Clock:
    return lambda: moment


def make_staff(
    session: Session,
    name: str,
    role: str = "agent",
    status: str | None = "online",
    capacity: int = 3,
) -> int:
    staff = Staff(
        email=f"{secrets.token_hex(4)}@kefu.test",
        name=name,
        role=role,
        password_hash="x",
        created_at=NOW,
        password_changed_at=NOW,
    )
    session.add(staff)
    session.flush()
    if status is not None:
        handoff.set_status(
            session=session,
            agent_id=staff.id,
            status=status,
            capacity=capacity,
            settings=SETTINGS,
            clock=at(NOW),
        )
    return staff.id


def conversation(session: Session, external_id: str | None = None, when: datetime = NOW) -> str:
    chat = conv.start_session(
        session=session, visitor_id=None, customer_external_id=external_id, clock=at(when)
    )
    return chat.conversation_id


def say(
    session: Session,
    cid: str,
    text: str = "你好",
    *,
    intent: str | None = "greet",
    confidence: float | None = 0.95,
    sentiment: float | None = 0.0,
    when: datetime = NOW,
    role: str = "shopper",
    staff_id: int | None = None,
) -> int:
    message = Message(
        uid=secrets.token_hex(16),
        conversation_id=cid,
        role=role,
        text=text,
        intent=intent if role == "shopper" else None,
        confidence=confidence if role == "shopper" else None,
        sentiment=sentiment if role == "shopper" else None,
        status="done",
        created_at=when,
    )
    session.add(message)
    session.flush()
    if staff_id is not None:
        session.add(AgentMessage(message_id=message.id, staff_id=staff_id))
    found = session.get(Conversation, cid)
    assert found is not None
    found.last_message_at = max(found.last_message_at, when)
    session.flush()
    return message.id


def live(session: Session) -> dict[str, supervision.LiveConversation]:
    rows = supervision.live_conversations(
        session=session, settings=SETTINGS, since=NOW - timedelta(hours=1), clock=at(NOW)
    )
    return {r.conversation_id: r for r in rows}


def test_flags_of_live_conversations(session: Session) -> None:
    low = conversation(session)
    for confidence in (0.95, 0.6, 0.99):
        say(session, low, confidence=confidence)

    old_low = conversation(session)  # the unsure turn is older than the last three
    for confidence in (0.5, 0.9, 0.95, 0.97):
        say(session, old_low, confidence=confidence)

    fallback = conversation(session)  # two misunderstandings, not in a row
    say(session, fallback, "asdf", intent="nlu_fallback", confidence=0.75)
    say(session, fallback, "hi", intent="greet", confidence=0.99)
    say(session, fallback, "讲个笑话", intent="out_of_scope", confidence=0.9)
    say(session, fallback, "ok", intent="affirm", confidence=0.99)
    say(session, fallback, "thanks", intent="thank", confidence=0.99)

    one_fallback = conversation(session)
    say(session, one_fallback, "asdf", intent="nlu_fallback", confidence=0.75)
    say(session, one_fallback, "hi", confidence=0.99)

    angry = conversation(session)
    say(session, angry, "太慢了，气死我了", sentiment=-0.6)
    mild = conversation(session)
    say(session, mild, "有点慢", sentiment=-0.2)  # above the negative threshold (-0.25)

    vip_member = conversation(session, "C00002")  # membership vip
    say(session, vip_member)
    tagged = conversation(session, "C00003")  # regular, but an agent tagged them vip
    customer = session.scalars(select(Customer).where(Customer.external_id == "C00003")).one()
    session.add(CustomerTag(customer_id=customer.id, tag="vip", source="agent", created_at=NOW))
    say(session, tagged)
    gold = conversation(session, "C00001")
    say(session, gold)

    stale = conversation(session, when=NOW - timedelta(hours=3))
    say(session, stale, sentiment=-0.9, when=NOW - timedelta(hours=3))
    with_agent = conversation(session)
    say(session, with_agent, sentiment=-0.9)
    agent = make_staff(session, "值班")
    handoff.claim(session=session, conversation_id=with_agent, agent_id=agent, clock=at(NOW))

    found = live(session)
    assert found[low].flags == ("low_confidence",) and found[low].min_confidence == 0.6
    assert found[old_low].flags == ()
    assert found[fallback].flags == ("repeated_fallback",) and found[fallback].fallbacks == 2
    assert found[one_fallback].flags == ("low_confidence",)  # 0.75 < 0.85
    assert found[one_fallback].fallbacks == 1
    assert found[angry].flags == ("negative",) and found[angry].min_sentiment == -0.6
    assert found[mild].flags == ()
    assert found[vip_member].flags == ("vip",) and found[vip_member].customer_name == "Emily Chen"
    assert found[tagged].vip and found[gold].flags == ()
    assert stale not in found and with_agent not in found  # too old; a person has it
    assert found[angry].last_message == "太慢了，气死我了"
    assert found[low].age_seconds == 0 and found[low].wait_seconds is None

    stricter = SETTINGS.model_copy(update={"supervision_low_confidence": 0.7})
    rows = supervision.live_conversations(
        session=session, settings=stricter, since=NOW - timedelta(hours=1), clock=at(NOW)
    )
    assert {r.conversation_id: r.flags for r in rows}[one_fallback] == ()


def test_queued_conversations_are_listed_with_their_wait(session: Session) -> None:
    make_staff(session, "在线")  # someone online: the request queues instead of a ticket
    cid = conversation(session, "C00002")
    say(session, cid, "转人工", intent="human_agent", confidence=0.99)
    handoff.request_human(
        session=session,
        conversation_id=cid,
        reason="requested",
        settings=SETTINGS,
        clock=at(NOW - timedelta(seconds=90)),
    )
    row = live(session)[cid]
    assert row.state == "queued" and row.wait_seconds == 90 and row.vip
    # Still waiting two hours later without a word: still on the board, at the top.
    later = NOW + timedelta(hours=2)
    rows = supervision.live_conversations(
        session=session, settings=SETTINGS, since=later - timedelta(hours=1), clock=at(later)
    )
    assert rows[0].conversation_id == cid and rows[0].wait_seconds == 2 * 3600 + 90


def test_sorting_by_flags_and_by_one_flag(session: Session) -> None:
    two = conversation(session, "C00002", when=NOW - timedelta(minutes=5))
    say(session, two, confidence=0.4, sentiment=-0.8, when=NOW - timedelta(minutes=5))
    one = conversation(session, when=NOW - timedelta(minutes=20))
    say(session, one, sentiment=-0.3, when=NOW - timedelta(minutes=2))
    none = conversation(session, when=NOW - timedelta(minutes=30))
    say(session, none, when=NOW - timedelta(minutes=1))
    rows = list(live(session).values())
    mine = {two, one, none}

    def order(by: str) -> list[str]:
        return [
            r.conversation_id for r in supervision.sort_live(rows, by) if r.conversation_id in mine
        ]

    assert order("flags") == [two, one, none]
    assert order("negative") == [two, one, none]  # the worst score first
    assert order("low_confidence")[0] == two
    assert order("vip")[0] == two
    assert order("age") == [none, one, two]
    assert order("idle") == [two, one, none]
    with pytest.raises(InvalidInput):
        supervision.sort_live(rows, "name")


def stay(
    session: Session,
    agent: int,
    assigned: datetime,
    *,
    reply_after: float | None = None,
    ended_after: float | None = None,
    outcome: str = "handed_back",
) -> str:
    """A conversation assigned to ``agent`` at ``assigned``, answered after ``reply_after``
    seconds, ended after ``ended_after`` seconds (else still assigned)."""
    cid = conversation(session, when=assigned - timedelta(minutes=1))
    say(session, cid, "转人工", when=assigned - timedelta(seconds=30))
    ended = assigned + timedelta(seconds=ended_after) if ended_after is not None else None
    session.add(
        Handoff(
            conversation_id=cid,
            reason="requested",
            state="ended" if ended else "assigned",
            vip=False,
            requested_at=assigned - timedelta(seconds=30),
            sort_at=assigned - timedelta(seconds=30),
            agent_id=agent,
            assigned_at=assigned,
            ended_at=ended,
            outcome=outcome if ended else None,
        )
    )
    if reply_after is not None:
        say(
            session,
            cid,
            "您好，我来看看",
            role="agent",
            staff_id=agent,
            when=assigned + timedelta(seconds=reply_after),
        )
    session.flush()
    return cid


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=timezone.utc)


def test_agent_stats_for_a_day_in_the_store_time_zone(session: Session) -> None:
    ana = make_staff(session, "Ana", capacity=4)
    ben = make_staff(session, "Ben", status=None)  # never set a status
    # 23:59:50 on the 19th in Shanghai: the day before.
    stay(session, ana, utc(19, 15, 59, 50), reply_after=20, ended_after=600)
    # 00:00:00 on the 20th in Shanghai: answered in 10 s.
    stay(session, ana, utc(19, 16), reply_after=10, ended_after=600)
    stay(session, ana, utc(20, 2), reply_after=50, ended_after=600)  # answered late
    stay(session, ana, utc(20, 3))  # still open, never answered: missed
    stay(session, ana, utc(20, 5, 59, 50))  # 10 s old: not settled yet
    # Reassigned after 10 s without an answer: not held long enough to count.
    stay(session, ana, utc(20, 4), ended_after=10, outcome="reassigned")
    # Only Ben answered this one (Ana's stay never ended): missed for Ana.
    helped = stay(session, ana, utc(20, 4, 30))
    say(session, helped, "我来帮忙", role="agent", staff_id=ben, when=utc(20, 4, 30, 5))
    # Ana's reply came after her stay had ended at 15 s: neither answered nor settled.
    late = stay(session, ana, utc(20, 5), ended_after=15, outcome="reassigned")
    say(session, late, "在吗", role="agent", staff_id=ana, when=utc(20, 5, 0, 20))

    def stats(**kwargs: Any) -> dict[int, supervision.AgentStats]:
        rows = supervision.agent_stats(
            session, clock=at(NOW), settings=SETTINGS, agent_ids=[ana, ben], **kwargs
        )
        return {r.staff_id: r for r in rows}

    today = stats()  # 14:00 on the 20th in Shanghai
    assert today == stats(day=date(2026, 11, 20), tz="Asia/Shanghai")
    a = today[ana]
    assert (a.status, a.capacity, a.load) == ("online", 4, 3)
    assert (a.assigned, a.answered) == (7, 2)
    assert a.first_response_median_seconds == 30 and a.first_response_mean_seconds == 30
    assert (a.within_target, a.settled, a.response_rate) == (1, 4, 0.25)
    b = today[ben]
    assert (b.status, b.capacity, b.load, b.assigned, b.response_rate) == (
        "offline",
        3,
        0,
        0,
        None,
    )
    assert [
        r.name
        for r in supervision.agent_stats(
            session, clock=at(NOW), settings=SETTINGS, agent_ids=[ben, ana]
        )
    ] == ["Ana", "Ben"]

    before = stats(day=date(2026, 11, 19))[ana]
    assert (before.assigned, before.answered, before.response_rate) == (1, 1, 1.0)
    assert before.first_response_median_seconds == 20
    # The same instants read as UTC days: the two stays around Shanghai's midnight are both
    # on the 19th.
    in_utc = stats(day=date(2026, 11, 19), tz="UTC")[ana]
    assert (in_utc.assigned, in_utc.first_response_median_seconds) == (2, 15)

    # Half past midnight in Shanghai is still the 19th in UTC, but "today" is the 20th.
    just_after_midnight = supervision.agent_stats(
        session, clock=at(utc(19, 16, 30)), settings=SETTINGS, agent_ids=[ana]
    )[0]
    assert just_after_midnight.assigned == 7

    window = stats(start=utc(20, 1), end=utc(20, 3, 0, 1))[ana]
    assert (window.assigned, window.settled, window.within_target) == (2, 2, 0)

    with pytest.raises(InvalidInput):
        stats(start=utc(20, 1))
    with pytest.raises(InvalidInput):
        stats(start=datetime(2026, 11, 20), end=datetime(2026, 11, 21))
    with pytest.raises(InvalidInput):
        stats(start=utc(20, 2), end=utc(20, 1))


def test_reassign_to_an_online_agent_with_room(session: Session) -> None:
    ana = make_staff(session, "Ana")
    ben = make_staff(session, "Ben", capacity=1)
    away = make_staff(session, "Cy", status="away")
    gone = make_staff(session, "Di", status="offline")
    cid = conversation(session, "C00002")
    say(session, cid, "转人工")
    handoff.claim(session=session, conversation_id=cid, agent_id=ana, clock=at(NOW))

    def move(to: int, when: datetime = NOW) -> handoff.Reassignment:
        return handoff.reassign(
            session=session, conversation_id=cid, to_agent_id=to, settings=SETTINGS, clock=at(when)
        )

    with pytest.raises(AgentUnavailable, match="Cy is away"):
        move(away)
    with pytest.raises(AgentUnavailable, match="Di is offline"):
        move(gone)
    with pytest.raises(InvalidInput, match="already Ana's"):
        move(ana)

    later = NOW + timedelta(seconds=40)
    moved = move(ben, later)
    assert moved.from_agent_id == ana and moved.assignment.agent_name == "Ben"
    assert handoff.owner(session=session, conversation_id=cid) == ben
    status = handoff.status(session=session, conversation_id=cid, settings=SETTINGS)
    assert status.to_dict() == {"state": "agent", "agent": {"name": "Ben"}}
    stays = session.scalars(
        select(Handoff).where(Handoff.conversation_id == cid).order_by(Handoff.id)
    ).all()
    assert [(h.agent_id, h.state, h.outcome) for h in stays] == [
        (ana, "ended", "reassigned"),
        (ben, "assigned", None),
    ]
    assert stays[1].assigned_at == later and stays[0].ended_at == later
    with pytest.raises(HandoffConflict):  # Ana no longer has it
        handoff.send_agent_message(
            session=session, conversation_id=cid, agent_id=ana, text="hi", clock=at(later)
        )
    figures = {
        r.staff_id: r
        for r in supervision.agent_stats(
            session, clock=at(later), settings=SETTINGS, agent_ids=[ana, ben]
        )
    }
    # Ana held it 40 s without answering: a miss for her; Ben's stay is still young.
    assert (figures[ana].load, figures[ana].settled, figures[ana].within_target) == (0, 1, 0)
    assert (figures[ben].load, figures[ben].assigned, figures[ben].settled) == (1, 1, 0)

    # Ben is full now (capacity 1): back to Ana is fine, a second one to Ben is refused.
    other = conversation(session)
    say(session, other, "转人工")
    handoff.claim(session=session, conversation_id=other, agent_id=ana, clock=at(later))
    with pytest.raises(AgentUnavailable, match=r"Ben is full \(1 of 1\)"):
        handoff.reassign(session=session, conversation_id=other, to_agent_id=ben, settings=SETTINGS)
    bot_chat = conversation(session)
    with pytest.raises(HandoffConflict, match="only a conversation an agent has"):
        handoff.reassign(
            session=session, conversation_id=bot_chat, to_agent_id=ana, settings=SETTINGS
        )


def test_a_supervisor_takes_over_and_watches(session: Session) -> None:
    boss = make_staff(session, "主管", role="supervisor", status=None)
    cid = conversation(session, "C00001")
    say(session, cid, "你们怎么回事", intent="complaint", confidence=0.91, sentiment=-0.7)
    assert cid in live(session)
    assignment = handoff.claim(session=session, conversation_id=cid, agent_id=boss, clock=at(NOW))
    assert assignment.agent_name == "主管"
    assert cid not in live(session)  # a person has it now
    held = supervision.assigned_conversations(session=session, clock=at(NOW + timedelta(seconds=5)))
    mine = [a for a in held if a.conversation_id == cid]
    assert mine and mine[0].agent_id == boss and mine[0].held_seconds == 5
    assert mine[0].customer_name == "张伟"
    handoff.send_agent_message(
        session=session, conversation_id=cid, agent_id=boss, text="我是主管", clock=at(NOW)
    )
    watched = supervision.watch(session=session, conversation_id=cid)
    assert watched.state == "agent" and watched.agent_name == "主管"
    shopper, agent = watched.lines[0], watched.lines[-1]
    assert (shopper.intent, shopper.confidence, shopper.sentiment) == ("complaint", 0.91, -0.7)
    assert (agent.role, agent.author, agent.text) == ("agent", "主管", "我是主管")
    stats = supervision.agent_stats(session, clock=at(NOW), settings=SETTINGS, agent_ids=[boss])
    assert (stats[0].role, stats[0].load, stats[0].answered) == ("supervisor", 1, 1)
