"""The ops review console: who may open it, the list with filters and search, the
transcript (masked for ops), labelling with CSRF, escaping of shopper text, downloads."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import session_scope
from bot.models import Conversation, Message, Visitor
from bot.models.review import TurnLabel
from tests.api.test_console import _csrf, accounts, log_in
from tests.bot.test_review import BASE, PHONE, ReviewSet, build_review_set

__all__ = ["accounts"]  # the fixture, shared with the console tests

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
# The set's month: the shared database also holds other tests' chats of C00001 (the set's
# zh1 customer, whom the tag filter selects by), all at today's dates.
MONTH = {"date_from": "2031-03-01", "date_to": "2031-03-31"}


@pytest.fixture(scope="module")
def rs(app_db: str) -> ReviewSet:
    """One set for the module: the tag filter is by customer, and every set's zh1 is
    C00001's."""
    with session_scope() as session:
        built = build_review_set(session)
        cid = f"xss-{built.tag}"
        session.add(Visitor(id=f"v{cid}", created_at=BASE))
        session.flush()
        session.add(
            Conversation(id=cid, visitor_id=f"v{cid}", created_at=BASE, last_message_at=BASE)
        )
        session.flush()
        session.add(
            Message(
                uid=f"{cid}-0", conversation_id=cid, role="shopper", text=XSS + " 退货",
                intent="return_refund", confidence=0.5, entities=[], created_at=BASE,
            )
        )  # fmt: skip
        built.ids["xss"] = cid
    return built


REVIEW_URLS = (
    "/console/review",
    "/console/review/export.csv",
    "/console/review/export.json",
    "/console/review/nlu.yml",
    "/console/review/stories.yml",
)


@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_agents_and_supervisors_are_refused(
    client: TestClient, accounts: dict[str, str], rs: ReviewSet, role: str
) -> None:
    assert log_in(client, accounts[role]) == 303
    for url in (*REVIEW_URLS, f"/console/review/c/{rs.ids['zh1']}"):
        assert client.get(url, follow_redirects=False).status_code == 403, url
    home = client.get("/console/")
    token = _csrf(home.text)
    posted = client.post(
        f"/console/review/c/{rs.ids['zh1']}/turns/{rs.turns[('zh1', 0)]}",
        data={"status": "correct", "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 403
    assert 'href="/console/review"' not in home.text


def test_anonymous_is_sent_to_log_in(client: TestClient) -> None:
    client.cookies.clear()
    response = client.get("/console/review", follow_redirects=False)
    assert response.status_code in (302, 303) and "/console/login" in response.headers["location"]


def test_ops_lists_filters_and_searches(
    client: TestClient, accounts: dict[str, str], rs: ReviewSet
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    page = client.get("/console/review")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and " onclick=" not in page.text
    tagged = client.get("/console/review", params={"tag": f"review-{rs.tag}", **MONTH})
    assert 'id="review-total">1 conversation ' in tagged.text
    assert f"/console/review/c/{rs.ids['zh1']}" in tagged.text
    assert rs.ids["en2"] not in tagged.text
    # The filters stay in the form and in the download links (a shareable URL).
    assert f'value="review-{rs.tag}"' in tagged.text
    assert f"tag=review-{rs.tag}" in tagged.text and "export.csv?" in tagged.text

    found = client.get(
        "/console/review",
        params={"query": "投诉 快递", "date_from": "2031-03-01", "date_to": "2031-03-31"},
    )
    assert rs.ids["zh3"] in found.text and rs.ids["zh1"] not in found.text
    english = client.get("/console/review", params={"query": "parcel refund"})
    assert rs.ids["en2"] in english.text and rs.ids["zh3"] not in english.text
    masked = client.get("/console/review", params={"language": "en", "csat": "5", "tag": ""})
    assert rs.ids["en4"] in masked.text
    assert PHONE not in masked.text and "138****5678" in masked.text

    bad = client.get("/console/review", params={"confidence_below": "lots"})
    assert bad.status_code == 400 and "confidence_below" in bad.text
    assert client.get("/console/review", params={"after": "nonsense"}).status_code == 400


def test_paging_links_keep_the_filters(
    client: TestClient, accounts: dict[str, str], rs: ReviewSet
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    seen: set[str] = set()
    url = "/console/review?date_from=2031-03-01&date_to=2031-03-31"
    pages = 0
    while url and pages < 200:
        page = client.get(url)
        assert page.status_code == 200
        seen.update(re.findall(r'data-id="([^"]+)"', page.text))
        match = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = match.group(1).replace("&amp;", "&") if match else ""
        pages += 1
    assert set(rs.ids.values()) <= seen


def test_transcript_masks_for_ops_and_shows_nlu(
    client: TestClient, accounts: dict[str, str], rs: ReviewSet
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    page = client.get(f"/console/review/c/{rs.ids['en4']}")
    assert page.status_code == 200
    assert PHONE not in page.text and "138****5678" in page.text
    assert "human_agent" in page.text and "0.70" in page.text
    assert "action_check_order_status" in page.text
    assert "intent only" in page.text  # personal data: the entities are not editable
    zh1 = client.get(f"/console/review/c/{rs.ids['zh1']}")
    assert "product=衬衫" in zh1.text and 'value="我的[衬衫](product)订单到哪了"' in zh1.text
    assert client.get("/console/review/c/no-such-id").status_code == 404

    assert log_in(client, accounts["admin"]) == 303
    admin = client.get(f"/console/review/c/{rs.ids['en4']}")
    assert admin.status_code == 200 and PHONE not in admin.text


def test_xss_in_shopper_text_is_escaped(
    client: TestClient, accounts: dict[str, str], rs: ReviewSet
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    listed = client.get("/console/review", params={"query": "退货", "date_from": "2031-03-01"})
    transcript = client.get(f"/console/review/c/{rs.ids['xss']}")
    for page in (listed, transcript):
        assert rs.ids["xss"] in page.text
        assert XSS not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text


def _label(session_id: int) -> TurnLabel | None:
    with session_scope() as session:
        found = session.scalar(select(TurnLabel).where(TurnLabel.message_id == session_id))
        if found is not None:
            session.expunge(found)
        return found


def test_labelling_needs_the_csrf_token(
    client: TestClient, accounts: dict[str, str], rs: ReviewSet
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    turn = rs.turns[("zh1", 0)]
    url = f"/console/review/c/{rs.ids['zh1']}/turns/{turn}"
    for token in ("", "forged"):
        refused = client.post(url, data={"status": "correct", "csrf_token": token})
        assert refused.status_code == 422
    assert _label(turn) is None

    page = client.get(f"/console/review/c/{rs.ids['zh1']}")
    token = _csrf(page.text)
    done = client.post(url, data={"status": "correct", "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith(f"#turn-{turn}")
    label = _label(turn)
    assert label is not None and label.status == "correct" and label.intent == "order_status"

    thanks = rs.turns[("zh1", 2)]
    relabelled = client.post(
        f"/console/review/c/{rs.ids['zh1']}/turns/{thanks}",
        data={
            "status": "relabelled", "intent": "affirm", "entities": "好的谢谢",
            "csrf_token": token,
        },
        follow_redirects=False,
    )  # fmt: skip
    assert relabelled.status_code == 303
    label = _label(thanks)
    assert label is not None and label.intent == "affirm" and label.status == "relabelled"
    shown = client.get(f"/console/review/c/{rs.ids['zh1']}")
    assert "relabelled" in shown.text and "reviewed" in shown.text

    bad = client.post(
        f"/console/review/c/{rs.ids['zh1']}/turns/{thanks}",
        data={"status": "relabelled", "intent": "nonsense", "csrf_token": token},
    )
    assert bad.status_code == 400 and "not an intent of the domain" in bad.text
    # A message of another conversation cannot be labelled through this one.
    other = client.post(
        f"/console/review/c/{rs.ids['en2']}/turns/{thanks}",
        data={"status": "correct", "csrf_token": token},
    )
    assert other.status_code == 404

    status = client.post(
        f"/console/review/c/{rs.ids['zh1']}/status",
        data={"status": "needs_attention", "csrf_token": token},
        follow_redirects=False,
    )
    assert status.status_code == 303
    assert (
        client.post(
            f"/console/review/c/{rs.ids['zh1']}/status", data={"status": "needs_attention"}
        ).status_code
        == 422
    )


def test_downloads(client: TestClient, accounts: dict[str, str], rs: ReviewSet) -> None:
    assert log_in(client, accounts["ops"]) == 303
    token = _csrf(client.get(f"/console/review/c/{rs.ids['en2']}").text)
    client.post(
        f"/console/review/c/{rs.ids['en2']}/turns/{rs.turns[('en2', 2)]}",
        data={"status": "relabelled", "intent": "out_of_scope", "csrf_token": token},
    )
    params = {"tag": f"review-{rs.tag}", **MONTH}
    listed = client.get("/console/review/export.csv", params=params)
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(listed.content.decode("utf-8-sig"))))
    assert [r["conversation_id"] for r in rows] == [rs.ids["zh1"]]
    assert rows[0]["first_response_s"] == "10.0" and rows[0]["tags"] == f"review-{rs.tag}"
    as_json = client.get("/console/review/export.json", params={**params, "language": "zh"})
    assert [r["conversation_id"] for r in as_json.json()] == [rs.ids["zh1"]]
    assert client.get("/console/review/export.csv", params={"csat": "9"}).status_code == 422

    nlu = yaml.safe_load(client.get("/console/review/nlu.yml").text)
    examples = {b["intent"]: b["examples"] for b in nlu["nlu"]}
    assert "- blorp zibble" in examples["out_of_scope"]
    assert client.get("/console/review/nlu.yml", params={"since": "yesterday"}).status_code == 422

    stories = client.get("/console/review/stories.yml", params={"ids": [rs.ids["en2"]]})
    data = yaml.safe_load(stories.text)
    assert [s["story"] for s in data["stories"]] == [f"conversation {rs.ids['en2']}"]
    assert {"user": "blorp zibble", "intent": "out_of_scope"} in data["stories"][0]["steps"]
    filtered = yaml.safe_load(client.get("/console/review/stories.yml", params=params).text)
    assert [s["story"] for s in filtered["stories"]] == [f"conversation {rs.ids['zh1']}"]
    assert json.dumps(data, ensure_ascii=False).count(PHONE) == 0
