"""Rule-based customer segments: a small JSON rule language compiled to one SQL query.

A rule is JSON, never code: it is parsed and checked here against a fixed grammar and
compiled to SQLAlchemy Core, so nothing a user types is evaluated or pasted into SQL (every
value is a bound parameter). Each node is an object with exactly one key:

    {"all": [rule, …]}        every one holds            {"any": [rule, …]}   at least one
    {"not": rule}             does not hold
    {"tag": "vip"}            has the tag
    {"bought": {"product": "P-OXF", "category": "shirt", "colour": "blue", "within_days": 90}}
                              has a purchase matching all the given fields (at least one of
                              product / category / colour; within_days is optional)
    {"never_bought": {…}}     the same fields; no such purchase
    {"intent": "complain"} or {"intent": {"name": "complain", "within_days": 30}}
                              said something with that intent in a conversation
    {"outcome": "delay_accepted"} or {"outcome": {"kind": "return", "within_days": 30}}
                              a journey recorded that outcome for the customer
                              (bot.services.outcomes: delay_accepted, cancelled, return,
                              exchange, complaint_recorded, coupon_issued, …)
    {"language": "zh"} or {"language": ["zh", "en"]}
    {"membership": "vip"} or {"membership": ["gold", "vip"]}
    {"last_contact": {"within_days": 30}}       a conversation in the last 30 days
    {"last_contact": {"older_than_days": 90}}   contacted, but not in the last 90 days
    {"last_contact": "never"}                   never contacted
    {"rfm": {"r": {"min": 4}, "m": {"min": 3, "max": 5}}}   RFM quintiles (bot.services.rfm)
    {"marketing_consent": true}                 consented to marketing (see the hook below)

"Bought a blue shirt and a red tie, never a navy jacket, consented to marketing":

    {"all": [{"bought": {"category": "shirt", "colour": "blue"}},
             {"bought": {"category": "tie", "colour": "red"}},
             {"never_bought": {"product": "P-BLZ"}},
             {"marketing_consent": true}]}

Purchases are orders in ``PURCHASED_ORDER_STATUSES``. Counts, member pages (by customer id,
keyset) and the CSV export all run the same compiled WHERE clause.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, false, func, not_, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.models import (
    Conversation,
    Customer,
    Message,
    Order,
    OrderItem,
    Outcome,
    Product,
    Variant,
)
from bot.models.crm import PURCHASED_ORDER_STATUSES, CustomerRfm, CustomerTag, Segment
from bot.spreadsheet import cell

MAX_DEPTH = 8
MAX_NODES = 64
MAX_RULE_CHARS = 10_000
MAX_TEXT = 64
MAX_DAYS = 36_500
PAGE_SIZE = 50
PURCHASE_FIELDS = ("product", "category", "colour", "within_days")
RFM_FIELDS = {"r": CustomerRfm.r_score, "f": CustomerRfm.f_score, "m": CustomerRfm.m_score}


class RuleError(InvalidInput):
    """A segment rule that is not valid JSON or not in the rule language; says where."""

    code = "invalid_segment_rule"


class SegmentNameTaken(InvalidInput):
    code = "segment_name_taken"


# --- the marketing-consent hook ------------------------------------------------------------

MarketingConsentClause = Callable[[], ColumnElement[bool]]


def marketing_consent_clause() -> ColumnElement[bool]:
    """The SQL condition "this customer consented to marketing", correlated to ``customer``.

    Consent belongs to the privacy part (``bot.services.consent``). Until it exists this
    hook looks, in order, for: ``bot.services.consent.marketing_consent_clause()`` (a SQL
    condition on ``customer``: the consent table's, when privacy ships it); a boolean
    ``customer.marketing_consent`` column; and otherwise answers *no one* — marketing goes
    only to customers who said yes, so an unknown consent never counts as consent."""
    try:
        consent = importlib.import_module("bot.services.consent")
    except ImportError:
        consent = None
    provider = getattr(consent, "marketing_consent_clause", None)
    if provider is not None:
        clause: ColumnElement[bool] = provider()
        return clause
    column = Customer.__table__.c.get("marketing_consent")
    if column is not None:
        return column.is_(True)
    return false()


# --- parsing and checking ------------------------------------------------------------------


def parse_rule(raw: str | dict[str, Any]) -> dict[str, Any]:
    """A rule from JSON text (or an already-decoded object), checked; raises RuleError."""
    if isinstance(raw, str):
        if len(raw) > MAX_RULE_CHARS:
            raise RuleError(f"segment rule is longer than {MAX_RULE_CHARS} characters")
        try:
            rule = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RuleError(
                f"segment rule is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        rule = raw
    _Checker().node(rule, "$", 1)
    return rule


class _Checker:
    def __init__(self) -> None:
        self.nodes = 0

    def fail(self, where: str, message: str) -> RuleError:
        return RuleError(f"segment rule at {where}: {message}")

    def node(self, rule: Any, where: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(where, f"more than {MAX_NODES} conditions")
        if depth > MAX_DEPTH:
            raise self.fail(where, f"nested deeper than {MAX_DEPTH}")
        if not isinstance(rule, dict) or len(rule) != 1:
            raise self.fail(
                where, f"expected an object with exactly one key, one of {', '.join(KINDS)}"
            )
        ((kind, value),) = rule.items()
        if kind not in KINDS:
            raise self.fail(
                where, f"unknown condition {kind!r}; expected one of {', '.join(KINDS)}"
            )
        here = f"{where}.{kind}"
        if kind in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise self.fail(here, "expected a non-empty list of conditions")
            for i, child in enumerate(value):
                self.node(child, f"{here}[{i}]", depth + 1)
        elif kind == "not":
            self.node(value, here, depth + 1)
        elif kind in ("tag", "language", "membership"):
            values = value if isinstance(value, list) else [value]
            if not values:
                raise self.fail(here, "expected a text or a non-empty list of texts")
            for v in values:
                self.text(v, here)
        elif kind in ("bought", "never_bought"):
            self.purchase(value, here)
        elif kind in ("intent", "outcome"):
            key = "name" if kind == "intent" else "kind"
            if isinstance(value, str):
                self.text(value, here)
            else:
                self.fields(value, here, (key, "within_days"), required=(key,))
                self.text(value[key], f"{here}.{key}")
                if "within_days" in value:
                    self.days(value["within_days"], f"{here}.within_days")
        elif kind == "last_contact":
            if value == "never":
                return
            self.fields(value, here, ("within_days", "older_than_days"))
            if len(value) != 1:
                raise self.fail(
                    here, 'expected "never", {"within_days": N} or {"older_than_days": N}'
                )
            ((key, days),) = value.items()
            self.days(days, f"{here}.{key}")
        elif kind == "rfm":
            self.fields(value, here, tuple(RFM_FIELDS))
            if not value:
                raise self.fail(here, "expected at least one of r, f, m")
            for letter, bounds in value.items():
                self.fields(bounds, f"{here}.{letter}", ("min", "max"))
                if not bounds:
                    raise self.fail(f"{here}.{letter}", "expected min and/or max")
                for key, score in bounds.items():
                    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
                        raise self.fail(f"{here}.{letter}.{key}", "expected a score from 1 to 5")
        elif kind == "marketing_consent" and not isinstance(value, bool):
            raise self.fail(here, "expected true or false")

    def purchase(self, value: Any, where: str) -> None:
        self.fields(value, where, PURCHASE_FIELDS)
        if not {"product", "category", "colour"} & set(value):
            raise self.fail(where, "expected at least one of product, category, colour")
        for key in ("product", "category", "colour"):
            if key in value:
                self.text(value[key], f"{where}.{key}")
        if "within_days" in value:
            self.days(value["within_days"], f"{where}.within_days")

    def fields(
        self, value: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> None:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object with {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                raise self.fail(where, f"unknown field {key!r}; expected {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(where, f"missing field {key!r}")

    def text(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            raise self.fail(where, f"expected a non-empty text of at most {MAX_TEXT} characters")

    def days(self, value: Any, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_DAYS:
            raise self.fail(where, f"expected a whole number of days from 1 to {MAX_DAYS}")


# --- compiling -----------------------------------------------------------------------------


def compile_rule(
    rule: dict[str, Any],
    *,
    clock: Clock = utcnow,
    consent: MarketingConsentClause = marketing_consent_clause,
) -> ColumnElement[bool]:
    """The WHERE clause (over ``customer``) of a checked rule."""
    parse_rule(rule)
    return _Compiler(clock(), consent).node(rule)


class _Compiler:
    def __init__(self, now: datetime, consent: MarketingConsentClause) -> None:
        self.now = now
        self.consent = consent

    def since(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    def node(self, rule: dict[str, Any]) -> ColumnElement[bool]:
        ((kind, value),) = rule.items()
        method: Callable[[Any], ColumnElement[bool]] = getattr(self, f"c_{kind}")
        return method(value)

    def c_all(self, value: list[dict[str, Any]]) -> ColumnElement[bool]:
        return and_(true(), *(self.node(v) for v in value))

    def c_any(self, value: list[dict[str, Any]]) -> ColumnElement[bool]:
        return or_(false(), *(self.node(v) for v in value))

    def c_not(self, value: dict[str, Any]) -> ColumnElement[bool]:
        return not_(self.node(value))

    def c_tag(self, value: str | list[str]) -> ColumnElement[bool]:
        tags = value if isinstance(value, list) else [value]
        return exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_(tags))

    def c_language(self, value: str | list[str]) -> ColumnElement[bool]:
        return Customer.language.in_(value if isinstance(value, list) else [value])

    def c_membership(self, value: str | list[str]) -> ColumnElement[bool]:
        return Customer.membership_level.in_(value if isinstance(value, list) else [value])

    def c_bought(self, value: dict[str, Any]) -> ColumnElement[bool]:
        query = (
            select(Order.id)
            .join(OrderItem, OrderItem.order_id == Order.id)
            .join(Variant, Variant.id == OrderItem.variant_id)
            .where(Order.customer_id == Customer.id, Order.status.in_(PURCHASED_ORDER_STATUSES))
        )
        if "product" in value or "category" in value:
            query = query.join(Product, Product.id == Variant.product_id)
        if "product" in value:
            query = query.where(Product.external_id == value["product"])
        if "category" in value:
            query = query.where(Product.category == value["category"])
        if "colour" in value:
            query = query.where(Variant.colour == value["colour"])
        if "within_days" in value:
            query = query.where(Order.placed_at >= self.since(value["within_days"]))
        return query.exists()

    def c_never_bought(self, value: dict[str, Any]) -> ColumnElement[bool]:
        return not_(self.c_bought(value))

    def c_intent(self, value: str | dict[str, Any]) -> ColumnElement[bool]:
        spec: dict[str, Any] = {"name": value} if isinstance(value, str) else value
        query = (
            select(Message.id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.customer_id == Customer.id,
                Message.role == "shopper",
                Message.intent == spec["name"],
            )
        )
        if "within_days" in spec:
            query = query.where(Message.created_at >= self.since(spec["within_days"]))
        return query.exists()

    def c_outcome(self, value: str | dict[str, Any]) -> ColumnElement[bool]:
        spec: dict[str, Any] = {"kind": value} if isinstance(value, str) else value
        query = select(Outcome.id).where(
            Outcome.customer_id == Customer.id, Outcome.kind == spec["kind"]
        )
        if "within_days" in spec:
            query = query.where(Outcome.created_at >= self.since(spec["within_days"]))
        return query.exists()

    def c_last_contact(self, value: str | dict[str, int]) -> ColumnElement[bool]:
        contacted = select(Conversation.id).where(Conversation.customer_id == Customer.id)
        if value == "never":
            return not_(contacted.exists())
        assert isinstance(value, dict)
        if "within_days" in value:
            since = self.since(value["within_days"])
            return contacted.where(Conversation.last_message_at >= since).exists()
        since = self.since(value["older_than_days"])
        recent = contacted.where(Conversation.last_message_at >= since)
        return and_(contacted.exists(), not_(recent.exists()))

    def c_rfm(self, value: dict[str, dict[str, int]]) -> ColumnElement[bool]:
        # Its own alias: the member list joins customer_rfm too, and must not swallow this.
        scores = aliased(CustomerRfm)
        query = select(scores.customer_id).where(scores.customer_id == Customer.id)
        for letter, bounds in value.items():
            column = getattr(scores, RFM_FIELDS[letter].key)
            if "min" in bounds:
                query = query.where(column >= bounds["min"])
            if "max" in bounds:
                query = query.where(column <= bounds["max"])
        return query.exists()

    def c_marketing_consent(self, value: bool) -> ColumnElement[bool]:
        clause = self.consent()
        return clause if value else not_(clause)


KINDS = tuple(name[2:] for name in vars(_Compiler) if name.startswith("c_"))


# --- counts, members, export ---------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    id: int
    external_id: str
    name: str
    language: str
    membership_level: str
    r: int | None
    f: int | None
    m: int | None


def count_members(
    *,
    session: Session,
    rule: dict[str, Any],
    clock: Clock = utcnow,
    consent: MarketingConsentClause = marketing_consent_clause,
) -> int:
    """How many customers the rule selects (one COUNT query)."""
    where = compile_rule(rule, clock=clock, consent=consent)
    return int(session.scalar(select(func.count()).select_from(Customer).where(where)) or 0)


def _members_query(where: ColumnElement[bool]) -> Any:
    return (
        select(
            Customer.id,
            Customer.external_id,
            Customer.name,
            Customer.language,
            Customer.membership_level,
            CustomerRfm.r_score,
            CustomerRfm.f_score,
            CustomerRfm.m_score,
        )
        .outerjoin(CustomerRfm, CustomerRfm.customer_id == Customer.id)
        .where(where)
        .order_by(Customer.id)
    )


def list_members(
    *,
    session: Session,
    rule: dict[str, Any],
    after_id: int = 0,
    limit: int = PAGE_SIZE,
    clock: Clock = utcnow,
    consent: MarketingConsentClause = marketing_consent_clause,
) -> list[Member]:
    """A page of members by customer id: the ``limit`` first with ``id > after_id``."""
    where = compile_rule(rule, clock=clock, consent=consent)
    query = _members_query(where).where(Customer.id > after_id).limit(max(1, min(limit, 500)))
    return [Member(*row) for row in session.execute(query)]


CSV_HEADER = ("customer_id", "name", "language", "membership_level", "r", "f", "m")


def export_csv(
    *,
    session: Session,
    rule: dict[str, Any],
    clock: Clock = utcnow,
    consent: MarketingConsentClause = marketing_consent_clause,
    batch: int = 1000,
) -> Iterator[str]:
    """The members who consented to marketing, as CSV, yielded a chunk at a time (rows
    streamed from the database with ``yield_per``). The export is a marketing list, so a
    member without consent (or who withdrew it, at once) is never in it, whatever the rule
    says; counts and previews still show the whole segment. The store's own customer id,
    no phone or e-mail: contact details stay with the store and its consent records."""
    where = and_(compile_rule(rule, clock=clock, consent=consent), consent())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    result = session.execute(_members_query(where).execution_options(yield_per=batch))
    for rows in result.partitions():
        for row in rows:
            writer.writerow([cell(v) for v in row[1:]])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


# --- saved segments ------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentView:
    id: int
    name: str
    rule: dict[str, Any]
    created_by: int | None
    created_at: datetime


def _view(segment: Segment) -> SegmentView:
    return SegmentView(
        segment.id, segment.name, segment.rule, segment.created_by, segment.created_at
    )


def save_segment(
    *,
    session: Session,
    name: str,
    rule: str | dict[str, Any],
    created_by: int | None,
    clock: Clock = utcnow,
) -> SegmentView:
    """Save a named segment; the rule is checked first. Names are unique."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a segment needs a name of at most 100 characters")
    checked = parse_rule(rule)
    if session.scalar(select(Segment.id).where(Segment.name == name)) is not None:
        raise SegmentNameTaken(f"a segment named {name!r} already exists")
    segment = Segment(name=name, rule=checked, created_by=created_by, created_at=clock())
    try:
        with session.begin_nested():
            session.add(segment)
    except IntegrityError:
        raise SegmentNameTaken(f"a segment named {name!r} already exists") from None
    return _view(segment)


def list_segments(*, session: Session, limit: int = 100) -> list[SegmentView]:
    """Saved segments, newest first."""
    rows = session.scalars(
        select(Segment).order_by(Segment.created_at.desc(), Segment.id.desc()).limit(limit)
    )
    return [_view(s) for s in rows]


def get_segment(*, session: Session, segment_id: int) -> SegmentView:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"no segment {segment_id}")
    return _view(segment)
