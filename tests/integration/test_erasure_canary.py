"""The erasure canary: a shopper chats through the real gateway (Rasa, the action server and
the API) with unique strings — a name, a phone number, an e-mail address, free text — in
their profile, their order and their messages; an agent takes over, notes, hands back, the
shopper rates, the agent closes; an admin erases the customer. Then every column of every
table of BOTH databases (ours, on SQLite and on PostgreSQL, and Rasa's tracker store) is
searched for the strings, SQLite's FTS5 indexes are asked for them too, the admin export is
read, and the logs of all three processes are read: no hit anywhere. Rasa still serves
another conversation, and the same (erased) browser starts clean.

The canaries are lowercase ASCII words, so that a tokenising index (FTS5, tsvector) keeps
each one as one token and a JSON dump (Rasa escapes non-ASCII) keeps it as written.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.clock import utcnow
from bot.db import make_engine
from bot.models import Customer, Order
from bot.services import staff as staff_service
from tests.integration.test_handoff import StackAgent, frames_until
from tests.support.chat_client import ChatClient
from tests.support.postgres import create_database
from tests.support.stack import Stack

PASSWORD = "correct horse 1"
pytestmark = pytest.mark.timeout(1800)  # the stack's start-up is inside the first test


# Starting Rasa on a machine the whole team shares can take longer than the stack's default.
START_TIMEOUT = 1200


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def canary_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The real stack (as the ``stack`` fixture starts it) with our database on SQLite or on
    PostgreSQL, one at a time; Rasa's tracker store is the stack's SQLite ``tracker.db``."""
    url = None
    if request.param == "postgresql":
        url = create_database(request.getfixturevalue("postgres_server"), "kefu_canary")
    workdir = Path(tmp_path_factory.mktemp(f"canary-{request.param}"))
    running = Stack(workdir, database_url=url).start(timeout=START_TIMEOUT)
    try:
        yield running
    finally:
        running.close()


class Canaries:
    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.name = f"zqxname{tag}"
        self.phone = "139" + str(secrets.randbelow(10**8)).zfill(8)
        self.mail_user = f"kanarimail{tag}"
        self.email = f"{self.mail_user}@example.org"
        self.text = f"kanaritext{tag}"
        self.street = f"kanaristreet{tag}"
        self.note = f"kanarinote{tag}"
        self.comment = f"kanaricsat{tag}"
        self.agent_text = f"kanariagent{tag}"

    def all(self) -> list[str]:
        return [
            self.name,
            self.phone,
            self.mail_user,
            self.text,
            self.street,
            self.note,
            self.comment,
            self.agent_text,
        ]


def _scan(engine: sa.Engine, needles: list[str]) -> list[str]:
    """``table.column: needle`` for every value of every column of every table (reflected
    from the database, SQLite's virtual tables and their shadow tables included) that
    contains one of ``needles``; plus a MATCH on each FTS5 table."""
    hits: list[str] = []
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        names = set(inspector.get_table_names())
        sqlite = conn.dialect.name == "sqlite"
        fts: list[str] = []
        if sqlite:
            rows = conn.execute(
                sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            ).all()
            names |= {r[0] for r in rows}
            fts = [r[0] for r in rows if r[1] and "using fts5" in r[1].lower()]
        quote = conn.dialect.identifier_preparer.quote
        for name in sorted(names):
            if sqlite:
                columns = [
                    r[1] for r in conn.execute(sa.text(f"PRAGMA table_xinfo({quote(name)})"))
                ]
            else:
                columns = [c["name"] for c in inspector.get_columns(name)]
            for column in columns:
                value = f"lower(CAST({quote(column)} AS TEXT))"
                for needle in needles:
                    sql = f"SELECT COUNT(*) FROM {quote(name)} WHERE {value} LIKE :n"  # noqa: S608
                    if conn.execute(sa.text(sql), {"n": f"%{needle.lower()}%"}).scalar():
                        hits.append(f"{name}.{column}: {needle}")
        for name in fts:
            for needle in needles:
                sql = f"SELECT COUNT(*) FROM {quote(name)} WHERE {quote(name)} MATCH :q"  # noqa: S608
                if conn.execute(sa.text(sql), {"q": f'"{needle}"'}).scalar():
                    hits.append(f"{name} MATCH: {needle}")
    return hits


def _admin(stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    engine = make_engine(stack.database_url)
    email = f"admin-{secrets.token_hex(4)}@kefu.test"
    with Session(engine) as session:
        staff_service.create_staff(
            session=session, email=email, name="Admin", role="admin", password=PASSWORD
        )
        result = staff_service.log_in(session=session, email=email, password=PASSWORD, ip="t")
        session.commit()
    engine.dispose()
    assert result is not None
    cookie = {"cookie": f"kefu_staff={result[0]}"}
    return cookie, {**cookie, "x-csrf-token": result[1].csrf_token}


def _new_customer(stack: Stack, canaries: Canaries) -> str:
    engine = make_engine(stack.database_url)
    external_id = f"CAN{secrets.token_hex(4)}"
    now = utcnow()
    with Session(engine) as session:
        customer = Customer(
            external_id=external_id,
            name=canaries.name,
            phone=canaries.phone,
            email=canaries.email,
            language="en",
            created_at=now,
        )
        session.add(customer)
        session.flush()
        session.add(
            Order(
                order_number=f"K{secrets.randbelow(10**9):09d}",
                customer_id=customer.id,
                status="paid",
                total_fen=12900,
                phone=canaries.phone,
                address=f"{canaries.street} road 1, Shanghai",
                placed_at=now - timedelta(days=2),
            )
        )
        session.commit()
    engine.dispose()
    return external_id


async def _chat_and_close(stack: Stack, external_id: str, canaries: Canaries) -> tuple[str, str]:
    """The customer's conversation, through the gateway; returns (conversation id, visitor
    token)."""
    shopper = ChatClient(stack.api_url)
    agent = StackAgent(stack, "Canary Agent")
    try:
        welcome = await shopper.connect(
            language="en", customer_token=stack.customer_token(external_id)
        )
        cid, visitor_token = welcome["conversation_id"], welcome["visitor_token"]
        for text in (
            f"hello, my name is {canaries.name}",
            f"my phone number is {canaries.phone}",
            f"you can write to {canaries.email}",
            f"where is my order? {canaries.text}",
        ):
            assert await shopper.say(text), text  # the bot answered each turn
        await shopper.ws.send(json.dumps({"type": "consent", "marketing": True}))
        await frames_until(shopper, lambda f, _: f["type"] == "consent")

        agent.post(f"/conversations/{cid}/claim")
        await frames_until(shopper, lambda f, _: f["type"] == "handoff")
        assert await shopper.say(f"are you a person? {canaries.agent_text}") == []
        agent.post(f"/conversations/{cid}/messages", {"text": f"Hi {canaries.name}!"})
        await frames_until(shopper, lambda f, _: f["type"] == "message")
        note = httpx.post(
            f"{stack.api_url}/console/agent/c/{cid}/notes",
            data={"text": f"prefers calls {canaries.note}", "csrf_token": agent.csrf},
            headers={"cookie": f"kefu_staff={agent.token}"},
            follow_redirects=False,
            timeout=20,
        )
        assert note.status_code in (303, 404), note.text  # the console's notes, where built

        agent.post(f"/conversations/{cid}/handback")
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
        await shopper.say("5", payload=question["buttons"][4]["payload"])
        await shopper.say(f"great service {canaries.comment}")

        agent.post(f"/conversations/{cid}/claim")
        agent.post(f"/conversations/{cid}/close", {"disposition": "resolved"})
        return cid, visitor_token
    finally:
        agent.offline()
        await shopper.close()


async def test_nothing_of_an_erased_customer_is_left_anywhere(canary_stack: Stack) -> None:
    stack = canary_stack
    canaries = Canaries()
    needles = canaries.all()
    external_id = _new_customer(stack, canaries)
    cid, visitor_token = await _chat_and_close(stack, external_id, canaries)

    ours = sa.create_engine(stack.database_url)
    tracker = sa.create_engine(f"sqlite:///{stack.dir / 'tracker.db'}")
    try:
        # The probe finds them before: in our tables and in Rasa's events.
        before = _scan(ours, needles)
        assert any(h.startswith("message.text") for h in before), before
        assert any(h.startswith("customer.") for h in before), before
        assert any(h.startswith("events.data") for h in _scan(tracker, needles))

        cookie, headers = _admin(stack)
        url = f"{stack.api_url}/api/admin/customers/{external_id}/erase"
        erased = httpx.post(url, headers=headers, timeout=30)
        assert erased.status_code == 200, erased.text
        report = erased.json()
        assert report["conversations"] == 1 and report["tracker_events"] > 0
        assert report["anonymised"] == {"customer": 1, "order": 1}

        # Rasa still serves another conversation.
        other = ChatClient(stack.api_url)
        try:
            await other.connect(language="en")
            assert await other.say("hello")
        finally:
            await other.close()
        # The same browser, logged in again, starts clean.
        again = ChatClient(stack.api_url)
        try:
            welcome = await again.connect(
                language="en",
                visitor_token=visitor_token,
                customer_token=stack.customer_token(external_id),
            )
            assert welcome["conversation_id"] != cid
            assert welcome.get("history", []) == []
            assert welcome["visitor_token"] != visitor_token  # the erased visitor is gone
            replies = await again.say("hello")
            assert replies and all(n not in json.dumps(replies) for n in needles)
        finally:
            await again.close()

        assert _scan(ours, needles) == []
        assert _scan(tracker, needles) == []
        with tracker.connect() as conn:
            assert (
                conn.execute(
                    sa.text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": cid}
                ).scalar()
                == 0
            )

        exported = httpx.get(
            f"{stack.api_url}/api/admin/customers/{external_id}/export", headers=cookie, timeout=30
        )
        assert exported.status_code == 200, exported.text
        document = exported.text.lower()
        assert [n for n in needles if n.lower() in document] == []
        assert len(exported.json()["conversations"]) == 1  # only the new, clean one
        assert exported.json()["not_included"] == []
    finally:
        ours.dispose()
        tracker.dispose()

    await asyncio.sleep(0.5)  # let the processes flush their logs
    for name in ("api", "actions", "rasa"):
        log = stack.log(name).lower()
        assert log, name
        leaked = [n for n in needles if n.lower() in log]
        assert leaked == [], (name, leaked, _context(log, leaked))


def _context(log: str, needles: list[str]) -> list[str]:
    """The log lines with a leaked needle, to say where it came from."""
    return [
        line[:300]
        for line in log.splitlines()
        if any(re.search(re.escape(n.lower()), line) for n in needles)
    ][:5]


async def test_a_logged_in_shopper_downloads_their_data_from_the_widget(
    canary_stack: Stack, page: Any
) -> None:
    stack = canary_stack
    from tests.support.browser import screenshot

    await page.goto(f"{stack.api_url}/?lang=en")
    await page.locator(".launcher").click()
    await page.locator(".panel").wait_for(state="visible")
    assert await page.locator(".mydata").is_hidden()  # a guest has no data of their own
    await page.select_option("select[name=customer]", "C00005")
    await page.get_by_role("button", name="Log in").click()
    await page.locator("[data-testid=store-customer]").wait_for()
    button = page.locator(".mydata button")
    await button.wait_for()
    assert (await button.inner_text()).strip() == "Download my data"
    await screenshot(page, "widget-mydata")
    async with page.expect_download() as info:
        await button.click()
    download = await info.value
    document = json.loads(Path(await download.path()).read_text())
    assert document["format"] == "kefu.customer_export"
    assert document["customer"] == {"external_id": "C00005"}
    assert document["not_included"] == []


def test_the_engines_privacy_route_needs_the_gateways_token(canary_stack: Stack) -> None:
    from bot.privacy.erasure import engine_token
    from tests.support.stack import SECRET_KEY

    url = f"{canary_stack.rasa_url}/webhooks/kefu/privacy"
    body = {"op": "export", "senders": ["nobody"]}
    assert httpx.post(url, json=body, timeout=10).status_code == 403
    wrong = {"authorization": f"Bearer {engine_token('not-the-secret')}"}
    assert httpx.post(url, json=body, headers=wrong, timeout=10).status_code == 403
    right = {"authorization": f"Bearer {engine_token(SECRET_KEY)}"}
    bad = httpx.post(url, json={"op": "drop", "senders": ["x"]}, headers=right, timeout=10)
    assert bad.status_code == 400
    answer = httpx.post(url, json=body, headers=right, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"trackers": {"nobody": []}}
