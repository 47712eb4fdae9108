"""Canned responses (话术库) on SQLite and PostgreSQL: the seeded scripts, search by
shortcode and text in both languages, placeholders, validation and edits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import Session

from bot.errors import InvalidInput, NotFound
from bot.services import canned
from bot.services.canned import DuplicateShortcode

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)


def test_the_seed_holds_the_store_scripts_in_both_languages(session: Session) -> None:
    library = canned.list_responses(session=session)
    pairs = {(r.shortcode, r.language) for r in library}
    assert {(code, lang) for code, lang, _, _ in canned.STORE_SCRIPTS} <= pairs
    delay_zh = next(r for r in library if (r.shortcode, r.language) == ("delay", "zh"))
    delay_en = next(r for r in library if (r.shortcode, r.language) == ("delay", "en"))
    # The shipping-delay script: apologise, give the real reason, ask if the delay is OK.
    assert (
        "抱歉" in delay_zh.body and "{delay_reason}" in delay_zh.body and "接受吗" in delay_zh.body
    )
    assert "sorry" in delay_en.body and "{delay_reason}" in delay_en.body
    assert "acceptable" in delay_en.body
    assert delay_zh.placeholders == ("name", "order_no", "delay_reason")
    # Seeding again adds nothing and keeps edits.
    assert canned.seed_store_scripts(session=session, clock=lambda: NOW) == 0


def test_search_by_shortcode_and_text_in_chinese_and_english(session: Session) -> None:
    by_code = canned.search(session=session, query="/del", language="en")
    assert [(r.shortcode, r.language) for r in by_code[:2]] == [("delay", "en"), ("delay", "zh")]
    by_zh_text = canned.search(session=session, query="延误")
    assert by_zh_text and all("延误" in r.title + r.body for r in by_zh_text)
    assert ("delay", "zh") in {(r.shortcode, r.language) for r in by_zh_text}
    by_en_text = canned.search(session=session, query="PATIENCE")  # case-insensitive
    assert {r.language for r in by_en_text} == {"en"}
    assert {"wait", "bye"} <= {r.shortcode for r in by_en_text}
    assert canned.search(session=session, query="no such words anywhere") == []
    # LIKE wildcards are text, not patterns.
    assert canned.search(session=session, query="%") == []
    underscored = canned.search(session=session, query="_")  # {order_no}, {agent_name}…
    assert underscored and all("_" in r.shortcode + r.title + r.body for r in underscored)
    everything = canned.search(session=session, query="", limit=100)
    assert len(everything) >= len(canned.STORE_SCRIPTS)


def test_render_fills_placeholders_and_marks_what_is_missing() -> None:
    body = "您好{name}，订单 {order_no} 延误是因为{delay_reason}。{unknown} {1} {"
    done = canned.render(
        body, {"name": "张伟", "order_no": "KF123", "delay_reason": "受恶劣天气影响"}, "zh"
    )
    assert done.text == "您好张伟，订单 KF123 延误是因为受恶劣天气影响。【待填写：unknown】 {1} {"
    assert done.missing == ("unknown",)
    partial = canned.render("Hi {name}, order {order_no}", {"name": "", "order_no": None}, "en")
    assert partial.text == "Hi [fill in: customer name], order [fill in: order number]"
    assert partial.missing == ("name", "order_no")


def test_save_edit_and_delete_with_validation(session: Session) -> None:
    made = canned.save(
        session=session,
        shortcode="/Refund-Time",
        language="en",
        title="Refund timing",
        body="Your refund for {order_no} is on its way.",
        staff_id=None,
        clock=lambda: NOW,
    )
    assert made.shortcode == "refund-time" and made.placeholders == ("order_no",)
    with pytest.raises(DuplicateShortcode):
        canned.save(
            session=session, shortcode="refund-time", language="en", title="x", body="y",
            staff_id=None,
        )  # fmt: skip
    # The same shortcode in the other language is another response.
    canned.save(
        session=session, shortcode="refund-time", language="zh", title="退款时间",
        body="退款已原路返回。", staff_id=None,
    )  # fmt: skip
    edited = canned.save(
        session=session,
        shortcode="refund-time",
        language="en",
        title="Refund timing",
        body="Hi {name}, your refund is on its way.",
        staff_id=None,
        canned_id=made.id,
    )
    assert edited.id == made.id and edited.placeholders == ("name",)
    for bad in (
        {"shortcode": "has space"},
        {"shortcode": ""},
        {"language": "fr"},
        {"title": " "},
        {"body": ""},
        {"body": "x" * (canned.MAX_BODY + 1)},
        {"body": "Dear {customer}"},
    ):
        fields = {"shortcode": "ok", "language": "en", "title": "t", "body": "b", **bad}
        with pytest.raises(InvalidInput):
            canned.save(session=session, staff_id=None, **fields)
    canned.remove(session=session, canned_id=made.id)
    with pytest.raises(NotFound):
        canned.get(session=session, canned_id=made.id)
    with pytest.raises(NotFound):
        canned.remove(session=session, canned_id=made.id)
