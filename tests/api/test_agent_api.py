"""The agent API's guard rails: the staff session, roles, the CSRF header, conflicts, and
the agent socket's live events; and the Redis event hub between two workers' hubs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.events import EventHub, RedisEventHub, make_hub
from bot.settings import Settings
from tests.api.conftest import FakeEngine
from tests.api.test_handoff import (  # noqa: F401 - fixtures: reset the queue, the clock
    HANDOFF,
    AgentClient,
    frames_until,
    intent_script,
    nobody_waiting,
    open_hours,
    send,
)
from tests.api.test_socket import ORIGIN, _hello


def test_the_agent_api_needs_a_staff_session_of_an_agent_role(client: TestClient) -> None:
    assert client.get("/api/agent/queue").status_code == 401
    assert client.get("/api/agent/queue").json()["error"]["code"] == "not_authenticated"
    forged = client.get("/api/agent/queue", headers={"cookie": "kefu_staff=forged"})
    assert forged.status_code == 401
    ops = AgentClient(client, "Ops", role="ops")
    assert client.get("/api/agent/queue", headers=ops.headers).status_code == 403
    for role in ("agent", "supervisor", "admin"):
        who = AgentClient(client, role.title(), role=role)
        assert client.get("/api/agent/queue", headers=who.headers).status_code == 200


def test_unsafe_methods_need_the_csrf_header(client: TestClient) -> None:
    agent = AgentClient(client, "Csrf")
    me = agent.get("/me")
    assert me["csrf_token"] == agent.csrf and me["agent"]["status"] == "offline"
    cookie = {"cookie": f"kefu_staff={agent.token}"}
    body = {"status": "online"}
    assert client.put("/api/agent/status", json=body, headers=cookie).status_code == 403
    wrong = {**cookie, "x-csrf-token": "nope"}
    assert client.put("/api/agent/status", json=body, headers=wrong).status_code == 403
    assert agent.status("online", capacity=2)["agent"] == {
        "id": agent.id,
        "name": "Csrf",
        "status": "online",
        "capacity": 2,
        "load": 0,
    }
    agent.status("offline")


def test_conflicts_are_409_and_unknown_conversations_404(
    client: TestClient, engine: FakeEngine
) -> None:
    intent_script(engine)
    first, second = AgentClient(client, "First"), AgentClient(client, "Second")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "hello")
    first.post(f"/conversations/{cid}/claim")
    assert second.post(f"/conversations/{cid}/claim", status=409)["error"]["code"] == "conflict"
    second.post(f"/conversations/{cid}/messages", {"text": "hi"}, status=409)
    second.post(f"/conversations/{cid}/handback", status=409)
    second.post("/conversations/nope/claim", status=404)
    first.post(f"/conversations/{cid}/messages", {"text": ""}, status=422)
    first.post(f"/conversations/{cid}/close", {"disposition": "spam"})


@pytest.mark.usefixtures("open_hours")
def test_the_agent_socket_sees_the_queue_grow(
    client: TestClient, engine: FakeEngine, settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(settings, "handoff_auto_assign", False)
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Watcher")
    agent.status("online")
    with agent.socket() as agent_ws:
        hello = agent_ws.receive_json()
        assert hello["type"] == "hello" and hello["queue"] == []
        with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
            cid = _hello(ws)["conversation_id"]
            send(ws, "转人工")
        queued = frames_until(agent_ws, lambda f: f["type"] == "queue" and bool(f["queue"]))
        assert queued[-1]["queue"][0]["conversation_id"] == cid
        agent_ws.send_json({"type": "ping"})
        frames_until(agent_ws, lambda f: f["type"] == "pong")
    refused = client.get("/api/agent/ws")  # not a socket upgrade
    assert refused.status_code in (400, 404, 405)


def test_make_hub_picks_the_transport() -> None:
    assert type(make_hub(Settings(secret_key="k", store_token_secret="s"))) is EventHub
    redis = Settings(secret_key="k", store_token_secret="s", redis_url="redis://127.0.0.1:1/0")
    assert isinstance(make_hub(redis), RedisEventHub)


async def test_redis_hub_delivers_across_workers_in_order(redis_url: str) -> None:
    one, two = RedisEventHub(redis_url), RedisEventHub(redis_url)
    await one.start()
    await two.start()
    try:
        here = one.subscribe("conv-1")
        there = two.subscribe("conv-1")
        elsewhere = two.subscribe("conv-2")
        for i in range(20):
            one.publish("conv-1", {"type": "message", "n": i})
        got_there = [await asyncio.wait_for(there.get(), 5) for _ in range(20)]
        got_here = [await asyncio.wait_for(here.get(), 5) for _ in range(20)]
        assert [e["n"] for e in got_there] == list(range(20))
        assert got_here == got_there
        assert elsewhere.empty()
        two.unsubscribe("conv-1", there)
        one.publish("conv-1", {"n": "after"})
        assert (await asyncio.wait_for(here.get(), 5))["n"] == "after"
        assert there.empty()
    finally:
        await one.aclose()
        await two.aclose()


@pytest.mark.usefixtures("open_hours")
def test_an_agent_whose_console_closes_goes_offline_after_the_grace(
    client: TestClient, engine: FakeEngine, settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(settings, "agent_offline_grace_seconds", 0.3)
    intent_script(engine)
    agent = AgentClient(client, "Leaving")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "hello")
        with agent.socket() as agent_ws:
            agent_ws.receive_json()
            agent.post(f"/conversations/{cid}/claim")
        # A reload within the grace keeps everything as it was.
        with agent.socket() as agent_ws:
            agent_ws.receive_json()
            time.sleep(0.5)
            assert agent.get("/me")["agent"]["status"] == "online"
        frames = frames_until(ws, lambda f: f["type"] == "handoff" and f["state"] == "queued")
        assert frames[-1]["position"] >= 1
    assert agent.get("/me")["agent"]["status"] == "offline"


def test_live_conversations_include_the_bots_to_take_over(
    client: TestClient, engine: FakeEngine
) -> None:
    intent_script(engine)
    agent = AgentClient(client, "Supervisor", role="supervisor")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "where is my parcel")
    live = agent.get("/live?state=bot")["conversations"]
    mine = next(c for c in live if c["conversation_id"] == cid)
    assert mine["state"] == "bot" and mine["last_message"] == "where is my parcel"
    agent.post(f"/conversations/{cid}/claim")
    assert all(c["conversation_id"] != cid for c in agent.get("/live?state=bot")["conversations"])
    assert any(c["conversation_id"] == cid for c in agent.get("/live")["conversations"])
