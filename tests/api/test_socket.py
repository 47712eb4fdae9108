from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import FakeEngine, customer_token

ORIGIN = {"origin": "http://127.0.0.1:8000"}


def _hello(ws: WebSocketTestSession, **fields: Any) -> dict[str, Any]:
    ws.send_json({"type": "hello", **fields})
    welcome = ws.receive_json()
    assert welcome["type"] == "welcome"
    return welcome  # type: ignore[no-any-return]


def _turn(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """Frames until the turn is over ("typing off")."""
    frames = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        if frame == {"type": "typing", "on": False}:
            return frames


def test_foreign_origin_is_refused(client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/api/chat/ws", headers={"origin": "https://evil.example"}) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008


def test_first_frame_must_be_hello(client: TestClient) -> None:
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        ws.send_text("not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400


def test_message_ack_then_replies_and_history_on_reconnect(client: TestClient) -> None:
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        welcome = _hello(ws, customer_token=customer_token("C00002"), language="en")
        assert welcome["customer"] == {"name": "Emily Chen"}
        ws.send_json({"type": "message", "client_id": "w1", "text": "hello"})
        ack = ws.receive_json()
        assert ack["type"] == "ack" and ack["client_id"] == "w1" and not ack["duplicate"]
        frames = _turn(ws)
        texts = [f["message"]["text"] for f in frames if f["type"] == "message"]
        assert texts == ["echo: hello"]
    # Reconnect: same visitor and store login, same conversation, history after an id.
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        again = _hello(
            ws,
            visitor_token=welcome["visitor_token"],
            customer_token=customer_token("C00002"),
            after_id=ack["id"],
        )
        assert again["conversation_id"] == welcome["conversation_id"]
        assert [m["text"] for m in again["history"]] == ["echo: hello"]
        ws.send_json({"type": "message", "client_id": "w1", "text": "hello"})
        assert ws.receive_json()["duplicate"] is True


def test_turns_of_a_conversation_run_one_at_a_time_in_order(
    client: TestClient, engine: FakeEngine
) -> None:
    in_flight = 0
    seen_parallel = False

    async def slow(body: dict[str, Any]) -> dict[str, Any]:
        return {}

    original = engine.handler

    async def handler(request: Any) -> Any:
        nonlocal in_flight, seen_parallel
        if request.url.path.endswith("/turn"):
            in_flight += 1
            seen_parallel = seen_parallel or in_flight > 1
            await asyncio.sleep(0.05)
            try:
                return await original(request)
            finally:
                in_flight -= 1
        return await original(request)

    engine.handler = handler  # type: ignore[method-assign]
    client.app.state.engine._client._transport.handler = handler  # type: ignore[attr-defined]
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        _hello(ws)
        for i in range(4):
            ws.send_json({"type": "message", "client_id": f"q{i}", "text": f"m{i}"})
        replies: list[str] = []
        while len(replies) < 4:
            frame = ws.receive_json()
            if frame["type"] == "message":
                replies.append(frame["message"]["text"])
    assert replies == [f"echo: m{i}" for i in range(4)]
    assert not seen_parallel


def test_bad_frames_get_errors_and_the_socket_stays(client: TestClient) -> None:
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        _hello(ws)
        ws.send_text("{oops")
        assert ws.receive_json()["code"] == "malformed"
        ws.send_json({"type": "message", "client_id": "long", "text": "x" * 2001})
        error = ws.receive_json()
        assert (error["code"], error["client_id"]) == ("message_too_long", "long")
        ws.send_json({"type": "message", "client_id": "", "text": "hi"})
        assert ws.receive_json()["code"] == "invalid_input"
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_a_logged_in_shopper_gives_and_withdraws_marketing_consent(client: TestClient) -> None:
    from bot.db import session_scope
    from bot.services import consent

    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        welcome = _hello(ws, customer_token=customer_token("C00004"), language="en")
        assert welcome["consent"]["marketing"] is False
        for marketing in (True, False, True):
            ws.send_json({"type": "consent", "marketing": marketing})
            frame = ws.receive_json()
            assert frame["type"] == "consent" and frame["marketing"] is marketing
            assert frame["consent"]["source"] == "widget"
            with session_scope() as session:
                cid = consent.customer_id_for(session=session, external_id="C00004")
                assert consent.has_marketing_consent(session=session, customer_id=cid) is marketing
        ws.send_json({"type": "consent", "marketing": "yes"})
        assert ws.receive_json()["code"] == "invalid_input"
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        assert _hello(ws)["consent"] is None  # an anonymous visitor has nothing to consent to
        ws.send_json({"type": "consent", "marketing": True})
        assert ws.receive_json()["code"] == "invalid_token"
