"""The demo store and the chat widget in a real headless browser, against the real stack."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from tests.integration.test_conversations import latest_order
from tests.support.browser import WIDGET, screenshot
from tests.support.stack import Stack, free_port

REPLIES = ".log .msg.bot .bubble, .log .msg.agent .bubble"


async def open_widget(page: Any) -> None:
    await page.locator(".launcher").click()
    await page.locator(".panel").wait_for(state="visible")


async def replies(page: Any) -> list[str]:
    return [t.strip() for t in await page.locator(REPLIES).all_inner_texts()]


async def ask(page: Any, text: str, *, timeout: float = 30_000) -> list[str]:
    """Type ``text`` into the widget, press Enter, and return the replies of that turn."""
    before = len(await replies(page))
    await page.locator("textarea").fill(text)
    await page.locator("textarea").press("Enter")
    await settle(page, before, timeout=timeout)
    return (await replies(page))[before:]


async def settle(page: Any, replies_before: int, *, timeout: float = 30_000) -> None:
    """Wait until every shopper message is acknowledged and the bot has answered."""
    await page.wait_for_function(
        f"""([before]) => {{
            const root = {WIDGET};
            return root.querySelectorAll('.msg.shopper.sending').length === 0
                && root.querySelectorAll('.log .msg.bot, .log .msg.agent').length > before
                && root.querySelector('.typing').textContent === '';
        }}""",
        arg=[replies_before],
        timeout=timeout,
    )


async def shown_ids(page: Any) -> list[str]:
    ids: list[str] = await page.evaluate(
        f"[...{WIDGET}.querySelectorAll('.log .msg[data-id]')].map(n => n.dataset.id)"
    )
    return ids


async def conversation_id(page: Any, stack: Stack) -> str:
    value: str = await page.evaluate(
        f"localStorage.getItem('kefu:{stack.api_url}:demo:conversation')"
    )
    return str(json.loads(value))


def shopper_rows(db: sa.Engine, conversation: str, text: str) -> int:
    with db.connect() as c:
        return int(
            c.execute(
                sa.text(
                    "SELECT count(*) FROM message WHERE conversation_id = :c"
                    " AND role = 'shopper' AND text = :t"
                ),
                {"c": conversation, "t": text},
            ).scalar_one()
        )


async def test_a_shopper_asks_in_chinese_and_english_and_reload_keeps_history(
    stack: Stack, db: sa.Engine, page: Any
) -> None:
    order = latest_order(db, "C00001")
    await page.goto(f"{stack.api_url}/?lang=zh")
    await page.locator(".product-card").first.wait_for()
    await screenshot(page, "store-front")

    # Log in to the store as a seeded customer: the store page now carries their token.
    await page.select_option("select[name=customer]", "C00001")
    await page.get_by_role("button", name="登录").click()
    await page.locator("[data-testid=store-customer]").wait_for()
    assert await page.locator("[data-testid=store-customer]").inner_text() == "张伟"

    await open_widget(page)
    assert await page.locator(".panel h2").inner_text() == "在线客服"
    greeting = await ask(page, "你好")
    assert any("张伟" in r for r in greeting), greeting
    answer = "\n".join(await ask(page, "我的订单到哪了"))
    assert order["order_number"] in answer and "订单" in answer
    await screenshot(page, "widget-open-zh")

    before = await shown_ids(page)
    assert len(before) == len(set(before)) >= 4
    await page.reload()
    # The widget reopens as it was and shows the same messages, once each.
    await page.locator(".panel").wait_for(state="visible")
    await page.wait_for_function(
        # A function, not an expression string: the store's CSP forbids eval, and Playwright
        # evaluates a string predicate with it.
        f"() => {WIDGET}.querySelectorAll('.log .msg[data-id]').length >= {len(before)}"
    )
    assert await shown_ids(page) == before

    await page.goto(f"{stack.api_url}/?lang=en")
    await page.locator(".panel").wait_for(state="visible")
    assert await page.locator(".panel h2").inner_text() == "Customer service"
    english = "\n".join(await ask(page, "hi, where is my order?"))
    assert order["order_number"] in english and "order" in english.lower()
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english.replace(order["order_number"], ""))
    await screenshot(page, "widget-open-en")


async def test_a_dropped_socket_reconnects_without_losing_or_doubling_messages(
    stack: Stack, db: sa.Engine, page: Any
) -> None:
    await page.goto(f"{stack.api_url}/p/P-OXF")
    await open_widget(page)
    await ask(page, "你好")
    conversation = await conversation_id(page, stack)

    # Typed while the connection is down: kept, then sent once it is back.
    await page.evaluate("window.Kefu._dropConnection()")
    count = len(await replies(page))
    await page.locator("textarea").fill("这件衬衫有L码吗")
    await page.locator("textarea").press("Enter")
    await settle(page, count)

    # Dropped while a message is in flight: sent again with the same client id, stored once.
    count = len(await replies(page))
    await page.locator("textarea").fill("白色的还有吗")
    await page.locator("textarea").press("Enter")
    await page.evaluate("window.Kefu._dropConnection()")
    await settle(page, count)

    for text in ("这件衬衫有L码吗", "白色的还有吗"):
        assert shopper_rows(db, conversation, text) == 1
        bubbles = page.locator(".log .msg.shopper .bubble", has_text=text)
        assert await bubbles.count() == 1
    ids = await shown_ids(page)
    assert len(ids) == len(set(ids))


async def test_html_and_script_in_messages_render_as_text(
    stack: Stack, db: sa.Engine, page: Any
) -> None:
    hostile = '<img src=x onerror="window.__kefuXss=1"><script>window.__kefuXss=2</script><b>粗</b>'
    await page.goto(f"{stack.api_url}/")
    await open_widget(page)
    await ask(page, hostile)
    for _ in range(2):  # as sent, then as restored from the server's history
        bubble = page.locator(".log .msg.shopper .bubble").last
        assert await bubble.text_content() == hostile
        injected = await page.evaluate(
            f"{WIDGET}.querySelectorAll('.log img, .log script, .log b').length"
        )
        assert injected == 0
        assert await page.evaluate("window.__kefuXss === undefined")
        await page.reload()
        await page.locator(".log .msg.shopper").last.wait_for()


async def test_the_21st_message_in_a_minute_is_refused_and_the_widget_says_so(
    stack: Stack, db: sa.Engine, page: Any
) -> None:
    await page.goto(f"{stack.api_url}/")
    await open_widget(page)
    for n in range(20):
        await page.locator("textarea").fill(f"在吗 {n}")
        await page.locator("textarea").press("Enter")
    await page.wait_for_function(
        f"() => {WIDGET}.querySelectorAll('.msg.shopper[data-id]').length === 20",
        timeout=60_000,
    )
    await page.locator("textarea").fill("第二十一条")
    await page.locator("textarea").press("Enter")
    refused = page.locator(".msg.shopper.failed .meta")
    await refused.wait_for()
    assert "太频繁" in await refused.inner_text()
    await screenshot(page, "widget-rate-limited")
    conversation = await conversation_id(page, stack)
    assert shopper_rows(db, conversation, "第二十一条") == 0


async def test_phone_sized_screen_and_keyboard_only(stack: Stack, browser: Any) -> None:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    try:
        await page.goto(f"{stack.api_url}/p/P-BLZ?lang=en")
        await page.locator(".launcher").focus()
        await page.keyboard.press("Enter")
        panel = page.locator(".panel")
        await panel.wait_for(state="visible")
        box = await panel.bounding_box()
        assert box is not None and box["width"] == 390
        # Focus went to the message box: type and send with the keyboard alone.
        focused = await page.evaluate(f"{WIDGET}.activeElement && {WIDGET}.activeElement.id")
        assert focused == "kefu-input"
        await page.keyboard.type("hello")
        before = len(await replies(page))
        await page.keyboard.press("Enter")
        await settle(page, before)
        await screenshot(page, "widget-phone")
        await page.keyboard.press("Escape")
        await panel.wait_for(state="hidden")
        assert await page.evaluate(f"{WIDGET}.activeElement.className") == "launcher"
    finally:
        await context.close()


async def test_unread_badge_counts_replies_that_arrive_while_closed(
    stack: Stack, page: Any
) -> None:
    await page.goto(f"{stack.api_url}/")
    await open_widget(page)
    await ask(page, "你好")
    await page.locator("header button").click()  # ×
    await page.locator(".panel").wait_for(state="hidden")
    # The same shopper in a second tab: its conversation's replies reach both tabs.
    other = await page.context.new_page()
    await other.goto(f"{stack.api_url}/p/P-SLK")
    await open_widget(other)
    await ask(other, "谢谢")
    badge = page.locator(".badge")
    await badge.wait_for(state="visible")
    assert await badge.inner_text() == "1"
    assert "1" in (await page.locator(".launcher").get_attribute("aria-label") or "")
    await page.locator(".launcher").click()
    await badge.wait_for(state="hidden")
    assert (await replies(page))[-1] == (await replies(other))[-1]


HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>A shop</title></head>
<body><h1>Someone else's shop</h1>
<script src="{api}/widget.js" data-store="elsewhere" data-lang="en" async></script>
</body></html>"""


@contextlib.contextmanager
def shop_site(port: int, api_url: str) -> Iterator[str]:
    """Another web site, on its own origin, whose page embeds the widget from the API."""
    body = HOST_PAGE.format(api=api_url).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_embedded_on_another_origin_only_where_allowed(stack: Stack, page: Any) -> None:
    with shop_site(stack.embedding_port, stack.api_url) as allowed:
        await page.goto(allowed)
        await open_widget(page)
        reply = "\n".join(await ask(page, "hello"))
        assert "help" in reply.lower()
        stored = await page.evaluate(
            f"localStorage.getItem('kefu:{stack.api_url}:elsewhere:visitor')"
        )
        assert stored, "the visitor token is kept in the host page's localStorage"

    with shop_site(free_port(), stack.api_url) as not_allowed:
        await page.goto(not_allowed)
        await open_widget(page)
        status = page.locator(".status")
        await status.wait_for(state="visible")
        assert "not available" in await status.inner_text()


async def test_an_agent_takes_over_in_the_widget_then_hands_back_to_quick_replies(
    stack: Stack, db: sa.Engine, page: Any
) -> None:
    from tests.integration.test_handoff import StackAgent

    agent = StackAgent(stack, "王芳")
    try:
        await page.goto(f"{stack.api_url}/?lang=zh")
        await open_widget(page)
        await ask(page, "你好")
        conversation = await conversation_id(page, stack)

        agent.post(f"/conversations/{conversation}/claim")
        banner = page.locator(".handoff")
        await banner.wait_for(state="visible")
        assert "王芳" in await banner.inner_text()
        agent.post(
            f"/conversations/{conversation}/messages",
            {"text": "您好，我是王芳，请问有什么可以帮您？"},
        )
        agent_bubble = page.locator(".log .msg.agent").last
        await agent_bubble.wait_for()
        assert "王芳" in await agent_bubble.locator(".meta").inner_text()
        await screenshot(page, "widget-agent")

        agent.post(f"/conversations/{conversation}/handback")
        await banner.wait_for(state="hidden")
        buttons = page.locator(".log .quick button")
        await buttons.first.wait_for()
        assert await buttons.count() == 5
        titles = await buttons.all_inner_texts()
        before = len(await replies(page))
        await buttons.nth(4).click()
        await settle(page, before)
        # The pressed button went as its payload and shows as what the shopper said; the
        # rating buttons are gone and the rating is stored.
        last = page.locator(".log .msg.shopper .bubble").last
        assert await last.inner_text() == titles[4]
        assert await page.locator(".log .quick button").all_inner_texts() != titles
        with db.connect() as c:
            score = c.execute(
                sa.text("SELECT score FROM csat WHERE conversation_id = :c"), {"c": conversation}
            ).scalar_one()
        assert score == 5
    finally:
        agent.offline()


async def test_a_logged_in_shopper_ticks_marketing_consent_in_the_widget(
    stack: Stack, db: sa.Engine, page: Any
) -> None:
    await page.goto(f"{stack.api_url}/?lang=en")
    await open_widget(page)
    assert await page.locator(".consent").is_hidden()  # a guest has nothing to consent to
    await page.select_option("select[name=customer]", "C00004")
    await page.get_by_role("button", name="Log in").click()
    await page.locator("[data-testid=store-customer]").wait_for()
    box = page.locator(".consent input")
    await box.wait_for()
    assert not await box.is_checked()

    def granted() -> list[bool]:
        with db.connect() as c:
            return [
                bool(g)
                for g in c.execute(
                    sa.text(
                        "SELECT granted FROM consent JOIN customer ON customer.id = consent.customer_id"
                        " WHERE customer.external_id = 'C00004' ORDER BY consent.id"
                    )
                ).scalars()
            ]

    await box.check()
    await page.wait_for_function(f"() => {WIDGET}.querySelector('.consent input').checked === true")
    for _ in range(50):
        if granted()[-1:] == [True]:
            break
        await page.wait_for_timeout(100)
    assert granted()[-1:] == [True]
    await page.reload()
    await page.locator(".consent input").wait_for()
    assert await page.locator(".consent input").is_checked()
    await page.locator(".consent input").uncheck()
    for _ in range(50):
        if granted()[-1:] == [False]:
            break
        await page.wait_for_timeout(100)
    assert granted() == [True, False]
