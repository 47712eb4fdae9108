"""Rule tags: each shipped rule tags exactly the customers an independent count in Python
finds; a rerun changes nothing; tags of other sources survive, stale rule tags do not."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Conversation, Customer, Message, Order, OrderItem, Outcome, Product, Variant
from bot.models.crm import PURCHASED_ORDER_STATUSES, CustomerRfm, CustomerTag
from bot.services.conversations import (
    Reply,
    TurnOutcome,
    record_inbound,
    record_turn,
    start_session,
)
from bot.services.rfm import recompute_rfm
from bot.services.tags import (
    RULE_SOURCE,
    TagRuleError,
    apply_tag_rules,
    expand_rules,
    load_rule_entries,
)
from tests.conftest import FIXED_NOW, fixed_clock


def _say(session: Session, external_id: str, intent: str, at: datetime) -> None:
    chat = start_session(
        session=session, visitor_id=None, customer_external_id=external_id, clock=lambda: at
    )
    inbound = record_inbound(
        session=session,
        conversation_id=chat.conversation_id,
        client_msg_id=f"{intent}-{at.isoformat()}",
        text=intent,
        clock=lambda: at,
    )
    record_turn(
        session=session,
        message_id=inbound.message.id,
        outcome=TurnOutcome(replies=[Reply("ok")], intent=intent),
        clock=lambda: at,
    )
    conversation = session.get(Conversation, chat.conversation_id)
    assert conversation is not None
    conversation.state = "closed"  # the next message starts a new conversation
    session.flush()


def _customer_id(session: Session, external_id: str) -> int:
    found = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
    assert found is not None
    return found


def _tagged(session: Session) -> dict[str, set[int]]:
    holders: dict[str, set[int]] = defaultdict(set)
    for customer_id, tag in session.execute(select(CustomerTag.customer_id, CustomerTag.tag)):
        holders[tag].add(customer_id)
    return holders


def _expected(session: Session) -> dict[str, set[int]]:
    """What every shipped rule should select, worked out in Python from the rows."""
    now = FIXED_NOW
    customers = list(session.scalars(select(Customer)))
    expected: dict[str, set[int]] = {
        "vip": {c.id for c in customers if c.membership_level == "vip"},
        "high_value": {
            r.customer_id for r in session.scalars(select(CustomerRfm)) if r.m_score >= 5
        },
        "complainer": set(),
        "shipping_delay_affected": set(),
    }
    owners = {c.id: c.customer_id for c in session.scalars(select(Conversation))}
    for m in session.scalars(select(Message).where(Message.role == "shopper")):
        owner = owners[m.conversation_id]
        if owner is None:
            continue
        if m.intent == "complaint":
            expected["complainer"].add(owner)
        if m.intent == "shipping_delay" and m.created_at >= now - timedelta(days=90):
            expected["shipping_delay_affected"].add(owner)
    categories = {p.id: p.category for p in session.scalars(select(Product))}
    for category in set(categories.values()):
        expected[f"interested:{category}"] = set()
    products = {v.id: v.product_id for v in session.scalars(select(Variant))}
    orders = {o.id: o for o in session.scalars(select(Order))}
    for item in session.scalars(select(OrderItem)):
        order = orders[item.order_id]
        if order.status in PURCHASED_ORDER_STATUSES and order.placed_at >= now - timedelta(
            days=180
        ):
            category = categories[products[item.variant_id]]
            expected[f"interested:{category}"].add(order.customer_id)
    return expected


@pytest.fixture
def history(session: Session) -> dict[str, int]:
    """Scores, some intents (recent and old), and tags from an agent, an import and stale
    rule tags."""
    recompute_rfm(session=session, clock=fixed_clock)
    _say(session, "C00001", "shipping_delay", FIXED_NOW - timedelta(days=30))
    _say(session, "C00003", "shipping_delay", FIXED_NOW - timedelta(days=120))
    _say(session, "C00003", "complaint", FIXED_NOW - timedelta(days=200))
    ids = {ext: _customer_id(session, ext) for ext in ("C00001", "C00002", "C00003", "C00004")}
    for ext, tag, source in (
        ("C00004", "vip", "agent"),  # not a VIP member: the agent's word stands
        ("C00002", "vip", "agent"),  # a VIP member the agent tagged first
        ("C00004", "complainer", RULE_SOURCE),  # stale: never complained
        ("C00001", "retired_rule", RULE_SOURCE),  # its rule is gone
        ("C00001", "wholesale", "import"),
    ):
        session.add(
            CustomerTag(
                customer_id=ids[ext], tag=tag, source=source, created_at=FIXED_NOW - timedelta(1)
            )
        )
    session.flush()
    return ids


def test_each_shipped_rule_tags_the_right_customers(
    session: Session, history: dict[str, int]
) -> None:
    counts = apply_tag_rules(session=session, clock=fixed_clock)
    expected = _expected(session)
    assert set(counts) == set(expected)
    assert {t for t in counts if t.startswith("interested:")} >= {"interested:shirt"}
    for tag, members in expected.items():
        assert counts[tag] == len(members), tag
    assert history["C00001"] in expected["shipping_delay_affected"]
    assert history["C00003"] not in expected["shipping_delay_affected"]  # 120 days ago
    assert history["C00003"] in expected["complainer"]
    assert expected["vip"] and expected["high_value"] and expected["interested:shirt"]

    tagged = _tagged(session)
    for tag, members in expected.items():
        extra = {history["C00004"]} if tag == "vip" else set()
        assert tagged[tag] == members | extra, tag
    assert "retired_rule" not in tagged
    assert tagged["wholesale"] == {history["C00001"]}
    sources = dict(
        session.execute(
            select(CustomerTag.customer_id, CustomerTag.source).where(CustomerTag.tag == "vip")
        ).all()
    )
    assert sources[history["C00004"]] == sources[history["C00002"]] == "agent"


def test_a_rerun_changes_nothing(session: Session, history: dict[str, int]) -> None:
    first = apply_tag_rules(session=session, clock=fixed_clock)
    rows = select(
        CustomerTag.customer_id, CustomerTag.tag, CustomerTag.source, CustomerTag.created_at
    )
    before = set(session.execute(rows).all())
    later = lambda: FIXED_NOW + timedelta(minutes=5)  # noqa: E731
    assert apply_tag_rules(session=session, clock=later) == first
    assert set(session.execute(rows).all()) == before


def test_a_rule_that_stops_holding_removes_only_its_own_tags(
    session: Session, history: dict[str, int]
) -> None:
    apply_tag_rules(session=session, clock=fixed_clock)
    nobody = [{"tag": "vip", "description": "", "rule": {"membership": "nobody"}}]
    assert apply_tag_rules(session=session, rules=nobody, clock=fixed_clock) == {"vip": 0}
    tagged = _tagged(session)
    assert tagged["vip"] == {history["C00002"], history["C00004"]}  # the agent's
    assert tagged["wholesale"] == {history["C00001"]}  # the import's
    assert set(tagged) == {"vip", "wholesale"}  # every other rule tag went with its rule


def test_the_rules_file_expands_one_interest_rule_per_category(session: Session) -> None:
    rules = expand_rules(session=session, entries=load_rule_entries())
    categories = set(session.scalars(select(Product.category)))
    interests = {r.tag: r.rule for r in rules if r.tag.startswith("interested:")}
    assert set(interests) == {f"interested:{c}" for c in categories}
    assert interests["interested:shirt"] == {"bought": {"category": "shirt", "within_days": 180}}


@pytest.mark.parametrize(
    "entry",
    [
        {"tag": "x", "rule": {"tag": "vip"}},
        {"tag": "x", "rule": {"bogus": 1}},
        {"tag": "", "rule": {"membership": "vip"}},
        {"tag": "x", "rule": {"membership": "vip"}, "colour": "red"},
        {"tag": "x", "for_each": "colour", "rule": {"membership": "vip"}},
    ],
)
def test_bad_rules_are_refused(session: Session, entry: dict[str, object]) -> None:
    with pytest.raises(TagRuleError):
        expand_rules(session=session, entries=[entry])


def test_a_turn_tags_the_customer_at_once(session: Session) -> None:
    """The turn that says it adds the tag, without waiting for the recompute job; a later
    turn, when the rule no longer holds, takes it off; another source's tag stays."""
    zhang = _customer_id(session, "C00001")
    li = _customer_id(session, "C00003")
    session.add(CustomerTag(customer_id=li, tag="complainer", source="agent", created_at=FIXED_NOW))
    session.flush()
    _say(session, "C00001", "shipping_delay", FIXED_NOW)
    _say(session, "C00003", "complaint", FIXED_NOW)
    tagged = _tagged(session)
    assert zhang in tagged["shipping_delay_affected"]
    assert zhang not in tagged["complainer"] and zhang not in tagged.get("vip", set())
    sources = dict(
        session.execute(
            select(CustomerTag.tag, CustomerTag.source).where(CustomerTag.customer_id == li)
        ).all()
    )
    assert sources["complainer"] == "agent"  # the agent's row is kept, not doubled
    # 91 days later the delay is history. A turn of another intent does not look at the
    # rule (the turn stays cheap); the recompute job lets the window run out.
    later = FIXED_NOW + timedelta(days=91)
    _say(session, "C00001", "greet", later)
    assert zhang in _tagged(session)["shipping_delay_affected"]
    apply_tag_rules(session=session, clock=lambda: later)
    assert zhang not in _tagged(session)["shipping_delay_affected"]


def test_a_turn_looks_only_at_the_rules_it_can_change(session: Session) -> None:
    from bot.services.tags import apply_turn_rules

    zhang = _customer_id(session, "C00001")
    rules = [
        {"tag": "talker", "rule": {"intent": "greet"}},
        {"tag": "calm", "rule": {"not": {"intent": "complaint"}}},
        {"tag": "recent", "rule": {"last_contact": {"within_days": 7}}},
    ]
    turn = lambda intent: apply_turn_rules(  # noqa: E731
        session=session, customer_id=zhang, intent=intent, rules=rules, clock=fixed_clock
    )
    assert set(turn("greet")) == {"talker", "recent"}
    assert set(turn("complaint")) == {"calm", "recent"}  # a negated intent is named too
    assert set(turn("ask_coupon")) == {"recent"}  # contact time changes with any turn
    assert set(turn(None)) == {"talker", "calm", "recent"}  # after a login merge: all


def test_turn_rules_are_only_the_conversation_kinds(session: Session) -> None:
    from bot.services.tags import apply_turn_rules

    zhang = _customer_id(session, "C00001")
    rules = [
        {"tag": "talker", "rule": {"intent": "greet"}},
        {"tag": "buyer", "rule": {"bought": {"category": "shirt"}}},
        {"tag": "recent", "rule": {"last_contact": {"within_days": 7}}},
    ]
    verdict = apply_turn_rules(session=session, customer_id=zhang, rules=rules, clock=fixed_clock)
    assert set(verdict) == {"talker", "recent"}  # purchases are the recompute job's
    assert verdict == {"talker": False, "recent": False}
    _say(session, "C00001", "greet", FIXED_NOW)
    verdict = apply_turn_rules(session=session, customer_id=zhang, rules=rules, clock=fixed_clock)
    assert verdict == {"talker": True, "recent": True}
    assert {"talker", "recent"} <= {
        t
        for (t,) in session.execute(select(CustomerTag.tag).where(CustomerTag.customer_id == zhang))
    }


def test_turn_rules_see_what_the_caller_has_not_flushed(session: Session) -> None:
    from bot.services.tags import apply_turn_rules

    zhang = _customer_id(session, "C00001")
    rules = [{"tag": "accepted", "rule": {"outcome": "delay_accepted"}}]
    session.add(
        Outcome(
            message_id="m-unflushed",
            customer_id=zhang,
            kind="delay_accepted",
            created_at=FIXED_NOW,
        )
    )  # not flushed yet
    verdict = apply_turn_rules(session=session, customer_id=zhang, rules=rules, clock=fixed_clock)
    assert verdict == {"accepted": True}
