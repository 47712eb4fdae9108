"""The ops dashboard's figures: conversations, containment, handoff, fallback, intents,
satisfaction, agents' response times, a weekday × hour heatmap and NLU confidence.

Every figure covers a period of whole local days, ``start``..``end`` inclusive, in the
store's time zone: the UTC half-open interval [local midnight of ``start``, local midnight
after ``end``). Counting, joining and grouping happen in SQL over indexed columns (migration
0012); Python only reshapes aggregates — at most one row per local hour, or per day × intent ×
confidence bin — and takes medians of per-handoff durations.

Local days and hours are computed in the database, the same way on both backends:
PostgreSQL converts with ``timezone(tz, created_at)``; SQLite shifts by the zone's UTC offset,
with a ``CASE`` over the offset changes (DST) that fall inside the period, found with
``zoneinfo``. Offsets are whole seconds, so zones at +05:30 or +05:45 are exact too.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, null, select, text
from sqlalchemy.orm import Session

from bot.errors import InvalidInput
from bot.models.base import UTCDateTime
from bot.models.conversation import Conversation, Message
from bot.models.handoff import Csat, Handoff, Ticket
from bot.services import supervision

Clock = Callable[[], datetime]

# The intent Rasa's FallbackClassifier gives a message it did not understand (config.yml),
# and the trained intent for questions the store does not serve (domain.yml).
FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
CONFIDENCE_BINS = 10
TOP_INTENTS = 8
DEFAULT_DAYS = 14
MAX_DAYS = 366
RESOLVED_OUTCOMES = ("handed_back", "closed")

_NOT_ENGAGED, _CONTAINED, _HANDED_OFF, _OTHER_HUMAN = 0, 1, 2, 3
_DAY = "day"
_HOUR = "hour"
_SQLITE_FORMAT = {_DAY: "%Y-%m-%d", _HOUR: "%Y-%m-%d %H"}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Period:
    """Whole local days ``start``..``end`` in ``tz``; ``lo``..``hi`` is the same span in UTC
    (``hi`` excluded)."""

    start: date
    end: date
    tz: str
    zone: ZoneInfo
    lo: datetime
    hi: datetime

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {tz!r}") from exc


def period(*, start: date, end: date, tz: str) -> Period:
    """Check and convert a local date range: start ≤ end, at most ``MAX_DAYS`` days."""
    zone = _zone(tz)
    if end < start:
        raise InvalidInput("the end date is before the start date")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a range covers at most {MAX_DAYS} days")
    lo = datetime.combine(start, time(0), tzinfo=zone).astimezone(timezone.utc)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc)
    return Period(start=start, end=end, tz=tz, zone=zone, lo=lo, hi=hi)


def default_range(
    *, tz: str, clock: Clock = _utcnow, days: int = DEFAULT_DAYS
) -> tuple[date, date]:
    """The last ``days`` local days, today included."""
    today = clock().astimezone(_zone(tz)).date()
    return today - timedelta(days=days - 1), today


def parse_range(
    start: str | None, end: str | None, *, tz: str, clock: Clock = _utcnow
) -> tuple[date, date]:
    """Dates from a form (``YYYY-MM-DD``; empty means the default range's end)."""
    default_start, default_end = default_range(tz=tz, clock=clock)
    try:
        last = date.fromisoformat(end) if end else default_end
        first = date.fromisoformat(start) if start else last - (default_end - default_start)
    except ValueError as exc:
        raise InvalidInput("dates are written YYYY-MM-DD, e.g. 2026-11-30") from exc
    period(start=first, end=last, tz=tz)  # the same checks as the figures get
    return first, last


# --- local time in SQL -------------------------------------------------------------------


def _offsets(p: Period) -> list[tuple[datetime | None, int]]:
    """The zone's UTC offset (seconds) over the period: ``[(until, offset), …]``, each in
    force until ``until`` (UTC, excluded); the last has ``until`` None."""

    def offset(at: datetime) -> int:
        delta = at.astimezone(p.zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    spans: list[tuple[datetime | None, int]] = []
    current = offset(p.lo)
    at = p.lo
    step = timedelta(hours=1)
    while at < p.hi:
        following = min(at + step, p.hi)
        if offset(following) != current:
            low, high = at, following  # the change is in (low, high]: narrow to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == current:
                    low = middle
                else:
                    high = middle
            spans.append((high, current))
            current = offset(high)
        at = following
    spans.append((None, current))
    return spans


def local_bucket(column: Any, unit: str, p: Period, dialect: str) -> ColumnElement[Any]:
    """``column`` (a UTC timestamp) cut to the local ``unit`` ("day" or "hour") in the
    period's zone; valid for rows inside the period. PostgreSQL answers a local timestamp
    (``date_trunc`` is cheaper to group on than text), SQLite the text ``YYYY-MM-DD`` or
    ``YYYY-MM-DD HH``; :func:`_local` reads either."""
    if dialect == "postgresql":
        return func.date_trunc(unit, func.timezone(p.tz, column))
    spans = _offsets(p)
    shift: Any
    if len(spans) == 1:
        shift = literal(f"{spans[0][1]:+d} seconds")
    else:
        shift = case(
            *[
                (column < literal(until, UTCDateTime()), literal(f"{seconds:+d} seconds"))
                for until, seconds in spans[:-1]
            ],
            else_=literal(f"{spans[-1][1]:+d} seconds"),
        )
    return func.strftime(_SQLITE_FORMAT[unit], column, shift)


def _local(bucket: Any) -> tuple[date, int]:
    """A bucket from :func:`local_bucket` as (local date, hour)."""
    if isinstance(bucket, datetime):
        return bucket.date(), bucket.hour
    text = str(bucket)
    return date.fromisoformat(text[:10]), int(text[11:13] or 0)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _within(column: Any, p: Period) -> ColumnElement[bool]:
    return and_(column >= p.lo, column < p.hi)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- conversations -----------------------------------------------------------------------


def _any(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether a row matches, probed through an index for each conversation: a ``LIMIT 1``
    subquery, which PostgreSQL cannot turn into a hash of every matching row of the table
    (it did for plain EXISTS: all agent messages ever, for a fortnight's dashboard)."""
    return select(literal(1)).where(*where).limit(1).scalar_subquery().is_not(None)


def _conversation_hours(session: Session, p: Period) -> dict[tuple[date, int], dict[str, int]]:
    """Conversations started per local (day, hour), with how many were engaged, contained
    and handed off (definitions in :func:`containment`)."""
    shopper = _any(Message.conversation_id == Conversation.id, Message.role == "shopper")
    handoff = _any(Handoff.conversation_id == Conversation.id)
    ticket = _any(Ticket.conversation_id == Conversation.id)
    agent = _any(Message.conversation_id == Conversation.id, Message.role == "agent")
    # One kind per conversation, each EXISTS evaluated at most once (a CASE stops at the
    # first match): grouped on, never repeated in the outer query, so neither backend
    # re-runs the subqueries per aggregate.
    kind = case(
        (~shopper, _NOT_ENGAGED),
        (handoff, _HANDED_OFF),
        (ticket, _OTHER_HUMAN),
        (agent, _OTHER_HUMAN),
        else_=_CONTAINED,
    )
    cells = (
        select(
            local_bucket(Conversation.created_at, _HOUR, p, _dialect(session)).label("slot"),
            kind.label("kind"),
        )
        .where(_within(Conversation.created_at, p))
        .subquery()
    )
    rows = session.execute(
        select(cells.c.slot, cells.c.kind, func.count()).group_by(cells.c.slot, cells.c.kind)
    ).all()
    found: dict[tuple[date, int], dict[str, int]] = {}
    for slot, kind_n, n in rows:
        key = _local(slot)
        counts = found.setdefault(
            key, {"conversations": 0, "engaged": 0, "contained": 0, "handed_off": 0}
        )
        counts["conversations"] += n
        if kind_n != _NOT_ENGAGED:
            counts["engaged"] += n
        if kind_n == _CONTAINED:
            counts["contained"] += n
        elif kind_n == _HANDED_OFF:
            counts["handed_off"] += n
    return found


def conversations_per_day(
    session: Session, *, start: date, end: date, tz: str
) -> list[dict[str, Any]]:
    """Conversations started on each local day (``conversation.created_at``), every day of
    the range listed (zeros included), with that day's engaged, contained and handed-off
    counts (see :func:`containment`)."""
    p = period(start=start, end=end, tz=tz)
    return _per_day(p, _conversation_hours(session, p))


def _per_day(p: Period, hours: dict[tuple[date, int], dict[str, int]]) -> list[dict[str, Any]]:
    days = {d: {"conversations": 0, "engaged": 0, "contained": 0, "handed_off": 0} for d in p.days}
    for (day, _), counts in hours.items():
        for key, value in counts.items():
            days[day][key] += value
    return [{"day": d.isoformat(), **counts} for d, counts in days.items()]


def _totals(per_day: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("conversations", "engaged", "contained", "handed_off")
    return {key: sum(row[key] for row in per_day) for key in keys}


def containment(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """Conversations the bot resolved without a human, of those started in the range.

    *Engaged*: a conversation with at least one shopper message. *Contained*: engaged, and
    no handoff row, no callback ticket and no agent message. ``rate`` = contained / engaged
    (None without engaged conversations).
    """
    totals = _totals(conversations_per_day(session, start=start, end=end, tz=tz))
    return {
        "engaged": totals["engaged"],
        "contained": totals["contained"],
        "rate": _rate(totals["contained"], totals["engaged"]),
    }


def handoff_by_reason(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """Handoff rate, overall and by reason, over the engaged conversations started in the
    range (see :func:`containment`).

    ``rate`` = engaged conversations with at least one handoff / engaged conversations. Per
    reason: engaged conversations with a handoff for that reason / engaged conversations (a
    conversation handed off twice for different reasons counts under both, so the reasons'
    rates may add up to more than ``rate``). Sorted by count, then reason.
    """
    p = period(start=start, end=end, tz=tz)
    totals = _totals(_per_day(p, _conversation_hours(session, p)))
    return _handoff(session, p, totals)


def _handoff(session: Session, p: Period, totals: dict[str, int]) -> dict[str, Any]:
    # A semi-join here (EXISTS): PostgreSQL plans it better than a probe per row.
    shopper = exists().where(Message.conversation_id == Conversation.id, Message.role == "shopper")
    rows = session.execute(
        select(Handoff.reason, func.count(func.distinct(Handoff.conversation_id)))
        .join(Conversation, Conversation.id == Handoff.conversation_id)
        .where(_within(Conversation.created_at, p), shopper)
        .group_by(Handoff.reason)
    ).all()
    engaged = totals["engaged"]
    reasons = sorted(((reason, int(n)) for reason, n in rows), key=lambda r: (-r[1], r[0]))
    return {
        "engaged": engaged,
        "handed_off": totals["handed_off"],
        "rate": _rate(totals["handed_off"], engaged),
        "by_reason": [
            {"reason": reason, "conversations": n, "rate": _rate(n, engaged)}
            for reason, n in reasons
        ],
    }


# --- shopper turns -----------------------------------------------------------------------


def _bin(confidence: Any) -> ColumnElement[Any]:
    # A ladder of comparisons rather than CAST(confidence * 10 AS INTEGER): PostgreSQL's
    # cast rounds where SQLite's truncates, and SQLite may lack floor().
    edges = [n / CONFIDENCE_BINS for n in range(1, CONFIDENCE_BINS)]
    return case(
        (confidence.is_(None), null()),
        *[(confidence < edge, n) for n, edge in enumerate(edges)],
        else_=CONFIDENCE_BINS - 1,
    )


def _turns(session: Session, p: Period) -> list[tuple[date, str | None, int | None, int]]:
    """Shopper messages of the range per (local day, intent, confidence bin)."""
    cells = (
        select(
            local_bucket(Message.created_at, _DAY, p, _dialect(session)).label("day"),
            Message.intent.label("intent"),
            _bin(Message.confidence).label("bin"),
        )
        .where(Message.role == "shopper", _within(Message.created_at, p))
        .subquery()
    )
    rows = session.execute(
        select(cells.c.day, cells.c.intent, cells.c.bin, func.count()).group_by(
            cells.c.day, cells.c.intent, cells.c.bin
        )
    ).all()
    return [
        (_local(day)[0], intent, None if b is None else int(b), int(n))
        for day, intent, b, n in rows
    ]


def _fallback(turns: list[tuple[date, str | None, int | None, int]]) -> dict[str, Any]:
    understood = sum(n for _, intent, _, n in turns if intent is not None)
    fallback = sum(n for _, intent, _, n in turns if intent == FALLBACK_INTENT)
    out_of_scope = sum(n for _, intent, _, n in turns if intent == OUT_OF_SCOPE_INTENT)
    return {
        "turns": understood,
        "fallback": fallback,
        "rate": _rate(fallback, understood),
        "out_of_scope": out_of_scope,
        "out_of_scope_rate": _rate(out_of_scope, understood),
    }


def fallback_rate(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """Shopper turns the bot did not understand.

    *Turns*: shopper messages created in the range that went through NLU (``intent`` is set;
    messages written while an agent owns the conversation never reach Rasa and have none).
    ``rate`` = turns whose intent is ``nlu_fallback`` / turns. ``out_of_scope_rate`` likewise
    for the ``out_of_scope`` intent (understood, but not something the store serves).
    """
    return _fallback(_turns(session, period(start=start, end=end, tz=tz)))


def _intents(p: Period, turns: list[tuple[date, str | None, int | None, int]]) -> dict[str, Any]:
    per_intent: dict[str, int] = defaultdict(int)
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    total = 0
    for day, intent, _, n in turns:
        if intent is None or intent == FALLBACK_INTENT:
            continue
        per_intent[intent] += n
        per_day[(intent, day)] += n
        total += n
    top = sorted(per_intent.items(), key=lambda item: (-item[1], item[0]))[:TOP_INTENTS]
    return {
        "turns": total,
        "top": [{"intent": i, "turns": n, "share": _rate(n, total)} for i, n in top],
        "trend": {
            "days": [d.isoformat() for d in p.days],
            "series": [{"intent": i, "counts": [per_day[(i, d)] for d in p.days]} for i, _ in top],
        },
    }


def top_intents(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """The ``TOP_INTENTS`` most frequent intents of the range's shopper turns (``nlu_fallback``
    left out: it is the fallback rate's), by count then name, each with its share of the
    understood turns and its count on every local day of the range (the trend)."""
    p = period(start=start, end=end, tz=tz)
    return _intents(p, _turns(session, p))


def _confidence(turns: list[tuple[date, str | None, int | None, int]]) -> dict[str, Any]:
    by_intent: dict[str, list[int]] = {}
    for _, intent, b, n in turns:
        if intent is None or b is None:
            continue
        by_intent.setdefault(intent, [0] * CONFIDENCE_BINS)[b] += n
    ordered = sorted(by_intent.items(), key=lambda item: (-sum(item[1]), item[0]))
    return {
        "edges": [round(n / CONFIDENCE_BINS, 2) for n in range(CONFIDENCE_BINS + 1)],
        "by_intent": [{"intent": i, "counts": counts} for i, counts in ordered],
    }


def confidence_histogram(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """NLU confidence of the range's shopper turns per intent, in ``CONFIDENCE_BINS`` equal
    bins over [0, 1]: bin ``k`` holds ``k/10 ≤ confidence < (k+1)/10``, the last one also
    1.0. Intents ordered by turns, then name; ``nlu_fallback`` included."""
    return _confidence(_turns(session, period(start=start, end=end, tz=tz)))


# --- satisfaction ------------------------------------------------------------------------


def satisfaction(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """Satisfaction questions asked in the range (``csat.asked_at``): how many were asked,
    how many got a score (1-5), the mean score and the count of each score."""
    p = period(start=start, end=end, tz=tz)
    rows = session.execute(
        select(Csat.score, func.count()).where(_within(Csat.asked_at, p)).group_by(Csat.score)
    ).all()
    counts = {score: int(n) for score, n in rows}
    distribution = [{"score": s, "count": counts.get(s, 0)} for s in range(1, 6)]
    answered = sum(row["count"] for row in distribution)
    total = sum(row["score"] * row["count"] for row in distribution)
    return {
        "asked": sum(counts.values()),
        "answered": answered,
        "mean": total / answered if answered else None,
        "distribution": distribution,
    }


# --- agents ------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def response_times(
    session: Session, *, start: date, end: date, tz: str, clock: Clock = _utcnow
) -> dict[str, Any]:
    """Agents' response and resolution times for the *stays* that began in the range (a
    handoff assigned to an agent, ``assigned_at`` inside it), overall and per agent.

    First response time and the 30-second rate are the supervisor page's, computed by
    :func:`bot.services.supervision.agent_stats` (one definition; see its module): FRT = the
    assigned agent's first message at or after ``assigned_at`` (before the stay ended) −
    ``assigned_at``; rate = stays answered within 30 s / *settled* stays (answered, or held
    30 s or more unanswered). Here they are summed over the agents (``within_target`` /
    ``settled``; the mean FRT weighted by answered stays), and the overall median comes from
    the same stays, one duration each.

    Also, over those stays: *wait* = ``assigned_at − requested_at`` (time in the queue), and
    *resolution time* = ``ended_at − requested_at`` for the stays that ended handed back or
    closed. Seconds; None where nothing was measured.
    """
    p = period(start=start, end=end, tz=tz)
    agents = [
        a
        for a in supervision.agent_stats(session, start=p.lo, end=p.hi, tz=tz, clock=clock)
        if a.assigned
    ]
    ids = [a.staff_id for a in agents]
    first_reply = supervision.first_agent_reply()
    stays = session.execute(
        select(
            Handoff.requested_at,
            Handoff.assigned_at,
            Handoff.ended_at,
            Handoff.outcome,
            first_reply,
        ).where(Handoff.agent_id.in_(ids), _within(Handoff.assigned_at, p))
    ).all()
    firsts = [(first - assigned).total_seconds() for _, assigned, _, _, first in stays if first]
    resolutions = [
        (ended - requested).total_seconds()
        for requested, _, ended, outcome, _ in stays
        if ended is not None and outcome in RESOLVED_OUTCOMES
    ]
    answered = sum(a.answered for a in agents)
    within = sum(a.within_target for a in agents)
    settled = sum(a.settled for a in agents)
    weighted = sum((a.first_response_mean_seconds or 0.0) * a.answered for a in agents)
    return {
        "assigned": sum(a.assigned for a in agents),
        "answered": answered,
        "median_first_response_s": _median(firsts),
        "mean_first_response_s": weighted / answered if answered else None,
        "within_target": within,
        "settled": settled,
        "fast_rate": _rate(within, settled),
        "fast_window_s": supervision.RESPONSE_TARGET_SECONDS,
        "median_wait_s": _median(
            [(assigned - requested).total_seconds() for requested, assigned, *_ in stays]
        ),
        "resolved": len(resolutions),
        "median_resolution_s": _median(resolutions),
        "by_agent": [
            {
                "agent_id": a.staff_id,
                "name": a.name,
                "assigned": a.assigned,
                "answered": a.answered,
                "median_first_response_s": a.first_response_median_seconds,
                "within_target": a.within_target,
                "settled": a.settled,
                "fast_rate": a.response_rate,
            }
            for a in agents
        ],
    }


# --- heatmap -----------------------------------------------------------------------------


def _heatmap(hours: dict[tuple[date, int], dict[str, int]]) -> dict[str, Any]:
    cells = [[0] * 24 for _ in range(7)]
    for (day, hour), counts in hours.items():
        cells[day.weekday()][hour] += counts["conversations"]
    return {"cells": cells, "max": max(max(row) for row in cells)}


def heatmap(session: Session, *, start: date, end: date, tz: str) -> dict[str, Any]:
    """Conversations started in the range per local weekday × hour of day: ``cells[w][h]``,
    ``w`` 0 = Monday … 6 = Sunday, ``h`` 0-23 in the store's zone (a DST day's repeated
    hour counts in that hour); ``max`` is the largest cell."""
    p = period(start=start, end=end, tz=tz)
    return _heatmap(_conversation_hours(session, p))


# --- everything --------------------------------------------------------------------------


def _no_jit(session: Session) -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction (``SET LOCAL``): these
    plans cost enough to trigger it, and compiling them took longer than running them
    (1.9 of 2.5 s at 1,000,000 messages). A no-op elsewhere, and where there is no JIT."""
    if _dialect(session) == "postgresql":
        session.execute(
            text(
                "SELECT set_config('jit', 'off', true) WHERE current_setting('jit', true) IS NOT NULL"
            )
        )


def dashboard(
    session: Session, *, start: date, end: date, tz: str, clock: Clock = _utcnow
) -> dict[str, Any]:
    """Every figure of the dashboard for local days ``start``..``end`` in ``tz``, as plain
    JSON-ready data. Each part is defined by the function of the same name in this module;
    this runs each query once (one pass over the conversations, one over the shopper
    turns, one over the handoffs, one over satisfaction)."""
    p = period(start=start, end=end, tz=tz)
    _no_jit(session)
    hours = _conversation_hours(session, p)
    per_day = _per_day(p, hours)
    totals = _totals(per_day)
    turns = _turns(session, p)
    handoff = _handoff(session, p, totals)
    fallback = _fallback(turns)
    csat = satisfaction(session, start=start, end=end, tz=tz)
    responses = response_times(session, start=start, end=end, tz=tz, clock=clock)
    return {
        "period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "tz": tz,
            "days": [d.isoformat() for d in p.days],
        },
        "kpi": {
            "conversations": totals["conversations"],
            "engaged": totals["engaged"],
            "containment": _rate(totals["contained"], totals["engaged"]),
            "handoff_rate": handoff["rate"],
            "fallback_rate": fallback["rate"],
            "csat_mean": csat["mean"],
            "median_first_response_s": responses["median_first_response_s"],
            "fast_rate": responses["fast_rate"],
        },
        "conversations_per_day": per_day,
        "containment": {
            "engaged": totals["engaged"],
            "contained": totals["contained"],
            "rate": _rate(totals["contained"], totals["engaged"]),
        },
        "handoff": handoff,
        "fallback": fallback,
        "intents": _intents(p, turns),
        "satisfaction": csat,
        "response_times": responses,
        "heatmap": _heatmap(hours),
        "confidence": _confidence(turns),
    }
