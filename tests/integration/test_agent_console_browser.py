"""The agent console in a real browser (Debian chromium) against the real stack: a shopper
asks for a person in the widget, an agent logs in, sees the chat arrive in the inbox live,
takes over, they write to each other (the shopper sees "typing"), the agent inserts a canned
response with the shopper's name filled in, hands back, and the bot answers again. Script
and HTML in shopper messages, a customer's name and a note render as text."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.models import Customer
from bot.services import staff as staff_service
from tests.integration.test_widget_browser import ask, open_widget
from tests.support.browser import WIDGET, screenshot
from tests.support.chat_client import ChatClient
from tests.support.stack import Stack

PASSWORD = "correct horse battery"
PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[str]:
    """An API worker whose service hours cover the whole day (a request for a person
    queues whenever the test runs) and that leaves claiming to agents."""
    name = f"api-agent-console-{secrets.token_hex(2)}"
    try:
        yield stack.start_api_worker(
            name, {"KEFU_SERVICE_HOURS": "00:00-23:59:59", "KEFU_HANDOFF_AUTO_ASSIGN": "false"}
        )
    finally:
        stack.stop(name)


@pytest.fixture(scope="module")
def agent_email(db: sa.Engine) -> Iterator[str]:
    email = f"agent-console-{secrets.token_hex(3)}@kefu.test"
    with Session(db) as session:
        staff_service.create_staff(
            session=session, email=email, name="客服小林", role="agent", password=PASSWORD
        )
        session.commit()
    yield email
    with db.begin() as c:  # leave nobody online for the other tests
        c.execute(
            sa.text(
                "UPDATE agent_status SET status = 'offline' WHERE staff_id ="
                " (SELECT id FROM staff WHERE email = :e)"
            ),
            {"e": email},
        )


async def conversation_of(page: Any, url: str) -> str:
    value: str = await page.evaluate(f"localStorage.getItem('kefu:{url}:demo:conversation')")
    return str(json.loads(value))


async def no_injected_elements(page: Any) -> None:
    """Nothing a payload could have made: no image, no script but the console's own files."""
    found = await page.evaluate(
        """() => ({
            images: document.querySelectorAll('img').length,
            scripts: [...document.scripts].filter(s => !s.src.includes('/static/')).length,
            handlers: [...document.querySelectorAll('*')].filter(
                n => [...n.attributes].some(a => a.name.startsWith('on'))).length,
        })"""
    )
    assert found == {"images": 0, "scripts": 0, "handlers": 0}


async def test_an_agent_takes_a_chat_in_the_console_and_hands_it_back(
    stack: Stack, db: sa.Engine, browser: Any, worker: str, agent_email: str
) -> None:
    dialogs: list[str] = []
    console = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    shop = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        agent = await console.new_page()
        agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[tuple[str, str]] = []  # (page, message): the console's own pages count
        agent.on(
            "console",
            lambda m: errors.append((agent.url, m.text)) if m.type == "error" else None,
        )

        # The agent logs in, goes online from the inbox and keeps it open.
        await agent.goto(f"{worker}/console/login?next=/console/agent")
        await agent.locator("input[name=email]").fill(agent_email)
        await agent.locator("input[name=password]").fill(PASSWORD)
        await agent.get_by_role("button", name="Log in 登录").click()
        await agent.locator("#inbox-lists").wait_for()
        await agent.select_option("select[name=status]", "online")
        await agent.get_by_role("button", name="更新状态").click()
        await agent.locator("#inbox-lists").wait_for()
        assert await agent.locator("select[name=status]").input_value() == "online"

        # A logged-in shopper asks for a person in the widget.
        shopper = await shop.new_page()
        shopper.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        await shopper.goto(f"{worker}/?lang=zh")
        await shopper.select_option("select[name=customer]", "C00003")
        await shopper.get_by_role("button", name="登录").click()
        await shopper.locator("[data-testid=store-customer]").wait_for()
        await open_widget(shopper)
        await ask(shopper, "转人工")
        cid = await conversation_of(shopper, worker)

        # It appears in the agent's queue without a reload.
        item = agent.locator(f'#queue-list [data-cid="{cid}"]')
        await item.wait_for(timeout=15_000)
        assert "李娜" in await item.inner_text()
        await screenshot(agent, "agent-inbox")

        await item.get_by_role("button", name="接入").click()
        await agent.locator('#desk[data-owned="1"]').wait_for()
        assert "转人工" in await agent.locator("#transcript").inner_text()
        assert await agent.locator("#transcript .msg-nlu .nlu-intent").count() >= 1
        banner = shopper.locator(".handoff")
        await banner.wait_for(state="visible")
        assert "客服小林" in await banner.inner_text()

        # The shopper writes; it shows up in the console live.
        await shopper.locator("textarea").fill("我的包裹一直没到")
        await shopper.locator("textarea").press("Enter")
        await agent.locator("#transcript .msg-shopper", has_text="我的包裹一直没到").wait_for()

        # The agent types: the shopper sees "typing"; Ctrl+Enter sends.
        box = agent.locator("#reply-text")
        await box.click()
        await box.press_sequentially("您好，我马上帮您查", delay=40)
        await shopper.wait_for_function(
            f"() => {WIDGET}.querySelector('.typing').textContent !== ''", timeout=10_000
        )
        assert "正在输入" in await shopper.locator(".typing").inner_text()
        await box.press("Control+Enter")
        bubble = shopper.locator(".log .msg.agent .bubble", has_text="您好，我马上帮您查")
        await bubble.wait_for()
        await shopper.wait_for_function(
            f"() => {WIDGET}.querySelector('.typing').textContent === ''", timeout=10_000
        )
        await screenshot(shopper, "agent-widget-reply")

        # "/" opens the canned responses; the delay script comes with the name filled in.
        await box.press("/")
        picker = agent.locator("#canned-picker")
        await picker.wait_for(state="visible")
        await agent.locator("#canned-q").fill("delay")
        await agent.locator('#canned-results li[data-shortcode="delay"]').first.wait_for()
        await screenshot(agent, "agent-canned-picker")
        await agent.locator("#canned-q").press("Enter")
        await picker.wait_for(state="hidden")
        inserted = await box.input_value()
        assert inserted.startswith("李娜您好，非常抱歉") and "{name}" not in inserted
        assert "接受吗" in inserted
        await box.press("Control+Enter")
        await shopper.locator(".log .msg.agent .bubble", has_text="李娜您好，非常抱歉").wait_for()
        assert await box.input_value() == ""

        # Payloads from the shopper and in a note render as text.
        for payload in PAYLOADS:
            await shopper.locator("textarea").fill(payload)
            await shopper.locator("textarea").press("Enter")
            await agent.locator("#transcript .msg-shopper .msg-text", has_text=payload).wait_for()
        await no_injected_elements(agent)
        await agent.locator("#notes textarea").fill(PAYLOADS[1] + PAYLOADS[0])
        await agent.get_by_role("button", name="添加备注").click()
        await agent.locator("#notes .note-text").first.wait_for()
        assert (
            await agent.locator("#notes .note-text").last.inner_text() == PAYLOADS[1] + PAYLOADS[0]
        )
        for payload in PAYLOADS:  # after a reload, server-rendered
            assert await agent.locator("#transcript .msg-text", has_text=payload).count() == 1
        await no_injected_elements(agent)
        await screenshot(agent, "agent-conversation")

        # Hand back: the bot asks for a rating, and answers the shopper again.
        await agent.locator("#handback").click()
        await agent.locator('#desk[data-owned="0"]').wait_for()
        await banner.wait_for(state="hidden")
        await shopper.locator(".log .quick button").first.wait_for()
        answer = await ask(shopper, "我的订单到哪了")
        assert answer, answer
        await screenshot(shopper, "agent-widget-handed-back")
        with db.connect() as c:
            roles = list(
                c.execute(
                    sa.text(
                        "SELECT role FROM message WHERE conversation_id = :c ORDER BY id DESC"
                        " LIMIT 1"
                    ),
                    {"c": cid},
                ).scalars()
            )
        assert roles == ["bot"]
        assert dialogs == []
        refused = [
            (url, text)
            for url, text in errors
            if urlparse(url).path.startswith("/console/agent") and "Content Security Policy" in text
        ]
        assert refused == [], refused
    finally:
        await console.close()
        await shop.close()


async def test_a_payload_name_renders_as_text_and_the_keyboard_moves_between_chats(
    stack: Stack, db: sa.Engine, browser: Any, worker: str, agent_email: str
) -> None:
    external_id = f"CX{secrets.token_hex(4)}"
    name = PAYLOADS[1] + PAYLOADS[0]
    with Session(db) as session:
        session.add(Customer(external_id=external_id, name=name, language="zh"))
        session.commit()
    chats = [ChatClient(worker), ChatClient(worker)]
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    dialogs: list[str] = []
    try:
        agent = await context.new_page()
        agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        await agent.goto(f"{worker}/console/login?next=/console/agent")
        await agent.locator("input[name=email]").fill(agent_email)
        await agent.locator("input[name=password]").fill(PASSWORD)
        await agent.get_by_role("button", name="Log in 登录").click()
        await agent.locator("#inbox-lists").wait_for()
        if await agent.locator("select[name=status]").input_value() != "online":
            await agent.select_option("select[name=status]", "online")
            await agent.get_by_role("button", name="更新状态").click()
            await agent.locator("#inbox-lists").wait_for()

        named = await chats[0].connect(customer_token=stack.customer_token(external_id))
        guest = await chats[1].connect(language="en")
        ids = [named["conversation_id"], guest["conversation_id"]]
        for chat in chats:
            await chat.say("转人工")
        item = agent.locator(f'#queue-list [data-cid="{ids[0]}"]')
        await item.wait_for(timeout=15_000)
        assert await item.locator(".customer-name").inner_text() == name
        await agent.locator(f'#queue-list [data-cid="{ids[1]}"]').wait_for(timeout=15_000)
        await no_injected_elements(agent)

        for cid in ids:  # take both from the queue
            await agent.goto(f"{worker}/console/agent")
            await agent.locator(f'#queue-list [data-cid="{cid}"] button.claim').click()
            await agent.locator(f'#desk[data-cid="{cid}"][data-owned="1"]').wait_for()
        assert await agent.locator("h1").inner_text() != name  # the guest's chat is open
        await agent.locator("#reply-text").press("Alt+n")  # the next of my conversations
        await agent.locator(f'#desk[data-cid="{ids[0]}"]').wait_for()
        assert await agent.locator("h1").inner_text() == name
        assert await agent.locator("#profile .customer-name").inner_text() == name
        await no_injected_elements(agent)
        await agent.locator("#reply-text").press("Control+k")
        await agent.locator("#canned-picker").wait_for(state="visible")
        await agent.locator("#canned-q").press("Escape")
        await agent.locator("#canned-picker").wait_for(state="hidden")
        assert dialogs == []

        for cid in ids:  # close both, leaving nobody waiting for the other tests
            await agent.goto(f"{worker}/console/agent/c/{cid}")
            await agent.locator("select[name=disposition]").select_option("resolved")
            await agent.locator("#close").click()
            await agent.locator('#desk[data-state="closed"]').wait_for()
    finally:
        for chat in chats:
            await chat.close()
        await context.close()
