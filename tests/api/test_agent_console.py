"""The agent console pages against the scripted engine: who may open them, CSRF on every
form, the inbox and conversation view, the canned-response picker with placeholders filled
from the conversation, typing, notes, tags, close with the satisfaction question, the
library that supervisors edit, and stored XSS rendered as text on every console page."""

from __future__ import annotations

import html
import secrets
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import session_scope
from bot.models import Customer
from bot.models.crm import CustomerTag
from bot.models.handoff import Csat
from bot.services import agent_desk, canned
from tests.api.conftest import FakeEngine, customer_token
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

PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
OTHER_CONSOLES = (
    "/console/admin/staff",
    "/console/segments",
    "/console/review",
    "/console/analytics",
    "/console/models",
)


def page(
    client: TestClient,
    who: AgentClient,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    return client.get(
        path, headers={"cookie": f"kefu_staff={who.token}", **(headers or {})}, **kwargs
    )


def form(client: TestClient, who: AgentClient, path: str, data: dict[str, str]) -> Any:
    return client.post(
        path,
        data={"csrf_token": who.csrf, **data},
        headers={"cookie": f"kefu_staff={who.token}"},
        follow_redirects=False,
    )


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(text)
    return parser.found


def no_inline_script(text: str) -> None:
    """No element a payload could have made: scripts only from /static/, no event-handler
    attributes, no images."""
    for tag, attrs in elements(text):
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        assert tag != "img", attrs
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)


@pytest.fixture
def manual_assignment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Conversations wait in the queue until an agent claims them."""
    monkeypatch.setattr(settings, "handoff_auto_assign", False)


def test_pages_by_role(client: TestClient) -> None:
    assert client.get("/console/agent", follow_redirects=False).status_code == 303
    for role in ("agent", "supervisor"):
        who = AgentClient(client, role.title(), role=role)
        for path in ("/console/agent", "/console/agent/canned", "/console/agent?lang=en"):
            found = page(client, who, path)
            assert found.status_code == 200, (role, path)
            assert "script-src 'self'" in found.headers["Content-Security-Policy"]
            no_inline_script(found.text)
        inbox = page(client, who, "/console/agent?lang=en")
        assert "Tickets left off-hours" in inbox.text and "My conversations" in inbox.text
        assert inbox.cookies.get("kefu_console_lang") == "en"
        assert "排队中" in page(client, who, "/console/agent?lang=zh").text
        assert page(client, who, "/console/agent/c/nope").status_code == 404
    for role in ("ops", "admin"):
        who = AgentClient(client, role.title(), role=role)
        assert page(client, who, "/console/agent").status_code == 403
        assert page(client, who, "/console/agent/canned").status_code == 403


@pytest.mark.parametrize("path", OTHER_CONSOLES)
def test_an_agent_cannot_open_the_other_consoles(client: TestClient, path: str) -> None:
    agent = AgentClient(client, "Nosy")
    status = page(client, agent, path).status_code
    if status == 404:
        pytest.skip(f"{path} is not built yet")
    assert status == 403


@pytest.mark.usefixtures("open_hours", "manual_assignment")
def test_an_agent_works_a_conversation_in_the_console(
    client: TestClient, engine: FakeEngine
) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Lin")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws, customer_token=customer_token("C00002"), language="en")["conversation_id"]
        queued = send(ws, "转人工")
        assert any(f.get("type") == "handoff" and f.get("state") == "queued" for f in queued)

        inbox = page(client, agent, "/console/agent")
        assert f'data-cid="{cid}"' in inbox.text and "Emily Chen" in inbox.text
        assert "顾客要求转人工" in inbox.text  # the handoff reason, labelled
        fragment = page(client, agent, "/console/agent", headers={"HX-Request": "true"})
        assert fragment.text.lstrip().startswith('<div id="inbox-lists"')

        view = page(client, agent, f"/console/agent/c/{cid}?lang=en")
        assert view.status_code == 200
        assert "human_agent" in view.text and "0.90" in view.text  # the bot's understanding
        assert "the shopper asked for a person" in view.text  # the summary's reason
        assert 'data-owned="0"' in view.text and 'id="claim"' in view.text
        assert "Emily Chen" in view.text and "Marketing consent" in view.text

        # Not yours yet: no typing, no picker values for someone else's chat.
        refused = client.post(
            f"/api/agent/conversations/{cid}/typing", json={"on": True}, headers=agent.headers
        )
        assert refused.status_code == 409

        assert form(client, agent, f"/console/agent/c/{cid}/claim", {}).status_code == 303
        frames_until(ws, lambda f: f.get("type") == "handoff" and f.get("state") == "agent")
        owned = page(client, agent, f"/console/agent/c/{cid}")
        assert 'data-owned="1"' in owned.text and 'id="handback"' in owned.text
        assert cid in page(client, agent, "/console/agent").text

        # Typing reaches the shopper; the message turns it off.
        agent.post(f"/conversations/{cid}/typing", {"on": True})
        frames_until(ws, lambda f: f == {"type": "typing", "on": True})

        picked = page(client, agent, f"/console/agent/c/{cid}/canned", params={"q": "/delay"})
        results = picked.json()["results"]
        first = results[0]
        assert (first["shortcode"], first["language"]) == ("delay", "en")  # the chat's language
        assert "Hi Emily Chen" in first["text"] and "{" not in first["text"]
        values = _values(cid, agent.id)
        if values["order_no"]:
            assert values["order_no"] in first["text"]
        assert first["missing"] == [k for k in ("order_no", "delay_reason") if not values[k]]
        zh = page(client, agent, f"/console/agent/c/{cid}/canned", params={"q": "延误"})
        assert any(r["language"] == "zh" for r in zh.json()["results"])
        hello = page(client, agent, f"/console/agent/c/{cid}/canned", params={"q": "hi"})
        hi = next(r for r in hello.json()["results"] if r["language"] == "en")
        assert "this is Lin from customer service" in hi["text"]

        agent.post(f"/conversations/{cid}/messages", {"text": first["text"]})
        frames = frames_until(ws, lambda f: f == {"type": "typing", "on": False})
        assert any(
            f.get("type") == "message" and f["message"]["text"] == first["text"] for f in frames
        )

        # Private notes and tags stay with the staff.
        assert (
            form(client, agent, f"/console/agent/c/{cid}/notes", {"text": "wants a call"})
        ).status_code == 303
        form(client, agent, f"/console/agent/c/{cid}/tags", {"tag": "Delay"})
        form(
            client, agent, f"/console/agent/c/{cid}/tags", {"tag": "likes-sms", "scope": "customer"}
        )
        bad_tag = form(client, agent, f"/console/agent/c/{cid}/tags", {"tag": "a b"})
        assert bad_tag.status_code == 303 and "error=" in bad_tag.headers["location"]
        shown = page(client, agent, bad_tag.headers["location"])
        assert "a tag is 1 to 64" in shown.text and 'role="alert"' in shown.text
        again = page(client, agent, f"/console/agent/c/{cid}")
        assert "wants a call" in again.text and ">delay" in again.text and "likes-sms" in again.text
        with session_scope() as session:
            tag = session.scalar(select(CustomerTag).where(CustomerTag.tag == "likes-sms"))
            assert tag is not None and tag.source == "agent"
            session.delete(tag)

        # Close with a disposition and the satisfaction question; the shopper's rating counts.
        closed = form(
            client, agent, f"/console/agent/c/{cid}/close",
            {"disposition": "resolved", "ask_csat": "1"},
        )  # fmt: skip
        assert closed.status_code == 303
        asked = frames_until(
            ws, lambda f: f.get("type") == "message" and bool(f["message"].get("buttons"))
        )
        buttons = asked[-1]["message"]["buttons"]
        assert [b["title"] for b in buttons] == ["1", "2", "3", "4", "5"]
        assert "wants a call" not in str(asked)  # the note never went to the shopper
        send(ws, "4", payload=buttons[3]["payload"])
    with session_scope() as session:
        csat = session.scalars(select(Csat).where(Csat.conversation_id == cid)).one()
        assert (csat.score, csat.agent_id) == (4, agent.id)


def _values(cid: str, agent_id: int) -> dict[str, str | None]:
    with session_scope() as session:
        return agent_desk.placeholder_values(
            session=session, conversation_id=cid, agent_id=agent_id, language="en"
        )


@pytest.mark.usefixtures("open_hours", "manual_assignment")
def test_hand_back_from_the_console(client: TestClient, engine: FakeEngine) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    agent = AgentClient(client, "Back")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
        send(ws, "转人工")
        assert form(client, agent, f"/console/agent/c/{cid}/claim", {}).status_code == 303
        assert form(client, agent, f"/console/agent/c/{cid}/handback", {}).status_code == 303
        frames_until(ws, lambda f: f.get("type") == "handoff" and f.get("state") == "bot")
        # The bot takes over and asks for a rating (the hand-back turn) ...
        asked = frames_until(ws, lambda f: f == {"type": "typing", "on": False})
        assert any(f.get("type") == "message" and f["message"].get("buttons") for f in asked)
        frames = send(ws, "你好")  # ... and answers the shopper again
        assert any(
            f.get("type") == "message" and f["message"]["text"] == "bot: 你好" for f in frames
        )
    view = page(client, agent, f"/console/agent/c/{cid}")
    assert 'data-owned="0"' in view.text and 'data-state="bot"' in view.text


def test_every_form_needs_the_csrf_token(client: TestClient) -> None:
    agent = AgentClient(client, "Forms")
    supervisor = AgentClient(client, "Boss", role="supervisor")
    cookie = {"cookie": f"kefu_staff={agent.token}"}
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws)["conversation_id"]
    for path, data in (
        (f"/console/agent/c/{cid}/claim", {}),
        (f"/console/agent/c/{cid}/notes", {"text": "x"}),
        (f"/console/agent/c/{cid}/tags", {"tag": "x"}),
        (f"/console/agent/c/{cid}/reply", {"text": "x"}),
        (f"/console/agent/c/{cid}/handback", {}),
        (f"/console/agent/c/{cid}/close", {"disposition": "spam"}),
        ("/console/agent/status", {"status": "online"}),
    ):
        for token in ("", "wrong"):
            response = client.post(
                path, data={**data, "csrf_token": token}, headers=cookie, follow_redirects=False
            )
            assert response.status_code == 422, (path, token)
    boss = {"cookie": f"kefu_staff={supervisor.token}"}
    new = {"shortcode": "x1", "language": "en", "title": "t", "body": "b"}
    assert client.post("/console/agent/canned", data=new, headers=boss).status_code == 422
    with session_scope() as session:
        assert agent_desk.notes(session=session, conversation_id=cid) == []


def test_supervisors_edit_the_library_and_agents_only_use_it(client: TestClient) -> None:
    agent = AgentClient(client, "User")
    supervisor = AgentClient(client, "Editor", role="supervisor")
    code = f"t{secrets.token_hex(3)}"
    new = {"shortcode": code, "language": "zh", "title": "测试", "body": "您好{name}"}
    assert form(client, agent, "/console/agent/canned", new).status_code == 403
    listing = page(client, agent, "/console/agent/canned")
    assert "/delay" in listing.text and 'method="post"' not in listing.text.split("<main>")[1]

    assert form(client, supervisor, "/console/agent/canned", new).status_code == 303
    with session_scope() as session:
        made = next(r for r in canned.list_responses(session=session) if r.shortcode == code)
    assert made.updated_by == supervisor.id and made.placeholders == ("name",)
    duplicate = form(client, supervisor, "/console/agent/canned", new)
    assert duplicate.status_code == 400 and "already exists" in duplicate.text
    unknown = form(
        client,
        supervisor,
        "/console/agent/canned",
        {**new, "shortcode": code + "b", "body": "{nom}"},
    )
    assert unknown.status_code == 400 and "unknown placeholder {nom}" in unknown.text
    edited = form(
        client, supervisor, "/console/agent/canned",
        {**new, "canned_id": str(made.id), "body": "您好{name}，订单{order_no}"},
    )  # fmt: skip
    assert edited.status_code == 303
    searched = page(client, supervisor, "/console/agent/canned", params={"q": code})
    assert "订单{order_no}" in searched.text
    assert form(client, agent, f"/console/agent/canned/{made.id}/delete", {}).status_code == 403
    assert (
        form(client, supervisor, f"/console/agent/canned/{made.id}/delete", {}).status_code == 303
    )
    assert code not in page(client, supervisor, "/console/agent/canned").text


@pytest.mark.usefixtures("open_hours", "manual_assignment")
def test_stored_xss_renders_as_text_on_every_console_page(
    client: TestClient, engine: FakeEngine
) -> None:
    intent_script(engine, 转人工=("human_agent", HANDOFF))
    external_id = f"CX{secrets.token_hex(4)}"
    with session_scope() as session:
        session.add(
            Customer(external_id=external_id, name=PAYLOADS[1] + PAYLOADS[0], language="zh")
        )
    agent = AgentClient(client, "Xss")
    supervisor = AgentClient(client, "XssBoss", role="supervisor")
    agent.status("online")
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        cid = _hello(ws, customer_token=customer_token(external_id))["conversation_id"]
        for payload in PAYLOADS:
            send(ws, payload)
        send(ws, "转人工")
    for payload in PAYLOADS:
        form(client, agent, f"/console/agent/c/{cid}/notes", {"text": payload})
    form(client, agent, f"/console/agent/c/{cid}/claim", {})
    form(client, supervisor, "/console/agent/canned",
         {"shortcode": f"x{secrets.token_hex(3)}", "language": "en", "title": PAYLOADS[0],
          "body": PAYLOADS[1]})  # fmt: skip
    pages = [
        page(client, agent, f"/console/agent/c/{cid}"),
        page(client, agent, "/console/agent"),
        page(client, supervisor, "/console/agent/canned"),
        page(client, agent, "/console/agent/canned"),
    ]
    with client.websocket_connect("/api/chat/ws", headers=ORIGIN) as ws:
        other = _hello(ws, customer_token=customer_token(external_id))["conversation_id"]
        send(ws, "转人工")
    pages.append(page(client, agent, "/console/agent"))  # the payload name in the queue
    pages.append(page(client, agent, f"/console/agent/c/{other}"))  # past conversations
    for response in pages:
        assert response.status_code == 200
        for payload in PAYLOADS:
            assert payload not in response.text
        no_inline_script(response.text)
    conversation = pages[0].text
    for payload in PAYLOADS:
        assert conversation.count(html.escape(payload, quote=True)) >= 2  # message, note
    assert html.escape(PAYLOADS[1] + PAYLOADS[0], quote=True) in conversation  # the name
    assert html.escape(PAYLOADS[0], quote=True) in pages[-2].text  # the queue's last message
