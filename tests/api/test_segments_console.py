"""The segments console page: ops build, preview, save and export; an agent cannot open it."""

from __future__ import annotations

import csv
import io
import json
import re

from fastapi.testclient import TestClient

from bot.db import session_scope
from bot.models.crm import Segment
from bot.services import consent
from bot.services import segments as seg
from tests.api.test_console import _csrf, accounts, log_in

__all__ = ["accounts"]  # the fixture, shared with the console tests

RULE = {
    "all": [
        {"bought": {"category": "shirt", "colour": "blue"}},
        {"bought": {"category": "tie", "colour": "red"}},
        {"never_bought": {"product": "P-BLZ"}},
    ]
}


def _expected_count() -> int:
    with session_scope() as session:
        return seg.count_members(session=session, rule=RULE)


def test_ops_builds_previews_saves_and_exports(
    client: TestClient, accounts: dict[str, str]
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    home = client.get("/console/")
    assert 'href="/console/segments"' in home.text
    page = client.get("/console/segments")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and " onclick=" not in page.text  # CSP-safe
    assert "P-BLZ" in page.text  # the example rule is offered
    token = _csrf(page.text)
    expected = _expected_count()
    assert expected > 20

    preview = client.post(
        "/console/segments/preview", data={"rule": json.dumps(RULE), "csrf_token": token}
    )
    assert preview.status_code == 200
    assert f"<strong>{expected}</strong> customers match" in preview.text
    shown = preview.text.split('<section id="preview"', 1)[1].split("</section>", 1)[0]
    assert shown.count("<tr>") == 1 + 20  # header and the first members
    # htmx asks for just the fragment.
    fragment = client.post(
        "/console/segments/preview",
        data={"rule": json.dumps(RULE), "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert fragment.text.lstrip().startswith('<section id="preview"')

    bad = client.post(
        "/console/segments/preview", data={"rule": '{"colour": 1', "csrf_token": token}
    )
    assert bad.status_code == 400 and "not valid JSON" in bad.text

    no_csrf = client.post("/console/segments", data={"rule": json.dumps(RULE), "name": "x"})
    assert no_csrf.status_code == 422

    name = f"navy jacket {token[:6]}"
    saved = client.post(
        "/console/segments",
        data={"rule": json.dumps(RULE), "name": name, "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    location = saved.headers["location"]
    segment_id = int(re.fullmatch(r"/console/segments/(\d+)", location).group(1))  # type: ignore[union-attr]
    with session_scope() as session:
        row = session.get(Segment, segment_id)
        assert row is not None and row.rule == RULE and row.created_by is not None
    again = client.post(
        "/console/segments",
        data={"rule": json.dumps(RULE), "name": name, "csrf_token": token},
    )
    assert again.status_code == 400 and "already exists" in again.text

    detail = client.get(location)
    assert detail.status_code == 200 and name in detail.text
    assert f"<strong>{expected}</strong>" in detail.text
    first_page = re.findall(r"<td>(C\d{5})</td>", detail.text)
    nxt = re.search(r'href="(/console/segments/\d+\?after=\d+)"', detail.text)
    assert nxt, "more members than one page"
    second_page = re.findall(r"<td>(C\d{5})</td>", client.get(nxt.group(1)).text)
    assert second_page and not set(first_page) & set(second_page)
    assert name in client.get("/console/segments").text  # listed

    # The export is a marketing list: the members who consented, and no one else.
    with session_scope() as session:
        # Not the demo shoppers: other tests count on their consent being unset.
        members = [
            m
            for m in seg.list_members(session=session, rule=RULE, limit=20)
            if m.external_id not in {"C00001", "C00002", "C00003", "C00004"}
        ]
        consenting = {m.external_id for m in members[:3]}
        for m in members[:3]:
            consent.grant(session=session, customer_id=m.id, source="import")
        consent.withdraw(session=session, customer_id=members[2].id, source="widget")
    consenting.discard(members[2].external_id)  # withdrawn: out at once
    export = client.get(f"{location}/export.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == seg.CSV_HEADER
    assert expected > len(consenting)
    assert {r[0] for r in rows[1:]} == consenting
    assert client.get("/console/segments/999999").status_code == 404
    assert client.get("/console/segments/999999/export.csv").status_code == 404


def test_an_agent_cannot_open_segments(client: TestClient, accounts: dict[str, str]) -> None:
    assert client.get("/console/segments", follow_redirects=False).status_code == 303  # log in
    assert log_in(client, accounts["agent"]) == 303
    assert 'href="/console/segments"' not in client.get("/console/").text
    assert client.get("/console/segments").status_code == 403
    page = client.get("/console/")
    posted = client.post(
        "/console/segments/preview", data={"rule": json.dumps(RULE), "csrf_token": _csrf(page.text)}
    )
    assert posted.status_code == 403
    assert client.get("/console/segments/1/export.csv").status_code == 403
