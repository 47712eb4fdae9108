"""The public chat's limits: per conversation, per visitor, per address, open sockets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from api.main import create_app
from api.ratelimit import MemoryLimiter, RedisLimiter
from bot.db import session_scope
from bot.models import Conversation, Message
from bot.settings import Settings
from tests.api.conftest import FakeEngine
from tests.api.test_chat import _send, _session
from tests.api.test_socket import ORIGIN, _hello


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_refuses_past_the_limit_then_recovers() -> None:
    clock = FakeTime()
    limiter = MemoryLimiter(now=clock)
    for _ in range(20):
        assert await limiter.hit("k", 20, 60) == 0
        clock.now += 1
    wait = await limiter.hit("k", 20, 60)
    assert wait == 40  # the oldest event leaves the window 60 s after it happened
    clock.now += wait
    assert await limiter.hit("k", 20, 60) == 0
    # A peek counts nothing.
    assert await limiter.hit("other", 1, 60, consume=False) == 0
    assert await limiter.hit("other", 1, 60) == 0
    assert await limiter.hit("other", 1, 60) > 0


async def test_a_burst_at_a_window_edge_gets_no_more_than_the_limit() -> None:
    clock = FakeTime()
    limiter = MemoryLimiter(now=clock)
    clock.now = 59.5
    allowed = sum([await limiter.hit("k", 5, 60) == 0 for _ in range(5)])
    clock.now = 60.5  # a fixed 60 s window would have reset here
    allowed += sum([await limiter.hit("k", 5, 60) == 0 for _ in range(5)])
    assert allowed == 5


async def test_sockets_are_counted_until_released() -> None:
    limiter = MemoryLimiter()
    assert await limiter.acquire("ip", 2) and await limiter.acquire("ip", 2)
    assert not await limiter.acquire("ip", 2)
    await limiter.release("ip")
    assert await limiter.acquire("ip", 2)


@pytest.fixture
def limited(app_db: str, engine: FakeEngine) -> Iterator[TestClient]:
    settings = Settings(
        database_url=app_db,
        secret_key="k",
        store_token_secret="s",
        environment="test",
        limit_messages_per_minute=3,
        limit_new_conversations_per_ip_hour=4,
        limit_new_conversations_per_visitor_hour=2,
        limit_sockets_per_ip=2,
    )
    app = create_app(settings, engine_transport=httpx.MockTransport(engine.handler))
    with TestClient(app) as client:
        yield client


def _count(conversation_id: str) -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count(Message.id)).where(
                Message.conversation_id == conversation_id, Message.role == "shopper"
            )
        )


def test_messages_past_the_minute_limit_are_refused_and_not_stored(limited: TestClient) -> None:
    opened = _session(limited)
    token = opened["visitor_token"]
    for n in range(3):
        assert _send(limited, token, client_id=f"m{n}", text="hello").status_code == 200
    refused = _send(limited, token, client_id="m3", text="hello")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["limit"] == "messages"
    assert _count(opened["conversation_id"]) == 3
    # A repeat of a stored message is not a new message: still acknowledged.
    again = _send(limited, token, client_id="m1", text="hello")
    assert again.status_code == 200 and again.json()["ack"]["duplicate"] is True


def test_new_conversations_per_visitor_and_per_address(limited: TestClient) -> None:
    # One visitor closing chats and starting new ones: two an hour.
    first = _session(limited)
    token = first["visitor_token"]

    def close_open_conversation(conversation_id: str) -> None:
        with session_scope() as session:
            session.get(Conversation, conversation_id).state = "closed"  # type: ignore[union-attr]

    close_open_conversation(first["conversation_id"])
    second = _session(limited, visitor_token=token)
    assert second["conversation_id"] != first["conversation_id"]
    # Resuming an open conversation is never refused.
    assert _session(limited, visitor_token=token)["conversation_id"] == second["conversation_id"]
    close_open_conversation(second["conversation_id"])
    refused = limited.post("/api/chat/session", json={"visitor_token": token})
    assert refused.status_code == 429
    assert refused.json()["error"]["limit"] == "conversations"
    # New visitors from the same address: four conversations an hour in all.
    assert limited.post("/api/chat/session", json={}).status_code == 200
    assert limited.post("/api/chat/session", json={}).status_code == 200
    assert limited.post("/api/chat/session", json={}).status_code == 429


def test_socket_limits_close_with_4429_and_say_why(limited: TestClient) -> None:
    with (
        limited.websocket_connect("/api/chat/ws", headers=ORIGIN) as one,
        limited.websocket_connect("/api/chat/ws", headers=ORIGIN) as two,
    ):
        welcome = _hello(one)
        _hello(two, visitor_token=welcome["visitor_token"])
        with limited.websocket_connect("/api/chat/ws", headers=ORIGIN) as three:
            error = three.receive_json()
            assert error["type"] == "error" and error["limit"] == "sockets"
            with pytest.raises(WebSocketDisconnect) as closed:
                three.receive_json()
            assert closed.value.code == 4429
        # Messages past the minute limit: an error frame naming the message; the socket stays.
        for n in range(3):
            one.send_json({"type": "message", "client_id": f"s{n}", "text": "hi"})
        frames = []
        one.send_json({"type": "message", "client_id": "s3", "text": "hi"})
        while not any(f.get("type") == "error" for f in frames):
            frames.append(one.receive_json())
        error = next(f for f in frames if f["type"] == "error")
        assert error["client_id"] == "s3" and error["code"] == "rate_limited"
        one.send_json({"type": "ping"})
        while one.receive_json() != {"type": "pong"}:
            pass
    # Closed sockets give their places back.
    with limited.websocket_connect("/api/chat/ws", headers=ORIGIN) as again:
        _hello(again, visitor_token=welcome["visitor_token"])


async def test_redis_limits_are_shared_between_workers(redis_url: str) -> None:
    clock = FakeTime()
    one, two = RedisLimiter(redis_url, now=clock), RedisLimiter(redis_url, now=clock)
    key = f"shared-{clock.now}-{id(one)}"
    try:
        for worker in (one, two, one):
            assert await worker.hit(key, 3, 60) == 0
        assert await two.hit(key, 3, 60) == 60
        clock.now += 30
        assert await one.hit(key, 3, 60, consume=False) == 30
        clock.now += 30.5
        assert await two.hit(key, 3, 60) == 0
        # Open sockets, counted across workers.
        assert await one.acquire(key, 2) and await two.acquire(key, 2)
        assert not await one.acquire(key, 2)
        await two.release(key)
        assert await one.acquire(key, 2)
    finally:
        await one.aclose()
        await two.aclose()
