"""The supervisor console in a real browser against the real stack: a shopper asks for a
person in the widget, an agent claims the chat, and the supervisor's page shows that agent's
load go from 0 to 1 without a reload; a bot conversation that was not understood twice shows
its flag."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.services import handoff as handoff_service
from bot.services import staff as staff_service
from bot.settings import Settings
from tests.integration.test_handoff import StackAgent
from tests.integration.test_widget_browser import ask, open_widget
from tests.support.browser import screenshot
from tests.support.stack import Stack

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[str]:
    """An API worker whose service hours cover the whole day (so a request for a person
    queues whenever the test runs) and that leaves claiming to agents."""
    name = f"api-supervise-{secrets.token_hex(2)}"
    try:
        yield stack.start_api_worker(
            name, {"KEFU_SERVICE_HOURS": "00:00-23:59:59", "KEFU_HANDOFF_AUTO_ASSIGN": "false"}
        )
    finally:
        stack.stop(name)


@pytest.fixture(scope="module")
def supervisor(db: sa.Engine) -> Iterator[tuple[str, int]]:
    email = f"supervisor-{secrets.token_hex(3)}@kefu.test"
    with Session(db) as session:
        staff = staff_service.create_staff(
            session=session, email=email, name="主管小周", role="supervisor", password=PASSWORD
        )
        session.commit()
        staff_id = staff.id
    yield email, staff_id
    with Session(db) as session:  # other tests share the database and expect nobody online
        handoff_service.set_status(
            session=session,
            agent_id=staff_id,
            status="offline",
            settings=Settings(secret_key="k", store_token_secret="s"),
        )
        session.commit()


async def log_in(page: Any, url: str, email: str) -> None:
    await page.goto(f"{url}/console/login?next=/console/supervisor")
    await page.locator("input[name=email]").fill(email)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.get_by_role("button", name="Log in 登录").click()
    await page.locator(".supervisor-board").wait_for()


async def conversation_of(page: Any, url: str) -> str:
    value: str = await page.evaluate(f"localStorage.getItem('kefu:{url}:demo:conversation')")
    return str(json.loads(value))


async def cell(page: Any, selector: str) -> str:
    return str(await page.locator(selector).inner_text()).strip()


async def test_the_supervisor_sees_an_agent_take_a_chat_and_a_fallback_flag(
    stack: Stack, db: sa.Engine, browser: Any, page: Any, worker: str, supervisor: tuple[str, int]
) -> None:
    email, supervisor_id = supervisor
    agent = StackAgent(stack, "客服小林", api_url=worker)
    shoppers = [await browser.new_context(locale="zh-CN") for _ in range(2)]
    try:
        status = httpx.put(
            f"{worker}/api/agent/status",
            json={"status": "online", "capacity": 2},
            headers=agent.headers,
            timeout=20,
        )
        assert status.status_code == 200, status.text

        await log_in(page, worker, email)
        load = f'tr[data-agent-id="{agent.id}"] td.load'
        assert await cell(page, load) == "0"
        assert await cell(page, f'tr[data-agent-id="{agent.id}"] .status') == "在线"
        # The board listens on the agent socket (and polls as a fallback).
        await page.wait_for_function("() => document.body.dataset.live === 'socket'")

        asking = await shoppers[0].new_page()
        await asking.goto(f"{worker}/?lang=zh")
        await open_widget(asking)
        await ask(asking, "转人工")
        waiting = await conversation_of(asking, worker)
        row = f'#board table.live tr[data-conversation-id="{waiting}"]'
        await page.locator(row).wait_for(timeout=15_000)
        assert "排队中" in await page.locator(row).inner_text()

        claimed_at = time.monotonic()
        agent.post(f"/conversations/{waiting}/claim")
        await page.wait_for_function(
            """([selector]) => {
                const c = document.querySelector(selector);
                return c !== null && c.textContent.trim() === '1';
            }""",
            arg=[load],
            timeout=15_000,
        )
        seen_after = time.monotonic() - claimed_at
        print(f"supervisor saw the load change {seen_after:.2f} s after the claim")
        assert await page.locator(row).count() == 0  # no longer the bot's
        held = f'#board table.assigned tr[data-conversation-id="{waiting}"]'
        assert "客服小林" in await page.locator(held).inner_text()
        await screenshot(page, "supervisor-load")

        confused = await shoppers[1].new_page()
        await confused.goto(f"{worker}/?lang=zh")
        await open_widget(confused)
        await ask(confused, "讲个笑话")
        await ask(confused, "今天天气怎么样")
        lost = await conversation_of(confused, worker)
        with db.connect() as conn:
            intents = conn.execute(
                sa.text(
                    "SELECT intent FROM message WHERE conversation_id = :c AND role = 'shopper'"
                    " ORDER BY id"
                ),
                {"c": lost},
            ).scalars()
            assert list(intents) == ["out_of_scope", "out_of_scope"]
        flag = f'#board tr[data-conversation-id="{lost}"] [data-flag="repeated_fallback"]'
        await page.locator(flag).wait_for(timeout=15_000)
        assert "多次未理解" in await page.locator(flag).inner_text()
        await screenshot(page, "supervisor-flags")

        # The supervisor's own status, from the control at the top: the board follows.
        own = f'#board tr[data-agent-id="{supervisor_id}"] .status'
        assert await cell(page, own) == "离线"
        await page.select_option("form.agent-status select[name=status]", "online")
        await page.locator("form.agent-status button").click()
        await page.locator(".agent-status-now", has_text="在线 · 接待 0/3").wait_for()
        await page.locator(own, has_text="在线").wait_for(timeout=15_000)
        await page.select_option("form.agent-status select[name=status]", "offline")
        await page.locator("form.agent-status button").click()
        await page.locator(own, has_text="离线").wait_for(timeout=15_000)

        # The transcript, read-only, with the NLU result of each turn.
        await page.goto(f"{worker}/console/supervisor/c/{lost}")
        assert "out_of_scope" in await page.locator("#transcript").inner_text()
        await screenshot(page, "supervisor-watch")
        await page.goto(f"{worker}/console/supervisor?lang=en&sort=repeated_fallback")
        await page.locator("h2", has_text="Bot conversations").wait_for()
        first = page.locator("#board table.live tbody tr").first
        assert await first.locator('[data-flag="repeated_fallback"]').count() == 1
        assert "repeated fallback" in await page.locator(flag).inner_text()
        await screenshot(page, "supervisor-en")
    finally:
        for context in shoppers:
            await context.close()
        httpx.put(f"{worker}/api/agent/status", json={"status": "offline"}, headers=agent.headers)
        agent.offline()
