"""Handoff through the gateway, against the scripted engine: triggers, the queue the shopper
sees, takeover (with a bot reply in flight), agent messages, cancel, tickets outside service
hours, and the hand-back with its satisfaction question."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from starlette.testclient import WebSocketTestSession

from bot.db import session_scope
from bot.models import Conversation, Message
from bot.models.handoff import AgentStatus, Csat, Handoff, Ticket
from bot.services import handoff as handoff_service
from bot.services import staff as staff_service
from tests.api.conftest import FakeEngine, customer_token
from tests.api.test_socket import ORIGIN, _hello

OPEN = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)  # 14:00 in Shanghai
NIGHT = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)  # 22:30 in Shanghai
CSAT_BUTTONS = [
    {"title": str(n), "payload": f'/csat_score{{"csat_score":"{n}"}}'} for n in range(1, 6)
]


class AgentClient:
    """A staff member logged in through the staff service, calling the agent API."""

    def __init__(self, client: TestClient, name: str, role: str = "agent") -> None:
        self.client = client
        email = f"{name.lower()}-{secrets.token_hex(4)}@kefu.test"
        with session_scope() as session:
            staff = staff_service.create_staff(
                session=session, email=email, name=name, role=role, password="correct horse 1"
            )
            token, view = staff_service.log_in(  # type: ignore[misc]
                session=session, email=email, password="correct horse 1", ip="test"
            )
        self.id, self.name, self.token, self.csrf = staff.id, name, token, view.csrf_token

    @property
    def headers(self) -> dict[str, str]:
        return {"cookie": f"kefu_staff={self.token}", "x-csrf-token": self.csrf}

    def get(self, path: str) -> Any:
        response = self.client.get(f"/api/agent{path}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        response = self.client.post(f"/api/agent{path}", json=body or {}, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()

    def status(self, status: str, capacity: int | None = None) -> Any:
        body: dict[str, Any] = {"status": status}
        if capacity is not None:
            body["capacity"] = capacity
        response = self.client.put("/api/agent/status", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def socket(self) -> Any:
        return self.client.websocket_connect(
            "/api/agent/ws", headers={**ORIGIN, "cookie": f"kefu_staff={self.token}"}
        )


@pytest.fixture(autouse=True)
def nobody_waiting() -> Iterator[None]:
    """The API tests share one database: no agent online, nobody queued, around each test."""

    def reset() -> None:
        with session_scope() as session:
            session.execute(update(AgentStatus).values(status="offline"))
            session.execute(
                update(Conversation)
                .where(Conversation.state.in_(("queued", "agent")))
                .values(state="closed")
            )
            session.execute(update(Handoff).where(Handoff.state != "ended").values(state="ended"))

    reset()
    yield
    reset()


@pytest.fixture
def open_hours(client: TestClient) -> Callable[[datetime], None]:
    def set_clock(moment: datetime) -> None:
        client.app.state.handoff.clock = lambda: moment  # type: ignore[attr-defined]

    set_clock(OPEN)
    return set_clock


def intent_script(engine: FakeEngine, **by_text: tuple[str, list[dict[str, Any]]]) -> None:
    """Answer by the message text: (intent, extra replies); anything else echoes."""

    def script(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("control") == "handback":
            return {
                "replies": [{"text": "How satisfied were you?", "buttons": CSAT_BUTTONS}],
                "nlu": {"intent": "EXTERNAL_handback"},
                "actions": ["action_deactivate_loop", "utter_ask_csat"],
            }
        intent, extra = by_text.get(body["text"], ("greet", []))
        return {
            "replies": [{"text": f"bot: {body['text']}"}, *extra],
            "nlu": {"intent": intent, "confidence": 0.9},
            "actions": [],
            "language": body["metadata"].get("language") or "zh",
        }

    engine.script = script


HANDOFF = [{"custom": {"kefu": {"handoff": "requested"}}}]


def frames_until(
    ws: WebSocketTestSession, done: Callable[[dict[str, Any]], bool], limit: int = 40
) -> list[dict[str, Any]]:
    frames = []
    for _ in range(limit):
        frame = ws.receive_json()
        frames.append(frame)
        if done(frame):
            return frames
    raise AssertionError(f"not seen in {limit} frames: {frames}")


def send(ws: WebSocketTestSession, text: str, payload: str | None = None) -> list[dict[str, Any]]:
    """Send a shopper message; frames until the turn is over."""
    client_id = secrets.token_hex(6)
    frame: dict[str, Any] = {"type": "message", "client_id": client_id, "text": text}
    if payload:
        frame["payload"] = payload
    ws.send_json(frame)
    return frames_until(ws, lambda f: f == {"type": "typing", "on": False})


def conversation_row(cid: str) -> Conversation:
    with session_scope() as session:
        found = session.get(Conversation, cid)
        assert found is not None
        return found


def roles_after(cid: str, after_id: int = 0) -> list[str]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Message.role)
                .where(Message.conversation_id == cid, Message.id > after_id)
                .order_by(Message.id)
            )
        )


def last_id(cid: str) -> int:
    with session_scope() as session:
        return max(session.scalars(select(Message.id).where(Message.conversation_id == cid)))


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def expected_eta(settings: Any, position: int) -> int:
    with session_scope() as session:
        return handoff_service.eta_seconds(session=session, position=position, settings=settings)


def test_asking_for_a_person_queues_with_place_and_estimate(
    client: TestClient, engine: FakeEngine, open_hours: Any, settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(settings, "handoff_auto_assign", False)
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Wang")
    agent.status("online", capacity=1)
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        welcome = _hello(ws, customer_token=customer_token("C00003"))
        assert welcome["handoff"] == {"state": "bot"}
        cid = welcome["conversation_id"]
        frames = send(ws, "转人工")
        messages = [f["message"] for f in frames if f["type"] == "message"]
        assert [m["role"] for m in messages] == ["bot", "system"]
        assert "前面还有 0 位" in messages[1]["text"]
        handoff = next(f for f in frames if f["type"] == "handoff")
        assert handoff == {
            "type": "handoff",
            "state": "queued",
            "position": 1,
            # One agent seat online: one round of the recent average handling time.
            "eta_seconds": expected_eta(settings, position=1),
        }
        assert conversation_row(cid).state == "queued"
        queue = agent.get("/queue")["queue"]
        assert [e["conversation_id"] for e in queue] == [cid]
        assert queue[0]["reason"] == "requested" and queue[0]["customer"]["name"] == "李娜"
    # A reloaded widget is told it is waiting.
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        again = _hello(
            ws, visitor_token=welcome["visitor_token"], customer_token=customer_token("C00003")
        )
        assert again["conversation_id"] == cid
        assert again["handoff"]["state"] == "queued" and again["handoff"]["position"] == 1


def test_takeover_agent_chat_and_the_bot_stays_silent(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine)
    agent = AgentClient(client, "王芳")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "hello")
        calls = len(engine.calls)
        with agent.socket() as agent_ws:
            hello = agent_ws.receive_json()
            assert hello["type"] == "hello" and hello["agent"]["status"] == "online"
            agent.post(f"/conversations/{cid}/claim")
            joined = frames_until(ws, lambda f: f["type"] == "handoff")
            assert joined[-1] == {"type": "handoff", "state": "agent", "agent": {"name": "王芳"}}
            assert "王芳" in joined[0]["message"]["text"]
            frames_until(agent_ws, lambda f: f["type"] == "assigned")
            before = last_id(cid)
            for text in ("are you there?", "hello??"):
                ws.send_json({"type": "message", "client_id": secrets.token_hex(4), "text": text})
                frames_until(ws, lambda f: f["type"] == "ack")
                seen = frames_until(agent_ws, lambda f: f["type"] == "message")
                assert seen[-1]["conversation_id"] == cid
                assert seen[-1]["message"]["text"] == text
            agent.post(f"/conversations/{cid}/messages", {"text": "您好，我是王芳"})
            got = frames_until(ws, lambda f: f["type"] == "message")[-1]["message"]
            assert (got["role"], got["author"], got["text"]) == ("agent", "王芳", "您好，我是王芳")
        assert len(engine.calls) == calls  # the engine was never asked
        assert roles_after(cid, before) == ["shopper", "shopper", "agent"]
        detail = agent.get(f"/conversations/{cid}")
        assert [m["role"] for m in detail["messages"]][:2] == ["shopper", "bot"]  # the history
        mine = agent.get("/conversations")["conversations"]
        assert [c["conversation_id"] for c in mine] == [cid]


def test_a_bot_reply_in_flight_at_takeover_is_dropped(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine)
    engine.delay = 0.6  # under the 1 s deadline: the reply does come back
    agent = AgentClient(client, "Li")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        calls = len(engine.calls)
        ws.send_json({"type": "message", "client_id": "slow", "text": "where is my order"})
        assert ws.receive_json()["type"] == "ack"
        wait_for(lambda: len(engine.calls) > calls)  # the engine is answering now
        agent.post(f"/conversations/{cid}/claim")
        frames = frames_until(ws, lambda f: f == {"type": "typing", "on": False})
        assert not [f for f in frames if f["type"] == "message" and f["message"]["role"] == "bot"]
        assert [f["state"] for f in frames if f["type"] == "handoff"] == ["agent"]
    assert "bot" not in roles_after(cid)
    with session_scope() as session:
        shopper = session.scalars(
            select(Message).where(Message.conversation_id == cid, Message.role == "shopper")
        ).one()
        assert shopper.status == "done"  # answered by nobody, but not lost: the agent has it


def test_cancel_goes_back_to_the_bot(
    client: TestClient, engine: FakeEngine, open_hours: Any, settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(settings, "handoff_auto_assign", False)
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    AgentClient(client, "Zhao").status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        welcome = _hello(ws)
        cid = welcome["conversation_id"]
        send(ws, "转人工")
        ws.send_json({"type": "handoff_cancel"})
        frames = frames_until(ws, lambda f: f["type"] == "handoff")
        assert frames[-1] == {"type": "handoff", "state": "bot"}
        assert conversation_row(cid).state == "bot"
        ws.send_json({"type": "handoff_cancel"})
        assert ws.receive_json()["code"] == "not_queued"
        replies = [f["message"]["text"] for f in send(ws, "hello") if f["type"] == "message"]
        assert replies == ["bot: hello"]
        # Over HTTP too.
        send(ws, "转人工")
        headers = {"authorization": f"Bearer {welcome['visitor_token']}"}
        body = client.post("/api/chat/handoff/cancel", headers=headers).json()
        assert body == {"cancelled": True, "handoff": {"state": "bot"}}


def test_outside_service_hours_a_ticket_is_taken(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    open_hours(NIGHT)
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Qian")
    agent.status("online")  # online, but it is 22:30
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        welcome = _hello(ws)
        cid = welcome["conversation_id"]
        frames = send(ws, "转人工")
        offline = next(f for f in frames if f["type"] == "handoff")
        assert offline["state"] == "offline" and offline["ticket_id"]
        notice = [f["message"]["text"] for f in frames if f["type"] == "message"][-1]
        assert "09:00–21:00" in notice
        calls = len(engine.calls)
        replies = send(ws, "我的电话 13800138000，尺码发错了")
        texts = [f["message"]["text"] for f in replies if f["type"] == "message"]
        assert len(texts) == 1 and "13800138000" in texts[0]
        assert len(engine.calls) == calls  # the gateway took the number itself
    tickets = agent.get("/tickets")["tickets"]
    mine = next(t for t in tickets if t["conversation_id"] == cid)
    assert mine["callback_phone"] == "13800138000" and "尺码" in mine["note"]
    assert conversation_row(cid).needs_human
    # The HTTP form adds to the same ticket.
    headers = {"authorization": f"Bearer {welcome['visitor_token']}"}
    body = client.post(
        "/api/chat/ticket", json={"phone": "139-0000-1111", "note": "晚上也行"}, headers=headers
    ).json()
    assert body["ticket_id"] == mine["id"]
    closed = agent.post(f"/tickets/{mine['id']}/close", {"resolution": "called back"})
    assert closed["ticket"]["state"] == "done"


def test_hand_back_asks_for_satisfaction_then_the_bot_resumes(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Sun")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws, language="en")["conversation_id"]
        frames = send(ws, "转人工")
        # Auto-assigned at once: queued, then the agent joins.
        assert [f["state"] for f in frames if f["type"] == "handoff"][-1] == "agent"
        agent.post(f"/conversations/{cid}/handback")
        frames = frames_until(ws, lambda f: f == {"type": "typing", "on": False})
        assert {"type": "handoff", "state": "bot"} in frames
        question = [f["message"] for f in frames if f["type"] == "message"][-1]
        assert question["buttons"] == CSAT_BUTTONS
        assert engine.calls[-1]["control"] == "handback"
        assert engine.calls[-1]["text"] == "/EXTERNAL_handback"
        calls = len(engine.calls)
        thanks = [
            f["message"]
            for f in send(ws, "4", payload=CSAT_BUTTONS[3]["payload"])
            if f["type"] == "message"
        ]
        assert "Thanks for rating" in thanks[-1]["text"]
        done = [f["message"] for f in send(ws, "very patient, thanks") if f["type"] == "message"]
        assert "Thanks for your feedback" in done[-1]["text"]
        assert len(engine.calls) == calls
        normal = [f["message"]["text"] for f in send(ws, "hello") if f["type"] == "message"]
        assert normal == ["bot: hello"]
    with session_scope() as session:
        csat = session.scalars(select(Csat).where(Csat.conversation_id == cid)).one()
        assert (csat.score, csat.comment, csat.agent_id) == (4, "very patient, thanks", agent.id)
    assert conversation_row(cid).state == "bot"


@pytest.mark.parametrize(
    ("texts", "reply_intent", "extra", "reason"),
    [
        (
            ["I want to complain, this is absolutely disgusting and outrageous!!"],
            "complaint",
            [],
            "angry_complaint",
        ),
        (["blorp", "zzzq"], "nlu_fallback", [], "fallback"),
        (["my parcel is late"], "shipping_delay", [], "vip"),
        (["x"], "complaint", [{"custom": {"kefu": {"handoff": "complaint"}}}], "complaint"),
    ],
)
def test_triggers_queue_the_conversation(
    client: TestClient,
    engine: FakeEngine,
    open_hours: Any,
    texts: list[str],
    reply_intent: str,
    extra: list[dict[str, Any]],
    reason: str,
) -> None:
    intent_script(engine, **{t: (reply_intent, extra) for t in texts})
    AgentClient(client, "Zhou").status("online", capacity=0)  # online, no room: stays queued
    customer = "C00002" if reason == "vip" else "C00003"
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws, customer_token=customer_token(customer))["conversation_id"]
        for text in texts:
            send(ws, text)
    assert conversation_row(cid).state == "queued"
    with session_scope() as session:
        handoff = session.scalars(select(Handoff).where(Handoff.conversation_id == cid)).one()
        assert handoff.reason == reason
        assert handoff.vip is (customer == "C00002")


def test_a_failed_turn_queues_for_a_person(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    engine.script = lambda body: 503
    AgentClient(client, "Wu").status("online", capacity=0)
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws, language="en")["conversation_id"]
        frames = send(ws, "where is my order")
    texts = [f["message"]["text"] for f in frames if f["type"] == "message"]
    assert "flagged this chat for a colleague" in texts[0]
    assert "in line" in texts[1]
    with session_scope() as session:
        handoff = session.scalars(select(Handoff).where(Handoff.conversation_id == cid)).one()
        assert handoff.reason == "turn_failed:unavailable"


def test_going_offline_returns_the_conversation_to_the_queue(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Zheng")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "转人工")
        assert conversation_row(cid).state == "agent"
        agent.status("offline")
        frames = frames_until(ws, lambda f: f["type"] == "handoff")
        assert frames[-1]["state"] == "queued"
        assert conversation_row(cid).state == "queued"
        # Another agent comes online and gets it.
        other = AgentClient(client, "Feng")
        other.status("online")
        frames = frames_until(ws, lambda f: f["type"] == "handoff" and f["state"] == "agent")
        assert frames[-1]["agent"] == {"name": "Feng"}


def test_close_with_a_disposition_then_writing_again_reopens(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Chen")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "转人工")
        agent.post(f"/conversations/{cid}/close", {"disposition": "nonsense"}, status=422)
        agent.post(f"/conversations/{cid}/close", {"disposition": "resolved"})
        frames = frames_until(ws, lambda f: f["type"] == "handoff")
        assert frames[-1] == {"type": "handoff", "state": "closed"}
        assert conversation_row(cid).state == "closed"
        replies = [f["message"]["text"] for f in send(ws, "hello") if f["type"] == "message"]
        assert replies == ["bot: hello"]
    with session_scope() as session:
        handoff = session.scalars(select(Handoff).where(Handoff.conversation_id == cid)).one()
        assert (handoff.outcome, handoff.disposition) == ("closed", "resolved")
    assert conversation_row(cid).state == "bot"


def test_tickets_are_listed_and_nothing_dropped_when_nobody_is_online(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "转人工")
    with session_scope() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.conversation_id == cid)).one()
        assert ticket.state == "open" and ticket.callback_phone is None
    agent = AgentClient(client, "Han")
    assert any(t["conversation_id"] == cid for t in agent.get("/tickets")["tickets"])


def test_hand_back_asks_for_satisfaction_even_when_the_engine_is_down(
    client: TestClient, engine: FakeEngine, open_hours: Any
) -> None:
    intent_script(engine)
    agent = AgentClient(client, "Jiang")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "hello")
        agent.post(f"/conversations/{cid}/claim")
        engine.script = lambda body: 503
        agent.post(f"/conversations/{cid}/handback")
        frames = frames_until(
            ws, lambda f: f["type"] == "message" and bool(f["message"].get("buttons"))
        )
        question = frames[-1]["message"]
        assert "满意" in question["text"] and question["buttons"] == CSAT_BUTTONS
