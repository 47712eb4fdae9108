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
from tests.bot.test_erasure import FakeTrackers

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
    """Headers of a shopper: the visitor token, and the store's login token if logged in."""
    body: dict[str, Any] = {"customer_token": customer_token(external_id)} if external_id else {}
    opened = client.post("/api/chat/session", json=body)
    assert opened.status_code == 200, opened.text
    headers = {"authorization": f"Bearer {opened.json()['visitor_token']}"}
    if external_id:
        headers["x-customer-token"] = customer_token(external_id)
    return headers


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
    trackers = FakeTrackers()
    client.app.state.privacy_trackers = trackers  # type: ignore[attr-defined]
    conversation_id = client.get("/api/chat/messages", headers=shopper).json()["conversation_id"]
    trackers.events[conversation_id] = [{"event": "user", "text": "我的订单到哪了"}]

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
    assert document["not_included"] == []
    (conversation,) = document["conversations"]
    assert conversation["tracker_events"] == [{"event": "user", "text": "我的订单到哪了"}]
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


def test_a_visitor_the_store_logged_out_is_anonymous_for_consent(client: TestClient) -> None:
    # The visitor was linked to C00016 by a login; without the store's token in this
    # request it is anonymous, as on the chat socket.
    shopper = _visitor(client, "C00016")
    logged_out = {"authorization": shopper["authorization"]}
    refused = client.post("/api/chat/consent", json={"marketing": True}, headers=logged_out)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"
    assert not _has_consent("C00016")
    expired = {**logged_out, "x-customer-token": "C00016.1.deadbeef"}
    assert client.get("/api/chat/consent", headers=expired).status_code == 401
    assert client.get("/api/chat/consent", headers=shopper).status_code == 200


def _close(external_id: str) -> None:
    from sqlalchemy import update

    from bot.models import Conversation

    cid = _customer_id(external_id)
    with session_scope() as session:
        session.execute(
            update(Conversation).where(Conversation.customer_id == cid).values(state="closed")
        )


def test_admins_erase_a_customer_once_their_conversations_are_closed(
    client: TestClient,
) -> None:
    trackers = FakeTrackers()
    client.app.state.privacy_trackers = trackers  # type: ignore[attr-defined]
    shopper = _visitor(client, "C00017")
    sent = client.post(
        "/api/chat/messages",
        headers=shopper,
        json={
            "client_id": "er-1",
            "text": "我是 ERASEME 住在 漕溪北路",
            "customer_token": customer_token("C00017"),
        },
    )
    assert sent.status_code == 200, sent.text
    conversation_id = client.get("/api/chat/messages", headers=shopper).json()["conversation_id"]
    trackers.events[conversation_id] = [{"event": "user", "text": "ERASEME"}]

    url = "/api/admin/customers/C00017/erase"
    assert client.post(url).status_code == 401
    assert client.post(url, headers=Staff("agent").headers).status_code == 403
    admin = Staff("admin")
    assert client.post(url, headers=admin.cookie).status_code == 403  # no CSRF token
    live = client.post(url, headers=admin.headers)
    assert live.status_code == 409, live.text
    assert live.json()["error"]["code"] == "conversations_live"
    assert trackers.erased == []

    _close("C00017")
    erased = client.post(url, headers=admin.headers)
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["external_id"] == "C00017" and report["conversations"] == 1
    assert report["tracker_events"] == 1 and trackers.erased == [conversation_id]
    assert report["deleted"]["message"] >= 2 and report["anonymised"]["customer"] == 1
    document = client.get("/api/admin/customers/C00017/export", headers=admin.cookie).json()
    assert document["conversations"] == [] and "ERASEME" not in json.dumps(document)
    assert document["profile"]["name"] == "" and document["profile"]["phone"] is None
    with session_scope() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.customer_id == _customer_id("C00017"))
        ).all()
    assert "erasure" in actions
    assert (
        client.post("/api/admin/customers/NOBODY/erase", headers=admin.headers).status_code == 404
    )


def test_erasure_is_refused_whole_when_rasa_cannot_be_reached(client: TestClient) -> None:
    client.app.state.privacy_trackers = FakeTrackers(fail=True)  # type: ignore[attr-defined]
    shopper = _visitor(client, "C00018")
    client.post(
        "/api/chat/messages",
        headers=shopper,
        json={"client_id": "er-2", "text": "hello", "customer_token": customer_token("C00018")},
    )
    _close("C00018")
    refused = client.post("/api/admin/customers/C00018/erase", headers=Staff("admin").headers)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "tracker_store_unavailable"
    assert client.get("/api/chat/messages", headers=shopper).json()["messages"] == []  # new one
    with session_scope() as session:
        from bot.models import Conversation

        kept = session.scalars(
            select(Conversation).where(Conversation.customer_id == _customer_id("C00018"))
        ).all()
    assert kept  # nothing of ours went


def test_a_shopper_downloads_their_own_data_through_a_signed_link(client: TestClient) -> None:
    from datetime import timedelta

    from bot.privacy.export import sign_export_link

    client.app.state.privacy_trackers = FakeTrackers()  # type: ignore[attr-defined]
    shopper = _visitor(client, "C00019")
    client.post(
        "/api/chat/messages",
        headers=shopper,
        json={"client_id": "dl-1", "text": "我的发票", "customer_token": customer_token("C00019")},
    )
    assert client.post("/api/chat/export", headers=_visitor(client, None)).status_code == 401
    logged_out = {"authorization": shopper["authorization"]}
    assert client.post("/api/chat/export", headers=logged_out).status_code == 401

    made = client.post("/api/chat/export", headers=shopper)
    assert made.status_code == 200, made.text
    url = made.json()["url"]
    assert url.startswith("/api/chat/export/") and made.json()["expires_at"]
    downloaded = client.get(url)
    assert downloaded.status_code == 200
    assert "attachment" in downloaded.headers["content-disposition"]
    assert downloaded.headers["cache-control"] == "no-store"
    document = downloaded.json()
    assert document["customer"] == {"external_id": "C00019"}
    assert "我的发票" in json.dumps(document, ensure_ascii=False)

    token = url.rsplit("/", 1)[1]
    prefix, customer, expires, sig = token.split(".")
    other = _customer_id("C00001")
    for bad in (
        f"{prefix}.{other}.{expires}.{sig}",  # someone else's data
        f"{prefix}.{customer}.{int(expires) + 3600}.{sig}",  # a longer life
        f"{prefix}.{customer}.{expires}.{sig[:-2]}xx",
        "nonsense",
    ):
        refused = client.get(f"/api/chat/export/{bad}")
        assert refused.status_code == 401, bad
        assert refused.json()["error"]["code"] == "invalid_token"
    stale, _ = sign_export_link(int(customer), key="k", ttl=timedelta(minutes=-1))
    expired = client.get(f"/api/chat/export/{stale}")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    with session_scope() as session:
        exports = session.scalars(
            select(AuditEvent).where(
                AuditEvent.customer_id == int(customer), AuditEvent.action == "export"
            )
        ).all()
    assert [(e.actor, e.detail["via"]) for e in exports] == [("customer", "link")]


def test_the_widgets_origin_may_ask_for_a_link(client: TestClient, settings: Any) -> None:
    allowed = settings.allowed_origins[0]
    preflight = client.options(
        "/api/chat/export",
        headers={"origin": allowed, "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == allowed
    assert "x-customer-token" in preflight.headers["access-control-allow-headers"]
    stranger = client.options("/api/chat/export", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


def test_the_engine_tracker_client_authenticates_and_refuses_half_answers() -> None:
    import httpx
    import pytest

    from bot.privacy.erasure import EngineTrackers, TrackerStoreUnavailable, engine_token

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        if request.headers.get("authorization") != f"Bearer {engine_token('k')}":
            return httpx.Response(403, json={"error": "forbidden"})
        if body["op"] == "erase":
            return httpx.Response(200, json={"erased": {s: 3 for s in body["senders"]}})
        return httpx.Response(
            200, json={"trackers": {s: [{"event": "user"}] for s in body["senders"]}}
        )

    transport = httpx.MockTransport(handler)
    trackers = EngineTrackers(
        ["http://rasa-a", "http://rasa-b/"], token=engine_token("k"), transport=transport
    )
    assert trackers.erase(["c1", "c2"]) == 12  # both servers asked, each answered for both
    assert {r.url.host for r in seen} == {"rasa-a", "rasa-b"}
    assert all(r.url.path == "/webhooks/kefu/privacy" for r in seen)
    assert trackers.export(["c1"]) == {"c1": [{"event": "user"}]}
    assert trackers.erase([]) == 0
    wrong = EngineTrackers(["http://rasa-a"], token=engine_token("other"), transport=transport)
    with pytest.raises(TrackerStoreUnavailable):
        wrong.erase(["c1"])
