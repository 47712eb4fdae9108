"""Ops review services against a hand-built set of conversations with known answers: every
filter of the list, labels and the review status, masked text for ops, the exports (CSV,
JSON, NLU YAML, test stories). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import InvalidInput, NotFound
from bot.models import Conversation, Customer, Message, Outcome, Visitor
from bot.models.crm import CustomerTag, Segment
from bot.models.handoff import Csat, Handoff
from bot.models.review import ConversationReview, TurnLabel
from bot.services import review as rv
from bot.services import review_export as rx

# Far from the seeded store's dates, so a date range selects this set only.
BASE = datetime(2031, 3, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Asia/Shanghai
PHONE = "13812345678"


@dataclass
class ReviewSet:
    """Conversation ids by name, and message ids by (conversation name, turn number)."""

    tag: str
    ids: dict[str, str]
    turns: dict[tuple[str, int], int]
    segment_id: int


def _conversation(
    session: Session,
    cid: str,
    at: datetime,
    *,
    language: str,
    customer_id: int | None,
    turns: list[tuple[str, str, str | None, float | None, list[dict[str, Any]] | None]],
    state: str = "bot",
) -> list[int]:
    visitor = Visitor(id=f"v{cid}", customer_id=customer_id, created_at=at)
    session.add(visitor)
    session.flush()  # no ORM relationship orders these inserts
    session.add(
        Conversation(
            id=cid,
            visitor_id=visitor.id,
            customer_id=customer_id,
            language=language,
            state=state,
            created_at=at,
            last_message_at=at + timedelta(seconds=10 * len(turns)),
        )
    )
    session.flush()
    ids = []
    for i, (role, text, intent, confidence, entities) in enumerate(turns):
        message = Message(
            uid=f"{cid}-{i}",
            conversation_id=cid,
            role=role,
            text=text,
            intent=intent,
            confidence=confidence,
            entities=entities,
            actions=["action_check_order_status"] if role == "shopper" and intent else None,
            language=language,
            created_at=at + timedelta(seconds=10 * i),
        )
        session.add(message)
        session.flush()
        ids.append(message.id)
    return ids


def build_review_set(session: Session, tag: str | None = None) -> ReviewSet:
    """Five conversations, 1–5 March 2031 (store time), each picked out by some filter:

    - zh1 (zh, customer C00001 tagged, in the saved segment): order_status 0.95, thank 0.9;
      the bot answers after 10 s.
    - en2 (en, C00002): return_refund 0.55, then a fallback (nlu_fallback 0.3); handed off
      (low_confidence), ended 100 s after the first message; CSAT 2; outcome return.
    - zh3 (zh, anonymous): complaint 0.8; handed off (human_requested), still with an agent;
      the satisfaction question asked, never answered.
    - en4 (en, anonymous): a phone number in the text, human_agent 0.7; needs attention;
      outcome complaint_recorded; CSAT 5.
    - zh5 (zh, anonymous): full-width text, return_refund 0.6; created 16:30 UTC on 5 March,
      which is 6 March in the store's time zone.
    """
    tag = tag or uuid.uuid4().hex[:8]
    c1 = session.scalar(select(Customer.id).where(Customer.external_id == "C00001"))
    c2 = session.scalar(select(Customer.id).where(Customer.external_id == "C00002"))
    assert c1 and c2
    label_tag = f"review-{tag}"
    session.add(CustomerTag(customer_id=c1, tag=label_tag, source="agent", created_at=BASE))
    segment = Segment(name=f"review {tag}", rule={"tag": label_tag}, created_at=BASE)
    session.add(segment)
    session.flush()
    ids = {name: f"{name}-{tag}" for name in ("zh1", "en2", "zh3", "en4", "zh5")}
    turns: dict[tuple[str, int], int] = {}

    def add(name: str, at: datetime, **kw: Any) -> None:
        for i, mid in enumerate(_conversation(session, ids[name], at, **kw)):
            turns[(name, i)] = mid

    order_entity = [{"entity": "product", "value": "衬衫", "start": 2, "end": 4}]
    add(
        "zh1",
        BASE,
        language="zh",
        customer_id=c1,
        turns=[
            ("shopper", "我的衬衫订单到哪了", "order_status", 0.95, order_entity),
            ("bot", "您的订单已发货", None, None, None),
            ("shopper", "好的谢谢", "thank", 0.9, []),
            ("bot", "不客气", None, None, None),
        ],
    )
    add(
        "en2",
        BASE + timedelta(days=1),
        language="en",
        customer_id=c2,
        turns=[
            ("shopper", "Where is my parcel? I want a refund", "return_refund", 0.55, []),
            ("bot", "Sorry to hear that", None, None, None),
            ("shopper", "blorp zibble", "nlu_fallback", 0.3, []),
            ("agent", "Hello, I can help with the refund", None, None, None),
        ],
    )
    add(
        "zh3",
        BASE + timedelta(days=2),
        language="zh",
        customer_id=None,
        state="agent",
        turns=[
            ("shopper", "我要投诉 快递太慢了", "complaint", 0.8, []),
            ("bot", "非常抱歉", None, None, None),
        ],
    )
    add(
        "en4",
        BASE + timedelta(days=3),
        language="en",
        customer_id=None,
        turns=[
            ("bot", "Hi! How can I help?", None, None, None),  # a welcome before the shopper
            ("shopper", f"My phone is {PHONE}, call me", "human_agent", 0.7, []),
            ("bot", "Connecting you", None, None, None),
        ],
    )
    add(
        "zh5",
        datetime(2031, 3, 5, 16, 30, tzinfo=timezone.utc),
        language="zh",
        customer_id=None,
        turns=[("shopper", "全角ＲＥＦＵＮＤ退货可以吗", "return_refund", 0.6, [])],
    )
    at2 = BASE + timedelta(days=1)
    session.add_all(
        [
            Handoff(
                conversation_id=ids["en2"], reason="low_confidence", state="ended",
                requested_at=at2 + timedelta(seconds=25), sort_at=at2,
                ended_at=at2 + timedelta(seconds=100), outcome="handed_back",
            ),
            Handoff(
                conversation_id=ids["zh3"], reason="human_requested", state="assigned",
                requested_at=BASE + timedelta(days=2), sort_at=BASE + timedelta(days=2),
            ),
            Csat(conversation_id=ids["en2"], score=2, state="scored", asked_at=at2),
            Csat(conversation_id=ids["zh3"], score=None, state="asked", asked_at=BASE),
            Csat(conversation_id=ids["en4"], score=5, state="done", asked_at=BASE),
            Outcome(
                kind="return", message_id=f"{ids['en2']}-0", conversation_id=ids["en2"],
                detail={}, created_at=at2,
            ),
            Outcome(
                kind="complaint_recorded", message_id=f"{ids['en4']}-1",
                conversation_id=ids["en4"], detail={}, created_at=at2,
            ),
            ConversationReview(
                conversation_id=ids["en4"], status="needs_attention", updated_at=BASE
            ),
        ]
    )  # fmt: skip
    session.flush()
    return ReviewSet(tag=tag, ids=ids, turns=turns, segment_id=segment.id)


@pytest.fixture
def rs(session: Session) -> ReviewSet:
    return build_review_set(session)


MARCH = {"date_from": "2031-03-01", "date_to": "2031-03-31"}


def _found(session: Session, rs: ReviewSet, **params: str) -> set[str]:
    filters = rv.parse_filters({**MARCH, **params})
    page = rv.list_conversations(session=session, filters=filters, role="ops", limit=200)
    names = {name for name, cid in rs.ids.items() if cid in {r.id for r in page.rows}}
    assert page.total == len(page.rows), "the count and the page disagree"
    return names


ALL = {"zh1", "en2", "zh3", "en4", "zh5"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ALL),
        ({"date_from": "2031-03-02", "date_to": "2031-03-03"}, {"en2", "zh3"}),
        # 16:30 UTC on 5 March is 6 March in Shanghai.
        ({"date_from": "2031-03-06", "date_to": "2031-03-06"}, {"zh5"}),
        ({"date_from": "2031-03-05", "date_to": "2031-03-05"}, set()),
        ({"language": "en"}, {"en2", "en4"}),
        ({"language": "zh"}, {"zh1", "zh3", "zh5"}),
        ({"intent": "return_refund"}, {"en2", "zh5"}),
        ({"intent": "thank"}, {"zh1"}),
        ({"confidence_below": "0.6"}, {"en2"}),
        ({"confidence_below": "0.61"}, {"en2", "zh5"}),
        ({"confidence_below": "0.9"}, {"en2", "zh3", "en4", "zh5"}),
        ({"fallback": "yes"}, {"en2"}),
        ({"fallback": "no"}, ALL - {"en2"}),
        ({"handoff": "any"}, {"en2", "zh3"}),
        ({"handoff": "none"}, {"zh1", "en4", "zh5"}),
        ({"handoff": "human_requested"}, {"zh3"}),
        ({"outcome": "return"}, {"en2"}),
        ({"outcome": "complaint_recorded"}, {"en4"}),
        ({"csat": "2"}, {"en2"}),
        ({"csat": "low"}, {"en2"}),
        ({"csat": "5"}, {"en4"}),
        ({"csat": "none"}, {"zh1", "zh3", "zh5"}),
        ({"review_status": "needs_attention"}, {"en4"}),
        ({"review_status": "unreviewed"}, ALL - {"en4"}),
        ({"review_status": "reviewed"}, set()),
        ({"language": "en", "csat": "5", "handoff": "none"}, {"en4"}),
        ({"query": "订单"}, {"zh1"}),
        ({"query": "refund"}, {"en2", "zh5"}),  # ＲＥＦＵＮＤ folds to refund
        ({"query": "REFUND 退货"}, {"zh5"}),
        ({"query": "快递"}, {"zh3"}),
        ({"query": "投诉 快递"}, {"zh3"}),
        ({"query": "投诉 parcel"}, set()),  # every word must occur in one message
        ({"query": "help"}, {"en2"}),  # agent messages are indexed too
        ({"query": "抱歉"}, set()),  # bot replies are not
        ({"query": PHONE}, set()),  # personal data is not searchable
    ],
)
def test_each_filter_selects_the_known_conversations(
    session: Session, rs: ReviewSet, params: dict[str, str], expected: set[str]
) -> None:
    assert _found(session, rs, **params) == expected


def test_segment_and_tag_filters(session: Session, rs: ReviewSet) -> None:
    assert _found(session, rs, segment_id=str(rs.segment_id)) == {"zh1"}
    assert _found(session, rs, tag=f"review-{rs.tag}") == {"zh1"}
    assert _found(session, rs, tag="no-such-tag") == set()
    with pytest.raises(InvalidInput, match="no saved segment"):
        _found(session, rs, segment_id="999999")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "1 March"}, "date_from"),
        ({"date_from": "2031-03-05", "date_to": "2031-03-01"}, "after"),
        ({"confidence_below": "high"}, "confidence_below"),
        ({"confidence_below": "1.5"}, "confidence_below"),
        ({"language": "fr"}, "language"),
        ({"intent": "order_statuss"}, "intent"),
        ({"fallback": "maybe"}, "fallback"),
        ({"csat": "9"}, "csat"),
        ({"review_status": "done"}, "review_status"),
        ({"segment_id": "x"}, "segment_id"),
        ({"query": "！？。"}, "nothing to search"),
    ],
)
def test_bad_filters_are_named(
    session: Session, rs: ReviewSet, params: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        rv.conversation_conditions(session, rv.parse_filters(params))


def test_keyset_pages_cover_the_list_once(session: Session, rs: ReviewSet) -> None:
    filters = rv.parse_filters(MARCH)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = rv.list_conversations(
            session=session, filters=filters, role="ops", cursor=cursor, limit=2
        )
        assert page.total == 5
        seen.extend(r.id for r in page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    names = {cid: name for name, cid in rs.ids.items()}
    assert [names[i] for i in seen] == ["zh5", "en4", "zh3", "en2", "zh1"]  # newest first
    with pytest.raises(InvalidInput):
        rv.list_conversations(session=session, filters=filters, role="ops", cursor="garbage")


def test_list_rows_summarise_each_conversation(session: Session, rs: ReviewSet) -> None:
    page = rv.list_conversations(session=session, filters=rv.parse_filters(MARCH), role="ops")
    rows = {r.id: r for r in page.rows}
    en2 = rows[rs.ids["en2"]]
    assert en2.customer == "C00002" and en2.turns == 2
    assert en2.intents == ["return_refund", "nlu_fallback"] and en2.fallback
    assert en2.min_confidence == pytest.approx(0.3)
    assert en2.handoff_reason == "low_confidence" and en2.csat == 2
    en4 = rows[rs.ids["en4"]]
    assert PHONE not in en4.preview and "138****5678" in en4.preview  # masked for ops
    assert en4.review_status == "needs_attention"


def test_transcript_shows_nlu_per_turn_and_masks_for_ops(session: Session, rs: ReviewSet) -> None:
    t = rv.transcript(session=session, conversation_id=rs.ids["zh1"], role="ops")
    assert [m.role for m in t.turns] == ["shopper", "bot", "shopper", "bot"]
    first = t.turns[0]
    assert first.intent == "order_status" and first.confidence == pytest.approx(0.95)
    assert first.entities == [{"entity": "product", "value": "衬衫", "start": 2, "end": 4}]
    assert first.actions == ["action_check_order_status"]
    assert first.annotated == "我的[衬衫](product)订单到哪了"
    assert t.customer == "C00001" and t.tags == [f"review-{rs.tag}"]

    for role, raw in (("ops", False), ("admin", False), ("agent", True)):
        en4 = rv.transcript(session=session, conversation_id=rs.ids["en4"], role=role)
        text = en4.turns[1].text
        assert (PHONE in text) is raw, (role, text)
    ops = rv.transcript(session=session, conversation_id=rs.ids["en4"], role="ops")
    assert ops.turns[1].annotated is None  # personal data: the entities are not editable
    assert ops.review_status == "needs_attention" and ops.csat == 5
    with pytest.raises(NotFound):
        rv.transcript(session=session, conversation_id="nope", role="ops")


def test_labels_correct_and_relabel(session: Session, rs: ReviewSet) -> None:
    first, thanks = rs.turns[("zh1", 0)], rs.turns[("zh1", 2)]
    view = rv.label_turn(session=session, message_id=first, status="correct", reviewer_id=None)
    assert view.intent == "order_status" and view.entities[0]["entity"] == "product"
    assert (
        rv.transcript(session=session, conversation_id=rs.ids["zh1"], role="ops").review_status
        == "unreviewed"
    )
    # Relabel with entities in Rasa's markup; the text must stay the message's own.
    with pytest.raises(InvalidInput, match="text must stay"):
        rv.label_turn(
            session=session, message_id=thanks, status="relabelled", intent="affirm",
            annotated="好的[多谢](product)", reviewer_id=None,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="not an entity"):
        rv.label_turn(
            session=session, message_id=thanks, status="relabelled", intent="affirm",
            annotated="好的[谢谢](person)", reviewer_id=None,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="not an intent"):
        rv.label_turn(
            session=session, message_id=thanks, status="relabelled", intent="say_thanks",
            reviewer_id=None,
        )  # fmt: skip
    view = rv.label_turn(
        session=session, message_id=thanks, status="relabelled", intent="affirm",
        annotated='好的[谢谢]{"entity": "product", "value": "thanks"}', reviewer_id=None,
    )  # fmt: skip
    assert view.entities == [{"entity": "product", "value": "thanks", "start": 2, "end": 4}]
    # Every parsed turn labelled: the conversation counts as reviewed.
    review = session.get(ConversationReview, rs.ids["zh1"])
    assert review is not None and review.status == "reviewed"
    assert _found(session, rs, review_status="reviewed") == {"zh1"}
    # A second verdict replaces the first.
    rv.label_turn(session=session, message_id=thanks, status="correct", reviewer_id=None)
    labels = session.scalars(select(TurnLabel).where(TurnLabel.message_id == thanks)).all()
    assert len(labels) == 1 and labels[0].status == "correct" and labels[0].intent == "thank"


def test_label_refusals(session: Session, rs: ReviewSet) -> None:
    fallback = rs.turns[("en2", 2)]
    with pytest.raises(InvalidInput, match="relabel it"):
        rv.label_turn(session=session, message_id=fallback, status="correct", reviewer_id=None)
    with pytest.raises(NotFound):
        rv.label_turn(
            session=session, message_id=rs.turns[("zh1", 1)], status="correct", reviewer_id=None
        )  # a bot message
    with pytest.raises(InvalidInput, match="personal data"):
        rv.label_turn(
            session=session, message_id=rs.turns[("en4", 1)], status="relabelled",
            intent="human_agent", annotated="My phone is [13812345678](phone_number), call me",
            reviewer_id=None,
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        rv.label_turn(session=session, message_id=fallback, status="maybe", reviewer_id=None)
    with pytest.raises(InvalidInput):
        rv.set_review_status(
            session=session, conversation_id=rs.ids["zh1"], status="done", reviewer_id=None
        )


def test_corrected_examples_yaml(session: Session, rs: ReviewSet) -> None:
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    rv.label_turn(
        session=session, message_id=rs.turns[("zh1", 0)], status="correct", reviewer_id=None
    )
    rv.label_turn(
        session=session, message_id=rs.turns[("en2", 2)], status="relabelled",
        intent="out_of_scope", reviewer_id=None,
    )  # fmt: skip
    rv.label_turn(
        session=session, message_id=rs.turns[("en2", 0)], status="relabelled",
        intent="return_refund", annotated="Where is my [parcel](product)? I want a refund",
        reviewer_id=None,
    )  # fmt: skip
    # Personal data: never exported as training text.
    rv.label_turn(
        session=session, message_id=rs.turns[("en4", 1)], status="relabelled",
        intent="human_agent", reviewer_id=None,
    )  # fmt: skip
    report = rx.ExportReport()
    text = rx.corrected_examples_yaml(session, since=since, report=report)
    data = yaml.safe_load(text)
    assert data["version"] == "3.1"
    blocks = {b["intent"]: b["examples"].splitlines() for b in data["nlu"]}
    assert blocks["order_status"] == ["- 我的[衬衫](product)订单到哪了"]
    assert blocks["out_of_scope"] == ["- blorp zibble"]
    assert blocks["return_refund"] == ["- Where is my [parcel](product)? I want a refund"]
    assert "human_agent" not in blocks and PHONE not in text
    assert report.personal_data == 1 and report.examples == 3
    assert list(blocks) == sorted(blocks)  # grouped per intent, in a stable order
    # Labels before ``since`` are left out.
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert yaml.safe_load(rx.corrected_examples_yaml(session, since=later))["nlu"] == []


def test_training_text_already_in_data_nlu_is_not_exported(session: Session, rs: ReviewSet) -> None:
    cid = rs.ids["zh5"]
    message = Message(
        uid=f"dup-{rs.tag}", conversation_id=cid, role="shopper", text="我的快递到哪了",
        intent="shipping_info", confidence=0.5, created_at=BASE,
    )  # fmt: skip  # "我的快递到哪了" is an order_status example in data/nlu/zh/orders.yml
    session.add(message)
    session.flush()
    rv.label_turn(session=session, message_id=message.id, status="correct", reviewer_id=None)
    report = rx.ExportReport()
    text = rx.corrected_examples_yaml(session, report=report)
    assert "我的快递到哪了" not in text and report.in_training_data >= 1


def test_conversation_test_stories(session: Session, rs: ReviewSet) -> None:
    rv.label_turn(
        session=session, message_id=rs.turns[("en2", 2)], status="relabelled",
        intent="out_of_scope", reviewer_id=None,
    )  # fmt: skip
    text = rx.conversation_test_stories(session, [rs.ids["zh1"], rs.ids["en2"], rs.ids["en4"]])
    data = yaml.safe_load(text)
    stories = {s["story"]: s["steps"] for s in data["stories"]}
    zh1 = stories[f"conversation {rs.ids['zh1']}"]
    assert zh1[0] == {"user": "我的[衬衫](product)订单到哪了", "intent": "order_status"}
    assert zh1[1] == {"action": "action_check_order_status"}
    assert zh1[2]["intent"] == "thank"
    en2 = stories[f"conversation {rs.ids['en2']}"]
    assert en2[2] == {"user": "blorp zibble", "intent": "out_of_scope"}  # the correction
    en4 = stories[f"conversation {rs.ids['en4']}"]
    assert en4[0]["user"] == "My phone is 138****5678, call me"
    assert PHONE not in text


def _export(session: Session, rs: ReviewSet) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    filters = rv.parse_filters(MARCH)
    body = "".join(rx.export_csv(session=session, filters=filters))
    rows = {r["conversation_id"]: r for r in csv.DictReader(io.StringIO(body))}
    parsed = json.loads("".join(rx.export_json(session=session, filters=filters)))
    return rows, {r["conversation_id"]: r for r in parsed}


def test_export_csv_and_json_values(session: Session, rs: ReviewSet) -> None:
    rows, objects = _export(session, rs)
    assert set(rows) == set(rs.ids.values()) == set(objects)
    zh1, en2, zh3, en4 = (rs.ids[n] for n in ("zh1", "en2", "zh3", "en4"))
    # First response: the first bot or agent message after the shopper's first.
    assert objects[zh1]["first_response_s"] == 10.0
    assert objects[en4]["first_response_s"] == 10.0  # the welcome before does not count
    # Resolution: never handed off → the last reply; handed off and ended → its end;
    # still with an agent → none.
    assert objects[zh1]["resolution_s"] == 30.0
    assert objects[en2]["resolution_s"] == 100.0
    assert objects[zh3]["resolution_s"] is None
    assert objects[en2]["satisfaction"] == 2 and objects[zh3]["satisfaction"] is None
    assert objects[zh1]["tags"] == [f"review-{rs.tag}"]
    assert objects[en2]["handoff_reasons"] == ["low_confidence"]
    assert objects[en2]["outcomes"] == ["return"] and objects[en2]["fallback"] is True
    assert objects[en4]["review_status"] == "needs_attention"
    assert list(objects[zh1]) == list(rx.EXPORT_FIELDS)
    # The CSV carries the same values.
    assert rows[zh1]["first_response_s"] == "10.0" and rows[zh3]["resolution_s"] == ""
    assert rows[en2]["satisfaction"] == "2" and rows[en2]["fallback"] == "yes"
    assert rows[zh1]["tags"] == f"review-{rs.tag}"
    assert rows[en2]["intents"] == "return_refund;nlu_fallback"
    assert PHONE not in json.dumps(objects)  # no message text in the export


def test_annotation_round_trip() -> None:
    text, entities = rv.parse_annotated(
        '我要[2件](quantity)[蓝色]{"entity": "colour", "value": "blue"}的'
    )
    assert text == "我要2件蓝色的"
    assert entities == [
        {"entity": "quantity", "value": "2件", "start": 2, "end": 4},
        {"entity": "colour", "value": "blue", "start": 4, "end": 6},
    ]
    assert (
        rv.annotate(text, entities)
        == '我要[2件](quantity)[蓝色]{"entity": "colour", "value": "blue"}的'
    )
    assert rv.annotate("abc", [{"entity": "size", "value": "x", "start": 1, "end": 9}]) is None
    assert rv.annotate("a [b]", []) is None  # brackets would read as markup


def test_migration_matches_the_models(db_engine: Any) -> None:
    """The review tables as migrated are the models (SQLite's FTS5 shadow tables and the
    PostgreSQL-only GIN index aside)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.models import Base

    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = ("turn_label", "conversation_review", "message_search", "message_fts")

    def about_review(change: Any) -> bool:
        text = repr(change)
        return any(name in text for name in mine) or "ix_review_" in text

    sqlite = db_engine.dialect.name == "sqlite"
    left = [
        c
        for c in diff
        if about_review(c)
        and not (sqlite and "message_fts" in repr(c))
        and not (sqlite and "ix_message_search_terms" in repr(c))
    ]
    assert left == []
