"""Ops transcript review: the filtered list of conversations, a transcript with each turn's
NLU result and verdicts on turns (correct / relabelled). What review feeds back — corrected
training examples, test stories, the CSV / JSON export — is ``bot.services.review_export``.

Every text an ops page shows goes through ``bot.privacy.views.for_role``. Filters compile
to one WHERE clause over ``conversation`` (EXISTS sub-queries, each backed by an index) that
the list, its count and the exports share.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import and_, exists, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot import search
from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.models import Conversation, Customer, Message, Outcome
from bot.models.crm import CustomerTag, Segment
from bot.models.handoff import Csat, Handoff
from bot.models.review import LABEL_STATUSES, REVIEW_STATUSES, ConversationReview, TurnLabel
from bot.privacy.masking import StoreIdLookup
from bot.privacy.views import for_role
from bot.services.segments import compile_rule
from bot.settings import PROJECT_ROOT, get_settings

FALLBACK_INTENT = "nlu_fallback"
PAGE_SIZE = 50
MAX_PAGE = 200
COUNT_CAP = 10_000
MAX_STORY_CONVERSATIONS = 1000
HANDOFF_CHOICES = ("any", "none")
CSAT_CHOICES = ("1", "2", "3", "4", "5", "low", "none")


# --- the domain's vocabulary -----------------------------------------------------------------


@lru_cache(maxsize=4)
def domain_vocabulary(path: Path = PROJECT_ROOT / "domain.yml") -> tuple[tuple[str, ...], ...]:
    """(intents, entity types) of the assistant's domain: what a turn can be relabelled to.
    External intents (sent by the gateway, never typed) and the detected ``language`` are not
    choices."""
    domain = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def names(items: Iterable[Any] | None) -> tuple[str, ...]:
        out = []
        for item in items or ():
            name = next(iter(item)) if isinstance(item, dict) else str(item)
            out.append(name)
        return tuple(out)

    intents = tuple(i for i in names(domain.get("intents")) if not i.startswith("EXTERNAL_"))
    entities = tuple(e for e in names(domain.get("entities")) if e != "language")
    return intents, entities


def intent_choices() -> tuple[str, ...]:
    return domain_vocabulary()[0]


def entity_choices() -> tuple[str, ...]:
    return domain_vocabulary()[1]


# --- filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFilters:
    """What the list shows. Dates are the store's calendar days, both ends included."""

    date_from: date | None = None
    date_to: date | None = None
    language: str | None = None
    intent: str | None = None
    confidence_below: float | None = None
    fallback: bool | None = None
    handoff: str | None = None  # any | none | a reason
    outcome: str | None = None
    csat: str | None = None  # 1..5 | low (1-2) | none (not answered)
    segment_id: int | None = None
    tag: str | None = None
    review_status: str | None = None
    query: str | None = None

    def params(self) -> dict[str, str]:
        """The filters as query parameters (what ``parse_filters`` reads back)."""
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            if isinstance(value, bool):
                out[name] = "yes" if value else "no"
            else:
                out[name] = str(value)
        return out


def _text_param(params: Mapping[str, str], name: str, max_len: int = 64) -> str | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if len(value) > max_len:
        raise InvalidInput(f"{name}: at most {max_len} characters")
    return value


def _choice(params: Mapping[str, str], name: str, choices: Iterable[str]) -> str | None:
    value = _text_param(params, name)
    allowed = tuple(choices)
    if value is not None and value not in allowed:
        raise InvalidInput(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def parse_filters(params: Mapping[str, str]) -> ReviewFilters:
    """Filters from query parameters; an unusable value is an ``InvalidInput`` naming it."""

    def day(name: str) -> date | None:
        value = _text_param(params, name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None

    date_from, date_to = day("date_from"), day("date_to")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("date_from is after date_to")
    threshold = _text_param(params, "confidence_below")
    below: float | None = None
    if threshold is not None:
        try:
            below = float(threshold)
        except ValueError:
            raise InvalidInput("confidence_below: a number between 0 and 1") from None
        if not 0 < below <= 1:
            raise InvalidInput("confidence_below: a number between 0 and 1")
    fallback = _choice(params, "fallback", ("yes", "no"))
    segment = _text_param(params, "segment_id")
    if segment is not None and not segment.isdigit():
        raise InvalidInput("segment_id: a saved segment's number")
    intent = _text_param(params, "intent")
    if intent is not None and intent not in (*intent_choices(), FALLBACK_INTENT):
        raise InvalidInput(f"intent: {intent!r} is not an intent of the domain")
    return ReviewFilters(
        date_from=date_from,
        date_to=date_to,
        language=_choice(params, "language", ("zh", "en")),
        intent=intent,
        confidence_below=below,
        fallback=None if fallback is None else fallback == "yes",
        handoff=_text_param(params, "handoff"),
        outcome=_text_param(params, "outcome", 32),
        csat=_choice(params, "csat", CSAT_CHOICES),
        segment_id=int(segment) if segment is not None else None,
        tag=_text_param(params, "tag"),
        review_status=_choice(params, "review_status", REVIEW_STATUSES),
        query=_text_param(params, "query", search.MAX_QUERY_CHARS),
    )


def _day_start(day: date) -> datetime:
    zone = ZoneInfo(get_settings().store_timezone)
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)


def _shopper_turn(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Message.conversation_id == Conversation.id, *conditions)


def conversation_conditions(session: Session, f: ReviewFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions (over ``conversation``) of the filters."""
    where: list[ColumnElement[bool]] = []
    if f.date_from:
        where.append(Conversation.created_at >= _day_start(f.date_from))
    if f.date_to:
        where.append(Conversation.created_at < _day_start(f.date_to + timedelta(days=1)))
    if f.language:
        where.append(Conversation.language == f.language)
    if f.intent:
        where.append(_shopper_turn(Message.intent == f.intent))
    if f.confidence_below is not None:
        where.append(_shopper_turn(Message.confidence < f.confidence_below))
    if f.fallback is not None:
        had = _shopper_turn(Message.intent == FALLBACK_INTENT)
        where.append(had if f.fallback else ~had)
    if f.handoff:
        handed = exists().where(Handoff.conversation_id == Conversation.id)
        if f.handoff == "any":
            where.append(handed)
        elif f.handoff == "none":
            where.append(~handed)
        else:
            where.append(
                exists().where(
                    Handoff.conversation_id == Conversation.id, Handoff.reason == f.handoff
                )
            )
    if f.outcome:
        where.append(
            exists().where(Outcome.conversation_id == Conversation.id, Outcome.kind == f.outcome)
        )
    if f.csat:
        answered = Csat.score.is_not(None)
        if f.csat == "none":
            where.append(~exists().where(Csat.conversation_id == Conversation.id, answered))
        else:
            score = Csat.score <= 2 if f.csat == "low" else Csat.score == int(f.csat)
            where.append(exists().where(Csat.conversation_id == Conversation.id, score))
    if f.segment_id is not None:
        segment = session.get(Segment, f.segment_id)
        if segment is None:
            raise InvalidInput(f"segment_id: there is no saved segment {f.segment_id}")
        members = select(Customer.id).where(compile_rule(segment.rule))
        where.append(Conversation.customer_id.in_(members))
    if f.tag:
        where.append(
            exists().where(
                CustomerTag.customer_id == Conversation.customer_id, CustomerTag.tag == f.tag
            )
        )
    if f.review_status:
        status = select(ConversationReview.status).where(
            ConversationReview.conversation_id == Conversation.id
        )
        if f.review_status == "unreviewed":
            where.append(
                or_(
                    ~exists(status),
                    exists(status.where(ConversationReview.status == "unreviewed")),
                )
            )
        else:
            where.append(exists(status.where(ConversationReview.status == f.review_status)))
    if f.query:
        where.append(Conversation.id.in_(search.matching_conversation_ids(session, f.query)))
    return where


# --- the list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    id: str
    created_at: datetime
    last_message_at: datetime
    language: str
    state: str
    customer: str | None  # the store's customer id
    preview: str  # the first shopper message, as the role sees it
    turns: int  # shopper messages
    intents: list[str]
    min_confidence: float | None
    fallback: bool
    handoff_reason: str | None
    csat: int | None
    review_status: str


@dataclass(frozen=True)
class ReviewPage:
    rows: list[ConversationRow]
    total: int
    next_cursor: str | None
    # The count stops at COUNT_CAP: ``total`` is then COUNT_CAP and means "at least".
    total_capped: bool = False


def page_cursor(created_at: datetime, conversation_id: str) -> str:
    return f"{created_at.astimezone(timezone.utc).isoformat()}~{conversation_id}"


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, conversation_id = cursor.split("~", 1)
        when = datetime.fromisoformat(at)
    except ValueError:
        raise InvalidInput("after: not a page of this list; start again from the first") from None
    if when.tzinfo is None or not conversation_id:
        raise InvalidInput("after: not a page of this list; start again from the first")
    return when, conversation_id


def count_conversations(*, session: Session, filters: ReviewFilters, cap: int | None = None) -> int:
    """How many conversations match, counting no further than ``cap`` (None: all).

    The list counts up to COUNT_CAP: beyond it an exact figure is one more pass over every
    matching conversation on each page view (380 ms for a filter matching all 100,000
    conversations of the 1M-message bench), and "more than 10,000" is what a reviewer
    needs to know; the exports are never capped."""
    where = conversation_conditions(session, filters)
    matching = select(Conversation.id).where(true(), *where)
    if cap is not None:
        matching = matching.limit(cap)
    query = select(func.count()).select_from(matching.subquery())
    return int(session.scalar(query) or 0)


def page_ids(
    session: Session, where: list[ColumnElement[bool]], cursor: str | None, limit: int
) -> list[tuple[str, datetime]]:
    query = select(Conversation.id, Conversation.created_at).where(true(), *where)
    if cursor:
        at, cid = _parse_cursor(cursor)
        query = query.where(
            or_(
                Conversation.created_at < at,
                and_(Conversation.created_at == at, Conversation.id < cid),
            )
        )
    query = query.order_by(Conversation.created_at.desc(), Conversation.id.desc()).limit(limit)
    return [(str(i), at) for i, at in session.execute(query)]


def list_conversations(
    *,
    session: Session,
    filters: ReviewFilters,
    role: str,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    with_total: bool = True,
) -> ReviewPage:
    """A page of conversations, newest first (keyset: ``cursor`` is the previous page's
    ``next_cursor``), with the number of all that match."""
    limit = max(1, min(limit, MAX_PAGE))
    where = conversation_conditions(session, filters)
    found = page_ids(session, where, cursor, limit + 1)
    more = len(found) > limit
    ids = [i for i, _ in found[:limit]]
    rows = summaries(session, ids, role)
    # A search is counted in full: its hits come from the text index as one set, while a
    # LIMIT would make the planner probe the index once per conversation instead.
    cap = None if filters.query else COUNT_CAP + 1
    total = count_conversations(session=session, filters=filters, cap=cap) if with_total else -1
    last = found[limit - 1] if more else None
    return ReviewPage(
        rows=rows,
        total=total if cap is None else min(total, COUNT_CAP),
        next_cursor=page_cursor(last[1], last[0]) if last else None,
        total_capped=cap is not None and total > COUNT_CAP,
    )


def summaries(session: Session, ids: list[str], role: str) -> list[ConversationRow]:
    if not ids:
        return []
    convs = {c.id: c for c in session.scalars(select(Conversation).where(Conversation.id.in_(ids)))}
    customers: dict[str, str] = dict(
        session.execute(
            select(Conversation.id, Customer.external_id)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.id.in_(ids))
        )
        .tuples()
        .all()
    )
    shopper = and_(Message.conversation_id.in_(ids), Message.role == "shopper")
    stats = {
        cid: (n, lo, first)
        for cid, n, lo, first in session.execute(
            select(
                Message.conversation_id,
                func.count(),
                func.min(Message.confidence),
                func.min(Message.id),
            )
            .where(shopper)
            .group_by(Message.conversation_id)
        )
    }
    firsts = [first for _, _, first in stats.values()]
    texts: dict[int, str] = dict(
        session.execute(select(Message.id, Message.text).where(Message.id.in_(firsts)))
        .tuples()
        .all()
    )
    intents: dict[str, list[str]] = {}
    for cid, intent in session.execute(
        select(Message.conversation_id, Message.intent)
        .where(shopper, Message.intent.is_not(None))
        .group_by(Message.conversation_id, Message.intent)
        .order_by(Message.conversation_id, func.min(Message.id))
    ):
        intents.setdefault(cid, []).append(intent)
    handoffs: dict[str, str] = {}
    for cid, reason in session.execute(
        select(Handoff.conversation_id, Handoff.reason)
        .where(Handoff.conversation_id.in_(ids))
        .order_by(Handoff.id)
    ):
        handoffs[cid] = reason  # the latest
    scores = _latest_csat(session, ids)
    statuses = _review_statuses(session, ids)
    known = StoreIdLookup(session)
    rows = []
    for cid in ids:
        c = convs[cid]
        n, lo, first = stats.get(cid, (0, None, None))
        preview = texts.get(first, "") if first is not None else ""
        rows.append(
            ConversationRow(
                id=cid,
                created_at=c.created_at,
                last_message_at=c.last_message_at,
                language=c.language,
                state=c.state,
                customer=customers.get(cid),
                preview=for_role(role, preview[:200], known_ids=known, lang=c.language),
                turns=int(n),
                intents=intents.get(cid, []),
                min_confidence=lo,
                fallback=FALLBACK_INTENT in intents.get(cid, []),
                handoff_reason=handoffs.get(cid),
                csat=scores.get(cid),
                review_status=statuses.get(cid, "unreviewed"),
            )
        )
    return rows


def _latest_csat(session: Session, ids: list[str]) -> dict[str, int]:
    scores: dict[str, int] = {}
    for cid, score in session.execute(
        select(Csat.conversation_id, Csat.score)
        .where(Csat.conversation_id.in_(ids), Csat.score.is_not(None))
        .order_by(Csat.asked_at, Csat.id)
    ):
        scores[cid] = int(score)
    return scores


def _review_statuses(session: Session, ids: list[str]) -> dict[str, str]:
    found = session.execute(
        select(ConversationReview.conversation_id, ConversationReview.status).where(
            ConversationReview.conversation_id.in_(ids)
        )
    )
    return {str(cid): str(status) for cid, status in found}


@dataclass(frozen=True)
class FilterChoices:
    intents: tuple[str, ...]
    handoff_reasons: list[str]
    outcomes: list[str]
    segments: list[tuple[int, str]]
    review_statuses: tuple[str, ...] = REVIEW_STATUSES


def filter_choices(*, session: Session) -> FilterChoices:
    """The values the list's selects offer."""
    reasons = session.scalars(select(Handoff.reason).distinct().order_by(Handoff.reason))
    kinds = session.scalars(
        select(Outcome.kind)
        .where(Outcome.conversation_id.is_not(None))
        .distinct()
        .order_by(Outcome.kind)
    )
    segments = session.execute(select(Segment.id, Segment.name).order_by(Segment.name).limit(200))
    return FilterChoices(
        intents=(*intent_choices(), FALLBACK_INTENT),
        handoff_reasons=list(reasons),
        outcomes=list(kinds),
        segments=[(int(i), str(n)) for i, n in segments],
    )


# --- a transcript ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelView:
    status: str
    intent: str
    entities: list[dict[str, Any]]
    reviewer_id: int | None
    labelled_at: datetime


@dataclass(frozen=True)
class TurnView:
    id: int
    role: str
    text: str  # as the role sees it
    created_at: datetime
    intent: str | None
    confidence: float | None
    entities: list[dict[str, Any]]
    actions: list[str]
    language: str | None
    sentiment: float | None
    status: str
    failure: str | None
    label: LabelView | None
    # The text with its entities annotated ([text](entity)), for the relabel form; None
    # when the text holds personal data (its entities are then not editable).
    annotated: str | None


@dataclass(frozen=True)
class HandoffView:
    reason: str
    state: str
    requested_at: datetime
    ended_at: datetime | None
    outcome: str | None
    disposition: str | None


@dataclass(frozen=True)
class TranscriptView:
    id: str
    created_at: datetime
    last_message_at: datetime
    language: str
    state: str
    flag_reason: str | None
    customer: str | None
    tags: list[str]
    review_status: str
    handoffs: list[HandoffView]
    csat: int | None
    outcomes: list[str]
    turns: list[TurnView] = field(default_factory=list)


def _label_view(label: TurnLabel | None) -> LabelView | None:
    if label is None:
        return None
    return LabelView(
        label.status, label.intent, list(label.entities or []), label.reviewer_id, label.labelled_at
    )


def transcript(*, session: Session, conversation_id: str, role: str) -> TranscriptView:
    """A conversation with every message (text as ``role`` may see it) and, on shopper
    turns, the intent, confidence, entities and actions of the turn and any label."""
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    customer = session.get(Customer, conv.customer_id) if conv.customer_id else None
    tags = (
        list(
            session.scalars(
                select(CustomerTag.tag)
                .where(CustomerTag.customer_id == conv.customer_id)
                .order_by(CustomerTag.tag)
            )
        )
        if conv.customer_id
        else []
    )
    labels = {
        lab.message_id: lab
        for lab in session.scalars(
            select(TurnLabel).where(TurnLabel.conversation_id == conversation_id)
        )
    }
    known = StoreIdLookup(session)
    turns = []
    for m in session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    ):
        raw = m.text or ""
        shown = for_role(role, raw, known_ids=known, lang=m.language or conv.language)
        masked_export = for_role("export", raw, known_ids=known, lang=m.language)
        entities = [clean_entity(e) for e in (m.entities or [])]
        turns.append(
            TurnView(
                id=m.id,
                role=m.role,
                text=shown,
                created_at=m.created_at,
                intent=m.intent,
                confidence=m.confidence,
                entities=[e for e in entities if e],
                actions=list(m.actions or []),
                language=m.language,
                sentiment=m.sentiment,
                status=m.status,
                failure=m.failure,
                label=_label_view(labels.get(m.id)),
                annotated=(
                    annotate(raw, label_entities(labels.get(m.id), m))
                    if m.role == "shopper" and masked_export == raw
                    else None
                ),
            )
        )
    handoffs = [
        HandoffView(h.reason, h.state, h.requested_at, h.ended_at, h.outcome, h.disposition)
        for h in session.scalars(
            select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id)
        )
    ]
    outcomes = list(
        session.scalars(
            select(Outcome.kind)
            .where(Outcome.conversation_id == conversation_id)
            .order_by(Outcome.id)
        )
    )
    return TranscriptView(
        id=conv.id,
        created_at=conv.created_at,
        last_message_at=conv.last_message_at,
        language=conv.language,
        state=conv.state,
        flag_reason=conv.flag_reason,
        customer=customer.external_id if customer else None,
        tags=tags,
        review_status=_review_statuses(session, [conv.id]).get(conv.id, "unreviewed"),
        handoffs=handoffs,
        csat=_latest_csat(session, [conv.id]).get(conv.id),
        outcomes=outcomes,
        turns=turns,
    )


# --- entities and annotations ----------------------------------------------------------------


def clean_entity(e: Mapping[str, Any]) -> dict[str, Any]:
    """An entity dict with the fields review keeps (entity, value, start, end)."""
    if not isinstance(e, Mapping) or not e.get("entity") or e.get("entity") == "language":
        return {}
    out: dict[str, Any] = {"entity": str(e["entity"]), "value": e.get("value")}
    if isinstance(e.get("start"), int) and isinstance(e.get("end"), int):
        out["start"], out["end"] = e["start"], e["end"]
    return out


def label_entities(label: TurnLabel | None, message: Message) -> list[dict[str, Any]]:
    if label is not None and label.status == "relabelled":
        return list(label.entities or [])
    return [e for e in (clean_entity(x) for x in (message.entities or [])) if e]


def _placed(
    text: str, entities: Iterable[Mapping[str, Any]]
) -> list[tuple[int, int, str, Any]] | None:
    """(start, end, entity, value) sorted, or None if one cannot be placed in ``text``
    (bad offsets, overlaps) — then the text must not be annotated at all."""
    spans = []
    for e in entities:
        start, end = e.get("start"), e.get("end")
        if not isinstance(start, int) or not isinstance(end, int):
            value = str(e.get("value") or "")
            if not value or text.count(value) != 1:
                return None
            start = text.index(value)
            end = start + len(value)
        if not 0 <= start < end <= len(text) or text[start:end] != text[start:end].strip():
            return None
        spans.append((start, end, str(e.get("entity")), e.get("value")))
    spans.sort()
    for (_, a_end, _, _), (b_start, _, _, _) in itertools.pairwise(spans):
        if b_start < a_end:
            return None
    return spans


def annotate(text: str, entities: Iterable[Mapping[str, Any]]) -> str | None:
    """``text`` in Rasa's training format: ``[surface](entity)``, or
    ``[surface]{"entity": …, "value": …}`` where the value differs from the surface
    (a synonym). None if the entities do not fit the text or the text has brackets."""
    if "[" in text or "]" in text:
        return None
    spans = _placed(text, entities)
    if spans is None:
        return None
    out, at = [], 0
    for start, end, entity, value in spans:
        surface = text[start:end]
        out.append(text[at:start])
        if value is None or str(value) == surface:
            out.append(f"[{surface}]({entity})")
        else:
            spec = json.dumps({"entity": entity, "value": str(value)}, ensure_ascii=False)
            out.append(f"[{surface}]{spec}")
        at = end
    out.append(text[at:])
    return "".join(out)


_ANNOTATION = re.compile(r"\[(?P<text>[^\[\]]+)\](?:\((?P<entity>[^()]+)\)|(?P<spec>\{[^{}]+\}))")


def parse_annotated(annotated: str) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and entities of ``[surface](entity)`` / ``[surface]{"entity": …,
    "value": …}`` markup; entity types must be the domain's."""
    allowed = entity_choices()
    plain: list[str] = []
    entities: list[dict[str, Any]] = []
    at, length = 0, 0
    for m in _ANNOTATION.finditer(annotated):
        before = annotated[at : m.start()]
        plain.append(before)
        length += len(before)
        surface = m.group("text")
        if m.group("spec"):
            try:
                spec = json.loads(m.group("spec"))
            except ValueError:
                raise InvalidInput(f"entities: {m.group('spec')} is not valid JSON") from None
            if not isinstance(spec, dict):
                raise InvalidInput("entities: {…} must name an entity")
            entity, value = str(spec.get("entity") or ""), str(spec.get("value") or surface)
        else:
            entity, value = m.group("entity").strip(), surface
        if entity not in allowed:
            raise InvalidInput(
                f"entities: {entity!r} is not an entity of the domain ({', '.join(allowed)})"
            )
        entities.append(
            {"entity": entity, "value": value, "start": length, "end": length + len(surface)}
        )
        plain.append(surface)
        length += len(surface)
        at = m.end()
    plain.append(annotated[at:])
    text = "".join(plain)
    if "[" in text or "]" in text:
        raise InvalidInput("entities: write each one as [words](entity)")
    return text, entities


# --- labels and review status ----------------------------------------------------------------


def label_turn(
    *,
    session: Session,
    message_id: int,
    status: str,
    reviewer_id: int | None,
    intent: str | None = None,
    annotated: str | None = None,
    clock: Clock = utcnow,
) -> LabelView:
    """Record a verdict on a shopper turn. ``correct`` confirms the NLU result (its intent
    must be one of the domain's); ``relabelled`` sets ``intent`` and, when ``annotated`` is
    given, the entities (the message's own text with ``[words](entity)`` markup). A turn
    whose text holds personal data keeps its entities (they are not exported anyway)."""
    if status not in LABEL_STATUSES:
        raise InvalidInput(f"status: one of {', '.join(LABEL_STATUSES)}")
    message = session.get(Message, message_id)
    if message is None or message.role != "shopper":
        raise NotFound(f"no shopper message {message_id}")
    intents = intent_choices()
    own_entities = [e for e in (clean_entity(x) for x in (message.entities or [])) if e]
    if status == "correct":
        if message.intent not in intents:
            raise InvalidInput(
                f"the turn's intent {message.intent!r} is not an intent of the domain: relabel it"
            )
        intent, entities = message.intent, own_entities
    else:
        if intent not in intents:
            raise InvalidInput(f"intent: {intent!r} is not an intent of the domain")
        entities = own_entities
        if annotated is not None and annotated.strip():
            known = StoreIdLookup(session)
            if for_role("export", message.text, known_ids=known) != message.text:
                raise InvalidInput(
                    "this message holds personal data: only its intent can be relabelled"
                )
            plain, entities = parse_annotated(annotated.strip())
            if plain != message.text.strip():
                raise InvalidInput(
                    "entities: the text must stay the message's own; only add [words](entity)"
                )
            offset = len(message.text) - len(message.text.lstrip())
            for e in entities:
                e["start"] += offset
                e["end"] += offset
    now = clock()
    label = session.scalar(select(TurnLabel).where(TurnLabel.message_id == message_id))
    if label is None:
        label = TurnLabel(message_id=message_id, conversation_id=message.conversation_id)
        session.add(label)
    label.status, label.intent, label.entities = status, str(intent), entities
    label.reviewer_id, label.labelled_at = reviewer_id, now
    session.flush()
    _mark_reviewed_when_done(session, message.conversation_id, reviewer_id, now)
    return _label_view(label)  # type: ignore[return-value]


def _mark_reviewed_when_done(
    session: Session, conversation_id: str, reviewer_id: int | None, now: datetime
) -> None:
    unlabelled = session.scalar(
        select(func.count())
        .select_from(Message)
        .outerjoin(TurnLabel, TurnLabel.message_id == Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.role == "shopper",
            Message.intent.is_not(None),
            TurnLabel.id.is_(None),
        )
    )
    review = session.get(ConversationReview, conversation_id)
    if unlabelled == 0 and (review is None or review.status == "unreviewed"):
        set_review_status(
            session=session,
            conversation_id=conversation_id,
            status="reviewed",
            reviewer_id=reviewer_id,
            clock=lambda: now,
        )


def set_review_status(
    *,
    session: Session,
    conversation_id: str,
    status: str,
    reviewer_id: int | None,
    clock: Clock = utcnow,
) -> str:
    """Set where a conversation stands in review."""
    if status not in REVIEW_STATUSES:
        raise InvalidInput(f"status: one of {', '.join(REVIEW_STATUSES)}")
    if session.get(Conversation, conversation_id) is None:
        raise NotFound(f"no conversation {conversation_id}")
    review = session.get(ConversationReview, conversation_id)
    if review is None:
        review = ConversationReview(conversation_id=conversation_id)
        session.add(review)
    review.status, review.reviewer_id, review.updated_at = status, reviewer_id, clock()
    session.flush()
    return status


__all__ = [
    "ConversationRow",
    "FilterChoices",
    "ReviewFilters",
    "ReviewPage",
    "TranscriptView",
    "TurnView",
    "filter_choices",
    "label_turn",
    "list_conversations",
    "parse_filters",
    "set_review_status",
    "transcript",
]
