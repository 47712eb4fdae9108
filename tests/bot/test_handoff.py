"""Handoff services on SQLite and PostgreSQL: every state change, the queue order, assignment,
service hours with an injected clock, tickets and satisfaction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Conversation, Customer, Message, Staff
from bot.models.handoff import Handoff
from bot.services import conversations as conv
from bot.services import handoff, tickets
from bot.services.conversations import Reply, TurnOutcome
from bot.services.handoff import HandoffConflict
from bot.settings import Settings

# 14:00 in Shanghai: inside the default 09:00-21:00.
OPEN = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)
SETTINGS = Settings(secret_key="k", store_token_secret="s", environment="test")


def at(moment: datetime):  # type: ignore[no-untyped-def]
    return lambda: moment


def make_agent(session: Session, name: str, status: str = "online", capacity: int = 3) -> int:
    staff = Staff(
        email=f"{name.lower()}-{id(session)}@kefu.test",
        name=name,
        role="agent",
        password_hash="x",
        created_at=OPEN,
        password_changed_at=OPEN,
    )
    session.add(staff)
    session.flush()
    handoff.set_status(
        session=session,
        agent_id=staff.id,
        status=status,
        capacity=capacity,
        settings=SETTINGS,
        clock=at(OPEN),
    )
    return staff.id


def conversation(session: Session, external_id: str | None = None) -> str:
    chat = conv.start_session(
        session=session, visitor_id=None, customer_external_id=external_id, clock=at(OPEN)
    )
    return chat.conversation_id


def state(session: Session, conversation_id: str) -> str:
    session.expire_all()
    found = session.get(Conversation, conversation_id)
    assert found is not None
    return found.state


def request(session: Session, cid: str, when: datetime = OPEN, reason: str = "requested"):  # type: ignore[no-untyped-def]
    return handoff.request_human(
        session=session, conversation_id=cid, reason=reason, settings=SETTINGS, clock=at(when)
    )


@pytest.mark.parametrize(
    ("local", "inside"),
    [("08:59", False), ("09:00", True), ("20:59", True), ("21:00", False), ("03:00", False)],
)
def test_service_hours_in_the_store_time_zone(local: str, inside: bool) -> None:
    hour, minute = map(int, local.split(":"))
    # Shanghai is UTC+8.
    moment = datetime(2026, 11, 20, hour, minute, tzinfo=timezone(timedelta(hours=8)))
    assert handoff.in_service_hours(SETTINGS, moment) is inside
    overnight = SETTINGS.model_copy(update={"service_hours": "20:00-02:00"})
    assert handoff.in_service_hours(overnight, moment) is (local in ("21:00", "20:59"))


def test_request_queues_then_is_unchanged(session: Session) -> None:
    make_agent(session, "Ann")
    cid = conversation(session, "C00001")
    first = request(session, cid)
    assert first.kind == "queued" and state(session, cid) == "queued"
    assert request(session, cid).kind == "unchanged"
    status = handoff.status(session=session, conversation_id=cid, settings=SETTINGS)
    assert status.to_dict()["state"] == "queued" and status.position == 1
    assert status.eta_seconds == SETTINGS.handoff_default_handle_seconds


def test_outside_service_hours_a_ticket_is_opened_and_nothing_dropped(session: Session) -> None:
    make_agent(session, "Ann")
    cid = conversation(session, "C00003")
    night = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)  # 22:30 in Shanghai
    result = request(session, cid, when=night)
    assert result.kind == "ticket" and state(session, cid) == "bot"
    found = session.get(Conversation, cid)
    assert found is not None and found.needs_human
    status = handoff.status(session=session, conversation_id=cid, settings=SETTINGS)
    assert status.to_dict() == {"state": "offline", "ticket_id": result.ticket_id}
    ticket = tickets.leave_callback(
        session=session, conversation_id=cid, phone="138 0013 8000", note="请回电"
    )
    assert ticket.id == result.ticket_id and ticket.callback_phone == "13800138000"
    listed = tickets.list_tickets(session=session, state="open")
    assert any(t.id == ticket.id and t.note == "请回电" for t in listed)
    assert handoff.status(session=session, conversation_id=cid, settings=SETTINGS).state == "bot"
    tickets.close_ticket(session=session, ticket_id=ticket.id, agent_id=make_agent(session, "B"))
    assert all(t.id != ticket.id for t in tickets.list_tickets(session=session, state="open"))


def test_in_hours_with_nobody_online_is_a_ticket_too(session: Session) -> None:
    make_agent(session, "Ann", status="away")
    cid = conversation(session)
    assert request(session, cid).kind == "ticket"


def test_vip_first_but_a_long_wait_still_wins(session: Session) -> None:
    make_agent(session, "Ann")
    early = conversation(session, "C00003")  # regular, asked 10 minutes before
    regular = conversation(session, "C00004")  # silver
    vip = conversation(session, "C00002")  # vip
    request(session, early, when=OPEN - timedelta(minutes=10))
    request(session, regular, when=OPEN)
    request(session, vip, when=OPEN + timedelta(seconds=60))
    order = [e.conversation_id for e in handoff.queue(session=session, clock=at(OPEN))]
    mine = [c for c in order if c in (early, regular, vip)]
    assert mine == [early, vip, regular]
    status = handoff.status(session=session, conversation_id=regular, settings=SETTINGS)
    assert status.position == order.index(regular) + 1


def test_auto_assign_to_the_least_loaded_agent_with_room(session: Session) -> None:
    ann = make_agent(session, "Ann", capacity=1)
    bob = make_agent(session, "Bob", capacity=2)
    cids = [conversation(session) for _ in range(4)]
    for i, cid in enumerate(cids):
        request(session, cid, when=OPEN + timedelta(seconds=i))
    done = handoff.auto_assign(session=session, clock=at(OPEN))
    assert [(a.conversation_id, a.agent_id) for a in done][:3] == [
        (cids[0], ann),
        (cids[1], bob),
        (cids[2], bob),
    ]
    assert state(session, cids[3]) == "queued"  # nobody has room
    assert handoff.owner(session=session, conversation_id=cids[0]) == ann


def test_claim_is_first_come_and_takeover_silences_the_bot(session: Session) -> None:
    ann = make_agent(session, "Ann")
    bob = make_agent(session, "Bob")
    cid = conversation(session)
    request(session, cid)
    handoff.claim(session=session, conversation_id=cid, agent_id=ann)
    with pytest.raises(HandoffConflict):
        handoff.claim(session=session, conversation_id=cid, agent_id=bob)
    # A takeover of a conversation the bot is serving, with a reply in flight.
    other = conversation(session)
    inbound = conv.record_inbound(
        session=session, conversation_id=other, client_msg_id="m", text="hi"
    )
    handoff.claim(session=session, conversation_id=other, agent_id=bob)
    assert state(session, other) == "agent"
    late = conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        outcome=TurnOutcome(replies=[Reply(text="bot reply")]),
    )
    assert late == []
    roles = session.scalars(select(Message.role).where(Message.conversation_id == other)).all()
    assert "bot" not in roles


def test_agent_messages_hand_back_and_satisfaction(session: Session) -> None:
    ann = make_agent(session, "Ann")
    bob = make_agent(session, "Bob")
    cid = conversation(session, "C00001")
    request(session, cid)
    handoff.claim(session=session, conversation_id=cid, agent_id=ann)
    with pytest.raises(HandoffConflict):
        handoff.send_agent_message(session=session, conversation_id=cid, agent_id=bob, text="hi")
    sent = handoff.send_agent_message(
        session=session, conversation_id=cid, agent_id=ann, text="您好，我是Ann"
    )
    assert sent.to_dict()["author"] == "Ann" and sent.role == "agent"
    history = conv.history(session=session, conversation_id=cid)
    assert [m.author for m in history if m.role == "agent"] == ["Ann"]
    ended = handoff.hand_back(session=session, conversation_id=cid, agent_id=ann, clock=at(OPEN))
    assert ended.outcome == "handed_back" and state(session, cid) == "bot"
    with pytest.raises(HandoffConflict):
        handoff.send_agent_message(session=session, conversation_id=cid, agent_id=ann, text="x")
    tickets.ask_csat(session=session, conversation_id=cid, handoff_id=ended.id, agent_id=ann)
    answer = tickets.csat_answer(
        session=session, conversation_id=cid, text="4", payload='/csat_score{"csat_score":"4"}'
    )
    assert answer == "score"
    assert tickets.csat_answer(
        session=session, conversation_id=cid, text="很耐心", payload=None
    ) == ("comment")
    assert tickets.csat_of(session=session, conversation_id=cid) == {
        "score": 4,
        "comment": "很耐心",
        "state": "done",
        "agent_id": ann,
        "asked_at": tickets.csat_of(session=session, conversation_id=cid)["asked_at"],  # type: ignore[index]
    }
    # Once answered, messages are the bot's again.
    assert (
        tickets.csat_answer(session=session, conversation_id=cid, text="hi", payload=None) is None
    )


def test_close_with_a_disposition_and_cancel(session: Session) -> None:
    ann = make_agent(session, "Ann")
    cid = conversation(session)
    request(session, cid)
    handoff.claim(session=session, conversation_id=cid, agent_id=ann)
    with pytest.raises(Exception, match="disposition"):
        handoff.close(session=session, conversation_id=cid, agent_id=ann, disposition="meh")
    closed = handoff.close(
        session=session, conversation_id=cid, agent_id=ann, disposition="resolved"
    )
    assert closed.disposition == "resolved" and state(session, cid) == "closed"
    assert handoff.reopen(session=session, conversation_id=cid) and state(session, cid) == "bot"

    waiting = conversation(session)
    request(session, waiting)
    assert handoff.cancel(session=session, conversation_id=waiting)
    assert state(session, waiting) == "bot"
    assert not handoff.cancel(session=session, conversation_id=waiting)
    row = session.scalars(select(Handoff).where(Handoff.conversation_id == waiting)).one()
    assert row.outcome == "cancelled"


def test_going_offline_returns_conversations_to_the_front(session: Session) -> None:
    ann = make_agent(session, "Ann")
    first = conversation(session)
    request(session, first, when=OPEN - timedelta(minutes=5))
    handoff.claim(session=session, conversation_id=first, agent_id=ann)
    later = conversation(session)
    request(session, later, when=OPEN)
    returned = handoff.set_status(
        session=session, agent_id=ann, status="offline", settings=SETTINGS
    )
    assert returned == [first] and state(session, first) == "queued"
    order = [e.conversation_id for e in handoff.queue(session=session)]
    assert order.index(first) < order.index(later)


def test_wait_estimate_from_recent_handling_times(session: Session) -> None:
    ann = make_agent(session, "Ann", capacity=2)
    for minutes in (2, 4):
        cid = conversation(session)
        request(session, cid)
        handoff.claim(session=session, conversation_id=cid, agent_id=ann, clock=at(OPEN))
        handoff.hand_back(
            session=session,
            conversation_id=cid,
            agent_id=ann,
            clock=at(OPEN + timedelta(minutes=minutes)),
        )
    average = handoff.average_handling_seconds(session=session, settings=SETTINGS)
    assert average > 0
    # Two seats online: the first two in line wait one round, the third two.
    assert handoff.eta_seconds(session=session, position=2, settings=SETTINGS) == int(average)
    assert handoff.eta_seconds(session=session, position=3, settings=SETTINGS) == int(2 * average)


def test_turn_triggers(session: Session) -> None:
    cid = conversation(session, "C00002")  # a VIP
    vip = session.scalars(select(Customer).where(Customer.external_id == "C00002")).one()
    assert vip.membership_level in SETTINGS.vip_levels

    def message(text: str, intent: str | None) -> int:
        inbound = conv.record_inbound(
            session=session, conversation_id=cid, client_msg_id=text, text=text
        )
        found = session.get(Message, inbound.message.id)
        assert found is not None
        found.intent = intent
        session.flush()
        return found.id

    def trigger(mid: int, intent: str | None, requested: str | None = None, angry: bool = False):  # type: ignore[no-untyped-def]
        return handoff.turn_trigger(
            session=session,
            message_id=mid,
            intent=intent,
            requested=requested,
            strong_negative=angry,
            settings=SETTINGS,
        )

    assert trigger(message("转人工", "human_agent"), "human_agent", "requested") == "requested"
    assert trigger(message("气死我了", "complaint"), "complaint", angry=True) == "angry_complaint"
    assert trigger(message("asdf", "nlu_fallback"), "nlu_fallback") is None
    assert trigger(message("qwer", "nlu_fallback"), "nlu_fallback") == "fallback"
    assert trigger(message("我的快递晚了", "shipping_delay"), "shipping_delay") == "vip"
    assert trigger(message("你好", "greet"), "greet") is None
    regular = conversation(session, "C00003")
    inbound = conv.record_inbound(
        session=session, conversation_id=regular, client_msg_id="d", text="晚了"
    )
    assert trigger(inbound.message.id, "shipping_delay") is None


def test_find_phone() -> None:
    assert tickets.find_phone("我的电话是13800138000，请回电") == "13800138000"
    assert tickets.find_phone("call +44 20 7946 0958 please") == "+442079460958"
    assert tickets.find_phone("订单 12") is None


def test_an_outage_at_night_offers_the_ticket_once(session: Session) -> None:
    cid = conversation(session)
    night = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
    first = request(session, cid, when=night, reason="turn_failed:unavailable")
    again = request(session, cid, when=night, reason="turn_failed:unavailable")
    assert (first.kind, again.kind) == ("ticket", "unchanged")
    assert again.ticket_id == first.ticket_id
    asked = request(session, cid, when=night, reason="requested")
    assert (asked.kind, asked.ticket_id) == ("ticket", first.ticket_id)
