"""The privacy API (api/routes/privacy.py): consent from the widget and from agents, the
admin's customer export, and logs that never carry a shopper's phone number."""

from __future__ import annotations

import io
import json
import logging
import secrets
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.logs import JsonFormatter, MaskingFilter
from bot.db import session_scope
from bot.models.privacy import AuditEvent
from bot.services import consent
from bot.services import staff as staff_service
from tests.api.conftest import FakeEngine, customer_token

PASSWORD = "correct horse 1"


class Staff:
    """A staff member with a live console session."""

    def __init__(self, role: str) -> None:
        email = f"privacy-{role}-{secrets.token_hex(4)}@kefu.test"
        with session_scope() as session:
            staff = staff_service.create_staff(
                session=session, email=email, name=role.title(), role=role, password=PASSWORD
            )
            result = staff_service.log_in(session=session, email=email, password=PASSWORD, ip="t")
            assert result is not None
            token, view = result
        self.id = staff.id
        self.cookie = {"cookie": f"kefu_staff={token}"}
        self.headers = {**self.cookie, "x-csrf-token": view.csrf_token}


def _visitor(client: TestClient, external_id: str | None) -> dict[str, str]:
    body: dict[str, Any] = {"customer_token": customer_token(external_id)} if external_id else {}
    opened = client.post("/api/chat/session", json=body)
    assert opened.status_code == 200, opened.text
    return {"authorization": f"Bearer {opened.json()['visitor_token']}"}


def _customer_id(external_id: str) -> int:
    with session_scope() as session:
        return consent.customer_id_for(session=session, external_id=external_id)


def _has_consent(external_id: str) -> bool:
    cid = _customer_id(external_id)
    with session_scope() as session:
        yes = consent.has_marketing_consent(session=session, customer_id=cid)
        in_segment = cid in consent.consenting_customer_ids(session=session, customer_ids={cid})
    assert yes == in_segment
    return yes


def test_a_logged_in_shopper_gives_and_withdraws_consent(client: TestClient) -> None:
    headers = _visitor(client, "C00011")
    first = client.get("/api/chat/consent", headers=headers)
    assert first.status_code == 200
    assert first.json()["marketing"] is False and first.json()["consent"] is None

    given = client.post("/api/chat/consent", json={"marketing": True}, headers=headers)
    assert given.status_code == 200
    body = given.json()
    assert body["marketing"] is True
    assert body["consent"]["source"] == "widget"
    assert body["consent"]["version"] == body["current_version"] == "2026-12"
    assert _has_consent("C00011")

    withdrawn = client.post("/api/chat/consent", json={"marketing": False}, headers=headers)
    assert withdrawn.json()["marketing"] is False
    # At once: the next query, the segment side too, sees the withdrawal.
    assert not _has_consent("C00011")
    assert client.get("/api/chat/consent", headers=headers).json()["marketing"] is False
    with session_scope() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.customer_id == _customer_id("C00011"))
        ).all()
    assert [(e.actor, e.action, e.detail["granted"]) for e in events] == [
        ("customer", "consent_change", True),
        ("customer", "consent_change", False),
    ]


def test_consent_needs_a_logged_in_shopper(client: TestClient) -> None:
    anonymous = _visitor(client, None)
    refused = client.post("/api/chat/consent", json={"marketing": True}, headers=anonymous)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"
    assert client.get("/api/chat/consent").status_code == 401
    forged = {"authorization": "Bearer v1.abc.123.forged"}
    assert client.get("/api/chat/consent", headers=forged).status_code == 401
    headers = _visitor(client, "C00012")
    bad = client.post("/api/chat/consent", json={"marketing": "maybe"}, headers=headers)
    assert bad.status_code == 422
    assert not _has_consent("C00012")


def test_agents_record_consent_with_their_session_and_csrf_token(client: TestClient) -> None:
    url = "/api/agent/customers/C00013/consent"
    assert client.post(url, json={"marketing": True}).status_code == 401
    ops = Staff("ops")
    assert client.post(url, json={"marketing": True}, headers=ops.headers).status_code == 403
    agent = Staff("agent")
    no_csrf = client.post(url, json={"marketing": True}, headers=agent.cookie)
    assert no_csrf.status_code == 403
    assert not _has_consent("C00013")

    given = client.post(url, json={"marketing": True}, headers=agent.headers)
    assert given.status_code == 200, given.text
    assert given.json()["consent"]["source"] == "agent"
    assert _has_consent("C00013")
    withdrawn = client.post(url, json={"marketing": False}, headers=agent.headers)
    assert withdrawn.json()["marketing"] is False
    assert not _has_consent("C00013")

    read = client.get(url, headers=agent.cookie)
    assert read.status_code == 200
    assert [h["granted"] for h in read.json()["history"]] == [True, False]
    with session_scope() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.customer_id == _customer_id("C00013"))
        ).all()
    assert {(e.actor, e.staff_id) for e in events} == {("staff", agent.id)}

    missing = client.post(
        "/api/agent/customers/NOBODY/consent", json={"marketing": True}, headers=agent.headers
    )
    assert missing.status_code == 404


def test_admins_export_everything_about_a_customer(client: TestClient) -> None:
    shopper = _visitor(client, "C00014")
    sent = client.post(
        "/api/chat/messages",
        headers=shopper,
        json={
            "client_id": "exp-1",
            "text": "我的订单到哪了",
            "customer_token": customer_token("C00014"),
        },
    )
    assert sent.status_code == 200, sent.text
    client.post("/api/chat/consent", json={"marketing": True}, headers=shopper)

    url = "/api/admin/customers/C00014/export"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=Staff("agent").cookie).status_code == 403
    admin = Staff("admin")
    response = client.get(url, headers=admin.cookie)
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["customer"] == {"external_id": "C00014"}
    assert document["profile"]["external_id"] == "C00014"
    assert document["orders"] and all("items" in o and "shipment" in o for o in document["orders"])
    assert all(o["items"] for o in document["orders"])
    texts = [m["text"] for c in document["conversations"] for m in c["messages"]]
    assert "我的订单到哪了" in texts
    assert [r["granted"] for r in document["records"]["consent"]] == [True]
    assert "visitor" in document["records"]
    assert document["not_included"] == ["rasa_tracker_events"]
    with session_scope() as session:
        exported = session.scalars(
            select(AuditEvent).where(
                AuditEvent.customer_id == _customer_id("C00014"), AuditEvent.action == "export"
            )
        ).all()
    assert [(e.actor, e.staff_id) for e in exported] == [("staff", admin.id)]
    assert client.get("/api/admin/customers/NOBODY/export", headers=admin.cookie).status_code == 404


def test_a_shoppers_phone_never_reaches_the_log(client: TestClient, engine: FakeEngine) -> None:
    # The handler api.logs.configure installed (pytest adds its own capturing ones).
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert any(isinstance(f, MaskingFilter) for f in handler.filters)
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        shopper = _visitor(client, "C00015")
        sent = client.post(
            "/api/chat/messages",
            headers=shopper,
            json={"client_id": "log-1", "text": "电话 13912345678，寄到上海市浦东新区张江路88号"},
        )
        assert sent.status_code == 200
        assert engine.calls and "13912345678" in engine.calls[-1]["text"]
        # Even code that forgot the rule: message, arguments, extra fields, tracebacks.
        log = logging.getLogger("kefu.test")
        log.warning("shopper said %s", "call 13912345678", extra={"text": "13912345678"})
        try:
            raise ValueError("bad value 13912345678")
        except ValueError:
            log.exception("failed for 13912345678")
    finally:
        handler.setStream(previous)
    output = buffer.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line.get("event") == "turn" for line in lines)
    assert any("139****5678" in line.get("exc", "") for line in lines)
    assert "13912345678" not in output
    assert "张江路88号" not in output
