"""The analytics dashboard page and its JSON: who may open them, what they hold, bad input."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import datetime, timezone

from fastapi.testclient import TestClient

from bot.db import session_scope
from bot.models.conversation import Conversation, Message, Visitor
from tests.api.test_console import accounts, log_in

__all__ = ["accounts"]  # the fixture, shared with the console tests

# 2029-06-03 23:30 in Shanghai is 15:30 UTC: a Sunday evening, local time.
LATE_SUNDAY = datetime(2029, 6, 3, 15, 30, tzinfo=timezone.utc)


def _one_conversation() -> None:
    with session_scope() as session:
        visitor = uuid.uuid4().hex
        session.add(Visitor(id=visitor, created_at=LATE_SUNDAY))
        session.flush()
        cid = uuid.uuid4().hex
        session.add(
            Conversation(
                id=cid,
                visitor_id=visitor,
                created_at=LATE_SUNDAY,
                last_message_at=LATE_SUNDAY,
            )
        )
        session.flush()
        session.add(
            Message(
                uid=uuid.uuid4().hex,
                conversation_id=cid,
                role="shopper",
                text="我的订单到哪了",
                intent="order_status",
                confidence=0.93,
                created_at=LATE_SUNDAY,
            )
        )


def test_an_agent_may_not_open_the_dashboard(client: TestClient, accounts: dict[str, str]) -> None:
    assert client.get("/console/analytics", follow_redirects=False).status_code == 303
    assert log_in(client, accounts["agent"]) == 303
    assert 'href="/console/analytics"' not in client.get("/console/").text
    assert client.get("/console/analytics").status_code == 403
    assert client.get("/console/analytics/data.json").status_code == 403


def test_ops_and_supervisors_see_the_dashboard(
    client: TestClient, accounts: dict[str, str]
) -> None:
    for role in ("ops", "supervisor", "admin"):
        client.cookies.clear()
        assert log_in(client, accounts[role]) == 303
        assert 'href="/console/analytics"' in client.get("/console/").text
        page = client.get("/console/analytics")
        assert page.status_code == 200, role
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        # CSP-safe: no inline script or style, only external files and a JSON data block.
        assert not re.search(r"<script(?![^>]*(src=|type=\"application/json\"))", page.text)
        assert " style=" not in page.text and " onclick=" not in page.text
        assert "/static/vendor/chart-4.6.1.umd.min.js" in page.text
        for canvas in (
            "chart-daily",
            "chart-reasons",
            "chart-intents",
            "chart-csat",
            "chart-confidence",
        ):
            assert f'id="{canvas}"' in page.text
        assert page.text.count("<details>") >= 5  # a data table under every chart
        assert page.text.count('class="heat-cell') == 7 * 24


def test_the_data_block_and_the_json_hold_the_same_figures(
    client: TestClient, accounts: dict[str, str]
) -> None:
    _one_conversation()
    assert log_in(client, accounts["ops"]) == 303
    query = {"start": "2029-06-03", "end": "2029-06-04"}
    data = client.get("/console/analytics/data.json", params=query)
    assert data.status_code == 200
    figures = data.json()
    assert set(figures) == {
        "period", "kpi", "conversations_per_day", "containment", "handoff", "fallback",
        "intents", "satisfaction", "response_times", "heatmap", "confidence",
    }  # fmt: skip
    assert figures["period"] == {
        "start": "2029-06-03",
        "end": "2029-06-04",
        "tz": "Asia/Shanghai",
        "days": ["2029-06-03", "2029-06-04"],
    }
    assert [r["conversations"] for r in figures["conversations_per_day"]] == [1, 0]
    assert figures["kpi"]["containment"] == 1.0
    assert figures["heatmap"]["cells"][6][23] == 1  # Sunday 23:00 local, not Monday in UTC
    assert figures["intents"]["top"] == [{"intent": "order_status", "turns": 1, "share": 1.0}]

    page = client.get("/console/analytics", params=query)
    block = re.search(
        r'<script type="application/json" id="analytics-data">(.*?)</script>', page.text, re.S
    )
    assert block is not None
    assert json.loads(html.unescape(block.group(1))) == figures
    assert 'value="2029-06-03"' in page.text and 'value="2029-06-04"' in page.text
    assert '<strong id="kpi-conversations">1</strong>' in page.text
    assert '<strong id="kpi-containment">100.0 %</strong>' in page.text


def test_the_default_range_is_the_last_14_days(
    client: TestClient, accounts: dict[str, str]
) -> None:
    assert log_in(client, accounts["supervisor"]) == 303
    figures = client.get("/console/analytics/data.json").json()
    assert len(figures["period"]["days"]) == 14
    assert figures["period"]["end"] == figures["period"]["days"][-1]


def test_bad_dates_get_a_clear_400(client: TestClient, accounts: dict[str, str]) -> None:
    assert log_in(client, accounts["ops"]) == 303
    cases = {
        ("2026-02-30", "2026-03-01"): "YYYY-MM-DD",
        ("yesterday", ""): "YYYY-MM-DD",
        ("2026-03-02", "2026-03-01"): "end date is before the start date",
        ("2024-01-01", "2026-01-01"): "at most 366 days",
    }
    for (start, end), message in cases.items():
        params = {"start": start, "end": end}
        answer = client.get("/console/analytics/data.json", params=params)
        assert answer.status_code == 400
        assert message in answer.json()["error"]["message"]
        page = client.get("/console/analytics", params=params)
        assert page.status_code == 400
        assert message in page.text and 'role="alert"' in page.text
        assert "analytics-data" not in page.text
