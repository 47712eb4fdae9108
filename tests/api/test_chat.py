from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import session_scope
from bot.models import Conversation, Message
from tests.api.conftest import FakeEngine, customer_token


def _session(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/chat/session", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _send(client: TestClient, token: str, **body: Any) -> httpx.Response:
    return client.post(
        "/api/chat/messages", json=body, headers={"authorization": f"Bearer {token}"}
    )


def _messages(conversation_id: str) -> list[Message]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            )
        )


def test_http_turn_stores_message_nlu_and_reply(client: TestClient, engine: FakeEngine) -> None:
    opened = _session(client, customer_token=customer_token())
    assert opened["customer"] == {"name": "张伟"}
    response = _send(
        client,
        opened["visitor_token"],
        client_id="m1",
        text="你好",
        customer_token=customer_token(),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["replies"][0]["text"] == "echo: 你好"
    # The gateway chose the sender id and passed the verified customer as metadata.
    assert engine.calls[0]["sender"] == opened["conversation_id"]
    assert isinstance(engine.calls[0]["metadata"]["customer_id"], int)
    assert engine.calls[0]["message_id"]
    rows = _messages(opened["conversation_id"])
    assert [(m.role, m.status) for m in rows] == [("shopper", "done"), ("bot", "done")]
    assert rows[0].intent == "greet" and rows[0].latency_ms is not None
    assert rows[0].sentiment is not None


def test_repeat_client_id_is_stored_and_answered_once(
    client: TestClient, engine: FakeEngine
) -> None:
    opened = _session(client)
    token = opened["visitor_token"]
    first = _send(client, token, client_id="same", text="hello").json()
    again = _send(client, token, client_id="same", text="hello").json()
    assert again["ack"] == {**first["ack"], "duplicate": True}
    assert len(engine.calls) == 1
    assert len(_messages(opened["conversation_id"])) == 2


def test_too_long_is_refused_and_nothing_stored(client: TestClient, engine: FakeEngine) -> None:
    opened = _session(client)
    response = _send(client, opened["visitor_token"], client_id="big", text="长" * 2001)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "message_too_long"
    assert _messages(opened["conversation_id"]) == []
    assert engine.calls == []
    ok = _send(client, opened["visitor_token"], client_id="max", text="长" * 2000)
    assert ok.status_code == 200


def test_slash_text_is_never_an_intent(client: TestClient, engine: FakeEngine) -> None:
    opened = _session(client)
    _send(client, opened["visitor_token"], client_id="s1", text="/restart")
    assert engine.calls[0]["text"] == "／restart"


def test_button_payload_only_when_just_offered(client: TestClient, engine: FakeEngine) -> None:
    engine.script = lambda body: {
        "replies": [
            {
                "text": "Accept the delay?",
                "buttons": [
                    {"title": "Yes", "payload": "/affirm"},
                    {"title": "No", "payload": "/deny"},
                ],
            }
        ],
        "nlu": {},
        "actions": [],
        "language": "en",
    }
    opened = _session(client)
    token = opened["visitor_token"]
    forged = _send(client, token, client_id="b0", text="", payload="/human_agent")
    assert forged.status_code == 422
    _send(client, token, client_id="b1", text="my parcel is late")
    pressed = _send(client, token, client_id="b2", text="Yes", payload="/affirm")
    assert pressed.status_code == 200
    assert engine.calls[-1]["text"] == "/affirm"
    stale = _send(client, token, client_id="b3", text="No", payload="/deny")
    assert stale.status_code == 200  # the bot offered the buttons again in its reply
    engine.script = lambda body: {"replies": [{"text": "ok"}], "nlu": {}, "actions": []}
    _send(client, token, client_id="b4", text="thanks")
    gone = _send(client, token, client_id="b5", text="No", payload="/deny")
    assert gone.status_code == 422


def test_engine_failures_answer_honestly_and_flag(client: TestClient, engine: FakeEngine) -> None:
    cases: list[tuple[Any, str]] = [
        (
            {
                "replies": [],
                "nlu": {"intent": "order_status"},
                "actions": ["x"],
                "failure": "action_exception",
            },
            "action_exception",
        ),
        ({"replies": [], "nlu": {}, "actions": []}, "no_reply"),
        (503, "unavailable"),
        (httpx.ConnectError("refused"), "unavailable"),
    ]
    for i, (result, failure) in enumerate(cases):
        engine.script = lambda body, result=result: result
        opened = _session(client, language="en")
        body = _send(
            client, opened["visitor_token"], client_id=f"f{i}", text="where is my order"
        ).json()
        assert "flagged this chat for a colleague" in body["replies"][0]["text"]
        rows = _messages(opened["conversation_id"])
        assert rows[0].status == "failed" and rows[0].failure == failure
        with session_scope() as session:
            conversation = session.get(Conversation, opened["conversation_id"])
            assert conversation is not None and conversation.needs_human


def test_deadline_missed(client: TestClient, engine: FakeEngine) -> None:
    engine.delay = 1.5  # the deadline is 1 s in these tests
    opened = _session(client)
    body = _send(client, opened["visitor_token"], client_id="slow", text="你好").json()
    assert body["replies"][0]["text"].startswith("抱歉")
    assert _messages(opened["conversation_id"])[0].failure == "deadline"


def test_handoff_payload_flags_the_conversation(client: TestClient, engine: FakeEngine) -> None:
    engine.script = lambda body: {
        "replies": [{"text": "转人工中"}, {"custom": {"kefu": {"handoff": "requested"}}}],
        "nlu": {"intent": "human_agent"},
        "actions": [],
    }
    opened = _session(client)
    body = _send(client, opened["visitor_token"], client_id="h", text="转人工").json()
    assert [r["text"] for r in body["replies"]] == ["转人工中"]
    with session_scope() as session:
        conversation = session.get(Conversation, opened["conversation_id"])
        assert conversation is not None
        assert conversation.flag_reason == "handoff:requested"


def test_http_needs_a_valid_visitor_token(client: TestClient) -> None:
    assert _send(client, "forged", client_id="x", text="hi").status_code == 401
    assert (
        client.post("/api/chat/messages", json={"client_id": "x", "text": "hi"}).status_code == 401
    )


def test_bad_store_token_is_refused(client: TestClient) -> None:
    response = client.post("/api/chat/session", json={"customer_token": "C00001.1.abc"})
    assert response.status_code == 401


def test_oversized_body_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/chat/session",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
