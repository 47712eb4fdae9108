from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.models import Conversation, Customer, Message, Outcome
from bot.models.crm import CustomerTag
from bot.models.handoff import Ticket
from bot.services import conversations as conv
from bot.services import outcomes
from bot.services.conversations import Reply, TurnOutcome
from bot.services.outcomes import Turn
from tests.conftest import FIXED_NOW, fixed_clock


def _open(
    session: Session, visitor_id: str | None = None, customer: str | None = None
) -> conv.ChatSession:
    return conv.start_session(
        session=session, visitor_id=visitor_id, customer_external_id=customer, clock=fixed_clock
    )


def _inbound(session: Session, chat: conv.ChatSession, client_id: str, text: str) -> conv.Inbound:
    return conv.record_inbound(
        session=session,
        conversation_id=chat.conversation_id,
        client_msg_id=client_id,
        text=text,
        clock=fixed_clock,
    )


def _greet_back(session: Session, inbound: conv.Inbound) -> list[conv.MessageView]:
    return conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=fixed_clock,
        outcome=TurnOutcome(replies=[Reply("Hello!")], intent="greet"),
    )


def test_inbound_is_idempotent_on_client_id(session: Session) -> None:
    chat = _open(session)
    first = _inbound(session, chat, "c-1", "你好")
    again = _inbound(session, chat, "c-1", "你好")
    assert not first.duplicate and again.duplicate
    assert again.message.id == first.message.id
    count = session.scalars(
        select(Message).where(Message.conversation_id == chat.conversation_id)
    ).all()
    assert len(count) == 1
    assert count[0].status == "pending"


def test_turn_result_and_replies_are_stored_together(session: Session) -> None:
    chat = _open(session)
    inbound = _inbound(session, chat, "c-1", "where is my order")
    stored = conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=fixed_clock,
        outcome=TurnOutcome(
            replies=[Reply("It is on its way.")],
            intent="order_status",
            confidence=0.93,
            actions=["action_check_order_status"],
            language="en",
            latency_ms=120,
        ),
    )
    assert [m.text for m in stored] == ["It is on its way."]
    shopper = session.get(Message, inbound.message.id)
    assert shopper is not None
    assert (shopper.status, shopper.intent, shopper.latency_ms) == ("done", "order_status", 120)
    conversation = session.get(Conversation, chat.conversation_id)
    assert conversation is not None and conversation.language == "en"


def test_reply_in_flight_at_takeover_is_dropped(session: Session) -> None:
    chat = _open(session)
    inbound = _inbound(session, chat, "c-1", "hi")
    # A person takes over while the bot's turn is still running.
    session.execute(
        update(Conversation).where(Conversation.id == chat.conversation_id).values(state="agent")
    )
    stored = _greet_back(session, inbound)
    assert stored == []
    bots = session.scalars(
        select(Message).where(
            Message.conversation_id == chat.conversation_id, Message.role == "bot"
        )
    ).all()
    assert bots == []


def test_a_takeover_the_caller_has_not_flushed_still_stops_the_reply(session: Session) -> None:
    chat = _open(session)
    inbound = _inbound(session, chat, "c-1", "hi")
    conversation = session.get(Conversation, chat.conversation_id)
    assert conversation is not None
    conversation.state = "agent"  # changed in this session, not yet written
    stored = _greet_back(session, inbound)
    assert stored == []
    assert conversation.state == "agent"


def test_several_replies_come_back_in_order_with_their_stored_ids(session: Session) -> None:
    chat = _open(session)
    inbound = _inbound(session, chat, "c-1", "退货")
    buttons = [{"title": "是", "payload": "/affirm"}]
    stored = conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=fixed_clock,
        outcome=TurnOutcome(replies=[Reply("一"), Reply("二", buttons), Reply("三")], intent="x"),
    )
    rows = session.execute(
        select(Message.id, Message.text, Message.buttons, Message.reply_to_id)
        .where(Message.conversation_id == chat.conversation_id, Message.role == "bot")
        .order_by(Message.id)
    ).all()
    assert [(m.id, m.text, m.buttons) for m in stored] == [(r[0], r[1], r[2]) for r in rows]
    assert [r[1] for r in rows] == ["一", "二", "三"] and rows[1][2] == buttons
    assert {r[3] for r in rows} == {inbound.message.id}
    assert (
        conv.record_turn(  # the same turn again (a retry) stores nothing
            session=session,
            message_id=inbound.message.id,
            clock=fixed_clock,
            outcome=TurnOutcome(replies=[Reply("四")], intent="x"),
        )
        == []
    )


def test_failed_turn_flags_the_conversation(session: Session) -> None:
    chat = _open(session)
    inbound = _inbound(session, chat, "c-1", "我的订单")
    conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=fixed_clock,
        outcome=TurnOutcome(replies=[Reply("sorry")], failure="action_exception"),
    )
    conversation = session.get(Conversation, chat.conversation_id)
    assert conversation is not None
    assert conversation.needs_human and conversation.flag_reason == "action_exception"
    shopper = session.get(Message, inbound.message.id)
    assert shopper is not None and shopper.status == "failed"


def test_login_merges_the_visitors_anonymous_conversations(session: Session) -> None:
    anonymous = _open(session)
    logged_in = _open(session, visitor_id=anonymous.visitor_id, customer="C00003")
    customer = session.scalars(select(Customer).where(Customer.external_id == "C00003")).one()
    assert logged_in.customer_id == customer.id
    merged = session.get(Conversation, anonymous.conversation_id)
    assert merged is not None and merged.customer_id == customer.id
    assert logged_in.conversation_id == anonymous.conversation_id


def test_login_brings_the_anonymous_complaint_and_callback_along(session: Session) -> None:
    """What the visitor did before logging in — a complaint, a callback ticket, the turns —
    is the customer's once the store vouches for them; the complainer tag follows at once."""
    anonymous = _open(session)
    inbound = _inbound(session, anonymous, "a-1", "你们太差了，我要投诉")
    conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=fixed_clock,
        outcome=TurnOutcome(replies=[Reply("非常抱歉")], intent="complaint"),
    )
    outcomes.record_complaint(
        session=session, turn=Turn("rasa-1", None, anonymous.conversation_id), text="太差了"
    )
    session.add(
        Ticket(
            conversation_id=anonymous.conversation_id,
            reason="off_hours",
            callback_phone="13800138000",
            created_at=FIXED_NOW,
            updated_at=FIXED_NOW,
        )
    )
    session.flush()
    _open(session, visitor_id=anonymous.visitor_id, customer="C00004")
    james = session.scalars(select(Customer.id).where(Customer.external_id == "C00004")).one()
    where = Outcome.conversation_id == anonymous.conversation_id
    assert set(session.scalars(select(Outcome.customer_id).where(where))) == {james}
    ticket = session.scalars(
        select(Ticket).where(Ticket.conversation_id == anonymous.conversation_id)
    ).one()
    assert ticket.customer_id == james
    tags = session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == james)).all()
    assert "complainer" in tags


def test_anonymous_session_never_continues_a_logged_in_one(session: Session) -> None:
    logged_in = _open(session, customer="C00004")
    anonymous = _open(session, visitor_id=logged_in.visitor_id)
    assert anonymous.customer_id is None
    assert anonymous.conversation_id != logged_in.conversation_id


def test_offered_payloads_are_only_the_latest_buttons(session: Session) -> None:
    chat = _open(session)
    inbound = _inbound(session, chat, "c-1", "hi")
    conv.record_turn(
        session=session,
        message_id=inbound.message.id,
        clock=fixed_clock,
        outcome=TurnOutcome(
            replies=[Reply("ok?", buttons=[{"title": "Yes", "payload": "/affirm"}])]
        ),
    )
    assert conv.offered_payloads(session=session, conversation_id=chat.conversation_id) == {
        "/affirm"
    }
    _inbound(session, chat, "c-2", "yes")
    assert conv.offered_payloads(session=session, conversation_id=chat.conversation_id) == set()


def test_history_after_id(session: Session) -> None:
    chat = _open(session)
    ids = [_inbound(session, chat, f"c-{i}", str(i)).message.id for i in range(3)]
    later = conv.history(session=session, conversation_id=chat.conversation_id, after_id=ids[0])
    assert [m.id for m in later] == ids[1:]


def test_history_from_the_start_is_the_latest_page_and_catching_up_is_the_next(
    session: Session,
) -> None:
    chat = conv.start_session(session=session, visitor_id=None)
    ids = [
        conv.record_inbound(
            session=session,
            conversation_id=chat.conversation_id,
            client_msg_id=f"h{n}",
            text=str(n),
        ).message.id
        for n in range(7)
    ]
    latest = conv.history(session=session, conversation_id=chat.conversation_id, limit=3)
    assert [m.id for m in latest] == ids[-3:]
    after = conv.history(
        session=session, conversation_id=chat.conversation_id, after_id=ids[1], limit=3
    )
    assert [m.id for m in after] == ids[2:5]


def test_a_quiet_bot_chat_ends_and_the_next_visit_is_a_new_conversation(session: Session) -> None:
    first = _open(session, customer="C00002")
    again = conv.start_session(
        session=session,
        visitor_id=first.visitor_id,
        customer_external_id="C00002",
        clock=lambda: FIXED_NOW + timedelta(minutes=20),
    )
    assert again.conversation_id == first.conversation_id  # still the same visit
    later = conv.start_session(
        session=session,
        visitor_id=first.visitor_id,
        customer_external_id="C00002",
        clock=lambda: FIXED_NOW + timedelta(minutes=31),
    )
    assert later.created and later.conversation_id != first.conversation_id
    ended = session.get(Conversation, first.conversation_id)
    assert ended is not None and ended.state == "closed"
    # A chat with a person is the person's to end, however quiet.
    session.execute(
        update(Conversation).where(Conversation.id == later.conversation_id).values(state="agent")
    )
    assert conv.close_idle(session=session, clock=lambda: FIXED_NOW + timedelta(days=9)) == 0
