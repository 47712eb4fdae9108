"""The database is briefly gone: nothing is lost, the client gets a clear answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot import db as bot_db
from bot.db import run_with_retry, session_scope
from bot.models import Message
from bot.services import conversations as conv


def _outage() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_run_with_retry_rides_out_a_short_outage(app_db: str) -> None:
    calls = 0

    def work(session: Session) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise _outage()
        return 42

    assert run_with_retry(work, backoff=0.01) == 42
    assert calls == 3
    with pytest.raises(OperationalError):
        run_with_retry(lambda s: (_ for _ in ()).throw(_outage()), attempts=2, backoff=0.01)


def test_turn_result_is_stored_once_after_a_failed_write(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = conv.record_turn
    failures = {"left": 1}

    def flaky(**kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise _outage()
        return real(**kwargs)

    monkeypatch.setattr(conv, "record_turn", flaky)
    monkeypatch.setattr(bot_db.time, "sleep", lambda _s: None)
    opened = client.post("/api/chat/session", json={}).json()
    body = client.post(
        "/api/chat/messages",
        json={"client_id": "o1", "text": "你好"},
        headers={"authorization": f"Bearer {opened['visitor_token']}"},
    ).json()
    assert [r["text"] for r in body["replies"]] == ["echo: 你好"]
    with session_scope() as session:
        rows = session.scalars(
            select(Message).where(Message.conversation_id == opened["conversation_id"])
        ).all()
        assert [(m.role, m.status) for m in rows] == [("shopper", "done"), ("bot", "done")]


def test_message_refused_clearly_while_storage_is_down_then_accepted(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = client.post("/api/chat/session", json={}).json()
    headers = {"authorization": f"Bearer {opened['visitor_token']}"}
    real = conv.record_inbound

    def down(**kwargs: Any) -> Any:
        raise _outage()

    monkeypatch.setattr(conv, "record_inbound", down)
    monkeypatch.setattr(bot_db.time, "sleep", lambda _s: None)
    refused = client.post(
        "/api/chat/messages", json={"client_id": "d1", "text": "在吗"}, headers=headers
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "storage_unavailable"
    monkeypatch.setattr(conv, "record_inbound", real)
    accepted = client.post(
        "/api/chat/messages", json={"client_id": "d1", "text": "在吗"}, headers=headers
    )
    assert accepted.status_code == 200 and not accepted.json()["ack"]["duplicate"]
