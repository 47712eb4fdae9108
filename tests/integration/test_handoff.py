"""Handoff against the real Rasa server, action server and API: a takeover in the middle of
a form, the hand-back (the form is over, the satisfaction question comes in the shopper's
language, the bot carries on), and two API workers sharing events through Redis."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets
from sqlalchemy.orm import Session

from bot.db import make_engine
from bot.services import handoff as handoff_service
from bot.services import staff as staff_service
from bot.settings import Settings
from tests.support.chat_client import ChatClient
from tests.support.stack import Stack


class StackAgent:
    """A staff account in the stack's database, logged in, calling one API worker."""

    def __init__(self, stack: Stack, name: str, api_url: str | None = None) -> None:
        self.api_url = api_url or stack.api_url
        self.engine = make_engine(stack.database_url)
        email = f"agent-{secrets.token_hex(4)}@kefu.test"
        with Session(self.engine) as session:
            staff = staff_service.create_staff(
                session=session, email=email, name=name, role="agent", password="correct horse 1"
            )
            result = staff_service.log_in(
                session=session, email=email, password="correct horse 1", ip="test"
            )
            session.commit()
        assert result is not None
        self.id, self.name = staff.id, name
        self.token, self.csrf = result[0], result[1].csrf_token

    @property
    def headers(self) -> dict[str, str]:
        return {"cookie": f"kefu_staff={self.token}", "x-csrf-token": self.csrf}

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(
            f"{self.api_url}/api/agent{path}", json=body or {}, headers=self.headers, timeout=20
        )
        assert response.status_code == 200, response.text
        return response.json()

    def offline(self) -> None:
        """Leave nobody online: other tests share this database and expect no agents."""
        with Session(self.engine) as session:
            handoff_service.set_status(
                session=session,
                agent_id=self.id,
                status="offline",
                settings=Settings(secret_key="k", store_token_secret="s"),
            )
            session.commit()
        self.engine.dispose()


Frames = list[dict[str, Any]]


async def frames_until(
    client: ChatClient, done: Callable[[dict[str, Any], Frames], bool], timeout: float = 20
) -> Frames:
    """Frames until ``done(frame, frames so far)``."""
    seen: Frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(client.ws.recv(), timeout))
        seen.append(frame)
        if done(frame, seen):
            return seen


def bot_texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["text"] for m in messages if m["role"] == "bot")


def roles_between(db: sa.Engine, conversation_id: str, after: int, before: int) -> list[str]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT role FROM message WHERE conversation_id = :c AND id > :a AND id < :b "
                    "ORDER BY id"
                ),
                {"c": conversation_id, "a": after, "b": before},
            ).scalars()
        )


def last_id(db: sa.Engine, conversation_id: str) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT max(id) FROM message WHERE conversation_id = :c"),
                {"c": conversation_id},
            ).scalar_one()
        )


async def test_takeover_mid_form_then_hand_back_and_the_bot_carries_on(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    agent = StackAgent(stack, "王芳")
    try:
        welcome = await shopper.connect(language="en")
        cid = welcome["conversation_id"]
        asked = bot_texts(await shopper.say("where is my order"))
        assert "order number" in asked  # the look-up form is waiting for the number
        agent.post(f"/conversations/{cid}/claim")
        joined = await frames_until(shopper, lambda f, _: f["type"] == "handoff")
        assert joined[-1] == {"type": "handoff", "state": "agent", "agent": {"name": "王芳"}}
        taken_at = last_id(db, cid)

        # While the agent has the chat, the bot says nothing.
        assert await shopper.say("hello? is anyone there") == []
        agent.post(f"/conversations/{cid}/messages", {"text": "Hi, I'm 王芳. Let me check."})
        got = await frames_until(shopper, lambda f, _: f["type"] == "message")
        assert got[-1]["message"]["role"] == "agent" and got[-1]["message"]["author"] == "王芳"

        agent.post(f"/conversations/{cid}/handback")
        # The hand-back turn: "back to the bot", then the bot's question, then typing off.
        frames = await frames_until(
            shopper,
            lambda f, seen: (
                f == {"type": "typing", "on": False}
                and any(g["type"] == "message" and g["message"].get("buttons") for g in seen)
            ),
        )
        question = next(
            f["message"] for f in frames if f["type"] == "message" and f["message"].get("buttons")
        )
        handed_at = question["id"]
        assert "bot" not in roles_between(db, cid, taken_at, handed_at)
        # The conversation's context survived the takeover: still in English.
        assert "satisfied" in question["text"]
        payloads = [b["payload"] for b in question["buttons"]]
        assert len(payloads) == 5

        thanks = await shopper.say("5", payload=payloads[4])
        assert "Thanks for rating" in bot_texts(thanks)
        done = await shopper.say("very quick, thank you")
        assert "feedback" in bot_texts(done)

        # The form ended with the takeover: a number now is not read as the order number.
        after = bot_texts(await shopper.say("12345678"))
        assert after and "last 4 digits" not in after and "couldn't find" not in after
        greeting = bot_texts(await shopper.say("hello"))
        assert "Kefu" in greeting or "help" in greeting
        with db.connect() as conn:
            csat = (
                conn.execute(
                    sa.text("SELECT score, comment, agent_id FROM csat WHERE conversation_id = :c"),
                    {"c": cid},
                )
                .mappings()
                .one()
            )
        assert dict(csat) == {"score": 5, "comment": "very quick, thank you", "agent_id": agent.id}
    finally:
        agent.offline()


@pytest.fixture(scope="module")
def two_workers(stack: Stack, redis_url: str) -> Iterator[tuple[str, str]]:
    """Two more API workers on the stack's database and Rasa server, sharing Redis."""
    env = {"KEFU_REDIS_URL": redis_url}
    names = (f"api-redis-a-{secrets.token_hex(2)}", f"api-redis-b-{secrets.token_hex(2)}")
    try:
        urls = tuple(stack.start_api_worker(name, env) for name in names)
        yield urls[0], urls[1]
    finally:
        for name in names:
            stack.stop(name)


async def test_an_agent_on_one_worker_reaches_a_shopper_on_another(
    stack: Stack, two_workers: tuple[str, str]
) -> None:
    worker_a, worker_b = two_workers
    agent = StackAgent(stack, "李雷", api_url=worker_a)
    shopper = ChatClient(worker_b)
    try:
        welcome = await shopper.connect(language="zh")
        cid = welcome["conversation_id"]
        agent_ws = await websockets.connect(  # type: ignore[attr-defined]
            worker_a.replace("http://", "ws://") + "/api/agent/ws",
            origin=worker_a,
            extra_headers={"cookie": f"kefu_staff={agent.token}"},
        )
        try:
            hello = json.loads(await asyncio.wait_for(agent_ws.recv(), 10))
            assert hello["type"] == "hello"
            agent.post(f"/conversations/{cid}/claim")  # on worker A
            joined = await frames_until(shopper, lambda f, _: f["type"] == "handoff")
            assert joined[-1]["agent"] == {"name": "李雷"}  # seen on worker B

            agent.post(f"/conversations/{cid}/messages", {"text": "您好，我是李雷"})
            got = await frames_until(shopper, lambda f, _: f["type"] == "message")
            assert got[-1]["message"]["text"] == "您好，我是李雷"
            assert got[-1]["message"]["author"] == "李雷"

            # And the other way: the shopper on B, the agent's socket on A.
            await shopper.ws.send(
                json.dumps({"type": "message", "client_id": "r1", "text": "收到，谢谢"})
            )
            while True:
                event = json.loads(await asyncio.wait_for(agent_ws.recv(), 20))
                if event["type"] == "message" and event["message"]["role"] == "shopper":
                    break
            assert event["message"]["text"] == "收到，谢谢"
            agent.post(f"/conversations/{cid}/close", {"disposition": "resolved"})
        finally:
            await agent_ws.close()
    finally:
        await shopper.close()
        agent.offline()
