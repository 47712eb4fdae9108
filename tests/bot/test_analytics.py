"""Every dashboard figure against a hand-built set of conversations whose answers are worked
out by hand below, on SQLite and PostgreSQL; local days and hours in Asia/Shanghai, in a
DST zone across the October change (Europe/Berlin) and in a half-hour zone (Asia/Kolkata).

The data sit in 2030, away from anything else the shared test database holds.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from bot.errors import InvalidInput
from bot.models import Staff
from bot.models.base import Base
from bot.models.conversation import Conversation, Message, Visitor
from bot.models.handoff import AgentMessage, Csat, Handoff, Ticket
from bot.services import analytics, supervision

SHANGHAI = "Asia/Shanghai"
D1, D2, D3 = date(2030, 3, 4), date(2030, 3, 5), date(2030, 3, 6)  # Monday … Wednesday
ANALYTICS_INDEXES = {
    "ix_review_conversation_created",  # conversations by start time (migration 0010)
    "ix_message_role_created_at",
    "ix_message_conversation_role",
    "ix_handoff_assigned_at",
    "ix_csat_asked_at",
}


def local(day: date, hh: int, mm: int = 0, ss: int = 0, tz: str = SHANGHAI) -> datetime:
    naive = datetime(day.year, day.month, day.day, hh, mm, ss)
    return naive.replace(tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


@dataclass
class Builder:
    session: Session
    visitor: str = field(default_factory=lambda: uuid.uuid4().hex)
    made: int = 0

    def __post_init__(self) -> None:
        self.session.add(
            Visitor(id=self.visitor, created_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
        )
        self.session.flush()

    def agent(self, name: str) -> int:
        staff = Staff(
            email=f"{name}-{uuid.uuid4().hex[:8]}@example.com",
            name=name,
            role="agent",
            password_hash="x",
            created_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
            password_changed_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
        )
        self.session.add(staff)
        self.session.flush()
        return staff.id

    def conversation(self, at: datetime) -> str:
        cid = uuid.uuid4().hex
        self.session.add(
            Conversation(
                id=cid, visitor_id=self.visitor, state="bot", created_at=at, last_message_at=at
            )
        )
        self.session.flush()
        return cid

    def message(
        self,
        cid: str,
        at: datetime,
        role: str = "shopper",
        intent: str | None = None,
        confidence: float | None = None,
        staff: int | None = None,
    ) -> None:
        message = Message(
            uid=uuid.uuid4().hex,
            conversation_id=cid,
            role=role,
            text="…",
            intent=intent,
            confidence=confidence,
            created_at=at,
        )
        self.session.add(message)
        self.session.flush()
        if staff is not None:
            self.session.add(AgentMessage(message_id=message.id, staff_id=staff))
            self.session.flush()

    def agent_says(self, cid: str, at: datetime, staff: int) -> None:
        self.message(cid, at, "agent", staff=staff)

    def turn(self, cid: str, at: datetime, intent: str | None, confidence: float | None) -> None:
        self.message(cid, at, "shopper", intent, confidence)
        self.message(cid, at + timedelta(seconds=1), "bot")

    def handoff(
        self,
        cid: str,
        reason: str,
        requested: datetime,
        *,
        agent: int | None = None,
        assigned: datetime | None = None,
        ended: datetime | None = None,
        outcome: str | None = None,
    ) -> int:
        handoff = Handoff(
            conversation_id=cid,
            reason=reason,
            state="ended" if ended else ("assigned" if assigned else "queued"),
            requested_at=requested,
            sort_at=requested,
            agent_id=agent,
            assigned_at=assigned,
            ended_at=ended,
            outcome=outcome,
        )
        self.session.add(handoff)
        self.session.flush()
        return handoff.id

    def csat(self, cid: str, handoff: int, asked: datetime, score: int | None) -> None:
        self.session.add(
            Csat(
                conversation_id=cid,
                handoff_id=handoff,
                score=score,
                state="scored" if score else "asked",
                asked_at=asked,
                answered_at=asked + timedelta(seconds=30) if score else None,
            )
        )
        self.session.flush()


@pytest.fixture
def known(session: Session) -> dict[str, int]:
    """Ten conversations; the comments say what each contributes."""
    b = Builder(session)
    ann, bob = b.agent("Ann"), b.agent("Bob")
    # c1, Monday 00:00 local exactly (Sunday 16:00 UTC): in the range; contained.
    c1 = b.conversation(local(D1, 0))
    b.turn(c1, local(D1, 0), "order_status", 0.95)
    b.turn(c1, local(D1, 0, 1), "thank", 0.88)
    # c2, Monday 23:30 local (15:30 UTC); its second turn is after local midnight (Tuesday).
    c2 = b.conversation(local(D1, 23, 30))
    b.turn(c2, local(D1, 23, 30), "shipping_delay", 0.82)
    b.turn(c2, local(D2, 0, 5), "thank", 0.77)
    # c3, Tuesday 07:30 local — still Monday in UTC (23:30): two fallbacks, a handoff answered
    # by Ann in 25 s after a 20 s wait, handed back after 9 minutes; CSAT 5.
    c3 = b.conversation(local(D2, 7, 30))
    b.turn(c3, local(D2, 7, 30), "nlu_fallback", 0.40)
    b.turn(c3, local(D2, 7, 30, 30), "nlu_fallback", 0.55)
    h3 = b.handoff(
        c3, "fallback", local(D2, 7, 31), agent=ann, assigned=local(D2, 7, 31, 20),
        ended=local(D2, 7, 40), outcome="handed_back",
    )  # fmt: skip
    b.agent_says(c3, local(D2, 7, 31, 45), ann)
    b.agent_says(c3, local(D2, 7, 35), ann)
    b.csat(c3, h3, local(D2, 7, 40), 5)
    # c4, Tuesday noon: a complaint; Bob waits 60 s to be assigned and answers after 60 s;
    # closed 19 minutes after the request; CSAT 2.
    c4 = b.conversation(local(D2, 12))
    b.turn(c4, local(D2, 12), "complaint", 0.91)
    h4 = b.handoff(
        c4, "complaint", local(D2, 12, 1), agent=bob, assigned=local(D2, 12, 2),
        ended=local(D2, 12, 20), outcome="closed",
    )  # fmt: skip
    b.agent_says(c4, local(D2, 12, 2, 30), ann)  # not Bob's: his first reply is at 12:03
    b.agent_says(c4, local(D2, 12, 3), bob)
    b.agent_says(c4, local(D2, 12, 10), bob)
    b.csat(c4, h4, local(D2, 12, 20), 2)
    # c5, Wednesday 09:00: asks for a person, gives up waiting (cancelled, never assigned).
    c5 = b.conversation(local(D3, 9))
    b.turn(c5, local(D3, 9), "product_question", 0.65)
    b.turn(c5, local(D3, 9, 0, 30), "human_agent", 0.99)
    b.handoff(c5, "requested", local(D3, 9, 1), ended=local(D3, 9, 5), outcome="cancelled")
    # c6, Wednesday 15:00: a callback ticket, no handoff — not contained either.
    c6 = b.conversation(local(D3, 15))
    b.turn(c6, local(D3, 15), "order_status", 1.0)
    b.turn(c6, local(D3, 15, 1), "out_of_scope", 0.70)
    session.add(
        Ticket(
            conversation_id=c6, reason="requested", created_at=local(D3, 15, 2),
            updated_at=local(D3, 15, 2),
        )
    )  # fmt: skip
    # c7, Wednesday 20:00: the greeting only, the shopper never wrote — not engaged.
    c7 = b.conversation(local(D3, 20))
    b.message(c7, local(D3, 20), "bot")
    # c8, Wednesday 21:00: Ann takes over, answers in 10 s; the shopper's message to her has
    # no intent (never sent to Rasa); handed back after 8 minutes; CSAT asked, no answer.
    c8 = b.conversation(local(D3, 21))
    b.turn(c8, local(D3, 21), "order_status", 0.30)
    h8 = b.handoff(
        c8, "takeover", local(D3, 21, 2), agent=ann, assigned=local(D3, 21, 2),
        ended=local(D3, 21, 10), outcome="handed_back",
    )  # fmt: skip
    b.agent_says(c8, local(D3, 21, 2, 10), ann)
    b.message(c8, local(D3, 21, 3), "shopper")
    b.csat(c8, h8, local(D3, 21, 10), None)
    # c9, Thursday 00:10 local (Wednesday 16:10 UTC): after the range, with all it holds.
    c9 = b.conversation(local(D3 + timedelta(days=1), 0, 10))
    b.turn(c9, local(D3 + timedelta(days=1), 0, 10), "order_status", 0.9)
    h9 = b.handoff(
        c9, "requested", local(D3 + timedelta(days=1), 0, 11), agent=bob,
        assigned=local(D3 + timedelta(days=1), 0, 12), ended=local(D3 + timedelta(days=1), 0, 20),
        outcome="handed_back",
    )  # fmt: skip
    b.agent_says(c9, local(D3 + timedelta(days=1), 0, 13), bob)
    b.csat(c9, h9, local(D3 + timedelta(days=1), 0, 20), 1)
    # c10, Sunday 23:59 local: before the range.
    c10 = b.conversation(local(D1 - timedelta(days=1), 23, 59))
    b.turn(c10, local(D1 - timedelta(days=1), 23, 59), "greet", 0.9)
    return {"ann": ann, "bob": bob}


def test_conversations_per_day_in_local_days(session: Session, known: dict[str, int]) -> None:
    rows = analytics.conversations_per_day(session, start=D1, end=D3, tz=SHANGHAI)
    assert rows == [
        {"day": "2030-03-04", "conversations": 2, "engaged": 2, "contained": 2, "handed_off": 0},
        {"day": "2030-03-05", "conversations": 2, "engaged": 2, "contained": 0, "handed_off": 2},
        {"day": "2030-03-06", "conversations": 4, "engaged": 3, "contained": 0, "handed_off": 2},
    ]
    # Counted in UTC days the same rows would fall differently (c1 and c3 on Sunday/Monday).
    utc = analytics.conversations_per_day(session, start=D1, end=D3, tz="UTC")
    assert [r["conversations"] for r in utc] != [r["conversations"] for r in rows]


def test_containment_and_handoff_by_reason(session: Session, known: dict[str, int]) -> None:
    assert analytics.containment(session, start=D1, end=D3, tz=SHANGHAI) == {
        "engaged": 7,
        "contained": 2,
        "rate": pytest.approx(2 / 7),
    }
    handoff = analytics.handoff_by_reason(session, start=D1, end=D3, tz=SHANGHAI)
    assert handoff["engaged"] == 7 and handoff["handed_off"] == 4
    assert handoff["rate"] == pytest.approx(4 / 7)
    assert handoff["by_reason"] == [
        {"reason": reason, "conversations": 1, "rate": pytest.approx(1 / 7)}
        for reason in ("complaint", "fallback", "requested", "takeover")
    ]


def test_fallback_rate(session: Session, known: dict[str, int]) -> None:
    assert analytics.fallback_rate(session, start=D1, end=D3, tz=SHANGHAI) == {
        "turns": 12,  # 13 shopper messages, one of them written to an agent (no intent)
        "fallback": 2,
        "rate": pytest.approx(2 / 12),
        "out_of_scope": 1,
        "out_of_scope_rate": pytest.approx(1 / 12),
    }


def test_top_intents_and_their_trend(session: Session, known: dict[str, int]) -> None:
    intents = analytics.top_intents(session, start=D1, end=D3, tz=SHANGHAI)
    assert intents["turns"] == 10  # the 12 understood turns less the two fallbacks
    assert [(t["intent"], t["turns"]) for t in intents["top"]] == [
        ("order_status", 3),
        ("thank", 2),
        ("complaint", 1),
        ("human_agent", 1),
        ("out_of_scope", 1),
        ("product_question", 1),
        ("shipping_delay", 1),
    ]
    assert intents["top"][0]["share"] == pytest.approx(0.3)
    assert intents["trend"]["days"] == ["2030-03-04", "2030-03-05", "2030-03-06"]
    assert {s["intent"]: s["counts"] for s in intents["trend"]["series"]} == {
        "order_status": [1, 0, 2],
        "thank": [1, 1, 0],  # c2's second turn is on Tuesday, local time
        "complaint": [0, 1, 0],
        "human_agent": [0, 0, 1],
        "out_of_scope": [0, 0, 1],
        "product_question": [0, 0, 1],
        "shipping_delay": [1, 0, 0],
    }


def test_confidence_histogram_per_intent(session: Session, known: dict[str, int]) -> None:
    found = analytics.confidence_histogram(session, start=D1, end=D3, tz=SHANGHAI)
    assert found["edges"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

    def bins(*ks: int) -> list[int]:
        counts = [0] * 10
        for k in ks:
            counts[k] += 1
        return counts

    assert found["by_intent"] == [
        {"intent": "order_status", "counts": bins(9, 9, 3)},  # 0.95, 1.0 (last bin), 0.30
        {"intent": "nlu_fallback", "counts": bins(4, 5)},
        {"intent": "thank", "counts": bins(8, 7)},
        {"intent": "complaint", "counts": bins(9)},
        {"intent": "human_agent", "counts": bins(9)},
        {"intent": "out_of_scope", "counts": bins(7)},  # 0.70 exactly: bin 0.7-0.8
        {"intent": "product_question", "counts": bins(6)},
        {"intent": "shipping_delay", "counts": bins(8)},
    ]


def test_satisfaction(session: Session, known: dict[str, int]) -> None:
    assert analytics.satisfaction(session, start=D1, end=D3, tz=SHANGHAI) == {
        "asked": 3,
        "answered": 2,
        "mean": 3.5,
        "distribution": [
            {"score": 1, "count": 0},  # c9's 1 is after the range
            {"score": 2, "count": 1},
            {"score": 3, "count": 0},
            {"score": 4, "count": 0},
            {"score": 5, "count": 1},
        ],
    }


def test_response_and_resolution_times(session: Session, known: dict[str, int]) -> None:
    found = analytics.response_times(session, start=D1, end=D3, tz=SHANGHAI)
    by_agent = found.pop("by_agent")
    assert found == {
        "assigned": 3,  # c3, c4, c8; c5 was never assigned, c9 is after the range
        "answered": 3,
        "median_first_response_s": 25.0,  # 25, 60, 10
        "mean_first_response_s": pytest.approx(95 / 3),
        "within_target": 2,
        "settled": 3,
        "fast_rate": pytest.approx(2 / 3),
        "fast_window_s": 30,
        "median_wait_s": 20.0,  # 20, 60, 0
        "resolved": 3,
        "median_resolution_s": 540.0,  # 540, 1140, 480
    }
    assert [
        (
            a["agent_id"],
            a["assigned"],
            a["median_first_response_s"],
            a["within_target"],
            a["fast_rate"],
        )
        for a in by_agent
    ] == [(known["ann"], 2, 17.5, 2, 1.0), (known["bob"], 1, 60.0, 0, 0.0)]
    # One definition: the supervisor page's figures for the same period are these.
    p = analytics.period(start=D1, end=D3, tz=SHANGHAI)
    theirs = {
        a.staff_id: a
        for a in supervision.agent_stats(session, start=p.lo, end=p.hi, tz=SHANGHAI)
        if a.assigned
    }
    assert {k: (v.answered, v.response_rate) for k, v in theirs.items()} == {
        a["agent_id"]: (a["answered"], a["fast_rate"]) for a in by_agent
    }


def test_the_30_second_rate_waits_for_an_undecided_handoff(session: Session) -> None:
    b = Builder(session)
    ann = b.agent("Ann")
    cid = b.conversation(local(D1, 10))
    b.turn(cid, local(D1, 10), "human_agent", 0.99)
    assigned = local(D1, 10, 1)
    b.handoff(cid, "requested", local(D1, 10, 0, 30), agent=ann, assigned=assigned)

    def at(seconds: int) -> dict[str, Any]:
        return analytics.response_times(
            session,
            start=D1,
            end=D1,
            tz=SHANGHAI,
            clock=lambda: assigned + timedelta(seconds=seconds),
        )

    assert at(10)["fast_rate"] is None  # nobody can say yet
    assert at(31)["fast_rate"] == 0.0  # unanswered for more than 30 s: a miss
    b.agent_says(cid, assigned + timedelta(seconds=12), ann)
    assert at(31)["fast_rate"] == 1.0 and at(31)["median_first_response_s"] == 12.0


def test_heatmap_weekday_by_local_hour(session: Session, known: dict[str, int]) -> None:
    found = analytics.heatmap(session, start=D1, end=D3, tz=SHANGHAI)
    cells = found["cells"]
    assert len(cells) == 7 and all(len(row) == 24 for row in cells)
    expected = {(0, 0), (0, 23), (1, 7), (1, 12), (2, 9), (2, 15), (2, 20), (2, 21)}
    assert {(w, h) for w in range(7) for h in range(24) if cells[w][h]} == expected
    assert sum(map(sum, cells)) == 8 and found["max"] == 1


def test_dashboard_holds_every_figure(session: Session, known: dict[str, int]) -> None:
    board = analytics.dashboard(session, start=D1, end=D3, tz=SHANGHAI)
    assert board["kpi"] == {
        "conversations": 8,
        "engaged": 7,
        "containment": pytest.approx(2 / 7),
        "handoff_rate": pytest.approx(4 / 7),
        "fallback_rate": pytest.approx(2 / 12),
        "csat_mean": 3.5,
        "median_first_response_s": 25.0,
        "fast_rate": pytest.approx(2 / 3),
    }
    same = {
        "conversations_per_day": analytics.conversations_per_day,
        "containment": analytics.containment,
        "handoff": analytics.handoff_by_reason,
        "fallback": analytics.fallback_rate,
        "intents": analytics.top_intents,
        "satisfaction": analytics.satisfaction,
        "response_times": analytics.response_times,
        "heatmap": analytics.heatmap,
        "confidence": analytics.confidence_histogram,
    }
    for key, function in same.items():
        assert board[key] == function(session, start=D1, end=D3, tz=SHANGHAI), key
    assert board["period"]["days"] == ["2030-03-04", "2030-03-05", "2030-03-06"]


def test_an_empty_range_has_no_rates(session: Session) -> None:
    board = analytics.dashboard(session, start=date(2031, 6, 1), end=date(2031, 6, 2), tz=SHANGHAI)
    assert board["kpi"]["conversations"] == 0
    assert board["kpi"]["containment"] is None and board["kpi"]["fast_rate"] is None
    assert board["satisfaction"]["mean"] is None
    assert [r["conversations"] for r in board["conversations_per_day"]] == [0, 0]


BERLIN = "Europe/Berlin"
OCT26, OCT27, OCT28 = date(2030, 10, 26), date(2030, 10, 27), date(2030, 10, 28)


def test_daylight_saving_change_in_berlin(session: Session) -> None:
    """Summer time ends on Sunday 27 October 2030 at 03:00 CEST (01:00 UTC): that day has
    25 hours and 02:00-03:00 twice."""
    b = Builder(session)
    utc = timezone.utc
    for at in (
        datetime(2030, 10, 25, 21, 30, tzinfo=utc),  # Fri 23:30 CEST: before the range
        datetime(2030, 10, 26, 21, 30, tzinfo=utc),  # Sat 23:30 CEST
        datetime(2030, 10, 26, 22, 30, tzinfo=utc),  # Sun 00:30 CEST (UTC still Saturday)
        datetime(2030, 10, 27, 0, 30, tzinfo=utc),  # Sun 02:30 CEST
        datetime(2030, 10, 27, 1, 30, tzinfo=utc),  # Sun 02:30 CET, the repeated hour
        datetime(2030, 10, 27, 22, 30, tzinfo=utc),  # Sun 23:30 CET (+2 would say Monday)
        datetime(2030, 10, 27, 23, 15, tzinfo=utc),  # Mon 00:15 CET
        datetime(2030, 10, 28, 23, 10, tzinfo=utc),  # Tue 00:10 CET: after the range
    ):
        cid = b.conversation(at)
        b.turn(cid, at, "order_status", 0.9)
    p = analytics.period(start=OCT26, end=OCT28, tz=BERLIN)
    assert (p.lo, p.hi) == (
        datetime(2030, 10, 25, 22, tzinfo=utc),
        datetime(2030, 10, 28, 23, tzinfo=utc),
    )
    assert analytics._offsets(p) == [(datetime(2030, 10, 27, 1, tzinfo=utc), 7200), (None, 3600)]
    days = analytics.conversations_per_day(session, start=OCT26, end=OCT28, tz=BERLIN)
    assert [r["conversations"] for r in days] == [1, 4, 1]
    trend = analytics.top_intents(session, start=OCT26, end=OCT28, tz=BERLIN)["trend"]
    assert trend["series"] == [{"intent": "order_status", "counts": [1, 4, 1]}]
    cells = analytics.heatmap(session, start=OCT26, end=OCT28, tz=BERLIN)["cells"]
    filled = {(w, h): cells[w][h] for w in range(7) for h in range(24) if cells[w][h]}
    assert filled == {(5, 23): 1, (6, 0): 1, (6, 2): 2, (6, 23): 1, (0, 0): 1}


def test_half_hour_zone(session: Session) -> None:
    b = Builder(session)
    day = date(2030, 5, 1)
    for at in (
        datetime(2030, 4, 30, 18, 29, tzinfo=timezone.utc),  # 23:59 IST on 30 April
        datetime(2030, 4, 30, 18, 30, tzinfo=timezone.utc),  # 00:00 IST on 1 May
        datetime(2030, 5, 1, 18, 29, tzinfo=timezone.utc),  # 23:59 IST on 1 May
    ):
        b.conversation(at)
    rows = analytics.conversations_per_day(session, start=day, end=day, tz="Asia/Kolkata")
    assert rows[0]["conversations"] == 2
    cells = analytics.heatmap(session, start=day, end=day, tz="Asia/Kolkata")["cells"]
    assert cells[2][0] == 1 and cells[2][23] == 1  # a Wednesday


def test_bad_ranges_are_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="before the start"):
        analytics.period(start=D2, end=D1, tz=SHANGHAI)
    with pytest.raises(InvalidInput, match="unknown time zone"):
        analytics.period(start=D1, end=D2, tz="Mars/Olympus")
    with pytest.raises(InvalidInput, match="at most 366 days"):
        analytics.period(start=date(2030, 1, 1), end=date(2031, 1, 2), tz=SHANGHAI)
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        analytics.parse_range("2030-13-01", None, tz=SHANGHAI)


def test_default_range_is_the_last_14_local_days() -> None:
    # 2026-11-30 17:00 UTC is already 1 December in Shanghai.
    clock = lambda: datetime(2026, 11, 30, 17, tzinfo=timezone.utc)  # noqa: E731
    assert analytics.default_range(tz=SHANGHAI, clock=clock) == (
        date(2026, 11, 18),
        date(2026, 12, 1),
    )
    assert analytics.parse_range("", "", tz=SHANGHAI, clock=clock) == (
        date(2026, 11, 18),
        date(2026, 12, 1),
    )
    assert analytics.parse_range(None, "2026-11-10", tz=SHANGHAI, clock=clock) == (
        date(2026, 10, 28),
        date(2026, 11, 10),
    )


def test_models_and_migration_agree_on_the_analytics_indexes(session: Session) -> None:
    context = MigrationContext.configure(session.connection())
    names = {
        op[1].name
        for op in compare_metadata(context, Base.metadata)
        if isinstance(op, tuple) and op[0] in ("add_index", "remove_index")
    }
    assert not names & ANALYTICS_INDEXES
    found = {
        index["name"]
        for table in ("conversation", "message", "handoff", "csat")
        for index in inspect(session.connection()).get_indexes(table)
    }
    assert found >= ANALYTICS_INDEXES


def test_demo_history_is_marked_closed_plausible_and_written_once(session: Session) -> None:
    from bot.services.analytics_demo import DEMO_VISITOR_PREFIX, write_demo_history

    now = datetime(2032, 1, 31, 12, tzinfo=timezone.utc)
    started = time.perf_counter()
    made = write_demo_history(session=session, days=30, tz=SHANGHAI, clock=lambda: now)
    if session.get_bind().dialect.name == "sqlite":  # what `make seed` writes to
        assert time.perf_counter() - started < 5
    assert 1000 < made.conversations < 3000 and made.messages > 2 * made.conversations
    assert made.handoffs > 50 and made.csat > 30
    again = write_demo_history(session=session, days=30, tz=SHANGHAI, clock=lambda: now)
    assert again.conversations == 0  # once only
    rows = session.execute(
        select(Conversation.state, Conversation.customer_id, Visitor.id)
        .join(Visitor, Visitor.id == Conversation.visitor_id)
        .where(Conversation.created_at >= now - timedelta(days=31))
    ).all()
    assert len(rows) == made.conversations
    assert all(
        v.startswith(DEMO_VISITOR_PREFIX) and s == "closed" and c is None for s, c, v in rows
    )
    board = analytics.dashboard(
        session, start=date(2032, 1, 2), end=date(2032, 1, 31), tz=SHANGHAI, clock=lambda: now
    )
    kpi = board["kpi"]
    assert kpi["conversations"] == made.conversations
    assert 0.6 < kpi["containment"] < 0.95 and 0.0 < kpi["fallback_rate"] < 0.2
    assert 3.0 < kpi["csat_mean"] < 5.0
    assert sum(map(sum, board["heatmap"]["cells"])) == made.conversations
