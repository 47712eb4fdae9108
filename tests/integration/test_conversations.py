"""Multi-turn conversations through the gateway's WebSocket, against the real Rasa server,
action server and database."""

from __future__ import annotations

import signal
from typing import Any

import sqlalchemy as sa

from tests.support.chat_client import ChatClient
from tests.support.stack import Stack


def latest_order(db: sa.Engine, external_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    "SELECT o.order_number, o.phone, o.address, c.name, s.delay_reason "
                    'FROM "order" o JOIN customer c ON c.id = o.customer_id '
                    "LEFT JOIN shipment s ON s.order_id = o.id "
                    "WHERE c.external_id = :ext ORDER BY o.placed_at DESC LIMIT 1"
                ),
                {"ext": external_id},
            )
            .mappings()
            .one()
        )
    return dict(row)


def stored(db: sa.Engine, conversation_id: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT role, text, status, failure, intent, confidence, latency_ms, language "
                "FROM message WHERE conversation_id = :c ORDER BY id"
            ),
            {"c": conversation_id},
        )
        return [dict(r) for r in rows.mappings()]


def conversation(db: sa.Engine, conversation_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    "SELECT state, needs_human, flag_reason, language, customer_id "
                    "FROM conversation WHERE id = :c"
                ),
                {"c": conversation_id},
            )
            .mappings()
            .one()
        )


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["text"] for m in messages)


async def test_logged_in_chinese_shopper_asks_where_the_order_is(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = latest_order(db, "C00001")
    welcome = await shopper.connect(customer_token=stack.customer_token("C00001"))
    greeting = texts(await shopper.say("你好"))
    assert "张伟" in greeting
    reply = texts(await shopper.say("我的订单到哪了"))
    assert order["order_number"] in reply
    assert "订单" in reply
    rows = stored(db, welcome["conversation_id"])
    shopper_rows = [r for r in rows if r["role"] == "shopper"]
    assert [r["intent"] for r in shopper_rows] == ["greet", "order_status"]
    assert all(r["status"] == "done" and r["latency_ms"] is not None for r in shopper_rows)
    assert [r["role"] for r in rows].count("bot") >= 2


async def test_logged_in_english_shopper_hears_about_the_delay(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = latest_order(db, "C00002")
    assert order["delay_reason"] == "bad_weather"
    welcome = await shopper.connect(customer_token=stack.customer_token("C00002"), language="en")
    reply = texts(await shopper.say("hi, where is my order?"))
    assert order["order_number"] in reply
    assert "bad weather" in reply and "sorry" in reply.lower()
    assert conversation(db, welcome["conversation_id"])["language"] == "en"


async def test_anonymous_visitor_must_prove_the_phone_digits(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = latest_order(db, "C00003")
    last4 = order["phone"][-4:]
    wrong = "0000" if last4 != "0000" else "1111"
    await shopper.connect()
    asked = texts(await shopper.say("亲 我的快递到哪了"))
    assert "订单号" in asked
    asked_digits = texts(await shopper.say(order["order_number"]))
    assert "后四位" in asked_digits
    mismatch = texts(await shopper.say(wrong))
    assert "不一致" in mismatch and order["order_number"] not in mismatch
    answer = texts(await shopper.say(f"尾号{last4}"))
    assert order["order_number"] in answer
    assert order["address"] not in answer and order["name"] not in answer


async def test_anonymous_english_unknown_order_number(stack: Stack, shopper: ChatClient) -> None:
    await shopper.connect(language="en")
    asked = texts(await shopper.say("where is my package"))
    assert "order number" in asked
    unknown = texts(await shopper.say("it's 599999999999"))
    assert "couldn't find" in unknown and "599999999999" in unknown


async def test_asking_for_a_person_is_acknowledged_and_flagged(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    welcome = await shopper.connect()
    reply = texts(await shopper.say("转人工"))
    assert "人工" in reply
    assert conversation(db, welcome["conversation_id"])["flag_reason"] == "handoff:requested"


async def test_slash_commands_are_text_not_intents(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    welcome = await shopper.connect(language="en")
    await shopper.say("/restart")
    rows = stored(db, welcome["conversation_id"])
    assert rows[0]["text"] == "/restart"
    assert rows[0]["status"] == "done" and rows[0]["intent"] not in (None, "restart")


async def test_dead_action_server_then_recovery(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = latest_order(db, "C00001")
    welcome = await shopper.connect(customer_token=stack.customer_token("C00001"))
    assert order["order_number"] in texts(await shopper.say("我的订单到哪了"))

    stack.stop("actions", signal.SIGKILL)
    try:
        failed = texts(await shopper.say("我的订单到哪了？"))
        assert "抱歉" in failed and "人工" in failed
        failed_en = texts(await shopper.say("where is my order now?"))
        assert "sorry" in failed_en.lower() and "colleague" in failed_en
    finally:
        stack.start_actions()
    assert stack.wait_engine_ready(60)

    recovered = texts(await shopper.say("订单到哪了"))
    assert order["order_number"] in recovered
    rows = stored(db, welcome["conversation_id"])
    shopper_rows = [r for r in rows if r["role"] == "shopper"]
    assert [r["status"] for r in shopper_rows] == ["done", "failed", "failed", "done"]
    assert {r["failure"] for r in shopper_rows if r["status"] == "failed"} == {"action_exception"}
    flags = conversation(db, welcome["conversation_id"])
    assert flags["needs_human"] and flags["flag_reason"] == "action_exception"
