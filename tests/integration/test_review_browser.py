"""Ops review in a real browser against the whole stack: shoppers chat with the real Rasa
(their messages indexed as the gateway stores them), then ops log in, filter the list,
search a Chinese and an English word, open a transcript with each turn's NLU result, and
relabel a turn."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.models import Message
from bot.models.review import TurnLabel
from bot.services import staff
from tests.bot.test_review import build_review_set
from tests.integration.test_console_browser import log_in
from tests.support.browser import screenshot
from tests.support.chat_client import ChatClient
from tests.support.stack import Stack

PASSWORD = "correct horse battery"
ZH_TEXT = "我想退货 这件羽绒服太大了"
EN_TEXT = "hi, where is my raincoat order?"


@pytest.fixture(scope="module")
def ops_email(db: sa.Engine) -> str:
    email = "ops.review@kefu.test"
    with Session(db) as session:
        staff.create_staff(
            session=session, email=email, name="复核员", role="ops", password=PASSWORD
        )
        build_review_set(session)
        session.commit()
    return email


def _conversation_of(db: sa.Engine, text: str) -> str:
    with Session(db) as session:
        found = session.scalar(select_conversation(text))
    assert found, f"no stored message {text!r}"
    return str(found)


def select_conversation(text: str) -> Any:
    return sa.select(Message.conversation_id).where(Message.text == text).limit(1)


async def _row_ids(page: Any) -> list[str]:
    ids: list[str] = await page.locator("tr.review-row").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    return ids


# Generous: when this is the first test of the run it also waits for the stack to start.
@pytest.mark.timeout(900)
async def test_ops_filter_search_open_and_relabel(
    stack: Stack, page: Any, db: sa.Engine, ops_email: str
) -> None:
    zh = ChatClient(stack.api_url)
    en = ChatClient(stack.api_url)
    try:
        await zh.connect(customer_token=stack.customer_token("C00001"))
        await zh.say(ZH_TEXT)
        await en.connect(language="en")
        await en.say(EN_TEXT)
    finally:
        await zh.close()
        await en.close()
    zh_id, en_id = _conversation_of(db, ZH_TEXT), _conversation_of(db, EN_TEXT)

    await log_in(page, stack, ops_email, PASSWORD)
    await page.locator("h1", has_text="Welcome").wait_for()
    await page.get_by_role("link", name="Review").first.click()
    await page.locator("h1", has_text="Review transcripts").wait_for()
    assert {zh_id, en_id} <= set(await _row_ids(page))

    # Filter: English only — a GET form, so the filtered list is a URL.
    await page.locator("#f-language").select_option("en")
    await page.get_by_role("button", name="Filter 筛选").click()
    await page.wait_for_url("**/console/review?*language=en*")
    english = await _row_ids(page)
    assert en_id in english and zh_id not in english

    # Search a Chinese word, then an English one (the language filter cleared).
    await page.goto(f"{stack.api_url}/console/review")
    await page.locator("#f-query").fill("羽绒服")
    await page.get_by_role("button", name="Filter 筛选").click()
    await page.wait_for_url("**query=*")
    assert await _row_ids(page) == [zh_id]
    await screenshot(page, "review-list-search-zh")
    await page.locator("#f-query").fill("RAINCOAT")
    await page.get_by_role("button", name="Filter 筛选").click()
    await page.wait_for_url("**query=RAINCOAT*")
    assert await _row_ids(page) == [en_id]

    # Open the transcript: each shopper turn shows its intent, confidence and actions.
    await page.locator(f"tr[data-id='{en_id}'] td.review-preview a").click()
    await page.wait_for_url(f"**/console/review/c/{en_id}")
    turn = page.locator("li.review-turn[data-role=shopper]").first
    assert EN_TEXT in await turn.locator(".msg-text").inner_text()
    intent = (await turn.locator(".nlu-intent").inner_text()).strip()
    assert intent and intent != "(not parsed)"
    assert await turn.locator(".review-conf").count() == 1
    assert await page.locator("li.review-turn[data-role=bot]").count() >= 1
    await screenshot(page, "review-transcript")

    # Relabel the turn: another intent of the domain.
    new_intent = "shipping_info" if intent != "shipping_info" else "order_status"
    await turn.locator("select.review-intent").select_option(new_intent)
    await turn.get_by_role("button", name="Relabel 改标").click()
    await page.wait_for_url(f"**/console/review/c/{en_id}#turn-*")
    relabelled = page.locator("li.review-turn[data-role=shopper]").first
    label = await relabelled.locator(".review-label").inner_text()
    assert "relabelled" in label and new_intent in label
    await screenshot(page, "review-relabelled")
    with Session(db) as session:
        stored = session.scalar(sa.select(TurnLabel).where(TurnLabel.conversation_id == en_id))
        assert stored is not None and stored.intent == new_intent
        assert stored.status == "relabelled"
