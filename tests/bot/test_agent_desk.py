"""The agent's desk on SQLite and PostgreSQL: the handoff summary from the stored turns,
placeholder values, notes, conversation and customer tags, and the satisfaction question."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import InvalidInput
from bot.models import Conversation, Customer, Message, Order, Shipment, Staff
from bot.models.crm import CustomerTag
from bot.models.handoff import Csat
from bot.services import agent_desk, handoff, tickets
from bot.services import conversations as conv
from bot.services.conversations import Reply, TurnOutcome
from bot.settings import Settings

OPEN = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)
SETTINGS = Settings(secret_key="k", store_token_secret="s", environment="test")


def clock() -> datetime:
    return OPEN


def _agent(session: Session, name: str = "Desk") -> int:
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
    return staff.id


def _chat(session: Session, external_id: str | None) -> str:
    return conv.start_session(
        session=session, visitor_id=None, customer_external_id=external_id, clock=clock
    ).conversation_id


def _turn(session: Session, cid: str, n: int, text: str, outcome: TurnOutcome) -> int:
    inbound = conv.record_inbound(
        session=session, conversation_id=cid, client_msg_id=str(n), text=text, clock=clock
    )
    conv.record_turn(session=session, message_id=inbound.message.id, outcome=outcome, clock=clock)
    return inbound.message.id


def _late_order(session: Session, external_id: str) -> Order:
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    assert customer is not None
    order = session.scalars(
        select(Order)
        .join(Shipment, Shipment.order_id == Order.id)
        .where(Order.customer_id == customer.id, Shipment.delay_reason.is_not(None))
        .order_by(Order.placed_at.desc())
    ).first()
    assert order is not None
    return order


def test_summary_from_the_turns_before_the_handoff(session: Session) -> None:
    order = _late_order(session, "C00002")
    cid = _chat(session, "C00002")
    first = _turn(
        session, cid, 1, "where is my parcel",
        TurnOutcome(replies=[Reply("Which order?")], intent="order_status", confidence=0.91,
                    actions=["action_listen", "action_check_order_status"]),
    )  # fmt: skip
    _turn(
        session, cid, 2, f"it is {order.order_number}",
        TurnOutcome(replies=[Reply("It is late")], intent="order_status", confidence=0.88,
                    entities=[{"entity": "order_number", "value": order.order_number}],
                    actions=["action_check_order_status", "action_explain_shipping_delay"]),
    )  # fmt: skip
    _turn(
        session, cid, 3, "blah",
        TurnOutcome(replies=[Reply("Sorry?")], intent="nlu_fallback", confidence=0.3,
                    actions=["utter_default"], failure="timeout"),
    )  # fmt: skip
    handoff.set_status(
        session=session, agent_id=_agent(session, "On"), status="online", settings=SETTINGS,
        clock=clock,
    )  # fmt: skip
    assert (
        handoff.request_human(
            session=session, conversation_id=cid, reason="fallback", settings=SETTINGS, clock=clock
        ).kind
        == "queued"
    )
    found = agent_desk.summary(session=session, conversation_id=cid)
    assert found.reason == "fallback"
    assert [(i.intent, i.count) for i in found.intents] == [
        ("order_status", 2),
        ("nlu_fallback", 1),
    ]
    assert found.intents[0].last_confidence == pytest.approx(0.88)
    assert found.tried == (
        "action_check_order_status",
        "action_explain_shipping_delay",
        "utter_default",
    )  # in the order first tried, without Rasa's bookkeeping
    assert found.failed_turns == 1 and found.fallbacks == 1 and found.shopper_messages == 3
    assert found.order is not None
    assert (found.order.order_number, found.order.how) == (order.order_number, "mentioned")
    assert found.order.delay_reason is not None

    understood = agent_desk.turn_understanding(session=session, conversation_id=cid)
    assert understood[first]["intent"] == "order_status"
    assert understood[first]["actions"] == ["action_check_order_status"]
    values = agent_desk.placeholder_values(
        session=session, conversation_id=cid, agent_id=_agent(session, "Lin"), language="en"
    )
    assert values["name"] == "Emily Chen" and values["order_no"] == order.order_number
    assert values["agent_name"] == "Lin"
    assert values["delay_reason"] and values["delay_reason"] != found.order.delay_reason  # a label
    zh = agent_desk.placeholder_values(
        session=session, conversation_id=cid, agent_id=None, language="zh"
    )
    assert zh["delay_reason"] != values["delay_reason"] and zh["agent_name"] is None


def test_an_order_number_of_someone_else_is_not_the_order_concerned(session: Session) -> None:
    other = _late_order(session, "C00002")
    cid = _chat(session, "C00001")
    _turn(
        session, cid, 1, f"order {other.order_number}",
        TurnOutcome(replies=[Reply("ok")], intent="order_status",
                    entities=[{"entity": "order_number", "value": other.order_number}]),
    )  # fmt: skip
    found = agent_desk.order_concerned(session=session, conversation_id=cid)
    assert found is not None and found.how == "latest" and found.order_number != other.order_number


def test_an_anonymous_chat_without_turns_has_an_empty_summary(session: Session) -> None:
    cid = _chat(session, None)
    found = agent_desk.summary(session=session, conversation_id=cid)
    assert found.reason is None and found.intents == () and found.order is None
    assert found.tried == () and found.shopper_messages == 0
    values = agent_desk.placeholder_values(
        session=session, conversation_id=cid, agent_id=None, language="zh"
    )
    assert values == {"name": None, "order_no": None, "delay_reason": None, "agent_name": None}


def test_notes_and_tags(session: Session) -> None:
    agent = _agent(session)
    cid = _chat(session, "C00003")
    note = agent_desk.add_note(
        session=session, conversation_id=cid, staff_id=agent, text="  <b>call back</b>  ",
        clock=clock,
    )  # fmt: skip
    assert note.text == "<b>call back</b>" and note.author == "Desk"
    assert [n.text for n in agent_desk.notes(session=session, conversation_id=cid)] == [note.text]
    with pytest.raises(InvalidInput):
        agent_desk.add_note(session=session, conversation_id=cid, staff_id=agent, text=" ")
    # Notes never reach the shopper's transcript.
    assert all(m.text != note.text for m in conv.history(session=session, conversation_id=cid))

    assert (
        agent_desk.tag_conversation(
            session=session, conversation_id=cid, tag=" Refund ", staff_id=agent
        )
        == "refund"
    )
    agent_desk.tag_conversation(session=session, conversation_id=cid, tag="refund", staff_id=agent)
    agent_desk.tag_conversation(
        session=session, conversation_id=cid, tag="物流:延误", staff_id=agent
    )
    assert agent_desk.conversation_tags(session=session, conversation_id=cid) == [
        "refund",
        "物流:延误",
    ]
    agent_desk.untag_conversation(session=session, conversation_id=cid, tag="refund")
    assert agent_desk.conversation_tags(session=session, conversation_id=cid) == ["物流:延误"]
    with pytest.raises(InvalidInput):
        agent_desk.tag_conversation(session=session, conversation_id=cid, tag="<x>", staff_id=agent)

    agent_desk.tag_customer(session=session, conversation_id=cid, tag="prefers-phone", clock=clock)
    conversation = session.get(Conversation, cid)
    assert conversation is not None
    row = session.scalar(
        select(CustomerTag).where(
            CustomerTag.customer_id == conversation.customer_id, CustomerTag.tag == "prefers-phone"
        )
    )
    assert row is not None and row.source == "agent"
    assert agent_desk.untag_customer(session=session, conversation_id=cid, tag="prefers-phone")
    assert not agent_desk.untag_customer(session=session, conversation_id=cid, tag="prefers-phone")
    with pytest.raises(InvalidInput):
        agent_desk.tag_customer(session=session, conversation_id=_chat(session, None), tag="x")


def test_the_satisfaction_question_after_close_is_answered_through_the_gateway(
    session: Session,
) -> None:
    agent = _agent(session)
    handoff.set_status(
        session=session, agent_id=agent, status="online", settings=SETTINGS, clock=clock
    )
    cid = _chat(session, "C00001")
    handoff.request_human(
        session=session, conversation_id=cid, reason="requested", settings=SETTINGS, clock=clock
    )
    handoff.claim(session=session, conversation_id=cid, agent_id=agent, clock=clock)
    with pytest.raises(InvalidInput):  # only once the chat is closed
        agent_desk.ask_satisfaction(
            session=session, conversation_id=cid, agent_id=agent, handoff_id=None
        )
    live = agent_desk.live_handoff_id(session=session, conversation_id=cid)
    handoff.close(
        session=session, conversation_id=cid, agent_id=agent, disposition="resolved", clock=clock
    )
    assert agent_desk.live_handoff_id(session=session, conversation_id=cid) is None
    asked = agent_desk.ask_satisfaction(
        session=session, conversation_id=cid, agent_id=agent, handoff_id=live, clock=clock
    )
    assert asked["role"] == "bot" and len(asked["buttons"]) == 5
    # The rating buttons count as offered, and the gateway records the shopper's press.
    assert tickets.csat_payload(4) in conv.offered_payloads(session=session, conversation_id=cid)
    assert (
        tickets.csat_answer(
            session=session, conversation_id=cid, text="4", payload=tickets.csat_payload(4),
            clock=clock,
        )
        == "score"
    )  # fmt: skip
    csat = session.scalars(select(Csat).where(Csat.conversation_id == cid)).one()
    assert (csat.score, csat.agent_id, csat.handoff_id) == (4, agent, live)
    assert session.get(Message, asked["id"]) is not None
